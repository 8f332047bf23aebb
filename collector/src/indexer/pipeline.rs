//! The indexer's loop: consume -> prepare (parse, processors, index name) -> batch -> bulk (bounded concurrency) ->
//! mark done -> commit.

use super::backoff::Backoff;
use super::bulk::{BulkWriter, Doc, Resolution};
use super::dead_letter::{DeadLetters, Letter};
use super::offsets::Offsets;
use super::processors::{self, Outcome, ProcessorConfig};
use super::route::{Destination, Names};
use super::{elastic, IndexName, IndexerError, IndexerMetrics};
use crate::config::{BulkConfig, IndexerConfig};
use crate::frame;
use crate::librdkafka;
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long shutdown waits for bulk requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stall (batch full, no request slot free) may last before the partitions are paused, at most; never
/// more than half of `max.poll.interval.ms`. Pausing makes librdkafka drop what it fetched ahead for them and fetch
/// it again on resume, so short stalls only stop taking records; long ones pause, so that the consumer is polled
/// again and rebalances are not held up.
const PAUSE_AFTER: Duration = Duration::from_secs(5);

/// librdkafka's default `max.poll.interval.ms`.
const DEFAULT_MAX_POLL_INTERVAL_MS: u64 = 300_000;

/// Commits what is done of partitions being revoked, so their next owner starts there.
struct Context {
    offsets: Arc<Mutex<Offsets>>,
    topic: String,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else { return };
        let ids: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        let positions = self.offsets.lock().map(|mut o| o.release(&ids)).unwrap_or_default();
        if let Some(tpl) = positions_list(&self.topic, &positions) {
            if let Err(error) = consumer.commit(&tpl, CommitMode::Sync) {
                tracing::warn!(%error, "commit before rebalance failed; the next owner reads those records again");
            }
        }
        tracing::info!(partitions = ?ids, "partitions revoked");
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(error) = result {
            tracing::warn!(%error, "offset commit failed; those records will be read again (and found indexed)");
        }
    }
}

