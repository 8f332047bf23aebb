//! The kubelet of the managed-Kafka tests: no kubelet runs in the test environment, so this one makes a pod Ready
//! a moment after it appears and registers its broker in the Kafka simulator, out of every ISR until it has caught
//! up; a deleted pod's broker leaves the cluster. It records each departure with what the broker held and whether
//! any partition was short of a replica, and every moment a partition moved without the replication throttle.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::Api;
use logpipe_operator::kafka::managed::admin::{THROTTLED_REPLICAS, THROTTLE_RATES};
use logpipe_tests::kafka_sim::KafkaSim;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a new pod takes to become Ready, and a new broker to catch up with the partitions it holds.
const START: Duration = Duration::from_millis(300);
const CATCH_UP: Duration = Duration::from_millis(400);

/// A broker pod that went away.
#[derive(Debug, Clone)]
pub struct Departure {
    pub broker: i32,
    /// Partitions (topic/index) that listed the broker as a replica when its pod went away.
    pub held: Vec<String>,
    /// Partitions that already had a replica out of the ISR at that moment.
    pub under_replicated: Vec<String>,
}

#[derive(Default)]
struct Record {
    departures: Vec<Departure>,
    /// Partitions seen moving without the replication throttle on every broker and on their topic.
    unthrottled: BTreeSet<String>,
}

/// What the kubelet remembers of a pod: its uid, when it appeared, and when it became Ready.
struct Seen {
    uid: String,
    since: Instant,
    ready_at: Option<Instant>,
}

pub struct Kubelet {
    record: Arc<Mutex<Record>>,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    pub fn start(pods: Api<Pod>, sim: Arc<KafkaSim>, brokers_set: String) -> Self {
        let record = Arc::new(Mutex::new(Record::default()));
        let shared = record.clone();
        let task = tokio::spawn(async move {
            let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
            loop {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    tick(&pods, &sim, &brokers_set, &mut seen, &list.items, &shared).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { record, task }
    }

    pub fn departures(&self) -> Vec<Departure> {
        self.record.lock().unwrap().departures.clone()
    }

    pub fn unthrottled(&self) -> BTreeSet<String> {
        self.record.lock().unwrap().unthrottled.clone()
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ordinal(set: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

async fn tick(
    api: &Api<Pod>,
    sim: &KafkaSim,
    set: &str,
    seen: &mut BTreeMap<String, Seen>,
    pods: &[Pod],
    record: &Mutex<Record>,
) {
    let now = Instant::now();
    let unthrottled = unthrottled_moves(sim);
    record.lock().unwrap().unthrottled.extend(unthrottled);
    let live: BTreeMap<String, String> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| (p.metadata.name.clone().unwrap(), p.metadata.uid.clone().unwrap()))
        .collect();
    // Gone, or replaced by a new pod of the same name: the broker leaves.
    let gone: Vec<String> = seen.iter().filter(|(n, s)| live.get(*n) != Some(&s.uid)).map(|(n, _)| n.clone()).collect();
    for name in gone {
        seen.remove(&name);
        if let Some(b) = ordinal(set, &name) {
            record.lock().unwrap().departures.push(leave(sim, b));
        }
    }
    for (name, uid) in &live {
        let s = seen.entry(name.clone()).or_insert_with(|| Seen { uid: uid.clone(), since: now, ready_at: None });
        if s.ready_at.is_none() && now.duration_since(s.since) >= START {
            let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
            if api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.is_ok() {
                s.ready_at = Some(now);
                if let Some(b) = ordinal(set, name) {
                    let mut state = sim.state();
                    state.brokers.insert(b);
                    state.lagging.insert(b);
                }
            }
        }
        if let (Some(at), Some(b)) = (s.ready_at, ordinal(set, name)) {
            if now.duration_since(at) >= CATCH_UP {
                sim.state().lagging.remove(&b);
            }
        }
    }
}

/// Partitions moving while a broker has no throttle rate or their topic no throttled replicas.
fn unthrottled_moves(sim: &KafkaSim) -> Vec<String> {
    let state = sim.state();
    let brokers_throttled =
        state.brokers.iter().all(|&b| THROTTLE_RATES.iter().all(|k| state.broker_configs(b).contains_key(*k)));
    let mut out = Vec::new();
    for (topic, (_, partitions)) in &state.topics {
        let topic_throttled =
            THROTTLED_REPLICAS.iter().all(|k| state.topic_configs(topic).get(*k).is_some_and(|v| v == "*"));
        for (i, p) in partitions.iter().enumerate() {
            if p.moving.is_some() && !(brokers_throttled && topic_throttled) {
                out.push(format!("{topic}/{i}"));
            }
        }
    }
    out
}

/// Every throttle config left in the cluster.
pub fn throttles(sim: &KafkaSim) -> Vec<(String, String)> {
    let state = sim.state();
    let keys: Vec<&str> = THROTTLE_RATES.iter().chain(THROTTLED_REPLICAS.iter()).copied().collect();
    state
        .configs
        .iter()
        .flat_map(|((_, name), configs)| configs.keys().map(move |k| (name.clone(), k.clone())))
        .filter(|(_, k)| keys.contains(&k.as_str()))
        .collect()
}

/// Takes broker `b` out of the simulated cluster, noting what it held and what was already short.
fn leave(sim: &KafkaSim, b: i32) -> Departure {
    let mut state = sim.state();
    let mut held = Vec::new();
    let mut under_replicated = Vec::new();
    for (topic, (_, partitions)) in &state.topics {
        for (i, p) in partitions.iter().enumerate() {
            let moving = p.moving.as_ref().is_some_and(|(target, _)| target.contains(&b));
            if p.replicas.contains(&b) || moving {
                held.push(format!("{topic}/{i}"));
            }
            if p.replicas.iter().any(|r| !p.isr.contains(r)) {
                under_replicated.push(format!("{topic}/{i}"));
            }
        }
    }
    state.brokers.remove(&b);
    state.lagging.remove(&b);
    Departure { broker: b, held, under_replicated }
}
