//! The reconciler against the real kube-apiserver (with the controller-manager, for DaemonSet pods and garbage
//! collection) and the Kafka-protocol test broker.

mod support;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use logpipe_operator::build::CONFIG_HASH_ANNOTATION;
use logpipe_operator::names::PipelineName;
use logpipe_operator::validate::{Namespaces, Policy};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;
use serde_json::json;
use support::{pipeline, Operator, TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_create_roll_out_change_delete() {
    let mut op = Operator::start("op-life").await;
    let name = logpipe_tests::unique_name("lp");
    let node = register_node(&op, &name).await;
    op.apply(pipeline(&name, &name)).await;
    op.condition(&name, "ConfigValid", "True").await;
    let lp = op.pipelines.get(&name).await.unwrap();
    let uid = lp.uid().unwrap();

    // Every namespaced child is owned by the pipeline; the cluster-scoped RBAC is read-only on pods and namespaces.
    let ns = &op.namespace;
    let owned = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        meta.owner_references.iter().flatten().any(|o| o.uid == uid && o.controller == Some(true))
    };
    for sa in [format!("{name}-collector"), format!("{name}-indexer")] {
        assert!(owned(Api::<ServiceAccount>::namespaced(op.client.clone(), ns).get(&sa).await.unwrap().meta()));
        assert!(owned(Api::<ConfigMap>::namespaced(op.client.clone(), ns).get(&sa).await.unwrap().meta()));
    }
    let ds = Api::<DaemonSet>::namespaced(op.client.clone(), ns).get(&format!("{name}-collector")).await.unwrap();
    assert!(owned(ds.meta()));
    let deploy = Api::<Deployment>::namespaced(op.client.clone(), ns).get(&format!("{name}-indexer")).await.unwrap();
    assert!(owned(deploy.meta()));
    // Under the default policy the pipeline collects its own namespace: it reads namespaces cluster-wide, and pods
    // only there, through a Role the pipeline owns.
    let role_name = PipelineName::new(ns, &name).unwrap().collector_cluster_role();
    let role = Api::<ClusterRole>::all(op.client.clone()).get(&role_name).await.unwrap();
    let rules = role.rules.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].verbs, ["get", "list", "watch"]);
    assert_eq!(rules[0].resources.as_deref().unwrap(), ["namespaces"]);
    Api::<ClusterRoleBinding>::all(op.client.clone()).get(&role_name).await.unwrap();
    let pods_role = Api::<Role>::namespaced(op.client.clone(), ns).get(&format!("{name}-collector")).await.unwrap();
    assert!(owned(pods_role.meta()));
    assert_eq!(pods_role.rules.unwrap()[0].resources.as_deref().unwrap(), ["pods"]);
    let binding =
        Api::<RoleBinding>::namespaced(op.client.clone(), ns).get(&format!("{name}-collector")).await.unwrap();
    assert_eq!(binding.subjects.unwrap()[0].name, format!("{name}-collector"));

    // The topics exist in Kafka with the spec's partitions.
    let topic = format!("{name}-logs");
    assert_eq!(kafka_partitions(&topic), Some(2));
    assert_eq!(kafka_partitions(&format!("{topic}.dead-letter")), Some(1));
    op.condition(&name, "KafkaReady", "True").await;
    wait_event(&op, &name, "TopicCreated").await;
    wait_event(&op, &name, "RolledOut").await;

    // Pods the controllers created become ready (no kubelet here: the test plays its part), and so does the pipeline.
    make_pods_ready(&op, &name, "collector").await;
    make_pods_ready(&op, &name, "indexer").await;
    op.condition(&name, "Ready", "True").await;
    let status = op.pipelines.get(&name).await.unwrap().status.unwrap();
    assert_eq!(status.collector.unwrap().summary, "1/1");
    assert_eq!(status.indexer.unwrap().summary, "1/1");

    // A spec change renders a new config and a new hash, which rolls the collector pods.
    let hash_before = template_hash(&ds);
    let mut changed = pipeline(&name, &name);
    changed["spec"]["collector"]["multiline"] = json!({"start": "^\\S"});
    op.apply(changed).await;
    let ds_api = Api::<DaemonSet>::namespaced(op.client.clone(), ns);
    let ds = logpipe_tests::wait_for("the collector's config hash to change", TIMEOUT, || async {
        let ds = ds_api.get(&format!("{name}-collector")).await.ok()?;
        (template_hash(&ds) != hash_before).then_some(ds)
    })
    .await;
    let cm = Api::<ConfigMap>::namespaced(op.client.clone(), ns).get(&format!("{name}-collector")).await.unwrap();
    assert!(cm.data.unwrap()["agent.yaml"].contains("start: ^\\S"));
    let deploy_after =
        Api::<Deployment>::namespaced(op.client.clone(), ns).get(&format!("{name}-indexer")).await.unwrap();
    assert_eq!(
        template_hash_deploy(&deploy),
        template_hash_deploy(&deploy_after),
        "the indexer's config did not change"
    );
    assert!(ds.metadata.generation > Some(1));

    // Deletion: the finalizer removes the cluster-scoped RBAC and the topics; garbage collection the rest.
    op.pipelines.delete(&name, &DeleteParams::default()).await.unwrap();
    logpipe_tests::wait_for("the pipeline to be gone", TIMEOUT, || async {
        op.pipelines.get_opt(&name).await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(Api::<ClusterRole>::all(op.client.clone()).get_opt(&role_name).await.unwrap().is_none());
    assert!(Api::<ClusterRoleBinding>::all(op.client.clone()).get_opt(&role_name).await.unwrap().is_none());
    assert_eq!(kafka_partitions(&topic), None);
    logpipe_tests::wait_for("garbage collection of the children", TIMEOUT, || async {
        let ds = ds_api.get_opt(&format!("{name}-collector")).await.ok()?;
        let cms = Api::<ConfigMap>::namespaced(op.client.clone(), ns).list(&ListParams::default()).await.ok()?;
        let ours = cms.items.iter().filter(|c| c.name_any().starts_with(&name)).count();
        (ds.is_none() && ours == 0).then_some(())
    })
    .await;
    op.stop().await;
    Api::<Node>::all(op.client.clone()).delete(&node, &DeleteParams::default()).await.unwrap();
}

/// A child's name held by an object the pipeline did not create: refused with the object named, nothing created
/// and the object untouched; once it is gone, the pipeline rolls out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_in_the_way_is_not_taken_over() {
    let mut op = Operator::start("op-taken").await;
    let name = logpipe_tests::unique_name("lp");
    let maps = Api::<ConfigMap>::namespaced(op.client.clone(), &op.namespace);
    let theirs: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-indexer"), "labels": {"team": "theirs"}},
        "data": {"their.conf": "x"}
    }))
    .unwrap();
    maps.create(&PostParams::default(), &theirs).await.unwrap();
    op.apply(pipeline(&name, &name)).await;
    let message = op.condition(&name, "ConfigValid", "False").await;
    assert!(message.contains(&format!("ConfigMap {name}-indexer already exists")), "{message}");
    wait_event(&op, &name, "InvalidSpec").await;
    let ns = &op.namespace;
    let untouched = maps.get(&format!("{name}-indexer")).await.unwrap();
    assert_eq!(untouched.data, theirs.data, "their ConfigMap was changed");
    assert!(untouched.metadata.owner_references.is_none(), "their ConfigMap was adopted");
    assert!(Api::<DaemonSet>::namespaced(op.client.clone(), ns)
        .get_opt(&format!("{name}-collector"))
        .await
        .unwrap()
        .is_none());
    assert!(maps.get_opt(&format!("{name}-collector")).await.unwrap().is_none(), "something was created");

    maps.delete(&format!("{name}-indexer"), &DeleteParams::default()).await.unwrap();
    // The retry after a conflict is a minute away; a spec change wakes the controller at once.
    let mut touched = pipeline(&name, &name);
    touched["metadata"]["annotations"] = json!({"test/touched": "1"});
    op.apply(touched).await;
    op.condition(&name, "ConfigValid", "True").await;
    let ours = maps.get(&format!("{name}-indexer")).await.unwrap();
    assert!(ours.metadata.owner_references.is_some_and(|o| o.iter().any(|o| o.kind == "LogPipeline")));
    op.stop().await;
}

