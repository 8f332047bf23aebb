//! The agent against the Kafka-protocol broker of the test environment: every line written arrives exactly once,
//! through rotation (rename and copytruncate) during continuous writing, kill -9 at random moments, and a broker
//! that goes away and comes back.

mod support;

use logpipe_tests::{kafka_bootstrap, noida_bin, unique_name};
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use support::{PodLogs, Rotation};

/// A small deterministic generator, so a failing run can be repeated from the seed it prints.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn kill_9_during_rotation_delivers_every_line_exactly_once() {
    let seed = std::env::var("LOGPIPE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    eprintln!("seed {seed} (set LOGPIPE_TEST_SEED to repeat)");
    let mut rng = Rng(seed);
    let bootstrap = kafka_bootstrap();
    let topic = unique_name("agent-kill");
    support::create_topic(&bootstrap, &topic, 3);
    let tmp = tempfile::tempdir().unwrap();
    let mut logs = PodLogs::new(&tmp.path().join("pods"), 3);
    let config = support::write_config(tmp.path(), &logs.glob(), &bootstrap, &topic, 5000);
    let agent_log = tmp.path().join("agent.log");

    let mut agent = support::start_agent(&config, &agent_log);
    let mut kills = 0;
    let mut next_kill = Instant::now() + kill_delay(&mut rng);
    for round in 0..900 {
        for c in 0..logs.containers {
            logs.write(c, 1 + rng.below(12) as usize);
        }
        if round % 150 == 149 {
            logs.rotate(0, Rotation::Rename);
            logs.rotate(1, Rotation::Rename);
            logs.rotate(2, Rotation::CopyTruncate);
        }
        if Instant::now() >= next_kill {
            agent.kill().unwrap();
            agent.wait().unwrap();
            kills += 1;
            agent = support::start_agent(&config, &agent_log);
            next_kill = Instant::now() + kill_delay(&mut rng);
        }
        // Pace the writer like a busy pod, so kills land in the middle of the stream.
        std::thread::sleep(Duration::from_millis(10));
    }
    let want = logs.expected();
    let got = support::wait_for_records(&bootstrap, &topic, want.len(), Duration::from_secs(60));
    support::stop_agent(agent);
    let got_after_stop = support::read_topic(&bootstrap, &topic);
    let messages = support::read_topic_messages(&bootstrap, &topic);
    let documents: usize = messages.iter().map(Vec::len).sum();
    eprintln!("{} records, {documents} documents in {} messages, {kills} kills", want.len(), messages.len());
    assert!(messages.len() < documents, "records travel several to a message (format 2)");
    assert!(kills >= 3, "the writer finished before the agent was killed enough times");
    support::print_log_tail(&agent_log);
    support::assert_exactly_once(&got, &want);
    support::assert_exactly_once(&got_after_stop, &want);
}

/// A file emptied by copytruncate gets its key only when its next first line arrives. Killed after that but before
/// a timed checkpoint, written to and copytruncated again while down, the restarted agent finds the rest of that
/// content in its copy only if the key was checkpointed when it was learned.
#[test]
fn kill_9_after_a_file_emptied_in_place_got_its_first_line() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_name("agent-emptied");
    support::create_topic(&bootstrap, &topic, 1);
    let tmp = tempfile::tempdir().unwrap();
    let mut logs = PodLogs::new(&tmp.path().join("pods"), 1);
    // No timed checkpoint within this test: only what the agent saves when files change.
    let config = support::write_config(tmp.path(), &logs.glob(), &bootstrap, &topic, 600_000);
    let agent_log = tmp.path().join("agent.log");

    logs.write(0, 5);
    let mut agent = support::start_agent(&config, &agent_log);
    support::wait_for_records(&bootstrap, &topic, logs.expected().len(), Duration::from_secs(30));
    logs.rotate(0, Rotation::CopyTruncate);
    support::wait_for_log(&agent_log, "file truncated in place", Duration::from_secs(30));
    logs.write(0, 2);
    support::wait_for_records(&bootstrap, &topic, logs.expected().len(), Duration::from_secs(30));
    agent.kill().unwrap();
    agent.wait().unwrap();

    logs.write(0, 4);
    logs.rotate(0, Rotation::CopyTruncate);
    logs.write(0, 3);
    let agent = support::start_agent(&config, &agent_log);
    let want = logs.expected();
    let got = support::wait_for_records(&bootstrap, &topic, want.len(), Duration::from_secs(30));
    support::stop_agent(agent);
    support::print_log_tail(&agent_log);
    support::assert_exactly_once(&got, &want);
}

