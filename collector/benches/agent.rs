//! Agent throughput: tail + parse + encode of a generated CRI corpus, measured on the real binary as a child
//! process, in CPU-seconds (user + system) per GiB and peak RSS. Wall time varies too much on shared machines to
//! compare; CPU time does not.
//!
//! `cargo bench -p logpipe-collector --bench agent` (LOGPIPE_BENCH_MIB sets the corpus size, default 1024). With
//! the test environment's variables set (`eval "$(scripts/testenv.sh up)"`) it also measures the Kafka sink on a
//! smaller corpus (LOGPIPE_BENCH_KAFKA_MIB, default 256), and always measures live tailing at 10 MiB/s (into the
//! null sink, and into Kafka when the broker is there). LOGPIPE_BENCH_PARTS picks some of `files`, `kafka`, `live`
//! (comma-separated; default all), and LOGPIPE_BENCH_BIN runs another collector binary (to compare two builds;
//! scripts/bench-kafka.py alternates builds run by run).

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONTAINERS: usize = 16;

fn part(name: &str) -> bool {
    std::env::var("LOGPIPE_BENCH_PARTS").map_or(true, |parts| parts.split(',').any(|p| p.trim() == name))
}

fn main() {
    if part("files") {
        files();
    }
    let broker = std::env::var(logpipe_tests::KAFKA_ENV).ok();
    if let Some(bootstrap) = broker.as_deref().filter(|_| part("kafka")) {
        kafka(bootstrap);
    }
    if part("live") {
        live_tail("null", "type: null", 10 << 20, Duration::from_secs(20));
        if let Some(bootstrap) = &broker {
            let topic = logpipe_tests::unique_name("bench-live");
            support::create_topic(bootstrap, &topic, 4);
            let sink = format!("type: kafka\n  bootstrap_servers: \"{bootstrap}\"\n  topic: {topic}");
            live_tail("kafka lz4", &sink, 10 << 20, Duration::from_secs(20));
        }
    }
}

fn files() {
    let mib: u64 = std::env::var("LOGPIPE_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-corpus-{mib}"));
    let bytes = corpus(&root, mib << 20);
    warm(&root);
    println!("corpus: {} MiB of CRI lines (~200 B, 2% partial) in {CONTAINERS} files", bytes >> 20);
    println!("{:<12} {:>10} {:>12} {:>10} {:>10}", "sink", "cpu s", "MiB/cpu-s", "wall s", "peak RSS");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-out.ndjson");
    for (name, sink) in [("null", "type: null".to_owned()), ("file", format!("type: file\n  path: {}", out.display()))]
    {
        let run = reap(spawn_agent(&root, &sink, true));
        let _ = fs::remove_file(&out);
        run.print(name, bytes);
    }
}

fn kafka(bootstrap: &str) {
    let kafka_mib = std::env::var("LOGPIPE_BENCH_KAFKA_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let kafka_root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-corpus-{kafka_mib}"));
    let kafka_bytes = corpus(&kafka_root, kafka_mib << 20);
    warm(&kafka_root);
    for compression in ["lz4", "zstd"] {
        let topic = logpipe_tests::unique_name("bench");
        support::create_topic(bootstrap, &topic, 4);
        let sink = format!(
            "type: kafka\n  bootstrap_servers: \"{bootstrap}\"\n  topic: {topic}\n  compression: {compression}"
        );
        reap(spawn_agent(&kafka_root, &sink, true)).print(&format!("kafka {compression}"), kafka_bytes);
    }
}

