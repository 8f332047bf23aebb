//! logpipe installed as a user installs it, on the real node of `scripts/node.sh`: CRDs and chart by Helm's engine,
//! the operator in-cluster under the chart's ServiceAccount, the collector DaemonSet reading what the kubelet and the
//! Docker engine wrote, the indexer Deployment writing to Elasticsearch. The images are the ones the repository's
//! Dockerfile built.
//!
//! The two tests share the node, so they take turns.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use logpipe_operator::crd::LogPipeline;
use logpipe_tests::node::release::{component, Release, PIPELINE};
use logpipe_tests::node::{self, Node};
use logpipe_tests::stack::data;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::Mutex;

static NODE: Mutex<()> = Mutex::const_new(());

/// Lines each logger pod writes, at 60 a second: two and a half minutes of writing, time for the faults to land
/// while it goes on (replacing a deleted DaemonSet pod alone took 65 s on the test node). One in 250 is a
/// 20 000-byte line. Below Elasticsearch's 10 000-hit window, so one search reads a pod's documents.
const LINES: u32 = 9_000;
const PER_SECOND: u32 = 60;
const LOGGERS: usize = 3;
const LONG_EVERY: u32 = 250;
const INDEXED: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_by_the_chart_every_line_is_searchable_once_through_restarts_and_crashes() {
    let _turn = NODE.lock().await;
    let node = Node::from_env().await;
    let run = Release::new("node-e2e");
    run.up(&node, 500).await.unwrap();

    for n in 0..LOGGERS {
        node.start_logger(&run.apps, &format!("logger-{n}"), LINES, PER_SECOND).await.unwrap();
    }
    let es = data::elasticsearch(&node.elasticsearch).unwrap();
    let index = run.index();
    logpipe_tests::wait_for("the first documents", INDEXED, || async {
        (data::count(&es, &index).await.ok()? > 0).then_some(())
    })
    .await;

    // The DaemonSet's pod is deleted while the loggers write; the DaemonSet makes a new one.
    let collector = node.wait_pods(&run.logging, &component("collector"), 1, "Running").await.unwrap().remove(0);
    let replaced = replace(&node, &run, "collector", &collector).await;
    assert_loggers_still_writing(&node, &run).await;
    // Then the new pod's process is killed (SIGKILL): no shutdown, the kubelet restarts the container.
    node.kill_containers(&replaced).unwrap();
    assert_loggers_still_writing(&node, &run).await;
    wait_restarted(&node, &run, "collector", &replaced).await;

    // One indexer pod is deleted with bulks in flight, as a rollout or a node drain does: on SIGTERM it commits
    // what Elasticsearch accepted and leaves the consumer group, and the Deployment makes a new pod. It is not
    // killed with SIGKILL here because the test broker never expires a dead group member, so the group would wait
    // for it for ever where Kafka moves its partitions after session.timeout.ms; tests/end_to_end.rs kills the
    // indexer's process mid-stream.
    let before = data::count(&es, &index).await.unwrap();
    logpipe_tests::wait_for("indexing to go on after the collector's restart", INDEXED, || async {
        (data::count(&es, &index).await.ok()? > before).then_some(())
    })
    .await;
    let indexer = node.wait_pods(&run.logging, &component("indexer"), 2, "Running").await.unwrap().remove(0);
    replace(&node, &run, "indexer", &indexer).await;
    assert_loggers_still_writing(&node, &run).await;

    let loggers = node.wait_pods(&run.apps, "app=logger", LOGGERS, "Succeeded").await.unwrap();
    let total = u64::from(LINES) * LOGGERS as u64;
    let indexed = node::wait_count(&es, &index, total, INDEXED).await.unwrap();
    assert_eq!(indexed, total, "documents in {index}");
    for logger in &loggers {
        assert!(node.rotations(logger) > 0, "the engine never rotated {:?}'s log", logger.metadata.name);
        every_line_once_with_its_pod(&node, &run, &es, logger).await;
    }
    run.remove(&node).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_rolls_only_what_changed() {
    let _turn = NODE.lock().await;
    let node = Node::from_env().await;
    let run = Release::new("node-upgrade");
    run.up(&node, 500).await.unwrap();
    the_webhook_refuses_at_apply(&node, &run).await;
    let operator = node.wait_deployment_available(&run.system, &run.operator()).await.unwrap();
    let before = Workloads::read(&node, &run).await;

    // The chart's values change: the operator's Deployment rolls, and its new pod reconciles the pipeline (the
    // indexer change below proves it did) without touching the collector.
    run.helm(&node, "upgrade", &["logLevel=debug"]).unwrap();
    let upgraded = node.wait_deployment_available(&run.system, &run.operator()).await.unwrap();
    assert!(upgraded.metadata.generation > operator.metadata.generation, "the operator Deployment did not roll");

    // The indexer's config changes: the indexer rolls, the collector does not.
    run.apply_pipeline(&node, 1000).await.unwrap();
    let generation = pipeline_generation(&node, &run).await;
    wait_observed(&node, &run, generation).await;
    run.wait_ready(&node, 2).await.unwrap();
    let after = Workloads::read(&node, &run).await;
    assert_eq!(after.collector_generation, before.collector_generation, "the collector DaemonSet changed");
    assert_eq!(after.collector_pods, before.collector_pods, "collector pods were replaced");
    assert!(after.indexer_generation > before.indexer_generation, "the indexer Deployment did not roll");
    assert!(after.indexer_pods.is_disjoint(&before.indexer_pods), "old indexer pods still run");
    run.remove(&node).await.unwrap();
}

/// The chart's admission webhook, which the apiserver reaches through its Service (kube-proxy's rules on the
/// node) with the CA the operator published, refuses a spec outside the policy at apply; nothing is stored.
async fn the_webhook_refuses_at_apply(node: &Node, run: &Release) {
    let mut etc = run.pipeline(node, 500);
    etc["metadata"]["name"] = json!("etc");
    etc["spec"]["collector"]["paths"] = json!(["/etc/kubernetes/pki/*.key"]);
    let api = kube::Api::<LogPipeline>::namespaced(node.client.clone(), &run.logging);
    let refused = api.patch("etc", &PatchParams::apply("owner").force(), &Patch::Apply(&etc)).await.unwrap_err();
    let message = refused.to_string();
    assert!(message.contains("denied the request") && message.contains("policy.allowedHostPaths"), "{message}");
    assert!(api.get_opt("etc").await.unwrap().is_none(), "nothing is stored");
}

/// Deletes `pod` (a component's) and waits until a new pod of the component is ready; returns it.
async fn replace(node: &Node, run: &Release, name: &str, pod: &Pod) -> Pod {
    let selector = component(name);
    let before: BTreeSet<String> = node.pods(&run.logging, &selector).await.unwrap().iter().map(node::uid).collect();
    let api = kube::Api::<Pod>::namespaced(node.client.clone(), &run.logging);
    api.delete(pod.metadata.name.as_deref().unwrap(), &Default::default()).await.unwrap();
    logpipe_tests::wait_for(&format!("a new {name} pod"), node::WAIT, || async {
        let pods = node.pods(&run.logging, &selector).await.ok()?;
        pods.into_iter().find(|p| !before.contains(&node::uid(p)) && node::ready(p))
    })
    .await
}

/// The kubelet restarted the container of `pod` (a component's) after its process was killed, and it is ready again.
async fn wait_restarted(node: &Node, run: &Release, name: &str, pod: &Pod) {
    logpipe_tests::wait_for(&format!("the killed {name} to be restarted"), node::WAIT, || async {
        let pods = node.pods(&run.logging, &component(name)).await.ok()?;
        let pod = pods.into_iter().find(|p| node::uid(p) == node::uid(pod))?;
        let restarts = pod.status.as_ref()?.container_statuses.as_ref()?.first()?.restart_count;
        (restarts > 0 && node::ready(&pod)).then_some(())
    })
    .await;
}

/// The collector DaemonSet and indexer Deployment: their generations and the uids of their pods.
struct Workloads {
    collector_generation: Option<i64>,
    collector_pods: BTreeSet<String>,
    indexer_generation: Option<i64>,
    indexer_pods: BTreeSet<String>,
}

impl Workloads {
    async fn read(node: &Node, run: &Release) -> Workloads {
        let uids = |pods: Vec<Pod>| pods.iter().map(node::uid).collect();
        let collector = node.daemon_set(&run.logging, "logs-collector").await.unwrap();
        let indexer = node.deployment(&run.logging, "logs-indexer").await.unwrap();
        Workloads {
            collector_generation: collector.metadata.generation,
            collector_pods: uids(node.pods(&run.logging, &component("collector")).await.unwrap()),
            indexer_generation: indexer.metadata.generation,
            indexer_pods: uids(node.wait_pods(&run.logging, &component("indexer"), 2, "Running").await.unwrap()),
        }
    }
}

async fn pipeline_generation(node: &Node, run: &Release) -> i64 {
    let api = kube::Api::<logpipe_operator::crd::LogPipeline>::namespaced(node.client.clone(), &run.logging);
    api.get(PIPELINE).await.unwrap().metadata.generation.unwrap()
}

async fn wait_observed(node: &Node, run: &Release, generation: i64) {
    let api = kube::Api::<logpipe_operator::crd::LogPipeline>::namespaced(node.client.clone(), &run.logging);
    logpipe_tests::wait_for("the operator to observe the new spec", node::WAIT, || async {
        let observed = api.get(PIPELINE).await.ok()?.status?.observed_generation?;
        (observed >= generation).then_some(())
    })
    .await;
}

/// The chaos must land mid-stream: a logger that already finished would make it a restart between runs.
async fn assert_loggers_still_writing(node: &Node, run: &Release) {
    let pods = node.pods(&run.apps, "app=logger").await.unwrap();
    let running = pods.iter().filter(|p| node::phase_is(p, "Running")).count();
    assert_eq!(running, LOGGERS, "a logger finished before the fault: the test proves nothing");
}

/// Every line of `logger` is a document exactly once, long lines whole, with the pod's metadata.
async fn every_line_once_with_its_pod(node: &Node, run: &Release, es: &elasticsearch::Elasticsearch, logger: &Pod) {
    let name = logger.metadata.name.clone().unwrap();
    let terms = [("kubernetes.pod.name", json!(name))];
    let (total, docs) = data::search(es, &run.index(), &terms, 10_000).await.unwrap();
    assert_eq!(total, u64::from(LINES), "documents of {name}");
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for doc in &docs {
        let seq = sequence(doc).unwrap_or_else(|| panic!("a document of {name} with no sequence number: {doc}"));
        *seen.entry(seq).or_default() += 1;
        if seq.is_multiple_of(u64::from(LONG_EVERY)) {
            let message = doc["message"].as_str().unwrap_or_default();
            assert_eq!(message.len(), format!("seq={seq} long=").len() + 20_000, "line {seq} of {name} was not joined");
        }
        let k8s = &doc["kubernetes"];
        assert_eq!(k8s["namespace"], json!(run.apps), "{doc}");
        assert_eq!(k8s["labels"]["run"], json!(name), "{doc}");
        assert_eq!(k8s["container"]["name"], json!("logger"), "{doc}");
        assert_eq!(k8s["node"]["name"], json!(node.name), "{doc}");
    }
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).map(|(s, _)| s).collect();
    assert!(twice.is_empty(), "{name}: lines indexed more than once: {twice:?}");
    let missing: Vec<u64> = (1..=u64::from(LINES)).filter(|s| !seen.contains_key(s)).collect();
    assert!(missing.is_empty(), "{name}: lines never indexed: {missing:?}");
}

/// The logger's number of a line: a field of its JSON lines, the start of its plain ones.
fn sequence(doc: &Value) -> Option<u64> {
    if let Some(seq) = doc["seq"].as_u64() {
        return Some(seq);
    }
    let message = doc["message"].as_str()?;
    message.strip_prefix("seq=")?.split(' ').next()?.parse().ok()
}
