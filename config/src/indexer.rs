use super::Validate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `logpipe-collector indexer --config FILE`: consume the pipeline topic, write to Elasticsearch, commit offsets
/// only for records Elasticsearch accepted (or that went to the dead-letter topic, or a rule dropped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct IndexerConfig {
    pub kafka: KafkaSourceConfig,
    pub elasticsearch: ElasticsearchConfig,
    /// Where documents go: an index name template, or a data stream.
    #[serde(default)]
    pub index: IndexConfig,
    #[serde(default)]
    pub bulk: BulkConfig,
    /// Applied in order to every document before it is indexed.
    #[serde(default)]
    pub processors: Vec<crate::ProcessorConfig>,
    /// Topic for records Elasticsearch rejects (mapping errors) and records that are not JSON; with the error.
    pub dead_letter_topic: String,
    /// Address of `/metrics`, `/healthz` and `/readyz`; none when unset.
    #[serde(default)]
    pub http_listen: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KafkaSourceConfig {
    pub bootstrap_servers: String,
    pub topic: String,
    /// Consumer group: indexers sharing it share the partitions.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Further librdkafka properties (TLS, SASL); `${file:PATH}` and `${env:NAME}` values are read at start.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl KafkaSourceConfig {
    pub fn new(bootstrap_servers: impl Into<String>, topic: impl Into<String>, group_id: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            topic: topic.into(),
            group_id: group_id.into(),
            properties: BTreeMap::new(),
        }
    }
}

fn default_group() -> String {
    "logpipe-indexer".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ElasticsearchConfig {
    /// Base URL, e.g. `https://elasticsearch:9200`.
    pub url: String,
    #[serde(default)]
    pub auth: Option<EsAuth>,
    /// PEM file of the CA that signed the server's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Per bulk request, in milliseconds.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
}

impl ElasticsearchConfig {
    /// No credentials, the system's CA roots, the default request timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), auth: None, ca_file: None, request_timeout_ms: default_request_timeout() }
    }
}

fn default_request_timeout() -> u64 {
    30_000
}

/// Credentials; each secret is a `${file:PATH}` or `${env:NAME}` reference or a literal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields, rename_all = "snake_case")]
pub enum EsAuth {
    Basic { username: String, password: String },
    ApiKey { id: String, key: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct IndexConfig {
    /// Index name template: `{field.path}` takes a field the agent sets (`kubernetes.*`, `host.*`,
    /// `log.file.path`, `stream`; never one an application could print), `%Y %m %d` the date of
    /// its `@timestamp` (UTC), so a replayed record lands in the same index. Ignored with `data_stream`.
    pub name: String,
    /// Write to this data stream instead (created by the template when missing).
    #[serde(default)]
    pub data_stream: Option<String>,
    /// Install an index template for the indices or data stream at start.
    #[serde(default = "yes")]
    pub install_template: bool,
    /// Delete indices older than this many days (an ILM policy attached by the template); none when unset.
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default = "one")]
    pub shards: u32,
    #[serde(default = "one")]
    pub replicas: u32,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            name: "logs-{kubernetes.namespace}-%Y.%m.%d".into(),
            data_stream: None,
            install_template: true,
            retention_days: None,
            shards: 1,
            replicas: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "snake_case")]
pub struct BulkConfig {
    /// A bulk request is sent at this many documents...
    pub max_documents: usize,
    /// ...or this many bytes of body...
    pub max_bytes: usize,
    /// ...or when its first document has waited this long, in milliseconds.
    pub max_wait_ms: u64,
    /// Bulk requests in flight at once.
    pub concurrency: usize,
    /// First retry delay for 429/5xx documents and failed requests; doubles up to `max_backoff_ms`, with jitter.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for BulkConfig {
    fn default() -> Self {
        Self {
            max_documents: 5000,
            max_bytes: 5 << 20,
            max_wait_ms: 1000,
            concurrency: 2,
            initial_backoff_ms: 100,
            max_backoff_ms: 30_000,
        }
    }
}

impl Validate for IndexerConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        super::sink::check_topic("kafka.topic", &self.kafka.topic)?;
        super::sink::check_topic("dead_letter_topic", &self.dead_letter_topic)?;
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return Err(("kafka.bootstrap_servers", "must name at least one broker".into()));
        }
        if self.dead_letter_topic == self.kafka.topic {
            return Err(("dead_letter_topic", "must differ from kafka.topic".into()));
        }
        let url = self.elasticsearch.url.parse::<url::Url>().map_err(|e| ("elasticsearch.url", e.to_string()))?;
        if !["http", "https"].contains(&url.scheme()) {
            return Err(("elasticsearch.url", "must be http or https".into()));
        }
        let name = crate::IndexName::parse(&self.index.name).map_err(|e| ("index.name", e.to_string()))?;
        // A field a pod can print would let it choose another namespace's index.
        if let Some(f) = name.fields().find(|f| !crate::processor::within_agent_field(f) || f.starts_with("logpipe")) {
            let reason = format!("{{{f}}} is not a field the agent sets (kubernetes.*, host.*, log.file.path, stream)");
            return Err(("index.name", reason));
        }
        let b = &self.bulk;
        let positive = [
            ("bulk.max_documents", b.max_documents),
            ("bulk.max_bytes", b.max_bytes),
            ("bulk.concurrency", b.concurrency),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err((field, "must be greater than zero".into()));
        }
        super::at_most(&[
            ("bulk.max_documents", b.max_documents as u64, 100_000),
            ("bulk.max_bytes", b.max_bytes as u64, 100 << 20),
            ("bulk.max_wait_ms", b.max_wait_ms, 600_000),
            ("bulk.concurrency", b.concurrency as u64, 64),
            ("bulk.initial_backoff_ms", b.initial_backoff_ms, 3_600_000),
            ("bulk.max_backoff_ms", b.max_backoff_ms, 3_600_000),
            ("elasticsearch.request_timeout_ms", self.elasticsearch.request_timeout_ms, 3_600_000),
        ])?;
        for p in &self.processors {
            p.validate().map_err(|e| ("processors", e))?;
        }
        Ok(())
    }
}