/// The agent following files written at `rate` bytes per second for `duration`: its share of a core.
fn live_tail(name: &str, sink: &str, rate: u64, duration: Duration) {
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> =
        (0..CONTAINERS).map(|c| root.path().join(format!("pods/live_app-{c}_0000-{c}/app"))).collect();
    let mut files: Vec<fs::File> = dirs
        .iter()
        .map(|d| {
            fs::create_dir_all(d).unwrap();
            fs::File::create(d.join("0.log")).unwrap()
        })
        .collect();
    let agent = spawn_agent(root.path(), sink, false);
    let start = Instant::now();
    let (mut written, mut n) = (0u64, 0u64);
    while start.elapsed() < duration {
        // Write in 10 ms slices, spread over the files, to hold the rate.
        let due = (rate as f64 * start.elapsed().as_secs_f64()) as u64;
        while written < due {
            let c = (n % CONTAINERS as u64) as usize;
            written += line(&mut files[c], c, n) as u64;
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = start.elapsed().as_secs_f64();
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let run = reap(agent);
    println!(
        "live tail, {name}, at {} MiB/s for {:.0} s: {:.1}% of a core, peak RSS {:.1} MiB",
        rate >> 20,
        wall,
        100.0 * run.cpu_s / run.wall_s,
        run.max_rss_kib as f64 / 1024.0
    );
}

/// Writes the corpus once; later runs reuse it.
fn corpus(root: &Path, target: u64) -> u64 {
    let done = root.join("complete");
    if !done.exists() {
        let _ = fs::remove_dir_all(root);
        let per_file = target / CONTAINERS as u64;
        for c in 0..CONTAINERS {
            let dir = root.join(format!("pods/bench_app-{c}_0000-{c}/app"));
            fs::create_dir_all(&dir).unwrap();
            let mut f = BufWriter::with_capacity(1 << 20, fs::File::create(dir.join("0.log")).unwrap());
            let (mut written, mut n) = (0u64, 0u64);
            while written < per_file {
                written += line(&mut f, c, n) as u64;
                n += 1;
            }
            f.flush().unwrap();
        }
        fs::write(&done, b"").unwrap();
    }
    walk(&root.join("pods")).iter().map(|p| fs::metadata(p).unwrap().len()).sum()
}

/// One record: usually an `F` line of about 200 bytes, every 50th split into a `P` and an `F` chunk.
fn line(out: &mut impl Write, c: usize, n: u64) -> usize {
    let ts = format!("2026-11-22T08:{:02}:{:02}.{:09}Z", (n / 60_000) % 60, (n / 1000) % 60, n % 1_000_000_000);
    let msg = format!(
        "{{\"level\":\"{}\",\"msg\":\"request handled\",\"path\":\"/api/v1/items/{}\",\"status\":{},\"duration_ms\":{},\"trace\":\"{:016x}\",\"container\":{c}}}",
        ["info", "warn", "error", "debug"][(n % 4) as usize],
        n * 7919 % 100_000,
        [200, 201, 404, 500][(n % 4) as usize],
        n % 1000,
        n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    );
    let text = if n % 50 == 49 {
        let (a, b) = msg.split_at(msg.len() / 2);
        format!("{ts} stdout P {a}\n{ts} stdout F {b}\n")
    } else {
        format!("{ts} stdout F {msg}\n")
    };
    out.write_all(text.as_bytes()).unwrap();
    text.len()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

/// Reads the corpus once so every run starts from a warm page cache.
fn warm(root: &Path) {
    for p in walk(&root.join("pods")) {
        std::io::copy(&mut fs::File::open(p).unwrap(), &mut std::io::sink()).unwrap();
    }
}

struct Run {
    cpu_s: f64,
    wall_s: f64,
    max_rss_kib: i64,
}

impl Run {
    fn print(&self, name: &str, bytes: u64) {
        let mib_per_cpu_s = bytes as f64 / (1 << 20) as f64 / self.cpu_s;
        println!(
            "{name:<12} {:>10.2} {:>12.0} {:>10.2} {:>7.1} MiB",
            self.cpu_s,
            mib_per_cpu_s,
            self.wall_s,
            self.max_rss_kib as f64 / 1024.0
        );
    }
}

struct Spawned {
    child: Child,
    start: Instant,
    _state: tempfile::TempDir,
}

impl Spawned {
    fn id(&self) -> u32 {
        self.child.id()
    }
}

fn spawn_agent(root: &Path, sink: &str, once: bool) -> Spawned {
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("agent.yaml");
    let yaml = format!(
        "tail:\n  include: [\"{}/pods/*/*/*.log\"]\nstate_dir: {}\nsink:\n  {sink}\n",
        root.display(),
        state.path().join("state").display()
    );
    fs::write(&config, yaml).unwrap();
    let start = Instant::now();
    let binary = std::env::var("LOGPIPE_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_logpipe-collector").into());
    let mut command = Command::new(binary);
    command.arg("agent").args(once.then_some("--once")).arg("--config").arg(&config);
    let child = command.env("RUST_LOG", "warn").stdout(Stdio::null()).spawn().unwrap();
    Spawned { child, start, _state: state }
}

/// Waits for the agent with wait4, which also returns its resource usage.
fn reap(spawned: Spawned) -> Run {
    let Spawned { child, start, _state } = spawned;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid, and wait4 writes it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "agent failed: {status}");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Run {
        cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
        wall_s: start.elapsed().as_secs_f64(),
        max_rss_kib: usage.ru_maxrss,
    }
}
