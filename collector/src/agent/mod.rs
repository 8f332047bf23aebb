//! The node agent: tailer -> parser -> encoder -> sink, checkpointing only what the sink acknowledged.
//!
//! Start-up order matters for "no duplicates": load the checkpoint, read back from Kafka what the previous run
//! delivered after it, write a checkpoint that records where this run's records will begin, and only then read.

mod enrich;
mod files;
mod metrics;

pub use files::Counters;
pub use metrics::{AgentMetrics, Phase, Totals};

use crate::checkpoint::{Carried, Checkpoint, CheckpointStore, Delivered, FileCheckpoint, Loaded, Span, StoreError};
use crate::config::{AgentConfig, ReadFrom, SinkConfig};
use crate::encode::MetaFields;
use crate::metadata::{Filter, FilterError, MetaIndex, Update};
use crate::sink::{self, Ack, KafkaSink, NullSink, RecoveryError, Sink, SinkError, WriterSink};
use crate::tailer::{FileKey, Resume, Tailer, TailerError, TailerOptions};
use enrich::{Enricher, PodWatch};
use files::{Handler, Lifecycle};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a rotated or deleted file stays open at its end for a writer that has not yet switched files.
const RELEASE_AFTER: Duration = Duration::from_secs(5);
/// Scans asked for by inotify come at most this often: a burst of new files costs one scan, not one each.
const MIN_SCAN_GAP: Duration = Duration::from_millis(50);
/// The read-back is tried again after this, doubling up to `RECOVERY_MAX_PAUSE`, while Kafka cannot answer.
const RECOVERY_FIRST_PAUSE: Duration = Duration::from_secs(1);
const RECOVERY_MAX_PAUSE: Duration = Duration::from_secs(30);
/// How long shutdown waits for outstanding acknowledgements.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tailer(#[from] TailerError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("reading back what the previous run delivered: {0}")]
    Recovery(#[from] RecoveryError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("asked to stop while reading back what the previous run delivered; nothing was read or sent")]
    StoppedStarting,
}

/// When `Agent::run` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// When asked to stop (SIGTERM).
    Stopped,
    /// When everything there is has been read and acknowledged: one pass, for backfills and benchmarks.
    CaughtUp,
}

/// Partition ends read while records may have been in flight. They become scan offsets once every record sent
/// before they were read is acknowledged: only then can no record of ours below them be missing from a checkpoint.
struct PendingEnds {
    ends: BTreeMap<i32, i64>,
    /// Per file, the number of the first record sent after the ends were read.
    sent_before: Vec<(u64, crate::checkpoint::Seq)>,
}

pub struct Agent {
    config: AgentConfig,
    tailer: Tailer,
    handler: Handler,
    store: CheckpointStore,
    /// Per Kafka partition, the first offset that may hold a record of this run not yet in a checkpoint.
    kafka_scan_from: BTreeMap<i32, i64>,
    pending_ends: Option<PendingEnds>,
    acks: Vec<Ack>,
    records_acked: u64,
    metrics: Arc<AgentMetrics>,
    published: Totals,
}

impl Agent {
    /// Opens the checkpoint and the sink and reads back what the previous run delivered (trying again while Kafka
    /// cannot answer, until `stop`); `metrics` is where the agent reports (it says `Phase::Starting` until `run`);
    /// `pod_updates` is the pod watch, if it runs.
    pub fn new(
        config: AgentConfig,
        metrics: Arc<AgentMetrics>,
        pod_updates: Option<Receiver<Update>>,
        stop: &AtomicBool,
    ) -> Result<Self, AgentError> {
        let store = CheckpointStore::open(&config.state_dir)?;
        let carried = carry_over(&store, config.earlier_state_dir.as_deref(), &metrics)?;
        let loaded = store.load_or_set_aside()?;
        if let Loaded::SetAside { moved_to, reason } = &loaded {
            tracing::error!(moved_to = %moved_to.display(), %reason,
                "the checkpoint could not be read and was moved aside; every file is read again from its start, \
                 so lines already shipped are shipped again (docs/design/agent.md, \"A corrupt checkpoint\")");
            metrics.checkpoint_set_aside();
        }
        // read_from: end applies to the files present when the agent first runs on a node, never after.
        let first_run = loaded == Loaded::First && !matches!(carried, Carried::Unreadable { .. });
        let restored = match loaded {
            Loaded::Restored(c) => Some(c),
            Loaded::First | Loaded::SetAside { .. } => None,
        };
        let host = config.host_name.clone().unwrap_or_else(default_host);
        let (sink, delivered, kafka_scan_from) = open_sink(&config, &host, restored.as_ref(), &metrics, stop)?;
        let enricher = enricher(&config, pod_updates)?;
        let mut handler = Handler::new(sink, enricher, host, &config.parse, config.max_in_flight_bytes);
        handler.unclaimed = delivered;
        let mut resume = Vec::new();
        for f in restored.iter().flat_map(|c| &c.files) {
            handler.unclaimed.entry(f.key).or_default().extend(f.acked_beyond.iter().copied());
            if f.released_at.is_none_or(|end| f.offset < end) {
                resume.push(Resume { key: f.key, path: f.path.clone(), offset: f.offset });
            }
        }
        for d in restored.iter().flat_map(|c| &c.delivered) {
            handler.unclaimed.entry(d.key).or_default().extend(d.records.iter().copied());
        }
        let tailer = Tailer::new(tailer_options(&config, first_run), resume)?;
        Ok(Self {
            config,
            tailer,
            handler,
            store,
            kafka_scan_from,
            pending_ends: None,
            acks: Vec::new(),
            records_acked: 0,
            metrics,
            published: Totals::default(),
        })
    }

