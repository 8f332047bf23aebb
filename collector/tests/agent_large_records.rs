//! Hostile records against the agent and the Kafka-protocol broker: a record joined from nine 100 KB partial
//! chunks, 200 KB of control bytes (each escaped to six bytes), and a 5 MiB line, amid ordinary lines. None may
//! stop the agent; each arrives in pieces that fit a message, every piece exactly once, across a kill -9 that
//! lands while the 5 MiB line is being delivered.

mod support;

use logpipe_tests::{kafka_bootstrap, unique_name};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TIME: &str = "2026-11-22T08:00:00.000000000Z";
/// librdkafka's default `message.max.bytes`, which the test broker does not lower.
const MAX_MESSAGE: usize = 1_000_000;

/// One container's CRI log file, and every message byte written to it, in order.
struct Writer {
    path: PathBuf,
    written: Vec<u8>,
}

impl Writer {
    fn append(&mut self, lines: &[(&str, &[u8])]) {
        let mut out = Vec::new();
        for (tag, payload) in lines {
            out.extend_from_slice(format!("{TIME} stdout {tag} ").as_bytes());
            out.extend_from_slice(payload);
            out.push(b'\n');
            self.written.extend_from_slice(payload);
        }
        OpenOptions::new().create(true).append(true).open(&self.path).unwrap().write_all(&out).unwrap();
    }

    fn ordinary(&mut self, round: usize) {
        let payloads: Vec<Vec<u8>> = (0..40).map(|i| format!("round {round} line {i:03}|").into_bytes()).collect();
        let lines: Vec<(&str, &[u8])> = payloads.iter().map(|p| ("F", &p[..])).collect();
        self.append(&lines);
    }

    /// About 900 KiB as nine `P` chunks of 100 KB and an `F`, inside the default `max_joined_bytes`.
    fn joined(&mut self, round: usize) {
        let chunks: Vec<Vec<u8>> =
            (0..10).map(|c| counted(round * 10 + c, if c < 9 { 100_000 } else { 21_600 })).collect();
        let lines: Vec<(&str, &[u8])> =
            chunks.iter().enumerate().map(|(c, p)| (if c < 9 { "P" } else { "F" }, &p[..])).collect();
        self.append(&lines);
    }

    /// 200 KB of control bytes (no newline among them), 1.2 MB once escaped.
    fn control(&mut self) {
        let payload: Vec<u8> = (0..200_000u32).map(|i| [1u8, 2, 7, 9, 0x0b, 0x1b, 0x1f][i as usize % 7]).collect();
        self.append(&[("F", &payload)]);
    }

    /// One 5 MiB line: the tailer cuts it at `max_line_bytes`.
    fn huge(&mut self, round: usize) {
        self.append(&[("F", &counted(1000 + round, 5 << 20))]);
    }
}

/// `len` bytes of numbered words, so every piece of a record has text of its own.
fn counted(seed: usize, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut n = 0;
    while out.len() < len {
        out.extend_from_slice(format!("{seed:04}-{n:08} ").as_bytes());
        n += 1;
    }
    out.truncate(len);
    out
}

fn config(dir: &Path, glob: &str, bootstrap: &str, topic: &str) -> PathBuf {
    // A small in-flight bound and a long linger pace delivery, so the kill lands while the 5 MiB line is being
    // delivered; no timed checkpoint, so only the read-back keeps the pieces delivered before it from repeating.
    let config = format!(
        "tail:\n  include: [\"{glob}\"]\n  scan_interval_ms: 50\n  idle_wait_ms: 10\n\
         state_dir: {state}\ncheckpoint_interval_ms: 600000\nmax_in_flight_bytes: 300000\nhost_name: test-node\n\
         sink:\n  type: kafka\n  bootstrap_servers: \"{bootstrap}\"\n  topic: {topic}\n  linger_ms: 100\n",
        state = dir.join("state").display()
    );
    let path = dir.join("agent.yaml");
    fs::write(&path, config).unwrap();
    path
}

fn message_bytes(docs: &[Value]) -> usize {
    docs.iter().map(|d| d["message"].as_str().unwrap().len()).sum()
}

