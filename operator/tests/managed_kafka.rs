//! A managed Kafka scaled end to end: the operator's reconciler against the real kube-apiserver and
//! controller-manager (which create and delete the StatefulSets' pods) and, for the Kafka side, the cluster
//! simulator on loopback, with the test's own kubelet (support/kubelet.rs). Every broker that leaves is recorded
//! with what it held and whether any partition was short of a replica, so the test can check that no data could
//! have been lost.

mod support;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::ListParams;
use kube::Api;
use logpipe_operator::crd::{KafkaPhase, ListenerSecurity};
use logpipe_operator::kafka::managed::admin::{Access, Admin};
use logpipe_operator::kafka::Settings as KafkaSettings;
use logpipe_tests::kafka_sim::KafkaSim;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use support::kubelet::{throttles, Departure, Kubelet};
use support::{Operator, TIMEOUT};

/// A pipeline with a managed Kafka of `brokers`, with the listeners the operator chooses by default;
/// reassignments are cancelled as stuck after `timeout_s`.
fn pipeline(name: &str, brokers: u32, config: serde_json::Value, timeout_s: u32) -> serde_json::Value {
    json!({
        "apiVersion": "logpipe.dev/v1alpha1",
        "kind": "LogPipeline",
        "metadata": {"name": name},
        "spec": {
            "collector": {"nodeSelector": {"logpipe.dev/test-node": "none"}},
            "kafka": {
                "managed": {
                    "brokers": brokers,
                    "controllers": 1,
                    "config": config,
                    "reassignmentTimeoutSeconds": timeout_s
                },
                "topic": {"partitions": 6, "replicationFactor": 2}
            },
            "indexer": {"replicas": 1, "elasticsearch": {"url": logpipe_tests::elasticsearch_url()}}
        }
    })
}

/// The same pipeline with PLAINTEXT listeners, as a spec that opts out says.
fn plaintext(name: &str, brokers: u32, config: serde_json::Value, timeout_s: u32) -> serde_json::Value {
    let mut p = pipeline(name, brokers, config, timeout_s);
    p["spec"]["kafka"]["managed"]["listenerSecurity"] = json!("PLAINTEXT");
    p
}

/// Makes the simulator what the brokers are once started with the operator's Secrets: TLS with the certificate
/// it made, SCRAM for the users it made. Returns the operator's own access, for the test's admin client.
async fn secure(op: &Operator, sim: &KafkaSim, name: &str) -> Access {
    let secrets: Api<Secret> = Api::namespaced(op.client.clone(), &op.namespace);
    let (tls, users) = logpipe_tests::wait_for("the managed Kafka's Secrets", TIMEOUT, || async {
        let tls = secrets.get_opt(&format!("{name}-kafka-tls")).await.ok()??;
        let users = secrets.get_opt(&format!("{name}-kafka-users")).await.ok()??;
        Some((tls, users))
    })
    .await;
    for s in [&tls, &users] {
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("LogPipeline", name), "the pipeline owns its Secrets");
    }
    let text = |s: &Secret, key: &str| String::from_utf8(s.data.as_ref().unwrap()[key].0.clone()).unwrap();
    let passwords: BTreeMap<String, String> = ["broker", "operator", "collector", "indexer"]
        .iter()
        .map(|u| (text(&users, &format!("{u}.username")), text(&users, &format!("{u}.password"))))
        .collect();
    sim.secure(&text(&tls, "tls.crt"), &text(&tls, "tls.key"), passwords.clone());
    Access::SaslSsl {
        ca_pem: text(&tls, "ca.crt"),
        server_name: format!("{name}-kafka-bootstrap.{}.svc", op.namespace),
        username: "operator".into(),
        password: passwords["operator"].clone(),
    }
}

/// Waits until KafkaSettled has this status and reason for the pipeline's latest generation.
async fn settled(op: &Operator, name: &str, status: &str, reason: &str) -> String {
    let what = format!("{name}: KafkaSettled={status} ({reason})");
    logpipe_tests::wait_for(&what, TIMEOUT, || async {
        let lp = op.pipelines.get(name).await.ok()?;
        let s = lp.status?;
        let c = s.conditions.iter().find(|c| c.type_ == "KafkaSettled")?;
        let latest = s.observed_generation == lp.metadata.generation;
        (latest && c.status == status && c.reason == reason).then(|| c.message.clone())
    })
    .await
}

