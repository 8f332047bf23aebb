//! The whole pipeline on this machine, for a newcomer to watch; `scripts/demo.sh` brings up what it needs and runs
//! this. With `--node` it installs logpipe on the real node of `scripts/node.sh` (the chart, the project's images,
//! pods writing logs); without, it runs the operator, agent and indexer as local processes. Either way it prints
//! what arrived where, and Ctrl-C stops everything it started and deletes what it created.

mod local;
mod node;

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        None => local::run().await,
        Some("--node") => node::run().await,
        Some(other) => anyhow::bail!("unknown argument {other:?}: logpipe-demo [--node]"),
    }
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set: run me through scripts/demo.sh"))
}

fn say(text: &str) {
    eprintln!("demo: {text}");
}
