//! The Helm chart, linted and rendered by Helm's own engine (`scripts/chart.py`), against the real kube-apiserver:
//! every rendered manifest applies, and the operator binary, started with the rendered Deployment's arguments and
//! environment as the chart's ServiceAccount, runs a pipeline from creation to deletion. So the chart's RBAC is
//! enough, and the access reviews at the end show what it does not grant.

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role};
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Api, Client, Resource};
use logpipe_operator::crd::LogPipeline;
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn the_chart_lints_clean_with_every_value_set() {
    let out = chart_py(&["lint"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helm lint found problems:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installed_chart_runs_the_operator_with_the_rbac_it_grants() {
    let admin = logpipe_tests::kube_client().await;
    let release = logpipe_tests::unique_name("chart");
    let (release_ns, watched_ns) = (release.clone(), format!("{release}-lp"));
    for ns in [&release_ns, &watched_ns] {
        // The label Kubernetes sets from 1.21 (this apiserver is 1.20): the webhook selects the watched namespace.
        let labels = json!({"kubernetes.io/metadata.name": ns});
        let object: Namespace = serde_json::from_value(json!({"metadata": {"name": ns, "labels": labels}})).unwrap();
        Api::<Namespace>::all(admin.clone()).create(&PostParams::default(), &object).await.unwrap();
    }
    let mut manifests = render(&release, &release_ns, &[&format!("watchNamespace={watched_ns}"), "image.tag=test"]);
    let webhook = format!("127.0.0.1:{}", free_port());
    reach_the_webhook_at(&mut manifests, &webhook);
    for manifest in &manifests {
        apply(&admin, &release_ns, manifest).await;
    }
    let account = named(&manifests, "ServiceAccount");
    let fullname = named(&manifests, "Deployment");

    let dir = tempfile::tempdir().unwrap();
    let operator = OperatorProcess::start(&manifests, &release_ns, &account, dir.path(), &webhook);
    let ready = format!("the operator's /readyz on {}", operator.http);
    logpipe_tests::wait_for(&ready, TIMEOUT, || async { http_get(&operator.http, "/readyz").filter(|b| b == "ready") })
        .await;
    let leases = Api::<Lease>::namespaced(admin.clone(), &release_ns);
    logpipe_tests::wait_for("the operator to hold the leader lease", TIMEOUT, || async {
        let lease = leases.get_opt(&fullname).await.ok()??;
        (lease.spec?.holder_identity? == OperatorProcess::POD_NAME).then_some(())
    })
    .await;

    the_webhook_trusts_the_operators_ca(&admin, &release_ns, &fullname).await;
    refuses_at_apply(&admin, &watched_ns).await;
    run_a_pipeline(&admin, &watched_ns, &operator).await;
    assert_denied(&admin, &release_ns, &account).await;

    let metrics = http_get(&operator.http, "/metrics").expect("/metrics answers");
    assert!(metrics.contains("logpipe_operator_leader 1"), "{metrics}");
    assert!(metrics.contains(r#"logpipe_operator_admission_reviews_total{verdict="refused"} 3"#), "{metrics}");
    assert!(metrics.contains("logpipe_operator_admission_certificate_expiry_timestamp_seconds "), "{metrics}");
    drop(operator);
    let _ = Api::<ClusterRoleBinding>::all(admin.clone()).delete(&fullname, &DeleteParams::default()).await;
    let _ = Api::<ClusterRole>::all(admin.clone()).delete(&fullname, &DeleteParams::default()).await;
    let _ = Api::<ValidatingWebhookConfiguration>::all(admin.clone()).delete(&fullname, &DeleteParams::default()).await;
    for ns in [&release_ns, &watched_ns] {
        let _ = Api::<Namespace>::all(admin.clone()).delete(ns, &DeleteParams::default()).await;
    }
}

/// The test apiserver has no Service network (no kube-proxy, no cluster DNS), so it cannot call the chart's
/// Service: the webhook configuration, as rendered in every other respect, is pointed at the operator's loopback
/// address instead. The certificate then names that address too (see OperatorProcess::start).
fn reach_the_webhook_at(manifests: &mut [Value], address: &str) {
    let configuration = manifests
        .iter_mut()
        .find(|m| m["kind"] == "ValidatingWebhookConfiguration")
        .expect("the chart renders the webhook configuration");
    let client = &mut configuration["webhooks"][0]["clientConfig"];
    let path = client["service"]["path"].as_str().expect("a path").to_owned();
    assert_eq!(path, logpipe_operator::admission::PATH);
    *client = json!({"url": format!("https://{address}{path}")});
}

/// The operator made the webhook's Secret under the chart's Role and put its CA into the chart's configuration.
async fn the_webhook_trusts_the_operators_ca(admin: &Client, namespace: &str, fullname: &str) {
    let secret = Api::<Secret>::namespaced(admin.clone(), namespace).get(&format!("{fullname}-webhook-tls")).await;
    let ca = secret.expect("the operator made the webhook's Secret").data.unwrap()["ca.crt"].clone();
    let configuration = Api::<ValidatingWebhookConfiguration>::all(admin.clone()).get(fullname).await.unwrap();
    let bundle = configuration.webhooks.unwrap()[0].client_config.ca_bundle.clone();
    assert_eq!(bundle, Some(ca), "the configuration trusts the Secret's CA");
}

/// A pipeline owner's specs that the policy refuses fail at `kubectl apply`, with the field and the policy, and
/// nothing is stored.
async fn refuses_at_apply(admin: &Client, namespace: &str) {
    let pipelines = Api::<LogPipeline>::namespaced(admin.clone(), namespace);
    let cases = [
        ("etc", json!({"collector": {"paths": ["/etc/kubernetes/pki/*.key"]}}), "policy.allowedHostPaths"),
        ("image", json!({"collector": {"image": "example.com/mine:1"}}), "policy.allowImageOverrides"),
        ("others", json!({"collector": {"filter": {"includeNamespaces": ["kube-system"]}}}), "clusterWideNamespaces"),
    ];
    for (name, spec, policy) in cases {
        let mut pipeline = json!({
            "apiVersion": "logpipe.dev/v1alpha1",
            "kind": "LogPipeline",
            "metadata": {"name": name},
            "spec": {
                "kafka": {"external": {"bootstrapServers": logpipe_tests::kafka_bootstrap()}},
                "indexer": {"elasticsearch": {"url": logpipe_tests::elasticsearch_url()}}
            }
        });
        pipeline["spec"]["collector"] = spec["collector"].clone();
        let created = pipelines.patch(name, &PatchParams::apply("owner").force(), &Patch::Apply(&pipeline)).await;
        let message = match created {
            Err(kube::Error::Api(status)) => status.message,
            other => panic!("{name}: the API server stored a pipeline the policy refuses: {other:?}"),
        };
        assert!(message.contains("logpipelines.logpipe.dev") && message.contains(policy), "{name}: {message}");
        assert!(pipelines.get_opt(name).await.unwrap().is_none(), "{name}: nothing is stored");
    }
}

/// Creation (children, topics, status) and deletion (the finalizer's cleanup of cluster-scoped RBAC and topics) of
/// a pipeline, all done by the operator under the chart's identity.
async fn run_a_pipeline(admin: &Client, namespace: &str, operator: &OperatorProcess) {
    let pipelines = Api::<LogPipeline>::namespaced(admin.clone(), namespace);
    let name = "chart-logs";
    let topic = format!("{namespace}-logs");
    let pipeline = json!({
        "apiVersion": "logpipe.dev/v1alpha1",
        "kind": "LogPipeline",
        "metadata": {"name": name},
        "spec": {
            "kafka": {
                "external": {"bootstrapServers": logpipe_tests::kafka_bootstrap()},
                "topic": {"name": topic, "partitions": 1, "replicationFactor": 1, "deleteOnRemoval": true}
            },
            "indexer": {"elasticsearch": {"url": logpipe_tests::elasticsearch_url()}}
        }
    });
    // The chart's CRD was applied a moment ago: the API serves the kind once it is established.
    logpipe_tests::wait_for("the LogPipeline kind to be served", TIMEOUT, || async {
        pipelines.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&pipeline)).await.ok()
    })
    .await;
    for condition in ["ConfigValid", "KafkaReady"] {
        let what = format!("{condition}=True, set by the operator (log: {})", operator.log.display());
        logpipe_tests::wait_for(&what, TIMEOUT, || async {
            let status = pipelines.get(name).await.ok()?.status?;
            status.conditions.iter().any(|c| c.type_ == condition && c.status == "True").then_some(())
        })
        .await;
    }
    let role = logpipe_operator::names::PipelineName::new(namespace, name).unwrap().collector_cluster_role();
    Api::<ClusterRole>::all(admin.clone()).get(&role).await.unwrap();
    // A pipeline outside the release namespace collects its own namespace: its pods are read through a Role there.
    let pods_role = Api::<Role>::namespaced(admin.clone(), namespace).get(&format!("{name}-collector")).await.unwrap();
    assert_eq!(pods_role.rules.unwrap()[0].resources.as_deref(), Some(&["pods".to_owned()][..]));
    prunes_what_the_spec_does_not_want(admin, namespace, &pipelines.get(name).await.unwrap(), operator).await;
    secures_a_managed_kafka(admin, namespace, operator).await;

    pipelines.delete(name, &DeleteParams::default()).await.unwrap();
    let what = format!("the finalizer to let the pipeline go (log: {})", operator.log.display());
    logpipe_tests::wait_for(&what, TIMEOUT, || async { pipelines.get_opt(name).await.ok()?.is_none().then_some(()) })
        .await;
    assert!(Api::<ClusterRole>::all(admin.clone()).get_opt(&role).await.unwrap().is_none());
}

/// A managed Kafka, secured by default: under the chart's identity the operator makes its TLS and users Secrets
/// before the StatefulSets that mount them (no Kafka runs here; the reconcile goes as far as the cluster allows).
async fn secures_a_managed_kafka(admin: &Client, namespace: &str, operator: &OperatorProcess) {
    let pipelines = Api::<LogPipeline>::namespaced(admin.clone(), namespace);
    let name = "chart-managed";
    let pipeline = json!({
        "apiVersion": "logpipe.dev/v1alpha1",
        "kind": "LogPipeline",
        "metadata": {"name": name},
        "spec": {
            "kafka": {"managed": {"brokers": 1, "controllers": 1}, "topic": {"replicationFactor": 1}},
            "indexer": {"elasticsearch": {"url": logpipe_tests::elasticsearch_url()}}
        }
    });
    pipelines.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&pipeline)).await.unwrap();
    let secrets = Api::<Secret>::namespaced(admin.clone(), namespace);
    let sets = Api::<StatefulSet>::namespaced(admin.clone(), namespace);
    let what = format!("the managed Kafka's Secrets and brokers (log: {})", operator.log.display());
    logpipe_tests::wait_for(&what, TIMEOUT, || async {
        secrets.get_opt(&format!("{name}-kafka-tls")).await.ok()??;
        secrets.get_opt(&format!("{name}-kafka-users")).await.ok()??;
        sets.get_opt(&format!("{name}-kafka")).await.ok()?
    })
    .await;
    pipelines.delete(name, &DeleteParams::default()).await.unwrap();
    logpipe_tests::wait_for("the managed pipeline to go", TIMEOUT, || async {
        pipelines.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await;
}

/// A ConfigMap with the pipeline's labels and owner that no spec asks for (as one left by an older version of the
/// spec) is deleted by the operator under the chart's identity; its creation wakes the controller, which watches
/// the ConfigMaps it manages.
async fn prunes_what_the_spec_does_not_want(admin: &Client, namespace: &str, lp: &LogPipeline, op: &OperatorProcess) {
    let name = lp.metadata.name.clone().unwrap();
    let stale: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": format!("{name}-stale"),
            "labels": {"app.kubernetes.io/instance": name, "app.kubernetes.io/managed-by": "logpipe-operator"},
            "ownerReferences": [lp.controller_owner_ref(&()).unwrap()]
        }
    }))
    .unwrap();
    let maps = Api::<ConfigMap>::namespaced(admin.clone(), namespace);
    maps.create(&PostParams::default(), &stale).await.unwrap();
    let what = format!("the stale ConfigMap to be pruned (log: {})", op.log.display());
    logpipe_tests::wait_for(&what, TIMEOUT, || async {
        maps.get_opt(&format!("{name}-stale")).await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(maps.get_opt(&format!("{name}-collector")).await.unwrap().is_some(), "the wanted ConfigMap stays");
}

/// What the chart does not grant: the operator never reads Secrets in bulk or deletes them, never creates or edits
/// pods (it deletes a managed broker's pod to restart it), never deletes namespaces, never touches nodes or other
/// RBAC verbs.
async fn assert_denied(admin: &Client, namespace: &str, account: &str) {
    let denied = [
        ("list", "", "secrets"),
        ("delete", "", "secrets"),
        ("delete", "", "namespaces"),
        ("watch", "", "secrets"),
        ("create", "", "pods"),
        ("update", "", "pods"),
        ("update", "", "nodes"),
        ("escalate", "rbac.authorization.k8s.io", "clusterroles"),
        ("bind", "rbac.authorization.k8s.io", "clusterroles"),
        ("impersonate", "", "users"),
        ("delete", "logpipe.dev", "logpipelines"),
        ("patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    ];
    let reviews = Api::<SubjectAccessReview>::all(admin.clone());
    for (verb, group, resource) in denied {
        let review: SubjectAccessReview = serde_json::from_value(json!({
            "spec": {
                "user": format!("system:serviceaccount:{namespace}:{account}"),
                "groups": logpipe_tests::service_account_groups(namespace),
                "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": "default"}
            }
        }))
        .unwrap();
        let answer = reviews.create(&PostParams::default(), &review).await.unwrap();
        assert!(!answer.status.unwrap().allowed, "the chart grants {verb} on {group}/{resource}");
    }
}

/// The logpipe-operator binary, run as the chart's Deployment would run it, as the chart's ServiceAccount.
struct OperatorProcess {
    child: Child,
    http: String,
    log: PathBuf,
}

impl OperatorProcess {
    const POD_NAME: &'static str = "logpipe-operator-chart-test";

    fn start(manifests: &[Value], namespace: &str, account: &str, dir: &Path, webhook: &str) -> OperatorProcess {
        let deployment = manifests.iter().find(|m| m["kind"] == "Deployment").expect("the chart renders a Deployment");
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let http = format!("127.0.0.1:{}", free_port());
        let args = container["args"].as_array().expect("container args").iter().map(|a| {
            let a = a.as_str().expect("string args");
            if a.starts_with("--http-listen=") {
                format!("--http-listen={http}")
            } else if a.starts_with("--webhook-listen=") {
                format!("--webhook-listen={webhook}")
            } else if a.starts_with("--webhook-hosts=") {
                let ip = webhook.split(':').next().unwrap();
                format!("{a},{ip}")
            } else {
                a.to_owned()
            }
        });
        let log = dir.join("operator.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_logpipe-operator"));
        command.args(args).env("KUBECONFIG", logpipe_tests::impersonating_kubeconfig(namespace, account, dir));
        for var in container["env"].as_array().into_iter().flatten() {
            command.env(var["name"].as_str().unwrap(), env_value(var, namespace));
        }
        let file = std::fs::File::create(&log).unwrap();
        let child = command.stdout(Stdio::null()).stderr(file).spawn().expect("starting logpipe-operator");
        OperatorProcess { child, http, log }
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- logpipe-operator's log ---\n{log}");
        }
    }
}

