//! The pipeline as local processes: the operator, the collector agent and the indexer run on this machine with the
//! configs the operator rendered, against the test servers of `scripts/testenv.sh`, and pod log files are written
//! in the kubelet's layout.

use super::{env, say};
use anyhow::Context;
use logpipe_tests::stack::{data, Binaries, Stack, StackOptions};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const LINES_PER_POD: u64 = 2000;

pub async fn run() -> anyhow::Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let exe = std::env::current_exe().context("locating logpipe-demo")?;
    let bin_dir = exe.parent().context("logpipe-demo's directory")?;
    let run = logpipe_tests::unique_name("demo");
    let dir = bin_dir.join("logpipe-demo-runs").join(&run);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let options = StackOptions {
        run,
        dir: dir.clone(),
        binaries: Binaries::in_dir(bin_dir, &workspace)?,
        pipeline: std::fs::read_to_string(workspace.join("examples/local-pipeline.yaml"))?,
        kafka: env("LOGPIPE_TEST_KAFKA")?,
        elasticsearch: env("LOGPIPE_TEST_ELASTICSEARCH")?,
    };
    say(&format!("logs of the operator, agent and indexer, and the pod log files: {}", dir.display()));
    let mut stack = tokio::select! {
        stack = Stack::start(options) => stack?,
        _ = tokio::signal::ctrl_c() => return Ok(()),
    };
    let shown = tokio::select! {
        shown = show(&mut stack) => shown,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    if shown.is_ok() {
        say("Everything is still running; Ctrl-C stops it and deletes the run's pipeline, topic and namespaces.");
        tokio::signal::ctrl_c().await?;
    }
    say("stopping");
    stack.shut_down().await?;
    shown
}

/// Writes the pod logs, waits until they are searchable, and prints the counts, a search and the conditions.
async fn show(stack: &mut Stack) -> anyhow::Result<()> {
    say(&format!("pipeline {}/{} is up: topic {}, node {}", stack.namespace, stack.name, stack.topic, stack.node));
    stack.writer.write(LINES_PER_POD)?;
    for (pod, lines) in stack.writer.per_pod() {
        say(&format!("wrote {lines} lines for pod {}/{}", pod.namespace, pod.name));
    }
    let documents = stack.wait_indexed(Duration::from_secs(120)).await?;
    let lines = data::topic_lines(&stack.bootstrap, &stack.topic).await?;
    println!();
    println!("lines written          {}", stack.writer.written());
    println!("records in Kafka       {} ({} distinct lines)", lines.values().sum::<usize>(), lines.len());
    println!("documents in the index {documents} ({})", stack.indices());

    let payments = stack.pods().iter().find(|p| p.namespace.ends_with("-payments")).context("a payments pod")?;
    let terms = [("kubernetes.namespace", json!(payments.namespace)), ("log.level", json!("error"))];
    let (total, hits) = data::search(&stack.es, &stack.indices(), &terms, 1).await?;
    println!("\nsearch kubernetes.namespace={} log.level=error: {total} documents; the first:", payments.namespace);
    println!("{}", serde_json::to_string_pretty(&hits.first().cloned().unwrap_or_default())?);

    println!("\nLogPipeline {}/{}:", stack.namespace, stack.name);
    for c in stack.conditions().await? {
        println!("  {:<15} {:<6} {:<18} {}", c.type_, c.status, c.reason, c.message);
    }
    println!();
    Ok(())
}