/// Replicas per registered broker.
fn load(sim: &KafkaSim) -> BTreeMap<i32, usize> {
    let state = sim.state();
    let mut load: BTreeMap<i32, usize> = state.brokers.iter().map(|&b| (b, 0)).collect();
    for r in state.topics.values().flat_map(|(_, ps)| ps).flat_map(|p| &p.replicas) {
        *load.entry(*r).or_default() += 1;
    }
    load
}

async fn broker_set(op: &Operator, name: &str) -> StatefulSet {
    let sets: Api<StatefulSet> = Api::namespaced(op.client.clone(), &op.namespace);
    sets.get(&format!("{name}-kafka")).await.unwrap()
}

/// The simulator, an operator pointed at it, and the test's kubelet for the pipeline `name`.
async fn start(prefix: &str, name: &str) -> (Arc<KafkaSim>, Operator, Api<Pod>, Kubelet) {
    let sim = Arc::new(KafkaSim::start([], Duration::from_millis(300)).await);
    let settings = KafkaSettings {
        admin_address: Some(sim.bootstrap()),
        poll: Duration::from_millis(200),
        max_moves: 4,
        timeout: Duration::from_secs(5),
    };
    let op = Operator::start_with(prefix, settings).await;
    let pods: Api<Pod> = Api::namespaced(op.client.clone(), &op.namespace);
    let kubelet = Kubelet::start(pods.clone(), sim.clone(), format!("{name}-kafka"));
    (sim, op, pods, kubelet)
}

