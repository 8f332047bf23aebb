//! The indexer: Kafka -> processors -> Elasticsearch bulk, committing an offset only when every record below it was
//! indexed, dead-lettered or dropped by a rule.
//!
//! Duplicates are prevented by Elasticsearch, not by commits: every document is a `create` with the id
//! `<topic>-<partition>-<offset>` into an index named from the document itself, so a record read again after a
//! crash or a rebalance is answered 409 and counted as already indexed. Commits therefore only bound how much is read
//! again; they never run ahead of what Elasticsearch accepted, which is what prevents loss.

mod backoff;
mod bulk;
mod dead_letter;
mod elastic;
mod fields;
mod lookup;
mod metrics;
mod offsets;
mod pipeline;
pub mod processors;
mod route;

pub use elastic::ElasticError;
pub use metrics::IndexerMetrics;
pub use pipeline::Indexer;
pub use processors::{within_agent_field, ProcessorConfig};
pub use route::{IndexName, IndexNameError};

#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    KafkaProperty(#[from] crate::librdkafka::PropertyError),
    #[error(transparent)]
    Elastic(#[from] ElasticError),
    #[error("index.name: {0}")]
    IndexName(#[from] IndexNameError),
}