/// The operator's default policy, as a pipeline owner meets it: node secrets and an image of their own are refused
/// with the field and the policy named, and nothing is created. (Table tests show the same specs accepted by a
/// policy that allows them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_refuses_before_anything_is_created() {
    let mut op = Operator::start("op-policy").await;
    let name = logpipe_tests::unique_name("lp");
    let cases = [
        (&["collector", "paths"][..], json!(["/etc/kubernetes/pki/*.key"]), "spec.collector.paths"),
        (&["collector", "image"][..], json!("someone/else:1"), "spec.collector.image"),
        (&["collector", "filter"][..], json!({"includeNamespaces": ["kube-system"]}), "spec.collector.filter"),
    ];
    let mut everything = pipeline(&name, &name);
    for (path, value, field) in cases {
        let mut spec = pipeline(&name, &name);
        spec["spec"][path[0]][path[1]] = value.clone();
        everything["spec"][path[0]][path[1]] = value;
        op.apply(spec).await;
        let message = refused(&op, &name, field).await;
        assert!(message.contains("policy"), "{message}");
    }

    // A namespace the administrator did not name for pipelines: refused whatever the spec.
    op.stop().await;
    op.defaults.policy.pipeline_namespaces = Namespaces::Only(["logging".to_owned()].into());
    op.restart();
    op.apply(pipeline(&name, &name)).await;
    let message = refused(&op, &name, "metadata.namespace").await;
    assert!(message.contains("policy.pipelineNamespaces"), "{message}");
    assert!(children(&op, &name).await.is_empty(), "nothing was created");

    // The same asks, under a policy that allows them.
    op.stop().await;
    op.defaults.policy = Policy {
        host_paths: vec!["/etc/kubernetes".into(), "/var/log/pods".into()],
        image_overrides: true,
        pipeline_namespaces: Namespaces::Any,
        cluster_wide: Namespaces::Only([op.namespace.clone()].into()),
    };
    op.restart();
    op.apply(everything).await;
    op.condition(&name, "ConfigValid", "True").await;
    let agent = logpipe_tests::wait_for("the collector's config", TIMEOUT, || async {
        let cms = Api::<ConfigMap>::namespaced(op.client.clone(), &op.namespace);
        cms.get_opt(&format!("{name}-collector")).await.ok()??.data?.remove("agent.yaml")
    })
    .await;
    assert!(agent.contains("kube-system"), "the named namespace is collected: {agent}");
    assert_eq!(children(&op, &name).await, ["ConfigMap", "DaemonSet"]);
    let roles = Api::<Role>::namespaced(op.client.clone(), &op.namespace);
    assert!(roles.get_opt(&format!("{name}-collector")).await.unwrap().is_none(), "cluster-wide: no namespace Role");
    op.stop().await;
}

