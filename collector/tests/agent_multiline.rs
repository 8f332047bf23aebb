//! The multiline rule under kill -9: records whose continuation lines come in later writes are sometimes completed by
//! the timeout, and a restarted agent must rebuild exactly the records the killed one delivered. Every line must
//! arrive exactly once, whichever record it ends up in.

mod support;

use logpipe_tests::{kafka_bootstrap, unique_name};
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::time::{Duration, Instant};

#[test]
fn kill_9_with_multiline_records_delivers_every_line_exactly_once() {
    let bootstrap = kafka_bootstrap();
    let topic = unique_name("agent-multiline");
    support::create_topic(&bootstrap, &topic, 2);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pods/ns_pod_uid/app");
    fs::create_dir_all(&dir).unwrap();
    let config = support::write_config(
        tmp.path(),
        &format!("{}/pods/*/*/*.log", tmp.path().display()),
        &bootstrap,
        &topic,
        5000,
    );
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str("parse:\n  multiline:\n    start: '^rec'\n    timeout_ms: 15\n");
    fs::write(&config, text).unwrap();
    let agent_log = tmp.path().join("agent.log");

    let mut want: HashMap<String, usize> = HashMap::new();
    let mut line = |text: String, out: &mut String| {
        out.push_str(&format!("2026-11-22T08:00:00.000000000Z stdout F {text}\n"));
        want.insert(text, 1);
    };
    let mut agent = support::start_agent(&config, &agent_log);
    let (mut kills, mut next_kill) = (0, Instant::now() + Duration::from_millis(1500));
    for round in 0..600u64 {
        let mut out = String::new();
        // A record's start, its frames, and sometimes more frames in the next round (after a pause longer than the
        // timeout, so the agent may have completed the record already).
        line(format!("rec {round}"), &mut out);
        for frame in 0..round % 4 {
            line(format!("  rec {round} at {frame}"), &mut out);
        }
        let mut f = OpenOptions::new().create(true).append(true).open(dir.join("0.log")).unwrap();
        f.write_all(out.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(if round % 3 == 0 { 25 } else { 5 }));
        if round % 3 == 0 {
            let mut late = String::new();
            line(format!("  rec {round} late frame"), &mut late);
            f.write_all(late.as_bytes()).unwrap();
        }
        if round % 200 == 199 {
            fs::rename(dir.join("0.log"), dir.join(format!("0.log.{round}"))).unwrap();
        }
        if Instant::now() >= next_kill {
            agent.kill().unwrap();
            agent.wait().unwrap();
            kills += 1;
            agent = support::start_agent(&config, &agent_log);
            next_kill = Instant::now() + Duration::from_millis(1200 + round % 7 * 150);
        }
    }
    let lines = |records: &HashMap<String, usize>| {
        let mut lines: HashMap<String, usize> = HashMap::new();
        for (message, n) in records {
            for l in message.split('\n') {
                *lines.entry(l.to_owned()).or_default() += n;
            }
        }
        lines
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = lines(&support::read_topic(&bootstrap, &topic));
    while got.len() < want.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        got = lines(&support::read_topic(&bootstrap, &topic));
    }
    support::stop_agent(agent);
    support::print_log_tail(&agent_log);
    let records = support::read_topic(&bootstrap, &topic);
    let joined = records.keys().filter(|m| m.contains('\n')).count();
    eprintln!("{} lines in {} records ({joined} multiline), {kills} kills", want.len(), records.len());
    assert!(kills >= 3, "the writer finished before the agent was killed enough times");
    assert!(joined > 100, "the rule joined too few records to test anything");
    support::assert_exactly_once(&lines(&records), &want);
}
