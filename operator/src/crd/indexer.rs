use k8s_openapi::api::core::v1::{ResourceRequirements, SecretKeySelector, Toleration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The indexer: Kafka to Elasticsearch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexerSpec {
    /// Number of indexer pods; more than the topic's partitions leaves some idle. Default: 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// Container image of logpipe-collector. Default: the image the operator was installed with; another is
    /// honoured only when the operator's policy allows image overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub elasticsearch: ElasticsearchSpec,
    /// Where documents go.
    #[serde(default)]
    pub index: IndexSpec,
    /// Bulk request sizing.
    #[serde(default)]
    pub bulk: BulkSpec,
    /// Applied in order to every document: each has a `type` (`parse_json`, `timestamp`, `level`, `rename`, `add`,
    /// `remove`, `drop`) and that type's fields, as in the indexer's config file (docs/indexer-config.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "processors_schema")]
    pub processors: Vec<serde_json::Value>,
    /// Resources of the indexer container. Default: requests 100m CPU and 128Mi memory, limit 1Gi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
}

/// The processors' schema is the indexer's own definition; the field stays untyped JSON here so that a processor
/// the API server accepts but the indexer would not (a field of another type) is refused by the operator with a
/// status condition naming it, rather than failing to decode the whole LogPipeline.
fn processors_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let items = logpipe_config::ProcessorConfig::json_schema(generator);
    schemars::json_schema!({"type": "array", "items": items})
}

/// The Elasticsearch cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElasticsearchSpec {
    /// Base URL, e.g. `https://elasticsearch.logging:9200`.
    pub url: String,
    /// Credentials from a Secret in the pipeline's namespace, mounted into the indexer pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<ElasticsearchCredentials>,
    /// Secret key holding the PEM CA certificate of the server. Default: the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<SecretKeySelector>,
}

/// Keys `username` and `password` (basic) or `id` and `api_key` (API key) of a Secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElasticsearchCredentials {
    /// `basic` or `apiKey`.
    #[serde(rename = "type")]
    pub kind: CredentialsKind,
    /// Name of the Secret.
    pub secret_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CredentialsKind {
    Basic,
    ApiKey,
}

/// Index naming and lifecycle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexSpec {
    /// Index name template: `{field.path}` is a field of the document, `%Y %m %d` the date of its @timestamp.
    /// Default: `logs-{kubernetes.namespace}-%Y.%m.%d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_template: Option<String>,
    /// Write to this data stream instead of templated indices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_stream: Option<String>,
    /// Delete indices older than this many days (an ILM policy). Default: kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36_500))]
    pub retention_days: Option<u32>,
    /// Primary shards per index. Default: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub shards: Option<u32>,
    /// Replicas per shard. Default: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 32))]
    pub replicas: Option<u32>,
}

/// When a bulk request is sent, and how many at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkSpec {
    /// Documents per request. Default: 5000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100_000))]
    pub max_documents: Option<u32>,
    /// Bytes per request. Default: 5 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 104_857_600))]
    pub max_bytes: Option<u32>,
    /// Longest a document waits for its request, in milliseconds. Default: 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600_000))]
    pub max_wait_ms: Option<u32>,
    /// Requests in flight per indexer. Default: 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: Option<u32>,
}