/// Waits for ConfigValid=False naming `field`; returns its message.
async fn refused(op: &Operator, name: &str, field: &str) -> String {
    logpipe_tests::wait_for(&format!("ConfigValid=False naming {field}"), TIMEOUT, || async {
        let status = op.pipelines.get(name).await.ok()?.status?;
        let c = status.conditions.into_iter().find(|c| c.type_ == "ConfigValid" && c.status == "False")?;
        c.message.contains(field).then_some(c.message)
    })
    .await
}

/// Which of the pipeline's collector objects exist.
async fn children(op: &Operator, name: &str) -> Vec<&'static str> {
    let (ns, collector) = (&op.namespace, format!("{name}-collector"));
    let cm = Api::<ConfigMap>::namespaced(op.client.clone(), ns).get_opt(&collector).await.unwrap();
    let ds = Api::<DaemonSet>::namespaced(op.client.clone(), ns).get_opt(&collector).await.unwrap();
    [cm.map(|_| "ConfigMap"), ds.map(|_| "DaemonSet")].into_iter().flatten().collect()
}

/// A DaemonSet of an earlier release keeps checkpoints elsewhere (there: `<namespace>-<name>`): the operator moves
/// the collectors to the derived directory and has them carry the earlier checkpoints over, and keeps doing so
/// on later reconciles, for the nodes a rollout reaches last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_move_to_the_derived_state_directory_carrying_checkpoints_over() {
    let mut op = Operator::start("op-state").await;
    let name = logpipe_tests::unique_name("lp");
    op.apply(pipeline(&name, &name)).await;
    op.condition(&name, "ConfigValid", "True").await;
    let uid = op.pipelines.get(&name).await.unwrap().uid().unwrap();
    let derived = format!("/var/lib/logpipe/{}-{name}-{}", op.namespace, &uid[..8]);
    let daemon_sets = Api::<DaemonSet>::namespaced(op.client.clone(), &op.namespace);
    let collector = format!("{name}-collector");
    let host_path = |ds: &DaemonSet, volume: &str| {
        let volumes = ds.spec.as_ref()?.template.spec.as_ref()?.volumes.clone()?;
        Some(volumes.into_iter().find(|v| v.name == volume)?.host_path?.path)
    };
    let ds = daemon_sets.get(&collector).await.unwrap();
    assert_eq!(host_path(&ds, "state").as_deref(), Some(derived.as_str()), "a new pipeline starts derived");
    assert_eq!(host_path(&ds, "earlier-state"), None, "and has nothing to carry over");

    op.stop().await;
    let earlier = format!("/var/lib/logpipe/{}-{name}", op.namespace);
    let as_before = json!({"spec": {"template": {"spec": {"volumes": [
        {"name": "state", "hostPath": {"path": earlier, "type": "DirectoryOrCreate"}}
    ]}}}});
    daemon_sets.patch(&collector, &PatchParams::default(), &Patch::Strategic(&as_before)).await.unwrap();
    op.restart();
    let carried = |ds: &DaemonSet| {
        let annotation = ds.metadata.annotations.as_ref()?.get("logpipe.dev/state-carried-from")?.clone();
        Some((host_path(ds, "state")?, host_path(ds, "earlier-state")?, annotation))
    };
    let want = (derived.clone(), earlier.clone(), earlier.clone());
    logpipe_tests::wait_for("the collectors to carry the earlier checkpoints over", TIMEOUT, || async {
        let ds = daemon_sets.get(&collector).await.ok()?;
        (carried(&ds)? == want).then_some(())
    })
    .await;
    let configs = Api::<ConfigMap>::namespaced(op.client.clone(), &op.namespace);
    let agent = configs.get(&collector).await.unwrap().data.unwrap().remove("agent.yaml").unwrap();
    assert!(agent.contains("earlier_state_dir: /var/lib/logpipe-earlier"), "{agent}");

    // A later reconcile keeps carrying over, though the DaemonSet's own state volume has moved.
    let generation = daemon_sets.get(&collector).await.unwrap().metadata.generation;
    op.stop().await;
    op.restart();
    let mut more_indexers = pipeline(&name, &name);
    more_indexers["spec"]["indexer"]["replicas"] = json!(2);
    op.apply(more_indexers).await;
    let deployments = Api::<Deployment>::namespaced(op.client.clone(), &op.namespace);
    logpipe_tests::wait_for("the next reconcile to apply", TIMEOUT, || async {
        let replicas = deployments.get(&format!("{name}-indexer")).await.ok()?.spec?.replicas;
        (replicas == Some(2)).then_some(())
    })
    .await;
    let ds = daemon_sets.get(&collector).await.unwrap();
    assert_eq!(carried(&ds), Some(want));
    assert_eq!(ds.metadata.generation, generation, "nothing rolled again");
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_is_reported_and_the_running_children_stay() {
    let mut op = Operator::start("op-invalid").await;
    let (a, b) = (logpipe_tests::unique_name("lpa"), logpipe_tests::unique_name("lpb"));
    op.apply(pipeline(&a, &a)).await;
    op.condition(&a, "ConfigValid", "True").await;
    let ds_api = Api::<DaemonSet>::namespaced(op.client.clone(), &op.namespace);
    let before = ds_api.get(&format!("{a}-collector")).await.unwrap();

    // The schema lists the processors' fields, not which go with which type: a rename without `to` passes the API
    // server and is refused by the operator, naming the processor.
    let mut broken = pipeline(&a, &a);
    broken["spec"]["indexer"]["processors"] = json!([{"type": "rename", "from": "message"}]);
    op.apply(broken).await;
    let message = op.condition(&a, "ConfigValid", "False").await;
    assert!(message.contains("spec.indexer.processors[0]") && message.contains("`to`"), "{message}");
    let ready = op.condition(&a, "Ready", "False").await;
    assert!(ready.contains("left as they were"), "{ready}");
    wait_event(&op, &a, "InvalidSpec").await;
    let after = ds_api.get(&format!("{a}-collector")).await.unwrap();
    assert_eq!(before.metadata.generation, after.metadata.generation, "the collector was left untouched");
    assert_eq!(template_hash(&before), template_hash(&after));

    // The operator goes on with other pipelines.
    op.apply(pipeline(&b, &b)).await;
    op.condition(&b, "ConfigValid", "True").await;

    // A processor type the indexer does not have is refused by the API server's schema (the indexer's own list).
    let mut unknown = pipeline(&a, &a);
    unknown["spec"]["indexer"]["processors"] = json!([{"type": "explode", "field": "message"}]);
    let refused = op.pipelines.patch(&a, &PatchParams::apply("test").force(), &Patch::Apply(&unknown)).await;
    assert!(refused.unwrap_err().to_string().contains("spec.indexer.processors.type"));

    // A number past its bound is refused by the API server's schema: it never reaches the operator's watch.
    let mut huge = pipeline(&a, &a);
    huge["spec"]["indexer"]["index"] = json!({"shards": 5_000_000_000u64});
    let refused = op.pipelines.patch(&a, &PatchParams::apply("test").force(), &Patch::Apply(&huge)).await.unwrap_err();
    assert!(refused.to_string().contains("spec.indexer.index.shards"), "{refused}");

    // A processor that would rewrite the agent's fields is refused by validation.
    let mut forging = pipeline(&a, &a);
    forging["spec"]["indexer"]["processors"] = json!([{"type": "add", "field": "kubernetes.namespace", "value": "x"}]);
    op.apply(forging).await;
    let message = op.condition(&a, "ConfigValid", "False").await;
    assert!(message.contains("written by the agent"), "{message}");

    // What only the Kafka cluster can tell: the test broker is a single broker.
    let mut too_many = pipeline(&a, &a);
    too_many["spec"]["kafka"]["topic"]["replicationFactor"] = json!(3);
    op.apply(too_many).await;
    let message = op.condition(&a, "ConfigValid", "False").await;
    assert!(message.contains("replicationFactor") && message.contains("1 broker"), "{message}");

    // Fixed, it rolls out again.
    op.apply(pipeline(&a, &a)).await;
    op.condition(&a, "ConfigValid", "True").await;
    for name in [&a, &b] {
        op.pipelines.delete(name, &DeleteParams::default()).await.unwrap();
    }
    logpipe_tests::wait_for("both pipelines to be cleaned up", TIMEOUT, || async {
        let left = op.pipelines.list(&ListParams::default()).await.ok()?;
        left.items.is_empty().then_some(())
    })
    .await;
    op.stop().await;
}