/// Installs the template, waiting out an Elasticsearch that is not reachable yet; a rejection is an error.
async fn install_template(
    client: &elasticsearch::Elasticsearch,
    config: &IndexerConfig,
    index: &IndexName,
) -> Result<(), IndexerError> {
    let b = &config.bulk;
    let backoff = Backoff::new(Duration::from_millis(b.initial_backoff_ms), Duration::from_millis(b.max_backoff_ms));
    let mut attempt = 0;
    loop {
        match elastic::install(client, &config.index, index).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "Elasticsearch not ready; retrying the index template");
                tokio::time::sleep(backoff.delay(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn positions_list(topic: &str, positions: &BTreeMap<i32, i64>) -> Option<TopicPartitionList> {
    if positions.is_empty() {
        return None;
    }
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in positions {
        tpl.add_partition_offset(topic, p, Offset::Offset(o)).ok()?;
    }
    Some(tpl)
}

/// What a document of a Kafka record becomes.
enum Prepared {
    Doc(Doc),
    Letter { partition: i32, offset: i64, item: Option<u32>, key: Option<Bytes>, payload: Bytes, error: String },
    Dropped,
}

/// The Kafka record a document came from.
struct Record {
    partition: i32,
    offset: i64,
    key: Option<Bytes>,
    timestamp: i64,
}

/// Whether the record is of format 2: several documents, one per line.
fn is_framed(message: &BorrowedMessage<'_>) -> bool {
    message.headers().is_some_and(|headers| {
        headers.iter().any(|h| h.key == frame::FORMAT_HEADER && h.value == Some(frame::FRAMED.as_bytes()))
    })
}

/// Documents and dead letters collected for one bulk request.
#[derive(Default)]
struct Batch {
    docs: Vec<Doc>,
    letters: Vec<Prepared>,
    bytes: usize,
    since: Option<Instant>,
    /// The index names its documents share.
    names: Names,
}

impl Batch {
    /// Dead letters count like documents: a topic full of records that are not JSON must not grow a batch (and
    /// the indexer's memory) past its bounds.
    fn is_full(&self, bulk: &BulkConfig) -> bool {
        self.docs.len() + self.letters.len() >= bulk.max_documents || self.bytes >= bulk.max_bytes
    }
}

/// What the bulk tasks share.
struct Shared {
    writer: BulkWriter,
    dead_letters: DeadLetters,
    metrics: Arc<IndexerMetrics>,
    topic: String,
}

pub struct Indexer {
    config: IndexerConfig,
    consumer: StreamConsumer<Context>,
    offsets: Arc<Mutex<Offsets>>,
    shared: Arc<Shared>,
    destination: Destination,
    metrics: Arc<IndexerMetrics>,
    pause_after: Duration,
}

impl Indexer {
    /// Connects, installs the index template, and joins the consumer group.
    pub async fn start(config: IndexerConfig, metrics: Arc<IndexerMetrics>) -> Result<Self, IndexerError> {
        let index = IndexName::parse(&config.index.name)?;
        let client = elastic::client(&config.elasticsearch)?;
        if config.index.install_template {
            install_template(&client, &config, &index).await?;
        }
        let k = &config.kafka;
        let offsets = Arc::new(Mutex::new(Offsets::default()));
        let context = Context { offsets: Arc::clone(&offsets), topic: k.topic.clone() };
        let consumer_config = librdkafka::indexer_consumer(k)?;
        let consumer: StreamConsumer<Context> = consumer_config.create_with_context(context)?;
        consumer.subscribe(&[&k.topic])?;
        let max_poll_interval = consumer_config.get("max.poll.interval.ms").and_then(|v| v.parse().ok());
        let pause_after =
            PAUSE_AFTER.min(Duration::from_millis(max_poll_interval.unwrap_or(DEFAULT_MAX_POLL_INTERVAL_MS) / 2));
        let producer: FutureProducer = librdkafka::dead_letter_producer(k)?.create()?;
        let b = &config.bulk;
        let backoff =
            || Backoff::new(Duration::from_millis(b.initial_backoff_ms), Duration::from_millis(b.max_backoff_ms));
        let latency = Arc::clone(&metrics);
        let shared = Arc::new(Shared {
            writer: BulkWriter {
                client,
                topic: k.topic.clone(),
                backoff: backoff(),
                on_request: Box::new(move |s| latency.bulk_seconds.observe(s)),
            },
            dead_letters: DeadLetters { producer, topic: config.dead_letter_topic.clone(), backoff: backoff() },
            metrics: Arc::clone(&metrics),
            topic: k.topic.clone(),
        });
        metrics.set_ready(true);
        let destination = Destination::new(index, config.index.data_stream.clone());
        Ok(Self { config, consumer, offsets, shared, destination, metrics, pause_after })
    }

    /// Runs until `stop` completes, then finishes the bulk requests in flight and commits.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(), IndexerError> {
        let mut stop = std::pin::pin!(stop);
        let mut batch = Batch::default();
        let mut in_flight = FuturesUnordered::new();
        let b = self.config.bulk.clone();
        let max_wait = Duration::from_millis(b.max_wait_ms);
        let mut tick = tokio::time::interval(max_wait.min(Duration::from_millis(250)).max(Duration::from_millis(10)));
        let mut paused = false;
        let mut stalled_since: Option<Instant> = None;
        // One stream for the whole run: each `recv` would take and give back a waker slot under a lock.
        let mut messages = self.consumer.stream();
        loop {
            let stalled = in_flight.len() >= b.concurrency && batch.is_full(&b);
            let since = stalled.then(|| *stalled_since.get_or_insert_with(Instant::now));
            stalled_since = since;
            // A consumer that stops polling for long is dropped from its group, and holds up rebalances meanwhile.
            let pause = since.is_some_and(|t| t.elapsed() >= self.pause_after);
            if pause != paused {
                self.set_paused(pause);
                paused = pause;
            }
            tokio::select! {
                biased;
                () = &mut stop => break,
                Some(done) = in_flight.next() => self.finished(done),
                Some(message) = messages.next(), if !stalled || paused => {
                    let mut next = Some(message);
                    // Records already fetched are taken without a round of the select each: that round cost as
                    // much as routing the record.
                    while let Some(message) = next.take() {
                        match message {
                            Ok(message) => self.take(&message, &mut batch),
                            Err(error) => self.consumer_error(error).await?,
                        }
                        if !batch.is_full(&b) {
                            next = messages.next().now_or_never().flatten();
                        }
                    }
                    if paused {
                        // Newly assigned partitions are not paused.
                        self.set_paused(true);
                    }
                }
                _ = tick.tick() => self.metrics.beat(),
            }
            let due = batch.since.is_some_and(|t| t.elapsed() >= max_wait);
            if in_flight.len() < b.concurrency && (due || batch.is_full(&b)) {
                in_flight.push(tokio::spawn(write(Arc::clone(&self.shared), std::mem::take(&mut batch))));
            }
        }
        self.metrics.set_ready(false);
        tracing::info!("stopping: finishing bulk requests in flight and committing");
        in_flight.push(tokio::spawn(write(Arc::clone(&self.shared), std::mem::take(&mut batch))));
        let deadline = tokio::time::sleep(DRAIN_TIMEOUT);
        let mut deadline = std::pin::pin!(deadline);
        while !in_flight.is_empty() {
            tokio::select! {
                Some(done) = in_flight.next() => self.finished(done),
                () = &mut deadline => {
                    tracing::warn!(requests = in_flight.len(), "bulk requests still in flight at shutdown; their records will be read again");
                    break;
                }
            }
        }
        self.commit(CommitMode::Sync);
        Ok(())
    }

    /// librdkafka reports broker and fetch problems as consumer errors and recovers from them itself; only a fatal
    /// client error ends the indexer.
    async fn consumer_error(&self, error: rdkafka::error::KafkaError) -> Result<(), IndexerError> {
        if let Some((code, reason)) = self.consumer.client().fatal_error() {
            tracing::error!(?code, reason, "fatal Kafka client error");
            return Err(error.into());
        }
        tracing::warn!(%error, "Kafka consumer error; librdkafka retries");
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    }

    fn set_paused(&self, pause: bool) {
        let Ok(assignment) = self.consumer.assignment() else { return };
        let result = if pause { self.consumer.pause(&assignment) } else { self.consumer.resume(&assignment) };
        if let Err(error) = result {
            tracing::warn!(%error, pause, "pausing or resuming partitions failed");
        }
    }

    fn take(&self, message: &BorrowedMessage<'_>, batch: &mut Batch) {
        self.metrics.consumed.inc();
        let payload = message.payload().unwrap_or_default();
        let record = Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(Bytes::copy_from_slice),
            timestamp: message.timestamp().to_millis().unwrap_or(0),
        };
        let whole = Bytes::copy_from_slice(payload);
        if !is_framed(message) {
            self.consumed(&record, 1);
            return self.add(&record, None, whole, batch);
        }
        self.consumed(&record, frame::documents(payload).count() as u32);
        for (item, range) in frame::documents(payload).enumerate() {
            self.add(&record, Some(item as u32), whole.slice(range), batch);
        }
    }

    fn consumed(&self, record: &Record, documents: u32) {
        if let Ok(mut o) = self.offsets.lock() {
            o.consumed(record.partition, record.offset, documents);
        }
    }

    fn add(&self, record: &Record, item: Option<u32>, document: Bytes, batch: &mut Batch) {
        match prepare(record, item, document, &self.config.processors, &self.destination, &mut batch.names) {
            Prepared::Doc(doc) => {
                batch.bytes += doc.bulk_len(&self.config.kafka.topic);
                batch.docs.push(doc);
            }
            Prepared::Dropped => {
                self.metrics.dropped.inc();
                if let Ok(mut o) = self.offsets.lock() {
                    o.done(record.partition, record.offset);
                }
                return;
            }
            letter => {
                if let Prepared::Letter { payload, error, .. } = &letter {
                    batch.bytes += payload.len() + error.len();
                }
                batch.letters.push(letter);
            }
        }
        batch.since.get_or_insert_with(Instant::now);
    }

    fn finished(&self, done: Result<Vec<(i32, i64)>, tokio::task::JoinError>) {
        let done = match done {
            Ok(done) => done,
            Err(error) => return tracing::error!(%error, "a bulk task failed; its records will be read again"),
        };
        if let Ok(mut o) = self.offsets.lock() {
            for (p, off) in done {
                o.done(p, off);
            }
        }
        self.commit(CommitMode::Async);
    }

    fn commit(&self, mode: CommitMode) {
        let Ok(mut offsets) = self.offsets.lock() else { return };
        for (p, pending) in offsets.pending_by_partition() {
            self.metrics.set_uncommitted(p, pending as i64);
        }
        let positions = offsets.advanced_positions();
        drop(offsets);
        if let Some(tpl) = positions_list(&self.config.kafka.topic, &positions) {
            if let Err(error) = self.consumer.commit(&tpl, mode) {
                tracing::warn!(%error, "offset commit failed; those records will be read again (and found indexed)");
            }
        }
    }
}

fn prepare(
    record: &Record,
    item: Option<u32>,
    original: Bytes,
    processors: &[ProcessorConfig],
    destination: &Destination,
    names: &mut Names,
) -> Prepared {
    let Record { partition, offset, timestamp, .. } = *record;
    let key = record.key.clone();
    let payload = &original[..];
    let letter = |error: String| Prepared::Letter {
        partition,
        offset,
        item,
        key: key.clone(),
        payload: original.clone(),
        error,
    };
    // Without processors the document is shipped as it came, and only the fields the index name needs are read.
    // JSON spread over lines is encoded again: a bulk body carries each document on one line.
    let one_line = memchr::memchr(b'\n', payload).is_none();
    let raw = if processors.is_empty() && one_line { destination.of_raw(payload, timestamp, names) } else { None };
    let (source, index_name) = match raw {
        Some(index) => (original.clone(), index),
        None => {
            let mut doc: serde_json::Value = match serde_json::from_slice(payload) {
                Ok(v @ serde_json::Value::Object(_)) => v,
                Ok(_) => return letter("not a JSON object".into()),
                Err(e) => return letter(format!("not a JSON document: {e}")),
            };
            if processors::apply(processors, &mut doc) == Outcome::Drop {
                return Prepared::Dropped;
            }
            let source = match serde_json::to_vec(&doc) {
                Ok(v) => Bytes::from(v),
                Err(e) => return letter(format!("re-encoding after processors: {e}")),
            };
            (source, destination.of_parsed(&doc, timestamp, names))
        }
    };
    Prepared::Doc(Doc { partition, offset, item, index: index_name, source, key, original })
}

/// One bulk request's worth: write the documents, dead-letter what Elasticsearch rejected and what was not JSON;
/// returns every (partition, offset) handled.
async fn write(shared: Arc<Shared>, batch: Batch) -> Vec<(i32, i64)> {
    let m = &shared.metrics;
    let mut handled = Vec::with_capacity(batch.docs.len() + batch.letters.len());
    let (results, stats) = shared.writer.write(batch.docs).await;
    m.bulk_requests.inc_by(stats.requests);
    m.retried.inc_by(stats.retried_documents);
    let mut letters = batch.letters;
    for (doc, resolution) in results {
        match resolution {
            Resolution::Indexed => m.indexed.inc(),
            Resolution::AlreadyIndexed => m.already_indexed.inc(),
            Resolution::Rejected { status, reason } => {
                let error = format!("Elasticsearch rejected the document (HTTP {status}): {reason}");
                letters.push(Prepared::Letter {
                    partition: doc.partition,
                    offset: doc.offset,
                    item: doc.item,
                    key: doc.key,
                    payload: doc.original,
                    error,
                });
                continue;
            }
        };
        handled.push((doc.partition, doc.offset));
    }
    for letter in letters {
        let Prepared::Letter { partition, offset, item, key, payload, error } = letter else { continue };
        let source = match item {
            None => format!("{}/{partition}/{offset}", shared.topic),
            Some(item) => format!("{}/{partition}/{offset}/{item}", shared.topic),
        };
        tracing::warn!(source, error, "record sent to the dead-letter topic");
        let letter = Letter { key: key.as_deref(), payload: &payload, error: &error, source: &source };
        shared.dead_letters.send(letter).await;
        m.dead_lettered.inc();
        handled.push((partition, offset));
    }
    handled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_fill_a_batch_like_documents() {
        let bulk = BulkConfig { max_documents: 3, max_bytes: 1000, ..BulkConfig::default() };
        let letter = || Prepared::Letter {
            partition: 0,
            offset: 0,
            item: None,
            key: None,
            payload: Bytes::from_static(b"{"),
            error: "not JSON".into(),
        };
        let mut by_count = Batch::default();
        by_count.letters.extend([letter(), letter(), letter()]);
        assert!(by_count.is_full(&bulk), "three letters reach max_documents");
        by_count.letters.pop();
        assert!(!by_count.is_full(&bulk));
    }
}