fn wait_for_bytes(bootstrap: &str, topic: &str, at_least: usize, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let docs = support::read_topic_docs(bootstrap, topic);
        if message_bytes(&docs) >= at_least || Instant::now() > deadline {
            return docs;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn records_larger_than_a_message_arrive_in_pieces_exactly_once_across_kill_9() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_name("agent-large");
    support::create_topic(&bootstrap, &topic, 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pods/ns0_pod0_uid-0/app");
    fs::create_dir_all(&dir).unwrap();
    let mut w = Writer { path: dir.join("0.log"), written: Vec::new() };
    let config = config(tmp.path(), &format!("{}/pods/*/*/*.log", tmp.path().display()), &bootstrap, &topic);
    let agent_log = tmp.path().join("agent.log");

    let agent = support::start_agent(&config, &agent_log);
    for round in 0..2 {
        w.ordinary(round);
        w.joined(round);
        w.control();
    }
    let before_huge = w.written.len();
    w.huge(0);
    w.ordinary(9);
    // Kill once part of the 5 MiB line is in Kafka: the crash lands in the middle of the stream.
    let at_kill = wait_for_bytes(&bootstrap, &topic, before_huge + (512 << 10), Duration::from_secs(60));
    let mut agent = agent;
    agent.kill().unwrap();
    agent.wait().unwrap();
    let delivered_at_kill = message_bytes(&at_kill);
    eprintln!("{delivered_at_kill} of {} message bytes delivered at the kill", w.written.len());
    assert!(delivered_at_kill > before_huge, "the kill came before the 5 MiB line was being delivered");
    assert!(delivered_at_kill < w.written.len(), "the agent had delivered everything: the kill was not mid-stream");

    let agent = support::start_agent(&config, &agent_log);
    w.ordinary(2);
    w.joined(2);
    w.control();
    w.huge(1);
    w.ordinary(3);
    let docs = wait_for_bytes(&bootstrap, &topic, w.written.len(), Duration::from_secs(120));
    support::stop_agent(agent);
    let docs_after_stop = support::read_topic_docs(&bootstrap, &topic);
    support::print_log_tail(&agent_log);
    assert_eq!(docs.len(), docs_after_stop.len(), "records arrived after the agent had delivered everything");
    let log = fs::read_to_string(&agent_log).unwrap();
    assert!(!log.contains("MessageSizeTooLarge") && !log.contains("refused a record"), "size refusals in the log");
    assert_exactly_once_in_order(&docs_after_stop, &w.written);
}

/// Every record and piece once: no `(offset, piece)` twice, and the messages in file order, pieces in order, are
/// exactly the bytes written. Every document fits one message, and the large records did arrive in pieces.
fn assert_exactly_once_in_order(docs: &[Value], written: &[u8]) {
    let mut seen: HashMap<(u64, u64), usize> = HashMap::new();
    let mut pieces = 0;
    for d in docs {
        assert!(serde_json::to_vec(d).unwrap().len() < MAX_MESSAGE);
        let piece = d["logpipe"]["piece"].as_u64();
        pieces += usize::from(piece.is_some_and(|p| p > 0));
        *seen.entry((d["log"]["offset"].as_u64().unwrap(), piece.unwrap_or(0))).or_default() += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(repeated.is_empty(), "records or pieces delivered twice (offset, piece): {repeated:?}");
    // Three 900 KiB records cut in two, three 1.2 MB control records cut in three.
    assert_eq!(pieces, 3 + 3 * 2, "pieces after the first");
    let mut ordered: Vec<&Value> = docs.iter().collect();
    ordered.sort_by_key(|d| (d["log"]["offset"].as_u64(), d["logpipe"]["piece"].as_u64()));
    let got: String = ordered.iter().map(|d| d["message"].as_str().unwrap()).collect();
    let want = std::str::from_utf8(written).unwrap();
    assert_eq!(got.len(), want.len(), "message bytes: got {}, want {}", got.len(), want.len());
    assert!(got == want, "the messages joined differ from what was written");
}

/// The limit is the topic's when the topic takes less than the producer would send: pieces are cut to it.
#[test]
fn a_topic_that_takes_smaller_messages_gets_smaller_pieces() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_name("agent-small-topic");
    support::create_topic_with(&bootstrap, &topic, 1, &[("max.message.bytes", "131072")]);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pods/ns0_pod0_uid-0/app");
    fs::create_dir_all(&dir).unwrap();
    let mut w = Writer { path: dir.join("0.log"), written: Vec::new() };
    w.ordinary(0);
    w.joined(0);
    w.ordinary(1);
    let config = config(tmp.path(), &format!("{}/pods/*/*/*.log", tmp.path().display()), &bootstrap, &topic);
    let log = support::run_once(&config);
    assert!(log.contains("the topic takes smaller messages than the producer"), "{log}");
    let docs = support::read_topic_docs(&bootstrap, &topic);
    assert!(docs.iter().all(|d| serde_json::to_vec(d).unwrap().len() < 131_072));
    assert!(
        docs.iter().filter(|d| d["logpipe"]["piece"].as_u64().is_some()).count() >= 15,
        "not cut to the topic's limit"
    );
    let mut ordered: Vec<&Value> = docs.iter().collect();
    ordered.sort_by_key(|d| (d["log"]["offset"].as_u64(), d["logpipe"]["piece"].as_u64()));
    let got: String = ordered.iter().map(|d| d["message"].as_str().unwrap()).collect();
    assert!(got.as_bytes() == w.written, "the messages joined differ from what was written");
}