/// The value the kubelet would give an env entry of the rendered Deployment.
fn env_value(var: &Value, namespace: &str) -> String {
    if let Some(value) = var["value"].as_str() {
        return value.to_owned();
    }
    match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
        Some("metadata.name") => OperatorProcess::POD_NAME.to_owned(),
        Some("metadata.namespace") => namespace.to_owned(),
        _ => panic!("the test does not know how to fill env {var}"),
    }
}

/// The test environment's kubeconfig, acting as the ServiceAccount (the admin may impersonate anyone).
fn chart_py(args: &[&str]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/chart.py");
    Command::new(logpipe_tests::helm_python()).arg(script).args(args).output().expect("running scripts/chart.py")
}

/// The manifests of `helm install` for this release, CRDs first, as JSON values.
fn render(release: &str, namespace: &str, sets: &[&str]) -> Vec<Value> {
    let mut args = vec!["render", "--release", release, "--namespace", namespace];
    for set in sets {
        args.extend(["--set", set]);
    }
    let out = chart_py(&args);
    assert!(out.status.success(), "chart render failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn named(manifests: &[Value], kind: &str) -> String {
    let m = manifests.iter().find(|m| m["kind"] == kind).unwrap_or_else(|| panic!("the chart renders no {kind}"));
    m["metadata"]["name"].as_str().unwrap().to_owned()
}

/// Server-side apply of one rendered manifest, with the scope the API server reports for its kind.
async fn apply(client: &Client, namespace: &str, manifest: &Value) {
    let (group, version) = match manifest["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", manifest["apiVersion"].as_str().unwrap()),
    };
    let gvk = GroupVersionKind::gvk(group, version, manifest["kind"].as_str().unwrap());
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, &resource),
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let name = manifest["metadata"]["name"].as_str().unwrap();
    let params = PatchParams::apply("logpipe-chart-test").force();
    if let Err(e) = api.patch(name, &params, &Patch::Apply(manifest)).await {
        panic!("the API server refused {} {name}: {e}", gvk.kind);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The body of a 200 answer, or None.
fn http_get(address: &str, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.trim().to_owned())
}
