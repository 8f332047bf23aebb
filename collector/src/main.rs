use anyhow::Context;
use clap::{Parser, Subcommand};
use logpipe_collector::agent::{Agent, AgentError, AgentMetrics, Until};
use logpipe_collector::config::{self, AgentConfig, IndexerConfig};
use logpipe_collector::indexer::{Indexer, IndexerMetrics};
use logpipe_collector::metadata::{self, Update};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// logpipe's data plane: the node agent (pod logs to Kafka) and the indexer (Kafka to Elasticsearch).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tail log files and deliver every line exactly once to the configured sink.
    Agent {
        #[arg(long, short)]
        config: PathBuf,
        /// Exit once every file is read to its end and every record acknowledged, instead of following files.
        #[arg(long)]
        once: bool,
    },
    /// Consume the pipeline topic and write every record to Elasticsearch exactly once in effect.
    Indexer {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check an agent or indexer config file without running it (an indexer config has an `elasticsearch` section).
    Validate {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    // Logs go to stderr: stdout may be the agent's sink.
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match Cli::parse().command {
        Command::Agent { config, once } => {
            run_agent(config::load(&config)?, if once { Until::CaughtUp } else { Until::Stopped })
        }
        Command::Indexer { config } => run_indexer(config::load(&config)?),
        Command::Validate { config } => {
            let kind = if is_indexer_config(&config)? {
                config::load::<IndexerConfig>(&config)?;
                "indexer"
            } else {
                config::load::<AgentConfig>(&config)?;
                "agent"
            };
            println!("{}: valid {kind} config", config.display());
            Ok(())
        }
    }
}

fn is_indexer_config(path: &std::path::Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(value.get("elasticsearch").is_some())
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr`, if set.
fn serve_http<M: logpipe_collector::http::Health>(
    runtime: &tokio::runtime::Runtime,
    addr: Option<&str>,
    metrics: &Arc<M>,
) -> anyhow::Result<()> {
    let Some(addr) = addr else { return Ok(()) };
    let listener =
        runtime.block_on(tokio::net::TcpListener::bind(addr)).with_context(|| format!("listening on {addr}"))?;
    let served = Arc::clone(metrics);
    runtime.spawn(async move {
        if let Err(error) = logpipe_collector::http::serve(listener, served).await {
            tracing::error!(%error, "the metrics and health endpoint stopped");
        }
    });
    Ok(())
}

fn run_indexer(config: IndexerConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let metrics = Arc::new(IndexerMetrics::default());
    serve_http(&runtime, config.http_listen.as_deref(), &metrics)?;
    runtime.block_on(async {
        let indexer = Indexer::start(config, metrics).await.context("starting the indexer")?;
        indexer.run(terminated()).await.context("indexer")
    })
}

fn run_agent(config: AgentConfig, until: Until) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let signals = Arc::clone(&stop);
    runtime.spawn(async move {
        terminated().await;
        tracing::info!("stopping: flushing in-flight records and writing checkpoints");
        signals.store(true, Ordering::Relaxed);
    });
    let metrics = Arc::new(AgentMetrics::default());
    serve_http(&runtime, config.http_listen.as_deref(), &metrics)?;
    let pod_updates = start_pod_watch(&config, &runtime)?;
    let mut agent = match Agent::new(config, metrics, pod_updates, &stop) {
        Ok(agent) => agent,
        Err(AgentError::StoppedStarting) => {
            tracing::info!("stopped while starting; nothing was read or sent");
            return Ok(());
        }
        Err(e) => return Err(e).context("starting the agent"),
    };
    let result = agent.run(&stop, until);
    let counters = agent.counters();
    tracing::info!(
        lines = counters.lines,
        bytes = counters.bytes,
        parse_errors = counters.parse_errors,
        "agent stopped"
    );
    drop(runtime);
    Ok(result?)
}

/// The pod watch, when `kubernetes.metadata` resolves to enabled.
fn start_pod_watch(
    config: &AgentConfig,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Option<std::sync::mpsc::Receiver<Update>>> {
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    if !config.kubernetes.metadata.resolve(in_cluster) {
        anyhow::ensure!(
            !config.filter.needs_metadata(),
            "filter label selectors need pod metadata, and kubernetes.metadata is auto outside a pod: set it to enabled"
        );
        return Ok(None);
    }
    let node = config
        .kubernetes
        .node_name
        .clone()
        .or_else(|| std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()))
        .context("pod metadata needs this node's name: set kubernetes.node_name or NODE_NAME")?;
    // Collecting one namespace, the agent needs (and may only have) the right to read that namespace's pods.
    let namespace = match config.filter.include_namespaces.as_slice() {
        [only] => Some(only.as_str()),
        _ => None,
    };
    tracing::info!(node, namespace, "watching this node's pods for metadata");
    Ok(Some(runtime.block_on(metadata::start(&node, namespace)).context("starting the pod watch")?))
}
