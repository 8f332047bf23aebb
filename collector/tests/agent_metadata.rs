//! Pod metadata and filters, against the real kube-apiserver: the agent watches the pods of its node, enriches
//! records with labels, annotations, owner, image and namespace labels, and collects only what the filter allows.

mod support;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, PostParams};
use logpipe_tests::{kube_client, unique_name, wait_for};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

async fn create_namespace(client: &kube::Client, name: &str, team: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": team}}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
}

/// Creates a pod bound to `node` (no kubelet runs, so it stays Pending, which is all the watch needs) and returns
/// its uid. Retries while the namespace's default service account does not exist yet.
async fn create_pod(client: &kube::Client, ns: &str, node: &str, spec: Value) -> String {
    let mut pod = json!({"metadata": {"namespace": ns}, "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1"}]}});
    merge(&mut pod, spec);
    let pod: Pod = serde_json::from_value(pod).unwrap();
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let created = wait_for("pod creation", Duration::from_secs(30), || async {
        api.create(&PostParams::default(), &pod).await.ok()
    })
    .await;
    created.metadata.uid.unwrap()
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// Writes three CRI lines `<pod>/<container> line <i>` into the kubelet path of that container.
fn write_logs(root: &Path, ns: &str, pod: &str, uid: &str, container: &str, file: &str) {
    let dir = root.join(format!("{ns}_{pod}_{uid}/{container}"));
    fs::create_dir_all(&dir).unwrap();
    let text: String = (0..3)
        .map(|i| format!("2026-11-22T08:00:00.000000000Z stdout F {pod}/{container}/{file} line {i}\n"))
        .collect();
    fs::write(dir.join(file), text).unwrap();
}

/// Documents in the file sink's output, by message.
fn documents(out: &Path) -> HashMap<String, Value> {
    let text = fs::read_to_string(out).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|d| (d["message"].as_str().unwrap().to_owned(), d))
        .collect()
}