    pub fn counters(&self) -> Counters {
        self.handler.counters
    }

    /// Runs until `stop` is set (or, with `Until::CaughtUp`, until every file is read to its end and every record
    /// acknowledged), then waits a while for outstanding acknowledgements and checkpoints.
    pub fn run(&mut self, stop: &AtomicBool, until: Until) -> Result<(), AgentError> {
        self.handler.enricher.wait_synced();
        self.save()?;
        self.metrics.set_phase(Phase::Running);
        let scan_every = Duration::from_millis(self.config.tail.scan_interval_ms);
        let checkpoint_every = Duration::from_millis(self.config.checkpoint_interval_ms);
        let idle = Duration::from_millis(self.config.tail.idle_wait_ms);
        let (mut next_scan, mut next_checkpoint) = (Instant::now(), Instant::now() + checkpoint_every);
        let mut first_scan = true;
        while !stop.load(Ordering::Relaxed) {
            self.handler.emitter.now = now_rfc3339();
            let gap_passed =
                next_scan.saturating_duration_since(Instant::now()) <= scan_every.saturating_sub(MIN_SCAN_GAP);
            if Instant::now() >= next_scan || (gap_passed && self.tailer.files_changed()) {
                self.handler.refresh_metadata();
                self.tailer.scan(&mut self.handler);
                self.handler.enricher.scanned();
                if std::mem::take(&mut first_scan) {
                    // Every file the previous run knew is open again; what is still unclaimed belongs to files gone.
                    self.handler.unclaimed.clear();
                }
                // Before reading: a file is in the checkpoint before any of its records is sent.
                self.save_if_files_changed()?;
                self.publish();
                next_scan = Instant::now() + scan_every;
            }
            let paused = self.handler.paused();
            let read = if paused { 0 } else { self.tailer.read(&mut self.handler) };
            // A read identifies a file emptied in place once its first line is complete.
            self.save_if_files_changed()?;
            if let Some(e) = self.handler.emitter.error.take() {
                return Err(e.into());
            }
            self.poll_acks(if read == 0 { idle } else { Duration::ZERO })?;
            if read == 0 {
                self.handler.flush_stale_multiline();
            }
            // Caught up only when a read found nothing, not when reading paused for acknowledgements.
            let nothing_read = !paused && read == 0;
            if until == Until::CaughtUp && !first_scan && nothing_read && self.handler.emitter.in_flight_bytes == 0 {
                break;
            }
            if Instant::now() >= next_checkpoint {
                self.save()?;
                next_checkpoint = Instant::now() + checkpoint_every;
            }
        }
        self.drain()
    }

    fn publish(&mut self) {
        let totals = Totals {
            counters: self.handler.counters,
            records_sent: self.handler.emitter.records_sent,
            records_acked: self.records_acked,
            delivery_errors: self.handler.emitter.sink.delivery_failures(),
        };
        let lag = self.tailer.lag();
        self.metrics.publish(totals, &mut self.published, self.handler.emitter.in_flight_bytes, &lag);
        self.metrics.held(self.tailer.held());
    }

    fn drain(&mut self) -> Result<(), AgentError> {
        self.metrics.set_phase(Phase::Stopping);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.handler.emitter.in_flight_bytes > 0 && Instant::now() < deadline {
            self.poll_acks(Duration::from_millis(100))?;
        }
        self.save()
    }

