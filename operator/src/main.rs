use anyhow::Context as _;
use clap::{Parser, Subcommand};
use kube::runtime::events::{Recorder, Reporter};
use logpipe_operator::leader::{Elector, LeaseConfig};
use logpipe_operator::metrics::Metrics;
use logpipe_operator::model::OperatorPods;
use logpipe_operator::reconcile::{self, Backoff, Context};
use logpipe_operator::validate::{Defaults, Namespaces, Policy};
use logpipe_operator::{admission, kafka};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_COLLECTOR_IMAGE: &str = concat!("ghcr.io/logpipe/logpipe-collector:", env!("CARGO_PKG_VERSION"));

#[derive(Parser)]
#[command(name = "logpipe-operator", version, about = "Reconciles LogPipeline resources")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller against the cluster of the pod or of KUBECONFIG.
    Run(Box<RunArgs>),
    /// Print the manifests a LogPipeline file becomes, without a cluster.
    Render {
        /// A LogPipeline manifest (YAML).
        #[arg(short, long)]
        file: PathBuf,
        #[arg(long, env = "LOGPIPE_COLLECTOR_IMAGE", default_value = DEFAULT_COLLECTOR_IMAGE)]
        collector_image: String,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        operator: OperatorArgs,
    },
}

/// Where the operator's own pods are: a managed Kafka's NetworkPolicy admits them.
#[derive(clap::Args)]
struct OperatorArgs {
    /// The namespace the operator runs in.
    #[arg(long, env = "POD_NAMESPACE", default_value = "logpipe-system")]
    operator_namespace: String,
    /// Labels of the operator's pods (comma-separated key=value).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = label,
        default_value = "app.kubernetes.io/name=logpipe,app.kubernetes.io/component=operator"
    )]
    operator_pod_labels: Vec<(String, String)>,
}

fn label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?} is not key=value"))?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

impl OperatorArgs {
    fn pods(self) -> OperatorPods {
        OperatorPods { namespace: self.operator_namespace, pod_labels: self.operator_pod_labels.into_iter().collect() }
    }
}

/// The cluster administrator's policy over what a LogPipeline may ask for (docs/security.md).
#[derive(clap::Args)]
struct PolicyArgs {
    /// Node directories collectors may read (comma-separated), with everything below them.
    #[arg(
        long,
        env = "LOGPIPE_ALLOWED_HOST_PATHS",
        value_delimiter = ',',
        default_value = "/var/log/pods,/var/log/containers"
    )]
    allowed_host_paths: Vec<PathBuf>,
    /// Honour the images a LogPipeline names for its collector, indexer and managed Kafka.
    #[arg(long, env = "LOGPIPE_ALLOW_IMAGE_OVERRIDES", default_value_t = false, action = clap::ArgAction::Set)]
    allow_image_overrides: bool,
    /// Namespaces whose LogPipelines are rolled out (comma-separated); `*` for every namespace.
    #[arg(long, env = "LOGPIPE_PIPELINE_NAMESPACES", value_delimiter = ',', default_value = "*")]
    pipeline_namespaces: Vec<String>,
    /// Namespaces whose LogPipelines may collect other namespaces' logs (comma-separated); `*` for every
    /// namespace. A pipeline elsewhere collects its own namespace's logs only.
    #[arg(long, env = "LOGPIPE_CLUSTER_WIDE_NAMESPACES", value_delimiter = ',', default_value = "")]
    cluster_wide_namespaces: Vec<String>,
}

impl PolicyArgs {
    fn defaults(self, collector_image: String, operator: OperatorArgs) -> Defaults {
        let policy = Policy {
            host_paths: self.allowed_host_paths,
            image_overrides: self.allow_image_overrides,
            pipeline_namespaces: Namespaces::parse(&self.pipeline_namespaces),
            cluster_wide: Namespaces::parse(&self.cluster_wide_namespaces),
        };
        Defaults { collector_image, policy, operator: operator.pods() }
    }
}

