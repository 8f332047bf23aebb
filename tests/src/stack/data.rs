//! What arrived where: the records in the pipeline's topic and the documents in Elasticsearch.

use super::StackError;
use elasticsearch::http::transport::Transport;
use elasticsearch::{CountParts, Elasticsearch, SearchParts};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// How often each log line (the record's `message`) is in `topic`, read from the beginning to the current end.
pub async fn topic_lines(bootstrap: &str, topic: &str) -> Result<HashMap<String, usize>, StackError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "logpipe-stack-reader")
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), KAFKA_TIMEOUT)?;
    let mut ends = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), KAFKA_TIMEOUT)?;
        if high > low {
            ends.insert(partition.id(), high);
            assignment.add_partition_offset(topic, partition.id(), Offset::Offset(low))?;
        }
    }
    let mut lines = HashMap::new();
    if ends.is_empty() {
        return Ok(lines);
    }
    consumer.assign(&assignment)?;
    while !ends.is_empty() {
        let message = tokio::time::timeout(KAFKA_TIMEOUT, consumer.recv())
            .await
            .map_err(|_| StackError::Timeout(format!("reading {topic} back")))??;
        for document in documents(&message) {
            let document: Value = serde_json::from_slice(document)
                .map_err(|e| StackError::Data(format!("a record of {topic} is not JSON: {e}")))?;
            let line = document["message"].as_str().unwrap_or_default().to_owned();
            *lines.entry(line).or_insert(0) += 1;
        }
        if ends.get(&message.partition()).is_some_and(|&end| message.offset() + 1 >= end) {
            ends.remove(&message.partition());
        }
    }
    Ok(lines)
}

/// A message's documents: one per line in record format 2 (`logpipe.format: 2`, docs/record-format.md), else the
/// payload.
fn documents(message: &impl Message) -> Vec<&[u8]> {
    let payload = message.payload().unwrap_or_default();
    let framed = message
        .headers()
        .is_some_and(|h| h.iter().any(|h| h.key == "logpipe.format" && h.value == Some(b"2".as_slice())));
    if framed {
        payload.split(|&b| b == b'\n').collect()
    } else {
        vec![payload]
    }
}

pub fn elasticsearch(url: &str) -> Result<Elasticsearch, StackError> {
    Ok(Elasticsearch::new(Transport::single_node(url)?))
}

/// Documents in the indices matching `pattern` (none yet: 0).
pub async fn count(es: &Elasticsearch, pattern: &str) -> Result<u64, StackError> {
    let response = es.count(CountParts::Index(&[pattern])).send().await?;
    if response.status_code().as_u16() == 404 {
        return Ok(0);
    }
    let body: Value = response.json().await?;
    body["count"].as_u64().ok_or_else(|| StackError::Data(format!("count of {pattern}: {body}")))
}

/// The documents matching every `field: value` of `terms`, and how many there are in all.
pub async fn search(
    es: &Elasticsearch,
    pattern: &str,
    terms: &[(&str, Value)],
    size: i64,
) -> Result<(u64, Vec<Value>), StackError> {
    let filters: Vec<Value> = terms.iter().map(|(field, value)| json!({"term": {*field: value}})).collect();
    let body = json!({"query": {"bool": {"filter": filters}}, "track_total_hits": true});
    let response = es.search(SearchParts::Index(&[pattern])).size(size).body(body).send().await?;
    let body: Value = response.json().await?;
    let total = body["hits"]["total"]["value"].as_u64().unwrap_or_default();
    let hits = body["hits"]["hits"].as_array().map(|h| h.iter().map(|d| d["_source"].clone()).collect());
    Ok((total, hits.unwrap_or_default()))
}
