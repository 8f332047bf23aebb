//! The Kafka sink: acks=all, idempotent, compressed, keyed per container so each container's lines stay in order.
//! A record counts as delivered only when its delivery report says so; one that fails is sent again after a pause,
//! never dropped. The producer never expires a queued record (`message.timeout.ms=0`): while Kafka is away the
//! agent's in-flight bound stops reading, and the log files are the buffer.
//!
//! Consecutive records of one file go in one message (record format 2, `crate::frame`) of at most `frame_bytes`,
//! sent when the next record belongs elsewhere, when it is full, or when the agent polls; its delivery report
//! acknowledges each of its records.
//!
//! No single record can stop the agent: the largest message is read from the producer's effective configuration
//! and the topic's `max.message.bytes` (the agent cuts larger records into pieces), and a record the producer
//! refuses is kept and sent again, like one whose delivery failed. Only a fatal error of the producer itself stops
//! the agent.

use super::framing::Frame;
use super::recovery::{find_delivered, Delivered};
use super::{Ack, Outgoing, Sink, SinkError, Token};
use crate::config::KafkaSinkConfig;
use crate::frame::{END_HEADER, FORMAT_HEADER, FRAMED, OFFSET_HEADER, SOURCE_HEADER, SPANS_HEADER};
use crate::librdkafka::{self, PropertyError};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How long start-up waits for the topic's configuration.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request of the read-back may take; the read-back itself is not bounded.
const RECOVERY_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error(transparent)]
    Property(#[from] PropertyError),
    #[error("the producer's effective message.max.bytes is {0:?}, not a number")]
    Limit(String),
    #[error("cannot create the producer: {0}")]
    Create(rdkafka::error::KafkaError),
    #[error("the producer failed fatally ({0}); restarting resumes from the last checkpoint")]
    Fatal(String),
    #[error("message.max.bytes is {0}; logpipe needs at least {min} to cut records into pieces", min = crate::encode::MIN_MESSAGE_BYTES)]
    MessageLimit(usize),
}

/// A message whose delivery failed, kept to be sent again.
struct Retry {
    tokens: Vec<Token>,
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
    due: Instant,
}

enum Report {
    Delivered { tokens: Vec<Token>, position: (i32, i64) },
    Failed(Retry, rdkafka::error::KafkaError),
}

#[derive(Default)]
struct Reports(Mutex<Vec<Report>>);

impl ClientContext for Reports {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, "{reason}");
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<Vec<Token>>;

    fn delivery(&self, result: &DeliveryResult<'_>, tokens: Box<Vec<Token>>) {
        let report = match result {
            Ok(msg) => Report::Delivered { tokens: *tokens, position: (msg.partition(), msg.offset()) },
            Err((error, msg)) => Report::Failed(
                Retry {
                    tokens: *tokens,
                    key: msg.key().unwrap_or_default().to_vec(),
                    payload: msg.payload().unwrap_or_default().to_vec(),
                    headers: msg.headers().map(|h| h.detach()),
                    due: Instant::now() + RETRY_PAUSE,
                },
                error.clone(),
            ),
        };
        if let Ok(mut reports) = self.0.lock() {
            reports.push(report);
        }
    }
}

pub struct KafkaSink {
    producer: BaseProducer<Reports>,
    /// The producer's settings, to make it again when the topic's limit is learnt late (see `recover`).
    producer_config: ClientConfig,
    connection: ClientConfig,
    /// Whether `max_message` took the topic's own limit into account.
    topic_limit_read: bool,
    sent: bool,
    topic: String,
    retries: Vec<Retry>,
    reports: Vec<Report>,
    failures: u64,
    max_message: usize,
    /// `0`: one record per message, format 1.
    frame_bytes: usize,
    frame: Frame,
    ends: super::ends::PartitionEnds,
}