async fn event_seen(op: &Operator, reason: &str) -> bool {
    let events: Api<Event> = Api::namespaced(op.client.clone(), &op.namespace);
    let list = events.list(&ListParams::default()).await.unwrap();
    list.items.iter().any(|e| e.reason.as_deref() == Some(reason))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_scale_up_drain_refuse_and_roll_without_losing_a_replica() {
    let name = "mk";
    let (sim, mut op, pods, kubelet) = start("managed", name).await;

    // A new cluster: three brokers, the topics created once they are registered, reached with TLS and SCRAM.
    op.apply(pipeline(name, 3, json!({}), 30)).await;
    let access = secure(&op, &sim, name).await;
    settled(&op, name, "True", "Settled").await;
    let authenticated = sim.state().authenticated.clone();
    assert!(!authenticated.is_empty() && authenticated.iter().all(|u| u == "operator"), "{authenticated:?}");
    let status = op.pipelines.get(name).await.unwrap().status.unwrap();
    assert_eq!(status.kafka_listeners, Some(ListenerSecurity::SaslSsl));
    assert_eq!(sim.state().brokers, BTreeSet::from([0, 1, 2]));
    let topic = format!("logpipe.{}.{name}", op.namespace);
    let shape = sim.state().topics.get(&topic).map(|(_, ps)| ps.iter().map(|p| p.replicas.len()).collect::<Vec<_>>());
    assert_eq!(shape, Some(vec![2; 6]), "{topic}: six partitions of two replicas");
    // Another team's topic in the same cluster, with three replicas and min ISR 2.
    let mut admin = Admin::connect(&sim.bootstrap(), Duration::from_secs(5), &access).await.unwrap();
    admin.create_topic("orders", 6, 3, &[("min.insync.replicas", "2".into())]).await.unwrap();

    // Scale-up: two brokers added, replicas spread onto them.
    op.apply(pipeline(name, 5, json!({}), 30)).await;
    settled(&op, name, "True", "Settled").await;
    let spread = load(&sim);
    assert_eq!(spread.len(), 5, "{spread:?}");
    let (min, max) = (spread.values().min().unwrap(), spread.values().max().unwrap());
    assert!(max - min <= 1, "replicas balanced over five brokers: {spread:?}");
    assert!(sim.state().reassignments_started > 0);
    assert_eq!(throttles(&sim), [], "no throttle outlives the moves");

    // Scale-down, with the operator restarted while it drains: it goes on from the phase in the status.
    op.apply(pipeline(name, 3, json!({}), 30)).await;
    logpipe_tests::wait_for("the drain to start", TIMEOUT, || async {
        let op_ = op.pipelines.get(name).await.ok()?.status?.kafka_operation?;
        (op_.phase == KafkaPhase::Draining).then_some(())
    })
    .await;
    op.stop().await;
    op.restart();
    settled(&op, name, "True", "Settled").await;
    assert_eq!(sim.state().brokers, BTreeSet::from([0, 1, 2]));
    assert_eq!(throttles(&sim), [], "no throttle outlives the moves");
    assert_eq!(kubelet.unthrottled(), BTreeSet::new(), "every move ran throttled");
    let departures = kubelet.departures();
    let removals: Vec<&Departure> = departures.iter().filter(|d| d.broker >= 3).collect();
    assert_eq!(removals.iter().map(|d| d.broker).collect::<Vec<_>>(), [4, 3], "highest first, one at a time");
    for d in &removals {
        assert!(d.held.is_empty(), "broker {} removed holding {:?}", d.broker, d.held);
        assert!(d.under_replicated.is_empty(), "broker {} removed while {:?} were short", d.broker, d.under_replicated);
    }

    // Below the other topic's replication factor: refused, with a condition and an Event, and nothing removed.
    op.apply(pipeline(name, 2, json!({}), 30)).await;
    let message = settled(&op, name, "False", "Refused").await;
    assert!(message.contains("replication factor 3"), "{message}");
    assert_eq!(broker_set(&op, name).await.spec.unwrap().replicas, Some(3));
    assert!(event_seen(&op, "ScaleDownRefused").await, "a Warning Event");

    // A configuration change: every broker restarted once, each only while every partition was fully in sync.
    let before = kubelet.departures().len();
    op.apply(pipeline(name, 3, json!({"log.retention.hours": "24"}), 30)).await;
    settled(&op, name, "True", "Settled").await;
    let restarts: Vec<Departure> = kubelet.departures().split_off(before);
    let mut restarted: Vec<i32> = restarts.iter().map(|d| d.broker).collect();
    restarted.sort();
    assert_eq!(restarted, [0, 1, 2], "{restarts:?}");
    for d in &restarts {
        assert!(
            d.under_replicated.is_empty(),
            "broker {} restarted while {:?} were short",
            d.broker,
            d.under_replicated
        );
    }
    let set = broker_set(&op, name).await;
    let revision = set.status.unwrap().update_revision.unwrap();
    for pod in pods.list(&ListParams::default().labels("app.kubernetes.io/component=kafka-broker")).await.unwrap() {
        assert_eq!(pod.metadata.labels.unwrap()["controller-revision-hash"], revision);
    }
    assert_eq!(sim.state().brokers, BTreeSet::from([0, 1, 2]));

    // The listeners of a running cluster stay: asking for PLAINTEXT is refused on the field, nothing rolls.
    let before = kubelet.departures().len();
    // (The same broker config: this 1.20 API server's apply turns a map emptied of its keys into null.)
    op.apply(plaintext(name, 3, json!({"log.retention.hours": "24"}), 30)).await;
    let message = op.condition(name, "ConfigValid", "False").await;
    assert!(message.contains("spec.kafka.managed.listenerSecurity") && message.contains("SASL_SSL"), "{message}");
    assert_eq!(kubelet.departures().len(), before, "no broker restarted");
    op.stop().await;
}

/// Reassignments that never finish are cancelled after the timeout and planned again; the departing broker stays
/// until a drain really completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_drain_is_cancelled_reported_and_retried_never_taken_as_done() {
    let name = "stuck";
    let (sim, mut op, _pods, kubelet) = start("managed-stuck", name).await;
    // The opt-out, end to end: no Secrets, and the operator speaks plaintext.
    op.apply(plaintext(name, 4, json!({}), 2)).await;
    settled(&op, name, "True", "Settled").await;
    let secrets: Api<Secret> = Api::namespaced(op.client.clone(), &op.namespace);
    assert_eq!(secrets.get_opt(&format!("{name}-kafka-tls")).await.unwrap(), None);
    assert_eq!(sim.state().authenticated, Vec::<String>::new());

    assert!(load(&sim)[&3] > 0, "the topics were made with broker 3 up: it has replicas to drain");

    sim.state().reassign_time = Duration::from_secs(3600);
    op.apply(plaintext(name, 3, json!({}), 2)).await;
    logpipe_tests::wait_for("a reassignment cancelled as stuck", TIMEOUT, || async {
        event_seen(&op, "ReassignmentTimedOut").await.then_some(())
    })
    .await;
    assert_eq!(broker_set(&op, name).await.spec.unwrap().replicas, Some(4), "the broker stays");
    assert!(sim.state().brokers.contains(&3));

    sim.state().reassign_time = Duration::from_millis(300);
    settled(&op, name, "True", "Settled").await;
    assert_eq!(sim.state().brokers, BTreeSet::from([0, 1, 2]));
    let removed: Vec<Departure> = kubelet.departures().into_iter().filter(|d| d.broker == 3).collect();
    assert_eq!(removed.len(), 1);
    assert!(removed[0].held.is_empty(), "removed holding {:?}", removed[0].held);
    let lp = op.pipelines.get(name).await.unwrap();
    assert_eq!(lp.status.unwrap().reassigning_since, None, "the clock stops when nothing moves");
    op.stop().await;
}
