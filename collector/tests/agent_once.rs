//! `agent --once` (backfills, benchmarks) exits only when everything was read and acknowledged, also when reading
//! paused on the in-flight bound on the way (Kafka acknowledges asynchronously, so it pauses often).

mod support;

use logpipe_tests::{kafka_bootstrap, unique_name};
use std::fs;
use support::PodLogs;

#[test]
fn once_reads_everything_even_when_backpressure_pauses_reading() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_name("agent-once");
    support::create_topic(&bootstrap, &topic, 2);
    let tmp = tempfile::tempdir().unwrap();
    let mut logs = PodLogs::new(&tmp.path().join("pods"), 2);
    logs.write(0, 5000);
    logs.write(1, 5000);
    let config = support::write_config(tmp.path(), &logs.glob(), &bootstrap, &topic, 1000);
    // Small read shares and a small bound: many rounds, many pauses.
    let yaml = fs::read_to_string(&config).unwrap().replacen("tail:\n", "tail:\n  max_read_per_file_bytes: 16384\n", 1);
    let yaml = yaml + "max_in_flight_bytes: 65536\n";
    fs::write(&config, yaml).unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_logpipe-collector"))
        .args(["agent", "--once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    support::assert_exactly_once(&support::read_topic(&bootstrap, &topic), &logs.expected());
}