/// A Node the collector DaemonSet selects (by a label no other test's pipeline uses).
async fn register_node(op: &Operator, label: &str) -> String {
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": label, "labels": {"logpipe.dev/test-node": label}},
    }))
    .unwrap();
    Api::<Node>::all(op.client.clone()).create(&PostParams::default(), &node).await.unwrap();
    label.to_owned()
}

/// Marks the component's pods Ready, as a kubelet would once their containers pass the readiness probe.
async fn make_pods_ready(op: &Operator, name: &str, component: &str) {
    let pods = Api::<Pod>::namespaced(op.client.clone(), &op.namespace);
    let selector = format!("app.kubernetes.io/instance={name},app.kubernetes.io/component={component}");
    let list = logpipe_tests::wait_for(&format!("{component} pods"), TIMEOUT, || async {
        let list = pods.list(&ListParams::default().labels(&selector)).await.ok()?;
        (!list.items.is_empty()).then_some(list)
    })
    .await;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    for pod in list.items {
        let status = json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
        ]}});
        pods.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    }
}

async fn wait_event(op: &Operator, name: &str, reason: &str) {
    let events = Api::<Event>::namespaced(op.client.clone(), &op.namespace);
    logpipe_tests::wait_for(&format!("a {reason} event for {name}"), TIMEOUT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        let regarding = |e: &Event| e.regarding.as_ref().and_then(|r| r.name.clone());
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some(reason) && regarding(e).as_deref() == Some(name))
            .then_some(())
    })
    .await;
}

fn template_hash(ds: &DaemonSet) -> String {
    let template = &ds.spec.as_ref().unwrap().template;
    template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()[CONFIG_HASH_ANNOTATION].clone()
}

fn template_hash_deploy(d: &Deployment) -> String {
    let template = &d.spec.as_ref().unwrap().template;
    template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()[CONFIG_HASH_ANNOTATION].clone()
}

/// Partitions of `topic` in the test broker; none when it does not exist.
fn kafka_partitions(topic: &str) -> Option<usize> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", logpipe_tests::kafka_bootstrap())
        .set("allow.auto.create.topics", "false")
        .create()
        .unwrap();
    let metadata = producer.client().fetch_metadata(Some(topic), std::time::Duration::from_secs(10)).unwrap();
    let t = metadata.topics().iter().find(|t| t.name() == topic)?;
    (t.error().is_none() && !t.partitions().is_empty()).then(|| t.partitions().len())
}