/// The validating admission webhook (docs/security.md): refusals at `kubectl apply`.
#[derive(clap::Args)]
struct WebhookArgs {
    /// Serve the webhook over HTTPS at this address. Empty: no webhook.
    #[arg(long, default_value = "")]
    webhook_listen: String,
    /// Names (or IP addresses) the API server reaches the webhook by, for its certificate (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "logpipe-operator-webhook.logpipe-system.svc")]
    webhook_hosts: Vec<String>,
    /// The Secret, in the operator's namespace, that keeps the webhook's CA and certificate.
    #[arg(long, default_value = "logpipe-operator-webhook-tls")]
    webhook_secret: String,
    /// The ValidatingWebhookConfiguration whose caBundle the operator keeps equal to its CA.
    #[arg(long)]
    webhook_configuration: Option<String>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Image of collectors and indexers when a LogPipeline names none.
    #[arg(long, env = "LOGPIPE_COLLECTOR_IMAGE", default_value = DEFAULT_COLLECTOR_IMAGE)]
    collector_image: String,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    operator: OperatorArgs,
    #[command(flatten)]
    webhook: WebhookArgs,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    http_listen: String,
    /// Hold a Lease while reconciling, so several replicas can run (one active).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    #[arg(long, default_value = "logpipe-operator")]
    lease_name: String,
    /// This replica's name in the lease. Default: the pod name, else the host name and process id.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a lease holds without renewal.
    #[arg(long, default_value_t = 15)]
    lease_seconds: u64,
    /// Reconcile the LogPipelines of this namespace only. Default: every namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// `json` or `text`.
    #[arg(long, default_value = "json")]
    log_format: String,
    /// Reach every managed Kafka at this address instead of its bootstrap Service (an operator run outside the
    /// cluster, through a port-forward).
    #[arg(long, env = "LOGPIPE_KAFKA_ADMIN_ADDRESS")]
    kafka_admin_address: Option<String>,
    /// Most partitions of a managed Kafka reassigned at once while scaling.
    #[arg(long, default_value_t = 10)]
    kafka_max_moves: usize,
    /// Seconds between looks at a managed Kafka that is scaling or restarting.
    #[arg(long, default_value_t = 5)]
    kafka_poll_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Render { file, collector_image, policy, operator } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let out = logpipe_operator::render::render(&text, &policy.defaults(collector_image, operator))?;
            print!("{out}");
            Ok(())
        }
        Command::Run(args) => run(*args).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logs(&args.log_format);
    let client = kube::Client::try_default().await.context("connecting to the Kubernetes API")?;
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind(&args.http_listen)
        .await
        .with_context(|| format!("listening on {}", args.http_listen))?;
    tokio::spawn(logpipe_http::serve(listener, Arc::clone(&metrics)));
    let defaults = args.policy.defaults(args.collector_image, args.operator);
    if !args.webhook.webhook_listen.is_empty() {
        let judge = admission::Judge {
            defaults: defaults.clone(),
            scope: args.namespace.clone(),
            metrics: Arc::clone(&metrics),
        };
        start_webhook(&client, args.webhook, judge).await?;
    }
    metrics.set_started();
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let elector = args.leader_election.then(|| {
        let config = LeaseConfig {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            identity: identity.clone(),
            duration: Duration::from_secs(args.lease_seconds),
        };
        Elector::new(client.clone(), config)
    });
    if let Some(elector) = &elector {
        tracing::info!(%identity, "waiting for the leader lease");
        elector.acquire().await?;
    }
    metrics.set_leader(true);
    tracing::info!(%identity, "reconciling LogPipelines");
    let reporter = Reporter { controller: "logpipe-operator".into(), instance: Some(identity) };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        defaults,
        metrics: Arc::clone(&metrics),
        backoff: Backoff::default(),
        kafka: kafka::Settings {
            admin_address: args.kafka_admin_address,
            poll: Duration::from_secs(args.kafka_poll_seconds.max(1)),
            max_moves: args.kafka_max_moves.max(1),
            ..kafka::Settings::default()
        },
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let namespace = args.namespace.clone();
    let controller = tokio::spawn(async move {
        let stopped = async move {
            let _ = stopped.await;
        };
        reconcile::run(ctx, namespace.as_deref(), stopped).await;
    });
    let outcome = tokio::select! {
        _ = shutdown_signal() => Ok(()),
        lost = hold(elector.as_ref()) => Err(lost),
    };
    let _ = stop.send(());
    let _ = controller.await;
    if let Some(elector) = &elector {
        elector.release().await;
    }
    // Losing the lease ends the process: the pod restarts as a standby rather than reconcile next to a new leader.
    outcome.map_err(anyhow::Error::from)
}

/// Every replica serves the webhook, leader or not: the Service sends the API server to any of them.
async fn start_webhook(client: &kube::Client, args: WebhookArgs, judge: admission::Judge) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.webhook_listen)
        .await
        .with_context(|| format!("listening on {}", args.webhook_listen))?;
    let settings = admission::Settings {
        namespace: judge.defaults.operator.namespace.clone(),
        secret: args.webhook_secret,
        configuration: args.webhook_configuration,
        hosts: args.webhook_hosts,
    };
    admission::start(client.clone(), settings, listener, judge).await.context("starting the admission webhook")?;
    tracing::info!(address = %args.webhook_listen, path = admission::PATH, "serving the admission webhook");
    Ok(())
}

async fn hold(elector: Option<&Elector>) -> logpipe_operator::leader::LeaderError {
    match elector {
        Some(e) => e.hold().await,
        None => std::future::pending().await,
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "text" {
        builder.init();
    } else {
        builder.json().init();
    }
}
