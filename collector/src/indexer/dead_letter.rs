//! The dead-letter topic: records Elasticsearch rejected (mapping errors) or that are not JSON go here, unchanged,
//! with headers saying why and where they came from, so they can be fixed and replayed. A record is committed only
//! after the dead-letter topic acknowledged it; while it cannot, the indexer retries.

use super::backoff::Backoff;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;

pub const ERROR_HEADER: &str = "logpipe.error";
pub const SOURCE_HEADER: &str = "logpipe.source";

pub struct DeadLetters {
    pub producer: FutureProducer,
    pub topic: String,
    pub backoff: Backoff,
}

/// A record for the dead-letter topic.
pub struct Letter<'a> {
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub error: &'a str,
    /// `<topic>/<partition>/<offset>` of the original record.
    pub source: &'a str,
}

impl DeadLetters {
    pub async fn send(&self, letter: Letter<'_>) {
        let mut attempt = 0;
        loop {
            let headers = OwnedHeaders::new_with_capacity(2)
                .insert(Header { key: ERROR_HEADER, value: Some(letter.error) })
                .insert(Header { key: SOURCE_HEADER, value: Some(letter.source) });
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).payload(letter.payload).headers(headers);
            if let Some(key) = letter.key {
                record = record.key(key);
            }
            match self.producer.send(record, Duration::from_secs(30)).await {
                Ok(_) => return,
                Err((error, _)) => {
                    tracing::warn!(%error, topic = self.topic, "dead-letter topic unavailable; retrying");
                    tokio::time::sleep(self.backoff.delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }
}
