use super::{FilterConfig, KubernetesConfig, MetadataMode, SinkConfig, Validate};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `logpipe-collector agent --config FILE`. Every field has a default that works on a kubelet node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "snake_case")]
pub struct AgentConfig {
    /// Which files to read and how.
    pub tail: TailConfig,
    /// How lines are parsed.
    pub parse: ParseConfig,
    /// Pod metadata from the Kubernetes API.
    pub kubernetes: KubernetesConfig,
    /// Which pods' logs are collected.
    pub filter: FilterConfig,
    /// Where records go.
    pub sink: SinkConfig,
    /// Directory for checkpoints (a hostPath in the cluster, so they outlive the pod).
    pub state_dir: PathBuf,
    /// A state directory an earlier release used: when `state_dir` holds no checkpoint yet, this one's is carried
    /// over (copied; the earlier directory is only read), so a move of the state directory reads nothing twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier_state_dir: Option<PathBuf>,
    /// How often checkpoints are written, in milliseconds.
    pub checkpoint_interval_ms: u64,
    /// Upper bound on bytes read but not yet acknowledged by the sink; reading pauses above it.
    pub max_in_flight_bytes: usize,
    /// `host.name` of every record. Default: the `NODE_NAME` environment variable, else the machine's hostname.
    pub host_name: Option<String>,
    /// Address of the `/metrics`, `/healthz` and `/readyz` endpoints; none when unset.
    pub http_listen: Option<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            tail: TailConfig::default(),
            parse: ParseConfig::default(),
            kubernetes: KubernetesConfig::default(),
            filter: FilterConfig::default(),
            sink: SinkConfig::Stdout,
            state_dir: PathBuf::from("/var/lib/logpipe"),
            earlier_state_dir: None,
            checkpoint_interval_ms: 1000,
            max_in_flight_bytes: 16 << 20,
            host_name: None,
            http_listen: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "snake_case")]
pub struct TailConfig {
    /// Glob patterns of files to read. Default: the kubelet's pod log layout.
    pub include: Vec<String>,
    /// Glob patterns of files never to read, even when `include` matches.
    pub exclude: Vec<String>,
    /// Where to start in the files present when the agent first runs on a node (no checkpoint yet). Files that
    /// appear later, and files after a restart, are read from their start or their checkpoint.
    pub read_from: ReadFrom,
    /// How often the globs are evaluated again, in milliseconds.
    pub scan_interval_ms: u64,
    /// How long to wait when no file has new data, in milliseconds.
    pub idle_wait_ms: u64,
    /// Size of the read buffer shared by all files.
    pub read_buffer_bytes: usize,
    /// Most bytes read from one file before the next file gets its turn.
    pub max_read_per_file_bytes: usize,
    /// A longer line is split into pieces of at most this many bytes, each marked, none dropped.
    pub max_line_bytes: usize,
    /// Bytes of the first line that identify a file (with its device and inode).
    pub fingerprint_bytes: usize,
    /// Most files open at once; more wait for a later scan (nothing is skipped: they are read when room frees).
    pub max_open_files: usize,
    /// While files deleted but still being read hold more bytes of the node's disk than this, no new file is
    /// opened until they are read to their end and closed.
    pub max_deleted_open_bytes: u64,
}