/// The producer's effective `message.max.bytes`, lowered to the topic's `max.message.bytes` when that is smaller
/// (a batch larger than the topic takes would be refused whole).
/// `None` when the topic's limit could not be read.
fn message_limit(producer: &mut ClientConfig, connection: &ClientConfig, topic: &str) -> Result<Limit, KafkaError> {
    let native = producer.create_native_config().map_err(KafkaError::Create)?;
    let effective = native.get("message.max.bytes").map_err(KafkaError::Create)?;
    let producer_limit: usize = effective.parse().map_err(|_| KafkaError::Limit(effective))?;
    let topic_limit = topic_limit(connection, topic);
    let limit = match topic_limit {
        Some(topic) if topic < producer_limit => {
            tracing::info!(
                topic,
                producer_limit,
                "the topic takes smaller messages than the producer; using its limit"
            );
            producer.set("message.max.bytes", topic.to_string());
            topic
        }
        _ => producer_limit,
    };
    if limit < crate::encode::MIN_MESSAGE_BYTES {
        return Err(KafkaError::MessageLimit(limit));
    }
    Ok(Limit { bytes: limit, topic_read: topic_limit.is_some() })
}

struct Limit {
    bytes: usize,
    topic_read: bool,
}

/// The topic's `max.message.bytes`, when the cluster says; a cluster that cannot is logged and the producer's limit
/// stands.
fn topic_limit(base: &ClientConfig, topic: &str) -> Option<usize> {
    let admin: AdminClient<DefaultClientContext> = match base.create() {
        Ok(admin) => admin,
        Err(error) => {
            tracing::warn!(%error, "cannot create an admin client to read the topic's max.message.bytes");
            return None;
        }
    };
    let options = AdminOptions::new().request_timeout(Some(DESCRIBE_TIMEOUT));
    let described = futures::executor::block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options));
    let value = match described.as_deref() {
        Ok([Ok(resource)]) => resource.get("max.message.bytes").and_then(|e| e.value.clone()),
        other => {
            tracing::warn!(?other, topic, "cannot read the topic's max.message.bytes; using the producer's limit");
            None
        }
    };
    value.and_then(|v| v.parse().ok())
}

impl KafkaSink {
    /// `ends_every`: how often the partition ends are read (see `Sink::partition_ends`).
    pub fn new(config: &KafkaSinkConfig, ends_every: Duration) -> Result<Self, KafkaError> {
        let connection = librdkafka::agent_connection(config)?;
        let mut producer_config = librdkafka::agent_producer(config)?;
        let limit = message_limit(&mut producer_config, &connection, &config.topic)?;
        tracing::info!(max_message = limit.bytes, "records larger than one message are cut into pieces");
        let producer = producer_config.create_with_context(Reports::default()).map_err(KafkaError::Create)?;
        let ends =
            super::ends::PartitionEnds::start(&connection, &config.topic, ends_every).map_err(KafkaError::Create)?;
        Ok(Self {
            producer,
            producer_config,
            connection,
            topic_limit_read: limit.topic_read,
            sent: false,
            topic: config.topic.clone(),
            retries: Vec::new(),
            reports: Vec::new(),
            failures: 0,
            max_message: limit.bytes,
            frame_bytes: config.frame_bytes as usize,
            frame: Frame::default(),
            ends,
        })
    }

    /// Kafka may have been away when the sink was made: with the read-back done it answers, so its topic's limit
    /// is read now, and the producer made again with it when lower (nothing was sent yet).
    fn learn_topic_limit(&mut self) -> Result<(), KafkaError> {
        if self.topic_limit_read || self.sent {
            return Ok(());
        }
        let limit = message_limit(&mut self.producer_config, &self.connection, &self.topic)?;
        self.topic_limit_read = limit.topic_read;
        if limit.bytes < self.max_message {
            self.producer = self.producer_config.create_with_context(Reports::default()).map_err(KafkaError::Create)?;
            self.max_message = limit.bytes;
        }
        Ok(())
    }

