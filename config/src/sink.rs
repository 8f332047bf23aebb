use super::Validate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the agent sends records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// One JSON document per line on standard output.
    Stdout,
    /// One JSON document per line, appended to a file; acknowledged once fsynced.
    File(FileSinkConfig),
    /// Kafka, acknowledged by the brokers (acks=all, idempotent).
    Kafka(KafkaSinkConfig),
    /// Discards records and acknowledges at once; for benchmarks.
    Null,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KafkaSinkConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    pub topic: String,
    #[serde(default)]
    pub compression: Compression,
    /// How long the producer waits to fill a batch, in milliseconds (librdkafka `linger.ms`).
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u32,
    /// Largest batch in bytes (librdkafka `batch.size`).
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: u32,
    /// Consecutive records of one file travel together in one Kafka message of at most this many bytes (record
    /// format 2, see docs/record-format.md); a message costs about the same whatever its size, so this is what
    /// makes the Kafka path cheap. `0`: one record per message (format 1), which indexers made before format 2
    /// also read: the setting for an upgrade while such indexers still run.
    #[serde(default = "default_frame_bytes")]
    pub frame_bytes: u32,
    /// Further librdkafka properties, e.g. `security.protocol: SASL_SSL`, `sasl.mechanism: SCRAM-SHA-512`,
    /// `ssl.ca.location`. A value of the form `${file:PATH}` or `${env:NAME}` is read from that file or variable,
    /// so credentials come from mounted Secrets and never sit in the config.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl KafkaSinkConfig {
    /// A sink with default batching and compression and no further properties.
    pub fn new(bootstrap_servers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            topic: topic.into(),
            compression: Compression::default(),
            linger_ms: default_linger_ms(),
            batch_bytes: default_batch_bytes(),
            frame_bytes: default_frame_bytes(),
            properties: BTreeMap::new(),
        }
    }
}

fn default_linger_ms() -> u32 {
    20
}

fn default_batch_bytes() -> u32 {
    1 << 20
}

fn default_frame_bytes() -> u32 {
    DEFAULT_FRAME_BYTES
}

pub const DEFAULT_FRAME_BYTES: u32 = 128 << 10;
/// Larger frames save nothing more (a message's fixed cost is already spread thin) and hold up acknowledgements.
pub const MAX_FRAME_BYTES: u32 = 4 << 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    #[default]
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Properties the agent owns because its delivery guarantee rests on them.
pub const PROTECTED_KAFKA_PROPERTIES: &[&str] =
    &["acks", "enable.idempotence", "message.timeout.ms", "bootstrap.servers", "compression.type"];

impl Validate for SinkConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let SinkConfig::Kafka(kafka) = self else {
            return Ok(());
        };
        if kafka.bootstrap_servers.trim().is_empty() {
            return Err(("sink.bootstrap_servers", "must name at least one broker".into()));
        }
        check_topic("sink.topic", &kafka.topic)?;
        if kafka.frame_bytes > MAX_FRAME_BYTES {
            return Err(("sink.frame_bytes", format!("must be at most {MAX_FRAME_BYTES}")));
        }
        if let Some(key) = kafka.properties.keys().find(|k| PROTECTED_KAFKA_PROPERTIES.contains(&k.as_str())) {
            return Err(("sink.properties", format!("{key} is set by the agent to keep its delivery guarantee")));
        }
        Ok(())
    }
}

/// Kafka's rules for topic names.
pub fn check_topic(field: &'static str, topic: &str) -> Result<(), (&'static str, String)> {
    if topic.is_empty() || topic.len() > 249 {
        return Err((field, "must be 1 to 249 characters".into()));
    }
    if let Some(bad) = topic.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c))) {
        return Err((field, format!("character {bad:?} is not allowed in a Kafka topic name")));
    }
    Ok(())
}
