//! Start-up cannot crash-loop: an unreadable checkpoint is moved aside and the files are read again, and the
//! read-back after a crash is bounded by what this node produced since its last checkpoint, not by what every
//! node produced since the agent first started.

mod support;

use logpipe_tests::{kafka_bootstrap, unique_name};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use support::PodLogs;

#[test]
fn a_corrupt_checkpoint_is_moved_aside_and_every_line_read_again() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_name("agent-corrupt");
    support::create_topic(&bootstrap, &topic, 1);
    let tmp = tempfile::tempdir().unwrap();
    let mut logs = PodLogs::new(&tmp.path().join("pods"), 1);
    logs.write(0, 200);
    let config = support::write_config(tmp.path(), &logs.glob(), &bootstrap, &topic, 1000);
    let state = tmp.path().join("state");
    fs::create_dir_all(&state).unwrap();
    fs::write(state.join("checkpoints.json"), b"{\"files\":[{\"key\":").unwrap();

    let log = support::run_once(&config);
    assert!(log.contains("moved aside"), "{log}");
    let set_aside: Vec<_> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("checkpoints.json.corrupt-"))
        .collect();
    assert_eq!(set_aside.len(), 1, "{set_aside:?}");
    assert_eq!(fs::read(state.join(&set_aside[0])).unwrap(), b"{\"files\":[{\"key\":");
    support::assert_exactly_once(&support::read_topic(&bootstrap, &topic), &logs.expected());
    // The new checkpoint is good: a second run sends nothing again.
    support::run_once(&config);
    support::assert_exactly_once(&support::read_topic(&bootstrap, &topic), &logs.expected());
}

/// Other nodes' records keep arriving in every partition. Without moving the scan offsets at checkpoints, a restart
/// after a crash read them all back; with it, nothing this node did not write since its last checkpoint is read.
#[test]
fn the_read_back_after_a_crash_skips_what_other_nodes_wrote_before_the_last_checkpoint() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_name("agent-scan-bound");
    support::create_topic(&bootstrap, &topic, 2);
    let tmp = tempfile::tempdir().unwrap();
    let mut logs = PodLogs::new(&tmp.path().join("pods"), 1);
    logs.write(0, 50);
    let config = support::write_config(tmp.path(), &logs.glob(), &bootstrap, &topic, 500);
    let agent_log = tmp.path().join("agent.log");
    let mut agent = support::start_agent(&config, &agent_log);
    support::wait_for_records(&bootstrap, &topic, logs.expected().len(), Duration::from_secs(30));

    let producer: ThreadedProducer<DefaultProducerContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    for n in 0..4000 {
        let payload = format!("{{\"message\":\"other node {n}\"}}");
        producer.send(BaseRecord::<(), _>::to(&topic).payload(&payload).partition(n % 2)).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let ends = support::indexer::ends(&bootstrap, &topic, 2);
    wait_for_scan_offsets(&tmp.path().join("state/checkpoints.json"), &ends);
    agent.kill().unwrap();
    agent.wait().unwrap();

    let log = support::run_once(&config);
    let scanned = log.lines().find(|l| l.contains("read back what the previous run delivered")).unwrap_or_default();
    assert!(scanned.contains("\"scanned\":0"), "the restart read back records it had no need of: {scanned}");
}

/// Waits until the agent's checkpoint starts the read-back at `ends` or later in every partition.
fn wait_for_scan_offsets(checkpoint: &Path, ends: &[i64]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let saved: serde_json::Value =
            fs::read(checkpoint).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let from = |p: usize| saved["kafka_scan_from"][p.to_string()].as_i64().unwrap_or(-1);
        if (0..ends.len()).all(|p| from(p) >= ends[p]) {
            return;
        }
        assert!(Instant::now() < deadline, "scan offsets {saved} never reached the partition ends {ends:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
