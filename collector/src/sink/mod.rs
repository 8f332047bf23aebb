//! Where the agent's records go. A sink takes records without blocking for long and later reports which were
//! durably accepted; the agent checkpoints only those.

mod ends;
mod framing;
mod kafka;
mod recovery;
mod stream;

pub use kafka::{KafkaError, KafkaSink};
pub use recovery::{Delivered, RecoveryError};
pub use stream::{NullSink, WriterSink};

use std::collections::BTreeMap;
use std::time::Duration;

/// Names a record until it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub file: u64,
    pub seq: u64,
    pub bytes: u32,
}

/// One record to send. `source` and `span` identify it across restarts (Kafka headers), so a restarted agent can
/// tell which records the previous run delivered.
pub struct Outgoing<'a> {
    pub key: &'a [u8],
    pub payload: &'a [u8],
    pub source: &'a str,
    pub span: crate::checkpoint::Span,
    pub token: Token,
}

/// An acknowledged record and where it landed (Kafka partition and offset; `None` for other sinks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub token: Token,
    pub position: Option<(i32, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("writing {what}: {source}")]
    Write { what: String, source: std::io::Error },
    #[error("reading back what the previous run delivered: {0}")]
    Recovery(#[from] RecoveryError),
}

pub trait Sink: Send {
    /// What a previous run delivered after its last checkpoint (`scan_from`, `None` on a first start), for records
    /// whose source starts with `source_prefix`; called once, before the first `send`. `None`: this sink keeps
    /// nothing it could read back, and the checkpoint alone says what was delivered.
    fn recover(
        &mut self,
        scan_from: Option<&BTreeMap<i32, i64>>,
        source_prefix: &str,
    ) -> Result<Option<Delivered>, SinkError> {
        let _ = (scan_from, source_prefix);
        Ok(None)
    }
    /// Queues a record; may wait while the sink's own queue is full.
    fn send(&mut self, record: Outgoing<'_>) -> Result<(), SinkError>;
    /// Waits at most `wait` for acknowledgements and appends them to `acks`.
    fn poll(&mut self, wait: Duration, acks: &mut Vec<Ack>) -> Result<(), SinkError>;
    /// Deliveries that failed and were queued again, since the start.
    fn delivery_failures(&self) -> u64 {
        0
    }
    /// The largest message the sink takes (key and headers included), when it has a limit; larger records are
    /// cut into pieces before they are sent.
    fn max_message_bytes(&self) -> Option<usize> {
        None
    }
    /// Each partition's end, when it was read again since the last call (Kafka: by a thread of its own, so this
    /// never waits). A restart's read-back need not look below an end read after every record sent before it was
    /// acknowledged.
    fn partition_ends(&mut self) -> Option<BTreeMap<i32, i64>> {
        None
    }
}
