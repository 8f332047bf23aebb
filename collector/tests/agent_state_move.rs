//! Moving the agent's state directory (as the operator does when it derives a new one) reads no line twice and
//! skips none: the new directory carries the earlier one's checkpoint over, across kill -9 of the agent before
//! the move and right after it.

mod support;

use logpipe_tests::{kafka_bootstrap, unique_name};
use std::fs;
use std::time::Duration;
use support::PodLogs;

#[test]
fn a_moved_state_directory_carries_the_checkpoint_over_across_kills() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_name("agent-state-move");
    support::create_topic(&bootstrap, &topic, 2);
    let tmp = tempfile::tempdir().unwrap();
    let mut logs = PodLogs::new(&tmp.path().join("pods"), 2);
    // Checkpoints only every 5 s: what was acknowledged after the last one is found again by the read-back.
    let earlier_config = support::write_config(tmp.path(), &logs.glob(), &bootstrap, &topic, 5000);
    let earlier = tmp.path().join("state");
    let moved = tmp.path().join("state-moved");
    let text = fs::read_to_string(&earlier_config).unwrap();
    let moved_text = text.replace(
        &format!("state_dir: {}", earlier.display()),
        &format!("state_dir: {}\nearlier_state_dir: {}", moved.display(), earlier.display()),
    );
    assert_ne!(text, moved_text);
    let moved_config = tmp.path().join("agent-moved.yaml");
    fs::write(&moved_config, moved_text).unwrap();
    let log = tmp.path().join("agent.log");

    // The earlier release: killed right after lines were written, past its first timed checkpoint.
    let mut agent = support::start_agent(&earlier_config, &log);
    for _ in 0..60 {
        std::thread::sleep(Duration::from_millis(100));
        logs.write(0, 5);
        logs.write(1, 3);
    }
    agent.kill().unwrap();
    agent.wait().unwrap();
    let written_at_kill = logs.expected().len();
    assert!(earlier.join("checkpoints.json").exists(), "the earlier agent checkpointed before its kill");
    let earlier_checkpoint = fs::read(earlier.join("checkpoints.json")).unwrap();
    let shipped_before_move = support::read_topic(&bootstrap, &topic).len();
    assert!(shipped_before_move < written_at_kill, "the kill landed with lines still to ship");
    logs.write(0, 20);
    logs.write(1, 20);

    // The moved agent carries the checkpoint over, and is killed at once while the pods keep writing.
    let mut agent = support::start_agent(&moved_config, &log);
    support::wait_for_log(&log, "carried the checkpoint over", Duration::from_secs(30));
    logs.write(0, 10);
    agent.kill().unwrap();
    agent.wait().unwrap();
    let written_at_second_kill = logs.expected().len();
    let shipped_at_kill = support::read_topic(&bootstrap, &topic).len();
    assert!(shipped_at_kill < written_at_second_kill, "the second kill landed with lines still to ship");

    // Restarted: it resumes from its own directory now.
    let agent = support::start_agent(&moved_config, &log);
    for _ in 0..20 {
        logs.write(0, 2);
        logs.write(1, 2);
        std::thread::sleep(Duration::from_millis(50));
    }
    let want = logs.expected();
    let got = support::wait_for_records(&bootstrap, &topic, want.len(), Duration::from_secs(60));
    support::stop_agent(agent);
    support::print_log_tail(&log);
    eprintln!(
        "{} lines: {shipped_before_move} shipped before the move, {shipped_at_kill} at the second kill",
        want.len()
    );
    support::assert_exactly_once(&got, &want);
    assert_eq!(fs::read(earlier.join("checkpoints.json")).unwrap(), earlier_checkpoint, "the earlier one is only read");
    assert_eq!(fs::read_to_string(&log).unwrap().matches("carried the checkpoint over").count(), 1, "carried once");
}
