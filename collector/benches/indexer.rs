//! Indexer throughput, measured on the real binary as a child process (CPU-seconds per GiB of Kafka records, peak
//! RSS): once against a null Elasticsearch endpoint in this process, which answers every bulk item 201, to isolate
//! the indexer's own cost (consume, parse, route, build bulk bodies); once end to end into the Elasticsearch-API
//! server of the test environment.
//!
//! `eval "$(scripts/testenv.sh up)"; cargo bench -p logpipe-collector --bench indexer` (LOGPIPE_BENCH_INDEXER_MIB,
//! default 256; LOGPIPE_BENCH_INDEXER_TARGETS, `null`, `elasticsearch` or both when unset).

#[path = "../tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::indexer::{self as ix, Names};

fn main() {
    let bootstrap =
        std::env::var(logpipe_tests::KAFKA_ENV).expect("the test environment: eval \"$(scripts/testenv.sh up)\"");
    let es_url = std::env::var(logpipe_tests::ELASTICSEARCH_ENV).expect("the test environment");
    let mib: u64 = std::env::var("LOGPIPE_BENCH_INDEXER_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let names = Names::new("bench-ix");
    support::create_topic(&bootstrap, &names.topic, 4);
    support::create_topic(&bootstrap, &names.dead_letters, 1);
    let (records, bytes) = fill(&bootstrap, &names.topic, mib << 20);
    println!("topic: {records} records, {} MiB (agent documents of ~{} B)", bytes >> 20, bytes / records);
    println!(
        "{:<16} {:>8} {:>12} {:>12} {:>8} {:>10}",
        "target", "cpu s", "MiB/cpu-s", "records/s", "wall s", "peak RSS"
    );
    let null = null_elasticsearch();
    let tmp = tempfile::tempdir().unwrap();
    let targets = std::env::var("LOGPIPE_BENCH_INDEXER_TARGETS").unwrap_or_else(|_| "null,elasticsearch".into());
    for (name, url, group) in [("null endpoint", null.0.as_str(), "null"), ("elasticsearch", es_url.as_str(), "es")] {
        if !targets.split(',').any(|t| name.starts_with(t)) {
            continue;
        }
        let names = Names {
            group: format!("{}-{group}", names.group),
            prefix: format!("{}-{group}", names.prefix),
            ..names.clone()
        };
        let config = ix::write_config(tmp.path(), &names, group, &bootstrap, url, "");
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("max_documents: 300", "max_documents: 5000")
            .replace("max_wait_ms: 50", "max_wait_ms: 200")
            // The test broker answers a fetch with everything it has, ignoring fetch.max.bytes.
            .replace("  properties:\n", "  properties:\n    receive.message.max.bytes: \"1000000000\"\n");
        std::fs::write(&config, text).unwrap();
        let (mut child, start) = (spawn(&config), Instant::now());
        let ends = ix::ends(&bootstrap, &names.topic, 4);
        while ix::committed(&bootstrap, &names.group, &names.topic, 4) != ends {
            assert!(child.try_wait().unwrap().is_none(), "the indexer exited; see its log above");
            std::thread::sleep(Duration::from_millis(100));
        }
        let wall = start.elapsed().as_secs_f64();
        let threads = thread_cpu(child.id());
        let (cpu, rss_kib) = stop(child);
        println!(
            "{name:<16} {cpu:>8.2} {:>12.0} {:>12.0} {wall:>8.2} {:>6.1} MiB",
            bytes as f64 / (1 << 20) as f64 / cpu,
            records as f64 / wall,
            rss_kib as f64 / 1024.0
        );
        println!("{:<16} CPU seconds by thread (user+system): {threads}", "");
    }
    clean_up(&bootstrap, &es_url, &names);
}

/// The test broker and search server keep everything in memory: a few runs of a 256 MiB corpus left behind
/// exhaust this machine's.
fn clean_up(bootstrap: &str, es_url: &str, names: &Names) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let topics = [names.topic.as_str(), names.dead_letters.as_str()];
    let deleted = rt.block_on(admin.delete_topics(&topics, &AdminOptions::new())).unwrap();
    assert!(deleted.iter().all(|r| r.is_ok()), "{deleted:?}");
    // Elasticsearch 8 refuses to delete by wildcard, so the indices are named.
    let es = ix::elasticsearch(es_url);
    let pattern = format!("{}*", names.prefix);
    let found = rt.block_on(es.indices().get(elasticsearch::indices::IndicesGetParts::Index(&[&pattern])).send());
    let indices: serde_json::Map<String, serde_json::Value> = rt.block_on(found.unwrap().json()).unwrap_or_default();
    let indices: Vec<&str> = indices.keys().map(String::as_str).collect();
    if !indices.is_empty() {
        let parts = elasticsearch::indices::IndicesDeleteParts::Index(&indices);
        let response = rt.block_on(es.indices().delete(parts).send()).unwrap();
        assert!(response.status_code().is_success(), "deleting {indices:?}: {}", response.status_code());
    }
}

