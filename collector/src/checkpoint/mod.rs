//! Checkpoints: per file, the offset below which every record was acknowledged by the sink, and the records
//! beyond it that were acknowledged too (when a partial line held the offset back); per Kafka partition, where a
//! restart must look for records sent after the checkpoint was written.

mod store;
mod tracker;

pub use store::{Carried, CheckpointStore, Loaded, StoreError};
pub use tracker::{FileTracker, Seq};

/// A record's place in its file, `(start, end)`: where it begins and where the next record of its stream may
/// begin. Records are recognised by their start; the end lets a restart join lines (multiline) exactly as before.
pub type Span = (u64, u64);

use crate::tailer::FileKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub files: Vec<FileCheckpoint>,
    /// Kafka partition -> first offset that may hold a record of ours not covered by `files`.
    #[serde(default)]
    pub kafka_scan_from: BTreeMap<i32, i64>,
    /// Records found delivered by a previous run whose file has not been read again yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered: Vec<Delivered>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub key: FileKey,
    pub records: Vec<Span>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    pub key: FileKey,
    pub path: PathBuf,
    /// Resume here: every record starting before it was acknowledged.
    pub offset: u64,
    /// Records at or after `offset` that were acknowledged already; not sent again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acked_beyond: Vec<Span>,
    /// Set once the file was read to its end after rotation: its size then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<u64>,
}
