//! logpipe's configuration: the agent's and the indexer's config files with their validation, and the types they
//! are made of (log formats, processors, index name templates). These types are the one definition of the format:
//! the operator renders its ConfigMaps from them and the collector parses them, so the two cannot drift; and the
//! operator links this crate, not the data plane.
//!
//! With the `schemars` feature, [`ProcessorConfig`] describes itself as a Kubernetes structural schema, for the
//! LogPipeline CRD.

mod agent;
mod format;
pub mod index_name;
mod indexer;
mod kubernetes;
mod paths;
pub mod processor;
mod sink;

pub use agent::{AgentConfig, MultilineConfig, ParseConfig, ReadFrom, TailConfig};
pub use indexer::{BulkConfig, ElasticsearchConfig, EsAuth, IndexConfig, IndexerConfig, KafkaSourceConfig};
pub use kubernetes::{FilterConfig, KubernetesConfig, MetadataMode, DEFAULT_OPT_OUT_ANNOTATION};
pub use sink::{check_topic, Compression, FileSinkConfig, KafkaSinkConfig, SinkConfig};

pub use format::FormatChoice;
pub use index_name::{IndexName, IndexNameError};
pub use paths::glob_base_dir;
pub use processor::ProcessorConfig;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse { path: PathBuf, source: serde_yaml::Error },
    #[error("invalid config file {path}: {field}: {reason}")]
    Invalid { path: PathBuf, field: &'static str, reason: String },
}

/// Reads a YAML config file of type `T` and checks what serde cannot.
pub fn load<T: Validate + serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    let config: T = serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })?;
    config.validate().map_err(|(field, reason)| ConfigError::Invalid { path: path.into(), field, reason })?;
    Ok(config)
}

/// Checks that go beyond the shape of the file; the error names the field and the reason.
pub trait Validate {
    fn validate(&self) -> Result<(), (&'static str, String)>;
}

/// Refuses the first field above its upper bound: a size or interval that large is a typo, and some (buffer sizes)
/// would be allocated at start.
pub fn at_most(fields: &[(&'static str, u64, u64)]) -> Result<(), (&'static str, String)> {
    match fields.iter().find(|(_, value, max)| value > max) {
        Some((field, value, max)) => Err((field, format!("{value} is above the upper bound {max}"))),
        None => Ok(()),
    }
}

/// A config value that may point elsewhere: `${file:PATH}` is the file's content (without a final newline),
/// `${env:NAME}` the variable's value, anything else itself. Secrets come from mounted files or the environment.
pub fn resolve_secret(value: &str) -> Result<String, String> {
    if let Some(path) = value.strip_prefix("${file:").and_then(|v| v.strip_suffix('}')) {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    if let Some(name) = value.strip_prefix("${env:").and_then(|v| v.strip_suffix('}')) {
        return std::env::var(name).map_err(|_| format!("environment variable {name} is not set"));
    }
    Ok(value.to_owned())
}
