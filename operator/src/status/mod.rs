//! The LogPipeline's status from what a reconcile observed: pure, so every transition is table-tested.

use crate::crd::{ComponentStatus, ConditionType, ListenerSecurity, LogPipelineStatus};
use crate::kafka::managed::scaling::Operation;
use crate::validate::Invalid;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// What became of the Kafka side in this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaState {
    Ready { brokers: usize, partitions: usize },
    NotReady { reason: &'static str, message: String },
}

/// Where a managed Kafka's brokers stand after this reconcile's scaling step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaling {
    /// The operation to remember for the next reconcile.
    pub operation: Operation,
    /// The brokers are as the spec asks, every one on the current configuration.
    pub settled: bool,
    pub reason: &'static str,
    pub message: String,
    /// When the moves under way started; `None` when nothing moves.
    pub reassigning_since: Option<Time>,
}

/// One reconcile's findings.
pub enum Observation<'a> {
    /// The spec cannot be rolled out; the children were left as they were.
    Invalid(&'a Invalid),
    Applied {
        config_hash: &'a str,
        topic: &'a str,
        kafka: KafkaState,
        daemon_set: &'a DaemonSet,
        deployment: &'a Deployment,
        /// For a managed Kafka only.
        scaling: Option<Scaling>,
        /// The managed Kafka's listener security; none for an external Kafka, which leaves the recorded one.
        listeners: Option<ListenerSecurity>,
    },
}

/// A condition's state before its timestamps.
struct Check {
    ok: bool,
    reason: &'static str,
    message: String,
}

pub fn next(previous: &LogPipelineStatus, generation: Option<i64>, obs: &Observation, now: &Time) -> LogPipelineStatus {
    let mut status = previous.clone();
    status.observed_generation = generation;
    let mut set = |kind: ConditionType, check: Check| {
        set_condition(&mut status.conditions, kind, check, generation, now);
    };
    match obs {
        Observation::Invalid(invalid) => {
            let message = invalid.to_string();
            set(ConditionType::ConfigValid, Check { ok: false, reason: "InvalidSpec", message: message.clone() });
            let message = format!("the spec is invalid, the running components were left as they were: {message}");
            set(ConditionType::Ready, Check { ok: false, reason: "InvalidSpec", message });
        }
        Observation::Applied { config_hash, topic, kafka, daemon_set, deployment, scaling, listeners } => {
            let (collector_status, collector) = daemon_set_check(daemon_set);
            let (indexer_status, indexer) = deployment_check(deployment);
            let kafka_status = kafka_counts(kafka, previous.kafka.as_ref());
            let kafka = kafka_check(kafka, topic);
            let ready = ready_check(&[
                ("KafkaNotReady", &kafka),
                ("CollectorNotReady", &collector),
                ("IndexerNotReady", &indexer),
            ]);
            set(ConditionType::ConfigValid, Check { ok: true, reason: "Valid", message: "rolled out".into() });
            set(ConditionType::KafkaReady, kafka);
            set(ConditionType::CollectorReady, collector);
            set(ConditionType::IndexerReady, indexer);
            set(ConditionType::Ready, ready);
            if let Some(s) = scaling {
                set(ConditionType::KafkaSettled, Check { ok: s.settled, reason: s.reason, message: s.message.clone() });
                status.kafka_operation = Some(s.operation.into());
                status.reassigning_since = s.reassigning_since.clone();
            }
            if listeners.is_some() {
                status.kafka_listeners = *listeners;
            }
            status.kafka = Some(kafka_status);
            status.collector = Some(collector_status);
            status.indexer = Some(indexer_status);
            status.topic = Some((*topic).to_owned());
            status.config_hash = Some((*config_hash).to_owned());
        }
    }
    status
}

fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: ConditionType,
    check: Check,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if check.ok { "True" } else { "False" };
    let existing = conditions.iter().position(|c| c.type_ == kind.as_str());
    // The transition time moves only when the status flips; a new reason or message alone is not a transition.
    let since = match existing.map(|i| &conditions[i]) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => now.clone(),
    };
    let condition = Condition {
        type_: kind.as_str().into(),
        status: status.into(),
        reason: check.reason.into(),
        message: check.message,
        observed_generation: generation,
        last_transition_time: since,
    };
    match existing {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// Brokers seen; an unreachable cluster keeps the last count seen, with none ready.
fn kafka_counts(kafka: &KafkaState, previous: Option<&ComponentStatus>) -> ComponentStatus {
    match kafka {
        KafkaState::Ready { brokers, .. } => {
            let brokers = i32::try_from(*brokers).unwrap_or(i32::MAX);
            ComponentStatus::new(brokers, brokers)
        }
        KafkaState::NotReady { .. } => ComponentStatus::new(previous.map_or(0, |p| p.desired), 0),
    }
}

fn kafka_check(kafka: &KafkaState, topic: &str) -> Check {
    match kafka {
        KafkaState::Ready { brokers, partitions } => Check {
            ok: true,
            reason: "TopicReady",
            message: format!("topic {topic} has {partitions} partition(s); {brokers} broker(s) reachable"),
        },
        KafkaState::NotReady { reason, message } => Check { ok: false, reason, message: message.clone() },
    }
}

fn daemon_set_check(ds: &DaemonSet) -> (ComponentStatus, Check) {
    let s = ds.status.clone().unwrap_or_default();
    let desired = s.desired_number_scheduled;
    let updated = s.updated_number_scheduled.unwrap_or(0);
    let available = s.number_available.unwrap_or(0);
    let seen = s.observed_generation >= ds.metadata.generation;
    let check = match () {
        _ if !seen => pending("the DaemonSet controller has not seen the latest spec yet"),
        _ if desired == 0 => Check {
            ok: false,
            reason: "NoNodes",
            message: "no node runs a collector: check nodeSelector and tolerations".into(),
        },
        _ if updated < desired => rolling(format!("{updated}/{desired} collectors updated")),
        _ if available < desired => not_ready(format!("{available}/{desired} collectors ready")),
        _ => all_ready(format!("{desired}/{desired} collectors ready")),
    };
    (ComponentStatus::new(desired, s.number_ready), check)
}

fn deployment_check(d: &Deployment) -> (ComponentStatus, Check) {
    let s = d.status.clone().unwrap_or_default();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = s.updated_replicas.unwrap_or(0);
    let available = s.available_replicas.unwrap_or(0);
    let seen = s.observed_generation >= d.metadata.generation;
    let check = match () {
        _ if !seen => pending("the Deployment controller has not seen the latest spec yet"),
        _ if desired == 0 => Check { ok: false, reason: "ScaledToZero", message: "no indexer runs".into() },
        _ if updated < desired => rolling(format!("{updated}/{desired} indexers updated")),
        _ if available < desired => not_ready(format!("{available}/{desired} indexers ready")),
        _ => all_ready(format!("{desired}/{desired} indexers ready")),
    };
    (ComponentStatus::new(desired, s.ready_replicas.unwrap_or(0)), check)
}

fn pending(message: &str) -> Check {
    Check { ok: false, reason: "RolloutPending", message: message.into() }
}

fn rolling(message: String) -> Check {
    Check { ok: false, reason: "RollingOut", message }
}

fn not_ready(message: String) -> Check {
    Check { ok: false, reason: "PodsNotReady", message }
}

fn all_ready(message: String) -> Check {
    Check { ok: true, reason: "AllReady", message }
}

/// Ready when every part is; otherwise the first part that is not, by its reason.
fn ready_check(parts: &[(&'static str, &Check)]) -> Check {
    match parts.iter().find(|(_, c)| !c.ok) {
        Some((reason, c)) => Check { ok: false, reason, message: c.message.clone() },
        None => Check { ok: true, reason: "PipelineReady", message: "collectors, Kafka and indexers are ready".into() },
    }
}

#[cfg(test)]
mod tests;