impl Default for TailConfig {
    fn default() -> Self {
        Self {
            include: vec!["/var/log/pods/*/*/*.log".into()],
            exclude: Vec::new(),
            read_from: ReadFrom::Beginning,
            scan_interval_ms: 1000,
            idle_wait_ms: 100,
            read_buffer_bytes: 256 << 10,
            max_read_per_file_bytes: 1 << 20,
            max_line_bytes: 256 << 10,
            fingerprint_bytes: 256,
            max_open_files: 4096,
            max_deleted_open_bytes: 1 << 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// Read new files from their first byte: nothing a pod wrote before the agent started is missed.
    Beginning,
    /// Read new files from their current end.
    End,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "snake_case")]
pub struct ParseConfig {
    /// Line format: `auto` (per file, from its first line), `cri`, `docker` or `raw`.
    pub format: crate::FormatChoice,
    /// Cap on a line joined from partial chunks (CRI `P`, docker lines without `\n`); beyond it the record is
    /// emitted and marked, and the rest starts a new record.
    pub max_joined_bytes: usize,
    /// Joins lines into one record: a line matching `start` begins a record, other lines continue it (per stream).
    pub multiline: Option<MultilineConfig>,
}

impl Default for ParseConfig {
    fn default() -> Self {
        Self { format: crate::FormatChoice::Auto, max_joined_bytes: 1 << 20, multiline: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MultilineConfig {
    /// Regular expression (Rust `regex` syntax) matching the first line of a record, e.g. `^\d{4}-\d{2}-\d{2}`
    /// or `^\S` (continuation lines of stack traces start with whitespace).
    pub start: String,
    /// A record is complete when no line continued it for this long, in milliseconds.
    #[serde(default = "default_multiline_timeout")]
    pub timeout_ms: u64,
}

fn default_multiline_timeout() -> u64 {
    1000
}

impl Validate for AgentConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.tail.include.is_empty() {
            return Err(("tail.include", "at least one glob pattern is needed".into()));
        }
        for pattern in self.tail.include.iter().chain(&self.tail.exclude) {
            glob::Pattern::new(pattern).map_err(|e| ("tail.include/exclude", format!("{pattern:?}: {e}")))?;
        }
        let positive = [
            ("tail.read_buffer_bytes", self.tail.read_buffer_bytes),
            ("tail.max_line_bytes", self.tail.max_line_bytes),
            ("tail.fingerprint_bytes", self.tail.fingerprint_bytes),
            ("tail.max_read_per_file_bytes", self.tail.max_read_per_file_bytes),
            ("parse.max_joined_bytes", self.parse.max_joined_bytes),
            ("max_in_flight_bytes", self.max_in_flight_bytes),
            ("tail.max_open_files", self.tail.max_open_files),
            ("tail.max_deleted_open_bytes", self.tail.max_deleted_open_bytes as usize),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err((field, "must be greater than zero".into()));
        }
        const MIB: u64 = 1 << 20;
        const HOUR_MS: u64 = 3_600_000;
        let (t, k) = (&self.tail, &self.kubernetes);
        super::at_most(&[
            ("tail.read_buffer_bytes", t.read_buffer_bytes as u64, 64 * MIB),
            ("tail.max_read_per_file_bytes", t.max_read_per_file_bytes as u64, 1024 * MIB),
            ("tail.fingerprint_bytes", t.fingerprint_bytes as u64, 64 << 10),
            ("tail.scan_interval_ms", t.scan_interval_ms, HOUR_MS),
            ("tail.idle_wait_ms", t.idle_wait_ms, 60_000),
            ("tail.max_open_files", t.max_open_files as u64, 1_000_000),
            ("parse.max_joined_bytes", self.parse.max_joined_bytes as u64, 64 * MIB),
            ("parse.multiline.timeout_ms", self.parse.multiline.as_ref().map_or(0, |m| m.timeout_ms), 600_000),
            ("checkpoint_interval_ms", self.checkpoint_interval_ms, HOUR_MS),
            ("max_in_flight_bytes", self.max_in_flight_bytes as u64, 4096 * MIB),
            ("kubernetes.wait_for_metadata_ms", k.wait_for_metadata_ms, HOUR_MS),
            ("kubernetes.deleted_pod_grace_ms", k.deleted_pod_grace_ms, 24 * HOUR_MS),
        ])?;
        if self.tail.max_line_bytes > self.tail.read_buffer_bytes {
            return Err(("tail.max_line_bytes", "must not exceed tail.read_buffer_bytes".into()));
        }
        if let Some(m) = &self.parse.multiline {
            regex::bytes::Regex::new(&m.start).map_err(|e| ("parse.multiline.start", e.to_string()))?;
        }
        let selectors = [
            ("filter.namespace_selector", &self.filter.namespace_selector),
            ("filter.pod_selector", &self.filter.pod_selector),
        ];
        for (field, selector) in selectors {
            if let Some(s) = selector {
                kube::core::Selector::try_from(s.clone()).map_err(|e| (field, e.to_string()))?;
            }
        }
        if self.filter.needs_metadata() && self.kubernetes.metadata == MetadataMode::Disabled {
            return Err(("filter", "label selectors need pod metadata; kubernetes.metadata is disabled".into()));
        }
        self.sink.validate()
    }
}