fn config(dir: &Path, root: &Path, node: &str, out: &Path) -> PathBuf {
    let config = json!({
        "tail": {"include": [format!("{}/*/*/*.log", root.display())], "scan_interval_ms": 100, "idle_wait_ms": 10},
        "state_dir": dir.join("state"),
        "host_name": "test-host",
        "kubernetes": {"metadata": "enabled", "node_name": node, "wait_for_metadata_ms": 3000},
        "filter": {
            "namespace_selector": {"matchLabels": {"team": "a"}},
            "pod_selector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
            "exclude_containers": ["sidecar"]
        },
        "sink": {"type": "file", "path": out}
    });
    let path = dir.join("agent.yaml");
    fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_carry_pod_metadata_and_only_selected_pods_are_collected() {
    let client = kube_client().await;
    let (node, ns_a, ns_b) = (unique_name("node"), unique_name("meta-a"), unique_name("meta-b"));
    create_namespace(&client, &ns_a, "a").await;
    create_namespace(&client, &ns_b, "b").await;
    let web = create_pod(&client, &ns_a, &node, json!({
        "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web", "tier": "web"}, "annotations": {"note": "hello"}},
        "spec": {"containers": [{"name": "app", "image": "web:1"}, {"name": "sidecar", "image": "proxy:1"}]}
    })).await;
    let quiet = create_pod(
        &client,
        &ns_a,
        &node,
        json!({"metadata": {"name": "quiet", "annotations": {"logpipe.dev/exclude": "true"}}}),
    )
    .await;
    let db = create_pod(&client, &ns_a, &node, json!({"metadata": {"name": "db", "labels": {"tier": "db"}}})).await;
    let other = create_pod(&client, &ns_b, &node, json!({"metadata": {"name": "other"}})).await;

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let out = tmp.path().join("out.ndjson");
    write_logs(&root, &ns_a, "web", &web, "app", "0.log");
    write_logs(&root, &ns_a, "web", &web, "sidecar", "0.log");
    write_logs(&root, &ns_a, "quiet", &quiet, "app", "0.log");
    write_logs(&root, &ns_a, "db", &db, "app", "0.log");
    write_logs(&root, &ns_b, "other", &other, "app", "0.log");
    write_logs(&root, &ns_a, "unknown", "no-such-uid", "app", "0.log");

    let log = tmp.path().join("agent.log");
    let agent = support::start_agent(&config(tmp.path(), &root, &node, &out), &log);
    // A pod created while the agent runs comes through the watch, not the initial list.
    let late =
        create_pod(&client, &ns_a, &node, json!({"metadata": {"name": "late", "labels": {"tier": "web"}}})).await;
    write_logs(&root, &ns_a, "late", &late, "app", "0.log");
    let seen =
        |docs: &HashMap<String, Value>, prefix: &str| (0..3).all(|i| docs.contains_key(&format!("{prefix} line {i}")));
    wait_for("web, late and unknown records", Duration::from_secs(30), || async {
        let d = documents(&out);
        (seen(&d, "web/app/0.log") && seen(&d, "late/app/0.log") && seen(&d, "unknown/app/0.log")).then_some(())
    })
    .await;
    // The pod is deleted while the kubelet still has its files: a container restart file opened after the deletion
    // still gets the pod's metadata (the grace period).
    Api::<Pod>::namespaced(client.clone(), &ns_a)
        .delete("web", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    wait_for("the pod to be gone", Duration::from_secs(30), || async {
        Api::<Pod>::namespaced(client.clone(), &ns_a).get_opt("web").await.unwrap().is_none().then_some(())
    })
    .await;
    write_logs(&root, &ns_a, "web", &web, "app", "1.log");
    wait_for("records of the restart file", Duration::from_secs(30), || async {
        seen(&documents(&out), "web/app/1.log").then_some(())
    })
    .await;
    support::stop_agent(agent);
    support::print_log_tail(&log);

    let docs = documents(&out);
    let k8s = |msg: &str| docs[msg]["kubernetes"].clone();
    let web_doc = k8s("web/app/0.log line 0");
    assert_eq!(web_doc["labels"], json!({"app_kubernetes_io/name": "web", "tier": "web"}));
    assert_eq!(web_doc["annotations"], json!({"note": "hello"}));
    assert_eq!(web_doc["namespace_labels"]["team"], "a");
    assert_eq!(web_doc["container"], json!({"name": "app", "restart_count": 0, "image": "web:1"}));
    assert_eq!(web_doc["node"]["name"], json!(node));
    assert_eq!(web_doc["pod"], json!({"name": "web", "uid": web}));
    assert_eq!(k8s("web/app/1.log line 2")["labels"]["tier"], "web", "metadata kept after the pod was deleted");
    assert_eq!(k8s("late/app/0.log line 0")["labels"], json!({"tier": "web"}));
    let unknown = k8s("unknown/app/0.log line 0");
    assert_eq!((unknown["pod"]["name"].as_str(), unknown.get("labels")), (Some("unknown"), None), "path metadata only");
    let skipped: Vec<&String> =
        docs.keys().filter(|m| ["web/sidecar", "quiet/", "db/", "other/"].iter().any(|p| m.starts_with(p))).collect();
    assert!(skipped.is_empty(), "filtered pods were collected: {skipped:?}");
    assert_eq!(docs.len(), 12, "web 0.log and 1.log, late and unknown, three lines each: {:?}", docs.keys());

    for ns in [&ns_a, &ns_b] {
        Api::<Namespace>::all(client.clone()).delete(ns, &DeleteParams::default()).await.unwrap();
    }
}