/// librdkafka's idempotent producer needs about a second to get its producer id, so a run killed sooner has
/// delivered nothing; kills come later than that, while the agent is delivering.
fn kill_delay(rng: &mut Rng) -> Duration {
    Duration::from_millis(1200 + rng.below(1300))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A broker of this test's own, so it can be stopped and started.
struct Broker {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Broker {
    fn start(dir: &std::path::Path, port: u16) -> Self {
        let child = Command::new(noida_bin())
            .args(["start", "--only", "kafka", "--kafka-port", &port.to_string(), "--data-dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "broker on port {port} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, dir: dir.to_path_buf(), port }
    }

    fn stop(mut self) -> (std::path::PathBuf, u16) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap();
        // A wrapper that left its server running would fake the outage this test is about.
        assert!(std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err(), "the broker still listens after stop");
        (self.dir.clone(), self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn broker_outage_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start(&tmp.path().join("broker"), free_port());
    let bootstrap = format!("127.0.0.1:{}", broker.port);
    let topic = unique_name("agent-outage");
    support::create_topic(&bootstrap, &topic, 2);
    let mut logs = PodLogs::new(&tmp.path().join("pods"), 2);
    let config = support::write_config(tmp.path(), &logs.glob(), &bootstrap, &topic, 1000);
    let agent = support::start_agent(&config, &tmp.path().join("agent.log"));

    for c in 0..2 {
        logs.write(c, 500);
    }
    let first = logs.expected().len();
    support::wait_for_records(&bootstrap, &topic, first, Duration::from_secs(30));

    let (dir, port) = broker.stop();
    for c in 0..2 {
        logs.write(c, 500);
    }
    logs.rotate(0, Rotation::Rename);
    logs.write(0, 200);
    // The outage lasts a while on purpose: the agent must keep its records and keep trying.
    std::thread::sleep(Duration::from_secs(3));
    let _broker = Broker::start(&dir, port);

    let want = logs.expected();
    let got = support::wait_for_records(&bootstrap, &topic, want.len(), Duration::from_secs(60));
    support::stop_agent(agent);
    support::assert_exactly_once(&got, &want);
}

/// Kafka down when the agent starts after a crash: the read-back is tried again in the process, the agent does not
/// exit (a crash loop's back-off would delay collection after Kafka is back), and nothing is lost or repeated.
#[test]
fn an_agent_started_while_kafka_is_down_waits_for_it() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start(&tmp.path().join("broker"), free_port());
    let bootstrap = format!("127.0.0.1:{}", broker.port);
    let topic = unique_name("agent-start-down");
    support::create_topic(&bootstrap, &topic, 1);
    let mut logs = PodLogs::new(&tmp.path().join("pods"), 1);
    let config = support::write_config(tmp.path(), &logs.glob(), &bootstrap, &topic, 600_000);
    let agent_log = tmp.path().join("agent.log");
    let mut agent = support::start_agent(&config, &agent_log);
    logs.write(0, 300);
    support::wait_for_records(&bootstrap, &topic, logs.expected().len(), Duration::from_secs(30));
    agent.kill().unwrap();
    agent.wait().unwrap();

    let (dir, port) = broker.stop();
    logs.write(0, 300);
    let mut agent = support::start_agent(&config, &agent_log);
    support::wait_for_log(&agent_log, "cannot read back what the previous run delivered", Duration::from_secs(60));
    assert!(agent.try_wait().unwrap().is_none(), "the agent exited while Kafka was down");
    let _broker = Broker::start(&dir, port);
    let want = logs.expected();
    let got = support::wait_for_records(&bootstrap, &topic, want.len(), Duration::from_secs(60));
    support::stop_agent(agent);
    support::print_log_tail(&agent_log);
    support::assert_exactly_once(&got, &want);
}

/// Kafka down when the sink is made, so the topic's smaller `max.message.bytes` cannot be read then: it is read
/// once the read-back succeeds, before anything is sent, and a record larger than the topic takes is cut to it.
#[test]
fn the_topics_limit_is_learnt_when_kafka_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start(&tmp.path().join("broker"), free_port());
    let bootstrap = format!("127.0.0.1:{}", broker.port);
    let topic = unique_name("agent-late-limit");
    support::create_topic_with(&bootstrap, &topic, 1, &[("max.message.bytes", "131072")]);
    let (dir, port) = broker.stop();

    let mut logs = PodLogs::new(&tmp.path().join("pods"), 1);
    logs.write(0, 20);
    let big = format!("2026-11-22T08:00:00.000000000Z stdout F {}\n", "x".repeat(600_000));
    std::fs::OpenOptions::new().append(true).open(logs.path(0)).unwrap().write_all(big.as_bytes()).unwrap();
    let config = support::write_config(tmp.path(), &logs.glob(), &bootstrap, &topic, 1000);
    let agent_log = tmp.path().join("agent.log");
    let agent = support::start_agent(&config, &agent_log);
    support::wait_for_log(&agent_log, "cannot read the topic's max.message.bytes", Duration::from_secs(60));
    let _broker = Broker::start(&dir, port);
    support::wait_for_log(&agent_log, "the topic takes smaller messages than the producer", Duration::from_secs(60));
    let pieces = |docs: &[serde_json::Value]| docs.iter().filter(|d| d["logpipe"]["piece"].is_u64()).count();
    let deadline = Instant::now() + Duration::from_secs(60);
    let docs = loop {
        let docs = support::read_topic_docs(&bootstrap, &topic);
        if pieces(&docs) >= 5 || Instant::now() > deadline {
            break docs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    support::stop_agent(agent);
    support::print_log_tail(&agent_log);
    assert!(pieces(&docs) >= 5, "the 600 kB record was not cut to the topic's 128 KiB limit");
    assert!(docs.iter().all(|d| serde_json::to_vec(d).unwrap().len() < 131_072));
    let message: usize =
        docs.iter().filter(|d| d["logpipe"]["piece"].is_u64()).map(|d| d["message"].as_str().unwrap().len()).sum();
    assert_eq!(message, 600_000, "every byte of the record, once");
}