    fn poll_acks(&mut self, wait: Duration) -> Result<(), AgentError> {
        self.handler.emitter.sink.poll(wait, &mut self.acks)?;
        let mut touched = Vec::new();
        self.records_acked += self.acks.len() as u64;
        for ack in self.acks.drain(..) {
            self.handler.emitter.in_flight_bytes -= ack.token.bytes as usize;
            if let Some(st) = self.handler.files.get_mut(&ack.token.file) {
                st.out.tracker.ack(ack.token.seq);
                if touched.last() != Some(&ack.token.file) {
                    touched.push(ack.token.file);
                }
            }
            if let Some((partition, offset)) = ack.position {
                let next = self.kafka_scan_from.entry(partition).or_insert(offset + 1);
                *next = (*next).max(offset + 1);
            }
        }
        for id in touched {
            if let Some(st) = self.handler.files.get_mut(&id) {
                st.out.tracker.compact(st.open_start());
            }
        }
        Ok(())
    }

    fn save_if_files_changed(&mut self) -> Result<(), AgentError> {
        if std::mem::take(&mut self.handler.files_changed) {
            self.save()?;
        }
        Ok(())
    }

    /// Moves the scan offsets up to partition ends read earlier, once nothing sent before that read is pending.
    fn advance_scan_offsets(&mut self) {
        if self.pending_ends.is_none() {
            if let Some(ends) = self.handler.emitter.sink.partition_ends() {
                let sent_before = self.handler.files.iter().map(|(&id, st)| (id, st.out.tracker.next_seq())).collect();
                self.pending_ends = Some(PendingEnds { ends, sent_before });
            }
        }
        let files = &self.handler.files;
        let settled = |p: &PendingEnds| {
            p.sent_before.iter().all(|(id, seq)| files.get(id).is_none_or(|st| !st.out.tracker.pending_before(*seq)))
        };
        if let Some(p) = self.pending_ends.take_if(|p| settled(p)) {
            for (partition, end) in p.ends {
                let from = self.kafka_scan_from.entry(partition).or_insert(end);
                *from = (*from).max(end);
            }
        }
    }

    /// Writes the checkpoint; files finished and fully acknowledged are forgotten after it.
    fn save(&mut self) -> Result<(), AgentError> {
        self.advance_scan_offsets();
        let mut checkpoint = Checkpoint { kafka_scan_from: self.kafka_scan_from.clone(), ..Checkpoint::default() };
        let live: HashMap<u64, (FileKey, std::path::PathBuf)> =
            self.tailer.files().into_iter().map(|(f, _)| (f.id, (f.key, f.path.clone()))).collect();
        for r in self.tailer.unmatched_resume() {
            let f = FileCheckpoint {
                key: r.key,
                path: r.path.clone(),
                offset: r.offset,
                acked_beyond: vec![],
                released_at: None,
            };
            checkpoint.files.push(f);
        }
        let mut done = Vec::new();
        // Oldest file first: the order the next run drains rotated files of one path in.
        let mut ids: Vec<u64> = self.handler.files.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(st) = self.handler.files.get_mut(&id) else { continue };
            let (offset, mut acked_beyond) = st.out.tracker.checkpoint(st.open_start());
            acked_beyond.extend(st.out.skip.iter().map(|(&s, &e)| (s, e)).filter(|&(s, _)| s >= offset));
            let (key, path) = live.get(&id).cloned().unwrap_or_else(|| (st.key, st.path.clone()));
            let released_at = match st.lifecycle {
                Lifecycle::Reading => None,
                Lifecycle::Finished { .. } if st.out.tracker.pending() == 0 => {
                    done.push(id);
                    continue;
                }
                Lifecycle::Finished { end } => Some(end),
            };
            acked_beyond.sort_unstable();
            checkpoint.files.push(FileCheckpoint { key, path, offset, acked_beyond, released_at });
        }
        for (key, records) in &self.handler.unclaimed {
            let mut records: Vec<Span> = records.iter().map(|(&s, &e)| (s, e)).collect();
            records.sort_unstable();
            checkpoint.delivered.push(Delivered { key: *key, records });
        }
        self.store.save(&checkpoint)?;
        self.metrics.checkpointed();
        for id in done {
            self.handler.files.remove(&id);
        }
        Ok(())
    }
}

type OpenedSink = (Box<dyn Sink>, HashMap<FileKey, HashMap<u64, u64>>, BTreeMap<i32, i64>);

