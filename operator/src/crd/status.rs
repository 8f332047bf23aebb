use crate::kafka::managed::scaling::Operation;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator observed at its last reconcile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogPipelineStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, ConfigValid, CollectorReady, KafkaReady, IndexerReady; KafkaSettled for a managed Kafka.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The collector DaemonSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<ComponentStatus>,
    /// The Kafka brokers (managed) or the reachable brokers (external).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<ComponentStatus>,
    /// The indexer Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexer: Option<ComponentStatus>,
    /// The topic records travel through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Hash of the rendered collector and indexer configuration now rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// A managed Kafka's scaling operation in progress, kept here so an operator restarted halfway goes on with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_operation: Option<KafkaOperation>,
    /// When the partition reassignments under way started, to cancel ones that never finish. Always written
    /// (null when nothing moves), so a merge patch clears it.
    #[serde(default)]
    pub reassigning_since: Option<Time>,
    /// The listener security of the managed Kafka, fixed when the operator made it. Kept when the pipeline moves
    /// to an external Kafka: the brokers' volumes stay, and a managed Kafka made again resumes on them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::ListenerSecurity::optional_schema")]
    pub kafka_listeners: Option<crate::crd::ListenerSecurity>,
}

/// A managed Kafka's scaling operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaOperation {
    pub phase: KafkaPhase,
    /// While draining: the broker count the cluster is drained to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_to: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum KafkaPhase {
    /// Nothing moves, or a rolling restart.
    Idle,
    /// Brokers were added; replicas are being spread onto them.
    ScalingUp,
    /// Replicas are moved off the brokers about to be removed.
    Draining,
}

impl From<Operation> for KafkaOperation {
    fn from(o: Operation) -> Self {
        match o {
            Operation::Idle => Self { phase: KafkaPhase::Idle, drain_to: None },
            Operation::ScalingUp => Self { phase: KafkaPhase::ScalingUp, drain_to: None },
            Operation::Draining { to } => Self { phase: KafkaPhase::Draining, drain_to: Some(to) },
        }
    }
}

impl From<KafkaOperation> for Operation {
    /// A drain without its target (edited by hand) is forgotten: the decision derives a drain from the spec again.
    fn from(o: KafkaOperation) -> Self {
        match (o.phase, o.drain_to) {
            (KafkaPhase::ScalingUp, _) => Operation::ScalingUp,
            (KafkaPhase::Draining, Some(to)) => Operation::Draining { to },
            (KafkaPhase::Idle | KafkaPhase::Draining, _) => Operation::Idle,
        }
    }
}

/// Pods (or brokers) wanted and ready.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    pub desired: i32,
    pub ready: i32,
    /// `ready/desired`, for `kubectl get`.
    pub summary: String,
}

impl ComponentStatus {
    pub fn new(desired: i32, ready: i32) -> Self {
        Self { desired, ready, summary: format!("{ready}/{desired}") }
    }
}

/// The condition types this resource reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    ConfigValid,
    CollectorReady,
    KafkaReady,
    IndexerReady,
    /// A managed Kafka has the brokers the spec asks for, every one on the current configuration.
    KafkaSettled,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::ConfigValid => "ConfigValid",
            ConditionType::CollectorReady => "CollectorReady",
            ConditionType::KafkaReady => "KafkaReady",
            ConditionType::IndexerReady => "IndexerReady",
            ConditionType::KafkaSettled => "KafkaSettled",
        }
    }
}
