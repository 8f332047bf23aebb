//! The agent's `/metrics`, `/healthz` and `/readyz` on the real binary.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use support::PodLogs;

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_owned()))
}

/// The value of an unlabelled sample in OpenMetrics text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reports_progress_health_and_readiness() {
    let tmp = tempfile::tempdir().unwrap();
    let mut logs = PodLogs::new(&tmp.path().join("pods"), 2);
    logs.write(0, 100);
    logs.write(1, 50);
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = tmp.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "tail:\n  include: [\"{}\"]\n  scan_interval_ms: 50\nstate_dir: {}\nhttp_listen: \"127.0.0.1:{port}\"\n\
             sink:\n  type: file\n  path: {}\n",
            logs.glob(),
            tmp.path().join("state").display(),
            tmp.path().join("out.ndjson").display()
        ),
    )
    .unwrap();
    let agent = support::start_agent(&config, &tmp.path().join("agent.log"));

    wait_until("/readyz to say ready", || get(port, "/readyz").filter(|(s, _)| *s == 200));
    let records = logs.expected().len() as f64;
    let metrics = wait_until("every record acknowledged", || {
        let (_, body) = get(port, "/metrics")?;
        (sample(&body, "logpipe_agent_records_acked_total")? >= records).then_some(body)
    });
    assert_eq!(sample(&metrics, "logpipe_agent_records_sent_total"), Some(records));
    assert_eq!(sample(&metrics, "logpipe_agent_files_tracked"), Some(2.0));
    assert_eq!(sample(&metrics, "logpipe_agent_parse_errors_total"), Some(0.0));
    assert!(metrics.contains("logpipe_agent_file_lag_bytes{path=\""), "{metrics}");
    assert!(sample(&metrics, "logpipe_agent_checkpoint_age_seconds").is_some(), "{metrics}");
    assert_eq!(get(port, "/healthz").map(|(s, _)| s), Some(200));
    assert_eq!(get(port, "/nothing").map(|(s, _)| s), Some(404));
    support::stop_agent(agent);
}
