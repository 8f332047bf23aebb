use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator observed at its last reconcile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogPipelineStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, ConfigValid, CollectorReady, KafkaReady, IndexerReady.
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
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::ConfigValid => "ConfigValid",
            ConditionType::CollectorReady => "CollectorReady",
            ConditionType::KafkaReady => "KafkaReady",
            ConditionType::IndexerReady => "IndexerReady",
        }
    }
}
