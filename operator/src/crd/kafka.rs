use k8s_openapi::api::core::v1::{ResourceRequirements, SecretKeySelector};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Exactly one of `external` and `managed`, and the topic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSpec {
    /// A Kafka cluster run by someone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalKafka>,
    /// A KRaft cluster the operator runs in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedKafka>,
    /// The topic records travel through.
    #[serde(default)]
    pub topic: TopicSpec,
    /// Compression of produced batches: `none`, `lz4` or `zstd`. Default: lz4.
    #[serde(default)]
    pub compression: Compression,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    #[default]
    Lz4,
    Zstd,
}

/// How to reach a Kafka cluster the operator does not run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalKafka {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Connect with TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,
    /// Authenticate with SASL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<SaslSpec>,
}

/// TLS to the brokers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTls {
    /// Secret key holding the PEM CA certificate that signed the brokers' certificates. Default: the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<SecretKeySelector>,
}

/// SASL credentials, read from a Secret in the pipeline's namespace (mounted into the pods, never copied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SaslSpec {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    /// Name of the Secret.
    pub secret_name: String,
    /// Key of the user name in the Secret. Default: `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_key: Option<String>,
    /// Key of the password in the Secret. Default: `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A KRaft Kafka cluster run by the operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedKafka {
    /// Number of brokers. Default: 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub brokers: Option<i32>,
    /// Number of KRaft controllers (odd). Default: 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9))]
    pub controllers: Option<i32>,
    /// Container image of Kafka; honoured only when the operator's policy allows image overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A volume per broker.
    #[serde(default)]
    pub storage: ManagedStorage,
    /// Resources of each broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// How clients and brokers talk. `SASL_SSL` (the default of a new cluster): TLS under a CA the operator makes
    /// and renews, and a SCRAM-SHA-512 user each for the collectors, the indexers, the operator and the brokers,
    /// with passwords the operator makes into Secrets. `PLAINTEXT`: neither encryption nor authentication, so any
    /// pod the network lets through reads every log and can write forged records. Fixed for the life of the
    /// cluster; a cluster made by a release without this field runs PLAINTEXT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "ListenerSecurity::optional_schema")]
    pub listener_security: Option<ListenerSecurity>,
    /// Broker configuration (server.properties keys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// While replicas move between brokers (scaling), the replication traffic that builds new copies is held to
    /// this many bytes per second on each broker, so producers and consumers keep their bandwidth. In-sync
    /// replicas are never throttled. Default: 52428800 (50 MiB/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_737_418_240_i64))]
    pub reassignment_throttle_bytes_per_second: Option<i64>,
    /// Reassignments still running this long after they started are taken as stuck: they are cancelled (each
    /// partition keeps the replicas it had), a Warning Event says so, and the step is planned again. A broker is
    /// never removed on a drain that did not finish. Default: 21600 (6 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604_800))]
    pub reassignment_timeout_seconds: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ListenerSecurity {
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
}

impl ListenerSecurity {
    /// An optional field's schema without `null` among the values, which a 1.20 API server refuses in an enum;
    /// the field is left out when unset.
    pub fn optional_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "enum": ["SASL_SSL", "PLAINTEXT"]})
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ListenerSecurity::SaslSsl => "SASL_SSL",
            ListenerSecurity::Plaintext => "PLAINTEXT",
        }
    }
}

/// The volume claim of each broker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedStorage {
    /// Size, e.g. `100Gi`. Default: 10Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Storage class; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Delete a removed broker's volume claim after a scale-down. Default: false (kept).
    #[serde(default)]
    pub delete_claim_on_scale_down: bool,
}

/// The pipeline's topic. Created by the operator with these settings when it does not exist.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    /// Topic name. Default: `logpipe.<namespace>.<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Partitions: the most indexer replicas that share the work. Default: 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000))]
    pub partitions: Option<i32>,
    /// Copies of each partition; at most the number of brokers. Default: 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32))]
    pub replication_factor: Option<i32>,
    /// How long Kafka keeps records, in hours: the longest Elasticsearch may be down without losing logs.
    /// Default: 72.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 87_600))]
    pub retention_hours: Option<i64>,
    /// Topic for records Elasticsearch rejects. Default: `<topic>.dead-letter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_name: Option<String>,
    /// Delete both topics when the LogPipeline is deleted. Default: false (the records are kept).
    #[serde(default)]
    pub delete_on_removal: bool,
}
