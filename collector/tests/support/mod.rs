//! What the agent's integration tests share: a kubelet-like log writer, the agent process, and reading a topic.

#![allow(dead_code)]

pub mod fault_proxy;
pub mod indexer;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How a container's log file is rotated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// kubelet: rename to `0.log.<n>` and start a new `0.log`.
    Rename,
    /// logrotate copytruncate: copy to `0.log.<n>`, truncate `0.log` in place.
    CopyTruncate,
}

/// Writes CRI lines `c<container> seq <n>` into `<root>/<ns>_<pod>_<uid>/app/0.log`; every 7th line is written as
/// two partial chunks with a stderr line between them.
pub struct PodLogs {
    pub root: PathBuf,
    pub containers: usize,
    pub next: Vec<u64>,
    rotations: usize,
}

impl PodLogs {
    pub fn new(root: &Path, containers: usize) -> Self {
        for c in 0..containers {
            fs::create_dir_all(Self::dir(root, c)).unwrap();
        }
        Self { root: root.to_path_buf(), containers, next: vec![0; containers], rotations: 0 }
    }

    fn dir(root: &Path, c: usize) -> PathBuf {
        root.join(format!("ns{c}_pod{c}_uid-{c}/app"))
    }

    pub fn path(&self, c: usize) -> PathBuf {
        Self::dir(&self.root, c).join("0.log")
    }

    pub fn glob(&self) -> String {
        format!("{}/*/*/*.log", self.root.display())
    }

