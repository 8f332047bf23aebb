//! The Kafka sink: acks=all, idempotent, compressed, keyed per container so each container's lines stay in order.
//! A record counts as delivered only when its delivery report says so; one that fails is sent again after a pause,
//! never dropped. The producer never expires a queued record (`message.timeout.ms=0`): while Kafka is away the
//! agent's in-flight bound stops reading, and the log files are the buffer.

use super::{Ack, Outgoing, Sink, SinkError, Token};
use crate::config::KafkaSinkConfig;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SOURCE_HEADER: &str = "logpipe.source";
pub const OFFSET_HEADER: &str = "logpipe.offset";
/// Where the record ends in its file (see `checkpoint::Span`).
pub const END_HEADER: &str = "logpipe.end";
const RETRY_PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("property {key}: {reason}")]
    Property { key: String, reason: String },
    #[error("cannot create the producer: {0}")]
    Create(rdkafka::error::KafkaError),
    #[error("the producer failed fatally ({0}); restarting resumes from the last checkpoint")]
    Fatal(String),
    #[error("send: {0}")]
    Send(rdkafka::error::KafkaError),
}

/// A record whose delivery failed, kept to be sent again.
struct Retry {
    token: Token,
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
    due: Instant,
}

enum Report {
    Delivered(Ack),
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
    type DeliveryOpaque = Box<Token>;

    fn delivery(&self, result: &DeliveryResult<'_>, token: Box<Token>) {
        let report = match result {
            Ok(msg) => Report::Delivered(Ack { token: *token, position: Some((msg.partition(), msg.offset())) }),
            Err((error, msg)) => Report::Failed(
                Retry {
                    token: *token,
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
    topic: String,
    retries: Vec<Retry>,
    reports: Vec<Report>,
    failures: u64,
}

/// librdkafka settings for the agent's producer, from the sink config.
pub fn producer_config(config: &KafkaSinkConfig) -> Result<ClientConfig, KafkaError> {
    let mut cc = client_config(config)?;
    cc.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "0")
        .set("compression.type", config.compression.as_librdkafka())
        .set("linger.ms", config.linger_ms.to_string())
        .set("batch.size", config.batch_bytes.to_string());
    Ok(cc)
}

/// Bootstrap servers plus the user's properties, with `${file:..}` and `${env:..}` values resolved.
pub fn client_config(config: &KafkaSinkConfig) -> Result<ClientConfig, KafkaError> {
    base_config(&config.bootstrap_servers, &config.properties)
}

/// Bootstrap servers and extra properties, with `${file:}` / `${env:}` values resolved.
pub fn base_config(
    bootstrap_servers: &str,
    properties: &std::collections::BTreeMap<String, String>,
) -> Result<ClientConfig, KafkaError> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", bootstrap_servers);
    for (key, value) in properties {
        let value =
            crate::config::resolve_secret(value).map_err(|reason| KafkaError::Property { key: key.clone(), reason })?;
        cc.set(key, value);
    }
    Ok(cc)
}

impl KafkaSink {
    pub fn new(config: &KafkaSinkConfig) -> Result<Self, KafkaError> {
        let producer = producer_config(config)?.create_with_context(Reports::default()).map_err(KafkaError::Create)?;
        Ok(Self { producer, topic: config.topic.clone(), retries: Vec::new(), reports: Vec::new(), failures: 0 })
    }

    /// Hands a record to librdkafka, polling for room while its queue is full.
    fn enqueue(
        &mut self,
        key: &[u8],
        payload: &[u8],
        headers: Option<OwnedHeaders>,
        token: Token,
    ) -> Result<(), KafkaError> {
        let mut record = BaseRecord::with_opaque_to(&self.topic, Box::new(token)).key(key).payload(payload);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => return Err(KafkaError::Send(e)),
            }
        }
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

    fn send(&mut self, r: Outgoing<'_>) -> Result<(), SinkError> {
        let (mut start, mut end) = (itoa::Buffer::new(), itoa::Buffer::new());
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header { key: SOURCE_HEADER, value: Some(r.source) })
            .insert(Header { key: OFFSET_HEADER, value: Some(start.format(r.span.0)) })
            .insert(Header { key: END_HEADER, value: Some(end.format(r.span.1)) });
        Ok(self.enqueue(r.key, r.payload, Some(headers), r.token)?)
    }

    fn poll(&mut self, wait: Duration, acks: &mut Vec<Ack>) -> Result<(), SinkError> {
        self.producer.poll(wait);
        self.check_fatal()?;
        if let Ok(mut reports) = self.producer.context().0.lock() {
            std::mem::swap(&mut *reports, &mut self.reports);
        }
        for report in self.reports.drain(..) {
            match report {
                Report::Delivered(ack) => acks.push(ack),
                Report::Failed(retry, error) => {
                    self.failures += 1;
                    tracing::warn!(%error, file = retry.token.file, "kafka delivery failed; sending the record again");
                    self.retries.push(retry);
                }
            }
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retries).into_iter().partition(|r| r.due <= now);
        self.retries = later;
        for r in due {
            self.enqueue(&r.key, &r.payload, r.headers, r.token)?;
        }
        Ok(())
    }
}
