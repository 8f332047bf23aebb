//! What the agent reports on `/metrics`, and its health. The agent thread publishes into these after each loop
//! round; the HTTP server reads them. Nothing here is on the per-line path.

use super::files::Counters;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The agent's lifecycle as health endpoints see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Reading back what the previous run delivered; alive, not ready.
    Starting = 0,
    /// Following files; ready while the loop keeps turning.
    Running = 1,
    /// Draining after SIGTERM.
    Stopping = 2,
}

type FileLabels = Vec<(String, String)>;

pub struct AgentMetrics {
    pub registry: Registry,
    lines: Counter,
    bytes: Counter,
    records_sent: Counter,
    records_acked: Counter,
    parse_errors: Counter,
    rotations: Counter,
    truncations: Counter,
    files_lost: Counter,
    delivery_errors: Counter,
    checkpoints_set_aside: Counter,
    recovery_seconds: Gauge<f64, AtomicU64>,
    recovery_records_scanned: Gauge,
    files_tracked: Gauge,
    deleted_open_bytes: Gauge,
    files_waiting: Gauge,
    in_flight_bytes: Gauge,
    checkpoint_age_seconds: Gauge<f64, AtomicU64>,
    file_lag_bytes: Family<FileLabels, Gauge>,
    phase: AtomicU8,
    heartbeat_ms: AtomicI64,
    last_checkpoint_ms: AtomicI64,
}

/// Running totals the agent publishes; counters move by the difference to the previous publication.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub counters: Counters,
    pub records_sent: u64,
    pub records_acked: u64,
    pub delivery_errors: u64,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("logpipe_agent");
        let m = Self {
            registry: Registry::default(),
            lines: Counter::default(),
            bytes: Counter::default(),
            records_sent: Counter::default(),
            records_acked: Counter::default(),
            parse_errors: Counter::default(),
            rotations: Counter::default(),
            truncations: Counter::default(),
            files_lost: Counter::default(),
            delivery_errors: Counter::default(),
            checkpoints_set_aside: Counter::default(),
            recovery_seconds: Gauge::default(),
            recovery_records_scanned: Gauge::default(),
            files_tracked: Gauge::default(),
            deleted_open_bytes: Gauge::default(),
            files_waiting: Gauge::default(),
            in_flight_bytes: Gauge::default(),
            checkpoint_age_seconds: Gauge::default(),
            file_lag_bytes: Family::default(),
            phase: AtomicU8::new(Phase::Starting as u8),
            heartbeat_ms: AtomicI64::new(now_ms()),
            last_checkpoint_ms: AtomicI64::new(now_ms()),
        };
        let counters = [
            ("lines_read", "Lines read from log files", &m.lines),
            ("bytes_read", "Bytes read from log files", &m.bytes),
            ("records_sent", "Records handed to the sink", &m.records_sent),
            ("records_acked", "Records the sink acknowledged", &m.records_acked),
            ("parse_errors", "Lines shipped raw because they did not parse", &m.parse_errors),
            ("rotations", "Files renamed or deleted while being read", &m.rotations),
            ("truncations", "Files truncated in place (copytruncate)", &m.truncations),
            ("files_lost", "Files deleted before they were read to the end", &m.files_lost),
            ("delivery_errors", "Failed deliveries (each retried)", &m.delivery_errors),
            (
                "checkpoints_set_aside",
                "Unreadable checkpoints moved aside (files read again from 0)",
                &m.checkpoints_set_aside,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register("recovery_seconds", "How long the read-back at start took", m.recovery_seconds.clone());
        let scanned = m.recovery_records_scanned.clone();
        registry.register("recovery_records_scanned", "Kafka records read back at start", scanned);
        registry.register("files_tracked", "Files open for reading", m.files_tracked.clone());
        let deleted = m.deleted_open_bytes.clone();
        registry.register("deleted_open_bytes", "Bytes of deleted files still open to be read to their end", deleted);
        registry.register(
            "files_waiting",
            "Files found that wait for tail.max_open_files or the deleted-bytes bound",
            m.files_waiting.clone(),
        );
        registry.register("in_flight_bytes", "Bytes sent and not yet acknowledged", m.in_flight_bytes.clone());
        registry.register("checkpoint_age_seconds", "Time since the last checkpoint", m.checkpoint_age_seconds.clone());
        registry.register("file_lag_bytes", "Bytes of a file not yet read", m.file_lag_bytes.clone());
        Self { registry, ..m }
    }
}

impl AgentMetrics {
    /// Brings the metrics up to `now`; `last` is what was published before.
    pub fn publish(&self, now: Totals, last: &mut Totals, in_flight_bytes: usize, lag: &[(String, u64)]) {
        let (c, p) = (&now.counters, &last.counters);
        for (counter, new, old) in [
            (&self.lines, c.lines, p.lines),
            (&self.bytes, c.bytes, p.bytes),
            (&self.records_sent, now.records_sent, last.records_sent),
            (&self.records_acked, now.records_acked, last.records_acked),
            (&self.parse_errors, c.parse_errors, p.parse_errors),
            (&self.rotations, c.rotations, p.rotations),
            (&self.truncations, c.truncations, p.truncations),
            (&self.files_lost, c.files_lost, p.files_lost),
            (&self.delivery_errors, now.delivery_errors, last.delivery_errors),
        ] {
            counter.inc_by(new.saturating_sub(old));
        }
        *last = now;
        self.in_flight_bytes.set(in_flight_bytes as i64);
        self.files_tracked.set(lag.len() as i64);
        self.file_lag_bytes.clear();
        for (path, lag) in lag {
            // A rotated file still being drained and its successor share a path: their lags add up.
            self.file_lag_bytes.get_or_create(&vec![("path".to_owned(), path.clone())]).inc_by(*lag as i64);
        }
        let age = (now_ms() - self.last_checkpoint_ms.load(Ordering::Relaxed)) as f64 / 1000.0;
        self.checkpoint_age_seconds.set(age);
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn held(&self, held: crate::tailer::Held) {
        self.deleted_open_bytes.set(held.deleted_open_bytes as i64);
        self.files_waiting.set(held.waiting_files as i64);
    }

    pub fn checkpoint_set_aside(&self) {
        self.checkpoints_set_aside.inc();
    }

    pub fn recovered(&self, took: std::time::Duration, scanned: u64) {
        self.recovery_seconds.set(took.as_secs_f64());
        self.recovery_records_scanned.set(scanned as i64);
    }

    pub fn checkpointed(&self) {
        self.last_checkpoint_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }
}

impl crate::http::Health for AgentMetrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Alive unless the loop has stopped turning while it should run (a wedged agent is restarted by its probe).
    fn alive(&self) -> bool {
        self.phase.load(Ordering::Relaxed) != Phase::Running as u8
            || now_ms() - self.heartbeat_ms.load(Ordering::Relaxed) < crate::http::STALL_MS
    }

    fn ready(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == Phase::Running as u8
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