    /// Appends `n` records to container `c`.
    pub fn write(&mut self, c: usize, n: usize) {
        let mut text = String::new();
        for _ in 0..n {
            let seq = self.next[c];
            self.next[c] += 1;
            let t = "2026-11-22T08:00:00.000000000Z";
            if seq % 7 == 3 {
                text.push_str(&format!("{t} stdout P c{c} seq {seq:07} first half, "));
                text.push_str(&format!("\n{t} stderr F c{c} err {seq:07}\n"));
                text.push_str(&format!("{t} stdout F second half\n"));
            } else {
                text.push_str(&format!("{t} stdout F c{c} seq {seq:07} {}\n", "x".repeat((seq % 40) as usize)));
            }
        }
        let mut f = OpenOptions::new().create(true).append(true).open(self.path(c)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    pub fn rotate(&mut self, c: usize, how: Rotation) {
        self.rotations += 1;
        let to = PathBuf::from(format!("{}.{:04}", self.path(c).display(), self.rotations));
        match how {
            Rotation::Rename => fs::rename(self.path(c), to).unwrap(),
            Rotation::CopyTruncate => {
                fs::copy(self.path(c), to).unwrap();
                OpenOptions::new().write(true).open(self.path(c)).unwrap().set_len(0).unwrap();
            }
        }
    }

    /// Every record written, as the message text the agent must deliver.
    pub fn expected(&self) -> HashMap<String, usize> {
        let mut want = HashMap::new();
        for c in 0..self.containers {
            for seq in 0..self.next[c] {
                let key = if seq % 7 == 3 {
                    want.insert(format!("c{c} err {seq:07}"), 1);
                    format!("c{c} seq {seq:07} first half, second half")
                } else {
                    format!("c{c} seq {seq:07} {}", "x".repeat((seq % 40) as usize))
                };
                want.insert(key, 1);
            }
        }
        want
    }
}

/// `checkpoint_interval_ms` is long in the crash tests on purpose: records acknowledged after the last checkpoint
/// must not be sent again, however many there are.
pub fn write_config(dir: &Path, glob: &str, bootstrap: &str, topic: &str, checkpoint_interval_ms: u64) -> PathBuf {
    let config = format!(
        "tail:\n  include: [\"{glob}\"]\n  scan_interval_ms: 50\n  idle_wait_ms: 10\n\
         state_dir: {state}\ncheckpoint_interval_ms: {checkpoint_interval_ms}\nhost_name: test-node\n\
         sink:\n  type: kafka\n  bootstrap_servers: \"{bootstrap}\"\n  topic: {topic}\n  linger_ms: 5\n",
        state = dir.join("state").display()
    );
    let path = dir.join("agent.yaml");
    fs::write(&path, config).unwrap();
    path
}

pub fn start_agent(config: &Path, log: &Path) -> Child {
    start_agent_with_env(config, log, &[])
}

/// `start_agent` with these environment variables set besides the test's own.
pub fn start_agent_with_env(config: &Path, log: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Child {
    let log = OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_logpipe-collector"))
        .args(["agent", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// `agent --once` to the end; fails unless it exits cleanly, and returns its log.
pub fn run_once(config: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_logpipe-collector"))
        .args(["agent", "--once", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "agent --once failed: {log}");
    log
}

/// SIGTERM, then wait for a clean exit.
pub fn stop_agent(mut agent: Child) {
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let status = agent.wait().unwrap();
    assert!(status.success(), "agent exited with {status}");
}

pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    create_topic_with(bootstrap, topic, partitions, &[]);
}

/// A topic with these topic configs, e.g. a smaller `max.message.bytes`.
pub fn create_topic_with(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let topics =
        [configs.iter().fold(NewTopic::new(topic, partitions, TopicReplication::Fixed(1)), |t, (k, v)| t.set(k, v))];
    let result = rt.block_on(admin.create_topics(&topics, &AdminOptions::new())).unwrap();
    assert!(result.iter().all(|r| r.is_ok()), "{result:?}");
}

/// Every message now in `topic`, counted by its document's `message` field.
pub fn read_topic(bootstrap: &str, topic: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for doc in read_topic_docs(bootstrap, topic) {
        *counts.entry(doc["message"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Every document now in `topic`, in partition order.
pub fn read_topic_docs(bootstrap: &str, topic: &str) -> Vec<serde_json::Value> {
    read_topic_messages(bootstrap, topic).into_iter().flatten().collect()
}

/// The documents of each message now in `topic`, in partition order. A message of record format 2
/// (`logpipe.format: 2`) holds one document per line; written here from docs/record-format.md, not with the
/// collector's own reader, so a mistake there is not repeated here.
pub fn read_topic_messages(bootstrap: &str, topic: &str) -> Vec<Vec<serde_json::Value>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "logpipe-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).unwrap();
        if high > low {
            ends.insert(p.id(), high);
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(low)).unwrap();
        }
    }
    let mut docs = Vec::new();
    if ends.is_empty() {
        return docs;
    }
    consumer.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        assert!(std::time::Instant::now() < deadline, "reading {topic} back timed out");
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else { continue };
        let msg = msg.unwrap();
        let framed = msg
            .headers()
            .is_some_and(|h| h.iter().any(|h| h.key == "logpipe.format" && h.value == Some(b"2".as_slice())));
        let payload = msg.payload().unwrap();
        let documents: Vec<&[u8]> = if framed { payload.split(|&b| b == b'\n').collect() } else { vec![payload] };
        docs.push(documents.into_iter().map(|d| serde_json::from_slice(d).unwrap()).collect());
        if ends.get(&msg.partition()).is_some_and(|&end| msg.offset() + 1 >= end) {
            ends.remove(&msg.partition());
        }
    }
    docs
}

/// Reads the topic until it holds as many records as `want`, or the timeout passes; returns the last reading.
pub fn wait_for_records(bootstrap: &str, topic: &str, want: usize, timeout: Duration) -> HashMap<String, usize> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let got = read_topic(bootstrap, topic);
        if got.values().sum::<usize>() >= want || std::time::Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the agent's log holds `needle`.
pub fn wait_for_log(log: &Path, needle: &str, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    while !fs::read_to_string(log).unwrap_or_default().contains(needle) {
        assert!(std::time::Instant::now() < deadline, "the agent did not log {needle:?} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Compares what arrived with what was written: names what is missing and what is duplicated.
pub fn assert_exactly_once(got: &HashMap<String, usize>, want: &HashMap<String, usize>) {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(5).collect();
    let n_missing = want.keys().filter(|k| !got.contains_key(*k)).count();
    let n_dup: usize = got.values().filter(|n| **n > 1).map(|n| n - 1).sum();
    assert!(
        n_missing == 0 && n_dup == 0 && extra.is_empty(),
        "{n_missing} missing (e.g. {missing:?}), {n_dup} duplicates (e.g. {dup:?}), unexpected {extra:?}"
    );
}

/// The agent's last log lines, for the test output when an assertion fails.
pub fn print_log_tail(log: &Path) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(15)..] {
        eprintln!("agent: {line}");
    }
}
