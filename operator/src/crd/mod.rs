//! The `LogPipeline` custom resource: its types only, no logic. `crdgen` writes the CRD YAML from them.

mod collector;
mod indexer;
mod kafka;
mod status;

pub use collector::{CollectorSpec, FilterSpec, LogFormat, MultilineSpec};
pub use indexer::{BulkSpec, CredentialsKind, ElasticsearchCredentials, ElasticsearchSpec, IndexSpec, IndexerSpec};
pub use kafka::{
    Compression, ExternalKafka, KafkaSpec, KafkaTls, ListenerSecurity, ManagedKafka, ManagedStorage, SaslMechanism,
    SaslSpec, TopicSpec,
};
pub use status::{ComponentStatus, ConditionType, KafkaOperation, KafkaPhase, LogPipelineStatus};

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A log pipeline: a collector on every node ships pod logs to a Kafka topic, an indexer writes the topic to
/// Elasticsearch.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "logpipe.dev",
    version = "v1alpha1",
    kind = "LogPipeline",
    plural = "logpipelines",
    shortname = "lp",
    namespaced,
    status = "LogPipelineStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Collectors","type":"string","jsonPath":".status.collector.summary"}"#,
    printcolumn = r#"{"name":"Indexers","type":"string","jsonPath":".status.indexer.summary"}"#,
    printcolumn = r#"{"name":"Topic","type":"string","jsonPath":".status.topic","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct LogPipelineSpec {
    /// The node agent (a DaemonSet): which pod logs it reads and how.
    #[serde(default)]
    pub collector: CollectorSpec,
    /// The Kafka cluster and topic between the collectors and the indexer.
    pub kafka: KafkaSpec,
    /// The indexer (a Deployment): consumes the topic and writes to Elasticsearch.
    pub indexer: IndexerSpec,
}
