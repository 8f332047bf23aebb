//! What the indexer's integration tests share: producing documents, the indexer process, and counting what
//! Elasticsearch holds.

use elasticsearch::http::transport::Transport;
use elasticsearch::{CountParts, Elasticsearch};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A test's names: topic, dead-letter topic, group and index prefix, all unique.
#[derive(Clone)]
pub struct Names {
    pub topic: String,
    pub dead_letters: String,
    pub group: String,
    pub prefix: String,
}

impl Names {
    pub fn new(what: &str) -> Self {
        let base = logpipe_tests::unique_name(what).to_lowercase();
        Self { topic: base.clone(), dead_letters: format!("{base}-dlq"), group: format!("{base}-group"), prefix: base }
    }

    /// The pattern of every index this test's documents go to.
    pub fn indices(&self) -> String {
        format!("{}-*", self.prefix)
    }
}

/// The servers of the test environment and a test's names, with its topic and dead-letter topic created.
pub struct Setup {
    pub bootstrap: String,
    pub es_url: String,
    pub names: Names,
}

impl Setup {
    pub fn new(what: &str, partitions: i32) -> Self {
        let (bootstrap, es_url) = (logpipe_tests::kafka_bootstrap(), logpipe_tests::elasticsearch_url());
        let names = Names::new(what);
        super::create_topic(&bootstrap, &names.topic, partitions);
        super::create_topic(&bootstrap, &names.dead_letters, 1);
        Self { bootstrap, es_url, names }
    }
}

/// The document of record `n`: one of three namespaces, a fixed day.
pub fn document(n: u64) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-22T08:00:{:02}.000000000Z","message":"record {n}","kubernetes":{{"namespace":"ns{}"}},"log":{{"offset":{n}}}}}"#,
        n % 60,
        n % 3
    )
}

pub fn producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

/// Sends `payloads` to `topic` and waits until all are acknowledged.
pub fn produce(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    payloads: impl IntoIterator<Item = String>,
) {
    send_all(producer, topic, payloads.into_iter().map(|p| (p, None)));
}

/// Sends each group of `documents` as one record of format 2 (`logpipe.format: 2`, one document per line, as the
/// agent does; docs/record-format.md) and waits until all are acknowledged.
pub fn produce_framed(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    documents: impl IntoIterator<Item = Vec<String>>,
) {
    let framed = || OwnedHeaders::new().insert(Header { key: "logpipe.format", value: Some("2") });
    send_all(producer, topic, documents.into_iter().map(|d| (d.join("\n"), Some(framed()))));
}

fn send_all(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    records: impl Iterator<Item = (String, Option<OwnedHeaders>)>,
) {
    for (i, (p, headers)) in records.enumerate() {
        let key = format!("k{}", i % 7);
        let mut record = BaseRecord::to(topic).key(&key).payload(&p);
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// `instance` is the static group membership id (`group.instance.id`): a restarted indexer takes its place at once.
/// The test broker never expires a crashed dynamic member, so a kill -9 without it would stall the group.
pub fn write_config(
    dir: &Path,
    names: &Names,
    instance: &str,
    bootstrap: &str,
    elasticsearch: &str,
    extra: &str,
) -> PathBuf {
    let config = format!(
        "kafka:\n  bootstrap_servers: \"{bootstrap}\"\n  topic: {topic}\n  group_id: {group}\n\
         \x20 properties:\n    session.timeout.ms: \"6000\"\n    heartbeat.interval.ms: \"500\"\n    max.poll.interval.ms: \"10000\"\n    group.instance.id: {instance}\n\
         elasticsearch:\n  url: \"{elasticsearch}\"\n  request_timeout_ms: 5000\n\
         index:\n  name: \"{prefix}-{{kubernetes.namespace}}-%Y.%m.%d\"\n  replicas: 0\n\
         bulk:\n  max_documents: 300\n  max_wait_ms: 50\n  initial_backoff_ms: 20\n  max_backoff_ms: 500\n\
         dead_letter_topic: {dlq}\n{extra}",
        topic = names.topic,
        group = names.group,
        prefix = names.prefix,
        dlq = names.dead_letters,
    );
    let path = dir.join(format!("indexer-{instance}.yaml"));
    fs::write(&path, config).unwrap();
    path
}

pub fn start_indexer(config: &Path, log: &Path) -> Child {
    let log = OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_logpipe-collector"))
        .args(["indexer", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub fn elasticsearch(url: &str) -> Elasticsearch {
    Elasticsearch::new(Transport::single_node(url).unwrap())
}

/// Documents in the indices matching `pattern`.
pub fn count(es: &Elasticsearch, pattern: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let response = es.count(CountParts::Index(&[pattern])).send().await.unwrap();
        let status = response.status_code();
        let body: serde_json::Value = response.json().await.unwrap();
        if status.as_u16() == 404 {
            return 0;
        }
        body["count"].as_u64().unwrap_or_else(|| panic!("count of {pattern}: {status} {body}"))
    })
}

/// The documents (`_source`) in the indices matching `pattern`, up to 100.
pub fn sources(es: &Elasticsearch, pattern: &str) -> Vec<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let response = es
            .search(elasticsearch::SearchParts::Index(&[pattern]))
            .body(serde_json::json!({"size": 100, "query": {"match_all": {}}}))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        let hits = body["hits"]["hits"].as_array().cloned().unwrap_or_default();
        hits.into_iter().map(|h| h["_source"].clone()).collect()
    })
}

/// Polls until the indices hold `want` documents; returns the last count.
pub fn wait_for_count(es: &Elasticsearch, pattern: &str, want: u64, timeout: Duration) -> u64 {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let n = count(es, pattern);
        if n >= want || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The group's committed position per partition.
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", group).create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    got.elements().iter().map(|e| e.offset().to_raw().unwrap_or(-1)).collect()
}

/// Each partition's end.
pub fn ends(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    (0..partitions).map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap().1).collect()
}
