//! After a crash, records the previous run sent may be in Kafka although its checkpoint does not say so (they were
//! acknowledged after the last checkpoint was written, or were in flight). Sending them again would duplicate them,
//! so at start the agent reads each partition from where its checkpoint says such records may begin up to the
//! current end, and collects the identities (source and spans, see `crate::frame`) of this node's records.
//!
//! The scan is bounded by what was produced since the last checkpoint (the agent advances its scan offsets at
//! every checkpoint, also for partitions it does not write to). However long it takes, it is not fatal: a start
//! that gave up would crash-loop on the same scan. It logs its progress instead, and the agent reports its length.

use crate::checkpoint::Span;
use crate::frame::{parse_spans, END_HEADER, FORMAT_HEADER, FRAMED, OFFSET_HEADER, SOURCE_HEADER, SPANS_HEADER};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic {0} has no partitions (does it exist?)")]
    NoPartitions(String),
}

/// How often a long scan says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct Delivered {
    /// Source id -> start -> end of its records found in Kafka.
    pub by_source: HashMap<String, HashMap<u64, u64>>,
    /// Each partition's end when the scan started: nothing this run sends lands before it.
    pub ends: BTreeMap<i32, i64>,
    /// Records read, and how long the scan took.
    pub scanned: u64,
    pub took: Duration,
}

/// Scans `topic` from `scan_from` (per partition; a partition missing there is scanned from its start) to its
/// current end, collecting records whose source starts with `source_prefix`. With `scan_from` `None` (a first
/// start) nothing is read: there can be no records of ours. `timeout` bounds each request, not the scan.
pub fn find_delivered(
    connection: &ClientConfig,
    topic: &str,
    scan_from: Option<&BTreeMap<i32, i64>>,
    source_prefix: &str,
    timeout: Duration,
) -> Result<Delivered, RecoveryError> {
    let started = Instant::now();
    let consumer: BaseConsumer = crate::librdkafka::reader(connection, "logpipe-agent-recovery").create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    if partitions.is_empty() {
        return Err(RecoveryError::NoPartitions(topic.into()));
    }
    let mut delivered = Delivered::default();
    let mut assignment = TopicPartitionList::new();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut to_scan = 0;
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        delivered.ends.insert(p, high);
        let Some(scan_from) = scan_from else { continue };
        let start = scan_from.get(&p).copied().unwrap_or(low).max(low);
        if start < high {
            assignment.add_partition_offset(topic, p, Offset::Offset(start))?;
            remaining.insert(p, high);
            to_scan += high - start;
        }
    }
    if remaining.is_empty() {
        return Ok(delivered);
    }
    consumer.assign(&assignment)?;
    let mut next_report = Instant::now() + PROGRESS_EVERY;
    while !remaining.is_empty() {
        if Instant::now() >= next_report {
            tracing::warn!(
                scanned = delivered.scanned,
                of = to_scan,
                seconds = started.elapsed().as_secs(),
                "still reading back what the previous run delivered; nothing is read from files until it is done"
            );
            next_report += PROGRESS_EVERY;
        }
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg?;
        delivered.scanned += 1;
        if let Some((source, spans)) = identity(&msg).filter(|(s, _)| s.starts_with(source_prefix)) {
            delivered.by_source.entry(source.to_owned()).or_default().extend(spans);
        }
        if remaining.get(&msg.partition()).is_some_and(|&end| msg.offset() + 1 >= end) {
            remaining.remove(&msg.partition());
        }
    }
    delivered.took = started.elapsed();
    Ok(delivered)
}

/// The message's source and the spans of its records, in either format.
fn identity(msg: &impl Message) -> Option<(&str, Vec<Span>)> {
    let headers = msg.headers()?;
    fn text(v: Option<&[u8]>) -> Option<&str> {
        v.and_then(|v| std::str::from_utf8(v).ok())
    }
    let number = |v: Option<&[u8]>| text(v)?.parse().ok();
    let (mut source, mut offset, mut end, mut framed, mut spans) = (None, None, None, false, None);
    for h in headers.iter() {
        match h.key {
            SOURCE_HEADER => source = text(h.value),
            OFFSET_HEADER => offset = number(h.value),
            END_HEADER => end = number(h.value),
            FORMAT_HEADER => framed = text(h.value) == Some(FRAMED),
            SPANS_HEADER => spans = text(h.value),
            _ => {}
        }
    }
    let spans = if framed {
        parse_spans(spans?)?
    } else {
        let offset = offset?;
        vec![(offset, end.unwrap_or(offset))]
    };
    Some((source?, spans))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    fn message(headers: &[(&str, &str)]) -> OwnedMessage {
        let h =
            headers.iter().fold(OwnedHeaders::new(), |h, (key, value)| h.insert(Header { key, value: Some(*value) }));
        OwnedMessage::new(Some(b"{}".to_vec()), None, "t".into(), Timestamp::NotAvailable, 0, 0, Some(h))
    }

    #[test]
    fn both_formats_name_their_records() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<(&'a str, Vec<Span>)>);
        let cases: &[Case] = &[
            (
                "format 1",
                &[("logpipe.source", "n/1"), ("logpipe.offset", "10"), ("logpipe.end", "20")],
                Some(("n/1", vec![(10, 20)])),
            ),
            (
                "format 1 before logpipe.end",
                &[("logpipe.source", "n/1"), ("logpipe.offset", "10")],
                Some(("n/1", vec![(10, 10)])),
            ),
            (
                "format 2",
                &[("logpipe.source", "n/1"), ("logpipe.format", "2"), ("logpipe.spans", "0-5,9,12-14")],
                Some(("n/1", vec![(0, 5), (5, 9), (12, 14)])),
            ),
            (
                "format 2, spans malformed",
                &[("logpipe.source", "n/1"), ("logpipe.format", "2"), ("logpipe.spans", "x")],
                None,
            ),
            ("format 2 without spans", &[("logpipe.source", "n/1"), ("logpipe.format", "2")], None),
            ("no source", &[("logpipe.offset", "10")], None),
        ];
        for (what, headers, want) in cases {
            let msg = message(headers);
            assert_eq!(identity(&msg), want.clone(), "{what}");
        }
    }
}