/// Produces agent-like documents until `target` bytes; returns (records, bytes).
fn fill(bootstrap: &str, topic: &str, target: u64) -> (u64, u64) {
    let producer = ix::producer(bootstrap);
    let (mut records, mut bytes) = (0u64, 0u64);
    while bytes < target {
        let batch: Vec<String> = (records..records + 10_000)
            .map(|n| {
                format!(
                    r#"{{"host":{{"name":"node-{}"}},"kubernetes":{{"namespace":"ns{}","pod":{{"name":"web-{n}","uid":"3f1c0a52-1b7e-4c2e-9a51-0c6a8e2f4d11"}},"container":{{"name":"app","restart_count":0,"image":"shop/web:1.4.2"}},"labels":{{"app":"web","tier":"frontend"}}}},"log":{{"file":{{"path":"/var/log/pods/ns_web_uid/app/0.log"}},"offset":{n}}},"@timestamp":"2026-11-22T08:00:00.{:09}Z","stream":"stdout","message":"{{\"level\":\"info\",\"msg\":\"request handled\",\"path\":\"/api/v1/items/{n}\",\"status\":200}}"}}"#,
                    n % 5,
                    n % 8,
                    n % 1_000_000_000
                )
            })
            .collect();
        bytes += batch.iter().map(|d| d.len() as u64).sum::<u64>();
        records += batch.len() as u64;
        ix::produce(&producer, topic, batch);
    }
    (records, bytes)
}

/// An HTTP server answering `/_bulk` with every item created and anything else with 200.
fn null_elasticsearch() -> (String, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let bulk = req.uri().path() == "/_bulk";
                    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let docs = body.iter().filter(|&&b| b == b'\n').count() / 2;
                    let text = if bulk {
                        let item = r#"{"create":{"status":201}}"#;
                        format!(r#"{{"errors":false,"items":[{}]}}"#, vec![item; docs].join(","))
                    } else {
                        r#"{"acknowledged":true}"#.to_owned()
                    };
                    let mut r = hyper::Response::new(Full::new(Bytes::from(text)));
                    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
                    Ok::<_, Infallible>(r)
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (url, runtime)
}

fn spawn(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_logpipe-collector"))
        .args(["indexer", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap()
}

/// User and system time of the child's threads, summed by thread name: where the CPU goes.
fn thread_cpu(pid: u32) -> String {
    let mut by_name = std::collections::BTreeMap::<String, (f64, f64)>::new();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name.
        let seconds = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0) / ticks;
        let entry = by_name.entry(stat[open + 1..close].to_owned()).or_default();
        (entry.0, entry.1) = (entry.0 + seconds(11), entry.1 + seconds(12));
    }
    let busy = by_name.iter().filter(|(_, (user, system))| user + system >= 0.01);
    busy.map(|(name, (user, system))| format!("{name} {user:.2}+{system:.2}")).collect::<Vec<_>>().join(", ")
}

/// SIGTERM, then wait4 for the CPU time and peak RSS.
fn stop(child: Child) -> (f64, i64) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid, and wait4 writes it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime) + secs(usage.ru_stime), usage.ru_maxrss)
}