    /// Hands a message to librdkafka, polling for room while its queue is full. A message it refuses is kept and
    /// sent again after a pause: a refusal concerns that message, and a fatal error of the producer is found by
    /// `poll`.
    fn enqueue(&mut self, key: &[u8], payload: &[u8], headers: OwnedHeaders, tokens: Vec<Token>) {
        let file = tokens.first().map(|t| t.file);
        let mut record =
            BaseRecord::with_opaque_to(&self.topic, Box::new(tokens)).key(key).payload(payload).headers(headers);
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((error, back)) => {
                    self.failures += 1;
                    tracing::warn!(%error, file, bytes = payload.len(),
                        "the producer refused a message; sending it again later");
                    self.retries.push(Retry {
                        tokens: *back.delivery_opaque,
                        key: key.to_vec(),
                        payload: payload.to_vec(),
                        headers: back.headers,
                        due: Instant::now() + RETRY_PAUSE,
                    });
                    return;
                }
            }
        }
    }

    /// Sends the records gathered so far as one format 2 message.
    fn flush(&mut self) {
        if self.frame.is_empty() {
            return;
        }
        let mut frame = std::mem::take(&mut self.frame);
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header { key: SOURCE_HEADER, value: Some(frame.source.as_str()) })
            .insert(Header { key: FORMAT_HEADER, value: Some(FRAMED) })
            .insert(Header { key: SPANS_HEADER, value: Some(frame.spans.as_str()) });
        let tokens = std::mem::take(&mut frame.tokens);
        self.enqueue(&frame.key, &frame.payload, headers, tokens);
        // The buffers are kept for the next frame: librdkafka copied what it needs.
        frame.clear();
        self.frame = frame;
    }

    /// One record as one format 1 message.
    fn send_alone(&mut self, r: &Outgoing<'_>) {
        let (mut start, mut end) = (itoa::Buffer::new(), itoa::Buffer::new());
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header { key: SOURCE_HEADER, value: Some(r.source) })
            .insert(Header { key: OFFSET_HEADER, value: Some(start.format(r.span.0)) })
            .insert(Header { key: END_HEADER, value: Some(end.format(r.span.1)) });
        self.enqueue(r.key, r.payload, headers, vec![r.token]);
    }

    fn check_fatal(&self) -> Result<(), KafkaError> {
        match self.producer.client().fatal_error() {
            Some((code, reason)) => Err(KafkaError::Fatal(format!("{code:?}: {reason}"))),
            None => Ok(()),
        }
    }
}

impl Sink for KafkaSink {
    fn delivery_failures(&self) -> u64 {
        self.failures
    }

    fn max_message_bytes(&self) -> Option<usize> {
        Some(self.max_message)
    }

    fn partition_ends(&mut self) -> Option<BTreeMap<i32, i64>> {
        self.ends.take()
    }

    fn recover(
        &mut self,
        scan_from: Option<&BTreeMap<i32, i64>>,
        source_prefix: &str,
    ) -> Result<Option<Delivered>, SinkError> {
        let found = find_delivered(&self.connection, &self.topic, scan_from, source_prefix, RECOVERY_REQUEST_TIMEOUT)?;
        self.learn_topic_limit()?;
        Ok(Some(found))
    }

    fn send(&mut self, r: Outgoing<'_>) -> Result<(), SinkError> {
        self.sent = true;
        if self.frame_bytes == 0 {
            self.send_alone(&r);
            return Ok(());
        }
        if !self.frame.takes(&r, self.frame_bytes, self.max_message) {
            self.flush();
        }
        self.frame.push(&r);
        Ok(())
    }

    fn poll(&mut self, wait: Duration, acks: &mut Vec<Ack>) -> Result<(), SinkError> {
        self.flush();
        self.producer.poll(wait);
        self.check_fatal()?;
        if let Ok(mut reports) = self.producer.context().0.lock() {
            std::mem::swap(&mut *reports, &mut self.reports);
        }
        for report in self.reports.drain(..) {
            match report {
                Report::Delivered { tokens, position } => {
                    acks.extend(tokens.into_iter().map(|token| Ack { token, position: Some(position) }))
                }
                Report::Failed(retry, error) => {
                    self.failures += 1;
                    let file = retry.tokens.first().map(|t| t.file);
                    if is_size_refusal(&error) {
                        tracing::error!(%error, file, bytes = retry.payload.len(),
                            "the broker refused a record as too large although it is within the topic's limit read \
                             at start (was the limit lowered?); sending it again, restart the agent to re-read it");
                    } else {
                        tracing::warn!(%error, file, "kafka delivery failed; sending the message again");
                    }
                    self.retries.push(retry);
                }
            }
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retries).into_iter().partition(|r| r.due <= now);
        self.retries = later;
        for r in due {
            let headers = r.headers.unwrap_or_else(|| OwnedHeaders::new_with_capacity(0));
            self.enqueue(&r.key, &r.payload, headers, r.tokens);
        }
        Ok(())
    }
}

fn is_size_refusal(error: &rdkafka::error::KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge)
    )
}