/// A pipeline confined to one namespace: the agent, with only the rights the operator grants such a pipeline's
/// collectors (that namespace's pods, every namespace's metadata), watches that namespace's pods and still labels
/// every record; other namespaces' pods and files of no pod are not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confined_agent_reads_its_namespace_with_a_namespace_role() {
    let client = kube_client().await;
    let (node, own, other) = (unique_name("node"), unique_name("conf-own"), unique_name("conf-other"));
    create_namespace(&client, &own, "a").await;
    create_namespace(&client, &other, "a").await;
    let account = "collector";
    let cluster_role = unique_name("conf-namespaces");
    grant(&client, &own, account, &cluster_role).await;
    let web = create_pod(&client, &own, &node, json!({"metadata": {"name": "web", "labels": {"tier": "web"}}})).await;
    let foreign = create_pod(&client, &other, &node, json!({"metadata": {"name": "foreign"}})).await;

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    let out = tmp.path().join("out.ndjson");
    write_logs(&root, &own, "web", &web, "app", "0.log");
    write_logs(&root, &other, "foreign", &foreign, "app", "0.log");
    let host_file = root.join("host/system");
    fs::create_dir_all(&host_file).unwrap();
    fs::write(host_file.join("syslog.log"), "not a pod's line\n").unwrap();
    let config = config(tmp.path(), &root, &node, &out);
    let mut text: Value = serde_yaml::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    text["filter"] = json!({"include_namespaces": [own]});
    text["kubernetes"]["wait_for_metadata_ms"] = json!(60_000);
    fs::write(&config, serde_yaml::to_string(&text).unwrap()).unwrap();

    let log = tmp.path().join("agent.log");
    let kubeconfig = logpipe_tests::impersonating_kubeconfig(&own, account, tmp.path());
    let agent = support::start_agent_with_env(&config, &log, &[("KUBECONFIG", kubeconfig.as_os_str())]);
    wait_for("the confined namespace's records", Duration::from_secs(30), || async {
        let docs = documents(&out);
        (0..3).all(|i| docs.contains_key(&format!("web/app/0.log line {i}"))).then_some(())
    })
    .await;
    support::stop_agent(agent);
    support::print_log_tail(&log);

    let docs = documents(&out);
    assert_eq!(
        docs["web/app/0.log line 0"]["kubernetes"]["labels"],
        json!({"tier": "web"}),
        "metadata through the Role"
    );
    assert_eq!(docs.len(), 3, "only the own namespace's pod: {:?}", docs.keys());
    let agent_log = fs::read_to_string(&log).unwrap();
    assert!(!agent_log.contains("watch failed"), "the watch needs no more than the Role grants:\n{agent_log}");
    for ns in [&own, &other] {
        Api::<Namespace>::all(client.clone()).delete(ns, &DeleteParams::default()).await.unwrap();
    }
    Api::<ClusterRole>::all(client.clone()).delete(&cluster_role, &DeleteParams::default()).await.unwrap();
    Api::<ClusterRoleBinding>::all(client).delete(&cluster_role, &DeleteParams::default()).await.unwrap();
}

/// What the operator grants a confined pipeline's collectors: the pods of `namespace` (a Role there) and the
/// metadata of namespaces (a ClusterRole), to the ServiceAccount `namespace/account`.
async fn grant(client: &kube::Client, namespace: &str, account: &str, cluster_role: &str) {
    let read =
        |resource: &str| json!([{"apiGroups": [""], "resources": [resource], "verbs": ["get", "list", "watch"]}]);
    let subject = json!([{"kind": "ServiceAccount", "name": account, "namespace": namespace}]);
    let role: Role = serde_json::from_value(json!({"metadata": {"name": account}, "rules": read("pods")})).unwrap();
    Api::<Role>::namespaced(client.clone(), namespace).create(&PostParams::default(), &role).await.unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": account},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
        "subjects": subject
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), namespace).create(&PostParams::default(), &binding).await.unwrap();
    let role: ClusterRole =
        serde_json::from_value(json!({"metadata": {"name": cluster_role}, "rules": read("namespaces")})).unwrap();
    Api::<ClusterRole>::all(client.clone()).create(&PostParams::default(), &role).await.unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": cluster_role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": subject
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone()).create(&PostParams::default(), &binding).await.unwrap();
}