/// The checkpoint of the state directory an earlier release used, made this one's when it has none. An unreadable
/// one is treated as a set-aside checkpoint: every file is read from its start, never skipped.
fn carry_over(
    store: &CheckpointStore,
    earlier: Option<&std::path::Path>,
    metrics: &AgentMetrics,
) -> Result<Carried, AgentError> {
    let Some(earlier) = earlier else {
        return Ok(Carried::Nothing);
    };
    let carried = store.carry_over(earlier)?;
    match &carried {
        Carried::Nothing => {}
        Carried::Copied(from) => tracing::info!(from = %from.display(), to = %store.path().display(),
            "carried the checkpoint over from the earlier state directory"),
        Carried::Unreadable { path, reason } => {
            tracing::error!(path = %path.display(), %reason,
                "the earlier state directory's checkpoint could not be read; every file is read again from its start");
            metrics.checkpoint_set_aside();
        }
    }
    Ok(carried)
}

/// The configured sink, and what the previous run delivered after its checkpoint as the sink read it back.
fn open_sink(
    config: &AgentConfig,
    host: &str,
    restored: Option<&Checkpoint>,
    metrics: &AgentMetrics,
    stop: &AtomicBool,
) -> Result<OpenedSink, AgentError> {
    let mut sink: Box<dyn Sink> = match &config.sink {
        SinkConfig::Stdout => Box::new(WriterSink::stdout()),
        SinkConfig::File(f) => Box::new(WriterSink::file(&f.path)?),
        SinkConfig::Null => Box::<NullSink>::default(),
        SinkConfig::Kafka(k) => {
            let ends_every = Duration::from_millis(config.checkpoint_interval_ms).max(Duration::from_secs(1));
            Box::new(KafkaSink::new(k, ends_every).map_err(SinkError::from)?)
        }
    };
    let scan_from = restored.map(|c| &c.kafka_scan_from);
    let prefix = format!("{host}/");
    let Some(found) = read_back(stop, || sink.recover(scan_from, &prefix))? else {
        return Ok((sink, HashMap::new(), BTreeMap::new()));
    };
    let mut delivered: HashMap<FileKey, HashMap<u64, u64>> = HashMap::new();
    for (source, offsets) in found.by_source {
        if let Some(key) = source.strip_prefix(&prefix).and_then(|k| k.parse().ok()) {
            delivered.entry(key).or_default().extend(offsets);
        }
    }
    let found_count: usize = delivered.values().map(HashMap::len).sum();
    metrics.recovered(found.took, found.scanned);
    tracing::info!(
        records = found_count,
        scanned = found.scanned,
        seconds = found.took.as_secs_f64(),
        "read back what the previous run delivered after its checkpoint; those records are not sent again"
    );
    Ok((sink, delivered, found.ends))
}

/// Runs the read-back until it succeeds: Kafka down at start (a broker rolling, a cluster still coming up) is
/// waited out in the process, not by exiting into a crash loop whose back-off would delay collection after Kafka
/// is back.
fn read_back(
    stop: &AtomicBool,
    mut attempt: impl FnMut() -> Result<Option<sink::Delivered>, SinkError>,
) -> Result<Option<sink::Delivered>, AgentError> {
    let mut pause = RECOVERY_FIRST_PAUSE;
    loop {
        match attempt() {
            Ok(found) => return Ok(found),
            Err(error) => {
                tracing::warn!(%error, retry_in_s = pause.as_secs(),
                    "cannot read back what the previous run delivered; nothing is read from files until it is done");
            }
        }
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Err(AgentError::StoppedStarting);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        pause = (pause * 2).min(RECOVERY_MAX_PAUSE);
    }
}

fn enricher(config: &AgentConfig, pod_updates: Option<Receiver<Update>>) -> Result<Enricher, AgentError> {
    let k = &config.kubernetes;
    let watch = pod_updates.map(|updates| PodWatch {
        index: MetaIndex::new(Duration::from_millis(k.deleted_pod_grace_ms)),
        updates,
        wait: Duration::from_millis(k.wait_for_metadata_ms),
        fields: MetaFields { labels: k.labels, annotations: k.annotations, namespace_labels: k.namespace_labels },
    });
    Ok(Enricher::new(Filter::new(&config.filter)?, watch))
}

fn tailer_options(config: &AgentConfig, first_run: bool) -> TailerOptions {
    let t = &config.tail;
    TailerOptions {
        include: t.include.clone(),
        exclude: t.exclude.clone(),
        start_at_end: first_run && t.read_from == ReadFrom::End,
        read_buffer_bytes: t.read_buffer_bytes,
        max_read_per_file_bytes: t.max_read_per_file_bytes,
        max_line_bytes: t.max_line_bytes,
        fingerprint_bytes: t.fingerprint_bytes,
        release_after: RELEASE_AFTER,
        max_open_files: t.max_open_files,
        max_deleted_open_bytes: t.max_deleted_open_bytes,
    }
}

fn default_host() -> String {
    std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into())
    })
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
