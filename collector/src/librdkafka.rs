//! librdkafka client settings, in one place for every client the data plane makes: the agent's producer, its
//! read-back and partition-end readers, the indexer's consumer and its dead-letter producer. Each starts from the
//! same connection (bootstrap servers and the user's properties, `${file:}` and `${env:}` values resolved) and adds
//! what its role needs; what a role needs for correctness is set after the user's properties, so they cannot undo it.

use crate::config::{resolve_secret, KafkaSinkConfig, KafkaSourceConfig};
use rdkafka::config::ClientConfig;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
#[error("kafka property {key}: {reason}")]
pub struct PropertyError {
    pub key: String,
    pub reason: String,
}

/// Bootstrap servers and `properties`, resolved.
pub fn connection(
    bootstrap_servers: &str,
    properties: &BTreeMap<String, String>,
) -> Result<ClientConfig, PropertyError> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", bootstrap_servers);
    for (key, value) in properties {
        let value = resolve_secret(value).map_err(|reason| PropertyError { key: key.clone(), reason })?;
        cc.set(key, value);
    }
    Ok(cc)
}

/// The agent's connection, for its producer and its readers.
pub fn agent_connection(config: &KafkaSinkConfig) -> Result<ClientConfig, PropertyError> {
    connection(&config.bootstrap_servers, &config.properties)
}

/// The agent's producer: every record acknowledged by all in-sync replicas, written once (idempotence), and never
/// expired while Kafka is away (the log files are the buffer).
pub fn agent_producer(config: &KafkaSinkConfig) -> Result<ClientConfig, PropertyError> {
    let mut cc = agent_connection(config)?;
    cc.set("compression.type", config.compression.as_librdkafka())
        .set("linger.ms", config.linger_ms.to_string())
        .set("batch.size", config.batch_bytes.to_string())
        .set("message.timeout.ms", "0");
    Ok(reliable(cc))
}

/// A consumer that only reads where it is told (the read-back, the partition ends): never commits.
pub fn reader(connection: &ClientConfig, group: &str) -> ClientConfig {
    let mut cc = connection.clone();
    cc.set("group.id", group).set("enable.auto.commit", "false").set("enable.auto.offset.store", "false");
    cc
}

/// The indexer's group consumer. It commits itself, only below what Elasticsearch accepted.
pub fn indexer_consumer(k: &KafkaSourceConfig) -> Result<ClientConfig, PropertyError> {
    let mut cc = ClientConfig::new();
    // A crashed indexer's partitions wait for its session to time out; librdkafka's 45 s default is long for a log
    // pipeline. librdkafka prefetches up to 64 MiB by default; the bulk pipeline needs far less. Properties in the
    // config override these.
    cc.set("session.timeout.ms", "10000").set("heartbeat.interval.ms", "2000");
    cc.set("queued.max.messages.kbytes", "16384").set("fetch.max.bytes", "16777216");
    for (key, value) in connection(&k.bootstrap_servers, &k.properties)?.config_map() {
        cc.set(key, value);
    }
    cc.set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    Ok(cc)
}

/// The indexer's dead-letter producer: the consumer's connection settings (TLS, SASL), without its own.
pub fn dead_letter_producer(k: &KafkaSourceConfig) -> Result<ClientConfig, PropertyError> {
    let properties: BTreeMap<String, String> = k
        .properties
        .iter()
        .filter(|(key, _)| !is_consumer_property(key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut cc = connection(&k.bootstrap_servers, &properties)?;
    cc.set("compression.type", "lz4");
    Ok(reliable(cc))
}

fn reliable(mut cc: ClientConfig) -> ClientConfig {
    cc.set("acks", "all").set("enable.idempotence", "true");
    cc
}

/// Properties that concern a consumer only; a producer given them warns about each.
fn is_consumer_property(key: &str) -> bool {
    key.starts_with("group.")
        || key.starts_with("auto.")
        || key.starts_with("fetch.")
        || [
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "max.poll.interval.ms",
            "partition.assignment.strategy",
            "isolation.level",
        ]
        .contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(properties: &[(&str, &str)]) -> KafkaSourceConfig {
        let mut k: KafkaSourceConfig =
            serde_yaml::from_str("bootstrap_servers: b:9092\ntopic: t\ngroup_id: g\n").unwrap();
        k.properties = properties.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        k
    }

    #[test]
    fn roles_keep_what_correctness_needs() {
        let user = [
            ("acks", "1"),
            ("enable.auto.commit", "true"),
            ("session.timeout.ms", "30000"),
            ("security.protocol", "SSL"),
            ("group.instance.id", "x"),
        ];
        let consumer = indexer_consumer(&source(&user)).unwrap();
        let cases = [
            (consumer.get("enable.auto.commit"), Some("false")),
            (consumer.get("group.id"), Some("g")),
            (consumer.get("session.timeout.ms"), Some("30000")),
            (consumer.get("security.protocol"), Some("SSL")),
            (consumer.get("fetch.max.bytes"), Some("16777216")),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        let producer = dead_letter_producer(&source(&user)).unwrap();
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("security.protocol"), Some("SSL"));
        assert_eq!(producer.get("session.timeout.ms"), None);
        assert_eq!(producer.get("group.instance.id"), None);
        let reader = reader(&connection("b:9092", &BTreeMap::new()).unwrap(), "r");
        assert_eq!((reader.get("group.id"), reader.get("enable.auto.commit")), (Some("r"), Some("false")));
    }

    #[test]
    fn secrets_are_resolved_and_a_missing_one_names_its_property() {
        std::env::set_var("LOGPIPE_TEST_SASL_PASSWORD", "s3cret");
        let props = BTreeMap::from([("sasl.password".to_owned(), "${env:LOGPIPE_TEST_SASL_PASSWORD}".to_owned())]);
        assert_eq!(connection("b:9092", &props).unwrap().get("sasl.password"), Some("s3cret"));
        let missing = BTreeMap::from([("sasl.password".to_owned(), "${env:LOGPIPE_TEST_NOT_SET}".to_owned())]);
        assert_eq!(connection("b:9092", &missing).unwrap_err().key, "sasl.password");
    }
}
