//! logpipe installed on the real node of `scripts/node.sh` as a user installs it: the chart by Helm's engine, a
//! LogPipeline, and pods of the test logger image whose logs the collector DaemonSet ships through Kafka to
//! Elasticsearch.

use super::{env, say};
use logpipe_tests::node::release::{component, Release, PIPELINE};
use logpipe_tests::node::{self, Node};
use logpipe_tests::stack::{cluster, data};
use serde_json::json;
use std::time::Duration;

const PODS: usize = 3;
const LINES_PER_POD: u32 = 2000;

pub async fn run() -> anyhow::Result<()> {
    env("LOGPIPE_NODE_KUBECONFIG")?;
    let node = Node::from_env().await;
    let release = Release::new("demo");
    say(&format!("helm install {} charts/logpipe --namespace {}", release.name, release.system));
    let shown = tokio::select! {
        shown = show(&node, &release) => shown,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    if shown.is_ok() {
        say("Everything is still running; Ctrl-C deletes the pipeline and the run's namespaces.");
        tokio::signal::ctrl_c().await?;
    }
    say("removing the pipeline, then the namespaces");
    release.remove(&node).await?;
    shown
}

async fn show(node: &Node, release: &Release) -> anyhow::Result<()> {
    release.up(node, 500).await?;
    say(&format!("LogPipeline {}/{PIPELINE} is Ready; starting {PODS} pods in {}", release.logging, release.apps));
    for n in 0..PODS {
        node.start_logger(&release.apps, &format!("logger-{n}"), LINES_PER_POD, 250).await?;
    }
    node.wait_pods(&release.apps, "app=logger", PODS, "Succeeded").await?;
    let es = data::elasticsearch(&node.elasticsearch)?;
    let index = release.index();
    let total = u64::from(LINES_PER_POD) * PODS as u64;
    let documents = node::wait_count(&es, &index, total, Duration::from_secs(120)).await?;

    println!("\npods of the pipeline in {}:", release.logging);
    for name in ["collector", "indexer"] {
        for pod in node.pods(&release.logging, &component(name)).await? {
            let image = pod.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.as_deref());
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            println!("  {name:<45} ready={:<5} {}", node::ready(&pod), image.unwrap_or_default());
        }
    }
    println!("\nlines written          {total}");
    println!("documents in the index {documents} ({index})");

    let terms = [("kubernetes.pod.name", json!("logger-0")), ("seq", json!(2))];
    let (found, hits) = data::search(&es, &index, &terms, 1).await?;
    println!("\nsearch kubernetes.pod.name=logger-0 seq=2: {found} document:");
    println!("{}", serde_json::to_string_pretty(&hits.first().cloned().unwrap_or_default())?);

    println!("\nLogPipeline {}/{PIPELINE}:", release.logging);
    for c in cluster::conditions(&node.client, &release.logging, PIPELINE).await? {
        println!("  {:<15} {:<6} {:<18} {}", c.type_, c.status, c.reason, c.message);
    }
    println!();
    Ok(())
}
