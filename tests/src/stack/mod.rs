//! The whole pipeline on one machine, as a cluster would run it: the operator against the test apiserver turns
//! `examples/local-pipeline.yaml` into a topic and rendered configs; the collector agent and the indexer run as
//! local processes with those configs, the agent tailing generated pod logs in the kubelet's layout. The demo
//! (`scripts/demo.sh`) and the end-to-end test drive it.

mod binaries;
pub mod cluster;
pub mod data;
pub mod logs;
mod process;

pub use binaries::Binaries;
pub use cluster::Condition;

use elasticsearch::Elasticsearch;
use logs::{LogWriter, PodSpec};
use process::Process;
use serde_json::{json, Value};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Manifest(String),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("Elasticsearch: {0}")]
    Elasticsearch(#[from] elasticsearch::Error),
    #[error("Elasticsearch client: {0}")]
    ElasticsearchClient(#[from] elasticsearch::http::transport::BuildError),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("{0}")]
    Data(String),
    #[error("{name} exited ({status}); its log: {}", log.display())]
    Exited { name: &'static str, status: String, log: PathBuf },
    #[error("{}: {reason}", path.display())]
    Binary { path: PathBuf, reason: String },
}

impl StackError {
    fn io(path: &Path, source: std::io::Error) -> StackError {
        StackError::Io { path: path.to_path_buf(), source }
    }
}

/// Polls `check` every 50 ms until it yields `Some`, or fails after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T, StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(StackError::Timeout(what.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where a stack runs and what it talks to.
pub struct StackOptions {
    /// Names the namespaces, the node and the topic, so runs never see each other's data.
    pub run: String,
    /// Logs, configs and checkpoints of the processes, and the pod log files.
    pub dir: PathBuf,
    pub binaries: Binaries,
    /// The LogPipeline manifest (YAML); its namespace and topic are replaced by the run's, its servers by these.
    pub pipeline: String,
    pub kafka: String,
    pub elasticsearch: String,
}

pub struct Stack {
    pub client: kube::Client,
    pub namespace: String,
    pub name: String,
    pub topic: String,
    pub bootstrap: String,
    pub node: String,
    pub writer: LogWriter,
    pub es: Elasticsearch,
    options: StackOptions,
    operator: Option<Process>,
    agent: Option<Process>,
    indexer: Option<Process>,
    configs: (PathBuf, PathBuf),
    pods: Vec<PodSpec>,
}

impl Stack {
    /// Brings the pipeline up: operator, pipeline (ConfigValid and KafkaReady), node, pods, agent and indexer.
    pub async fn start(options: StackOptions) -> Result<Stack, StackError> {
        let client = kube::Client::try_default()
            .await
            .map_err(|source| StackError::Kube { what: "KUBECONFIG".into(), source })?;
        let pipeline = pipeline_for_run(&options)?;
        let name = pipeline["metadata"]["name"].as_str().ok_or(StackError::Manifest("no metadata.name".into()))?;
        let name = name.to_owned();
        let (namespace, topic, bootstrap) = (options.run.clone(), topic_for_run(&options.run), options.kafka.clone());

        cluster::apply_crd(&client).await?;
        cluster::create_namespace(&client, &namespace, json!({})).await?;
        // The pipeline's namespace is the administrator's, as the chart's release namespace is: it collects the
        // pods of the run's other namespaces.
        let operator = Process::spawn(
            "operator",
            &options.binaries.operator,
            &[
                "run",
                "--http-listen",
                &loopback_address()?,
                "--leader-election=false",
                "--namespace",
                &namespace,
                "--cluster-wide-namespaces",
                &namespace,
            ],
            &[("RUST_LOG", "info")],
            &options.dir,
        )?;
        cluster::apply_pipeline(&client, &pipeline).await?;
        cluster::wait_true(&client, &namespace, &name, &["ConfigValid", "KafkaReady"]).await?;

        let node = format!("{}-node", options.run);
        cluster::register_node(&client, &node).await?;
        let pods = logs::pods(&options.run);
        let uids = cluster::create_pods(&client, &node, &pods).await?;
        let root = options.dir.join("pods");
        let writer = LogWriter::new(&root, &pods, &uids)?;
        let configs = Self::write_configs(&client, &options, &namespace, &name, &node, &root).await?;
        let es = data::elasticsearch(&options.elasticsearch)?;
        let mut stack = Stack {
            client,
            namespace,
            name,
            topic,
            bootstrap,
            node,
            writer,
            es,
            options,
            operator: Some(operator),
            agent: None,
            indexer: None,
            configs,
            pods,
        };
        stack.start_agent()?;
        stack.start_indexer()?;
        Ok(stack)
    }

    /// The operator's rendered configs, with what a pod gets from its volumes and downward API replaced by this
    /// machine's: the log directory, a state directory, the node's name, and loopback listeners.
    async fn write_configs(
        client: &kube::Client,
        options: &StackOptions,
        namespace: &str,
        name: &str,
        node: &str,
        root: &Path,
    ) -> Result<(PathBuf, PathBuf), StackError> {
        let agent = cluster::config_file(client, namespace, &format!("{name}-collector"), "agent.yaml").await?;
        let mut agent: Value = yaml(&agent)?;
        agent["tail"]["include"] = json!([LogWriter::glob(root)]);
        agent["state_dir"] = json!(options.dir.join("agent-state"));
        agent["kubernetes"]["node_name"] = json!(node);
        agent["http_listen"] = json!(loopback_address()?);
        let indexer = cluster::config_file(client, namespace, &format!("{name}-indexer"), "indexer.yaml").await?;
        let mut indexer: Value = yaml(&indexer)?;
        indexer["http_listen"] = json!(loopback_address()?);
        // The test broker never expires a crashed member of a consumer group (Kafka does, after
        // session.timeout.ms), so a restart after kill -9 would wait for the whole rebalance timeout. A static
        // membership id lets the restarted indexer take the dead one's place at once, as in the collector's tests.
        indexer["kafka"]["properties"]["group.instance.id"] = json!(format!("{}-indexer", options.run));
        let paths = (options.dir.join("agent.yaml"), options.dir.join("indexer.yaml"));
        for (path, config) in [(&paths.0, &agent), (&paths.1, &indexer)] {
            let text = serde_yaml::to_string(config).map_err(|e| StackError::Manifest(e.to_string()))?;
            std::fs::write(path, text).map_err(|e| StackError::io(path, e))?;
        }
        Ok(paths)
    }

    pub fn start_agent(&mut self) -> Result<(), StackError> {
        self.agent = Some(self.collector("agent", &self.configs.0)?);
        Ok(())
    }

    pub fn start_indexer(&mut self) -> Result<(), StackError> {
        self.indexer = Some(self.collector("indexer", &self.configs.1)?);
        Ok(())
    }

    /// `logpipe-collector <mode> --config <config>`, logging to `<mode>.log`.
    fn collector(&self, mode: &'static str, config: &Path) -> Result<Process, StackError> {
        let config = config.display().to_string();
        Process::spawn(mode, &self.options.binaries.collector, &[mode, "--config", &config], &[], &self.options.dir)
    }

    /// SIGKILL: the agent loses whatever it had read but not checkpointed.
    pub fn kill_agent(&mut self) -> Result<(), StackError> {
        self.agent.take().map_or(Ok(()), Process::kill_hard)
    }

    /// SIGKILL: the indexer loses its in-flight bulks and uncommitted offsets.
    pub fn kill_indexer(&mut self) -> Result<(), StackError> {
        self.indexer.take().map_or(Ok(()), Process::kill_hard)
    }

    /// The index pattern of this run's documents.
    pub fn indices(&self) -> String {
        format!("logs-{}-*", self.options.run)
    }

    pub fn pods(&self) -> &[PodSpec] {
        &self.pods
    }

    pub fn log_dir(&self) -> &Path {
        &self.options.dir
    }

    /// Waits until Elasticsearch holds a document for every line written; fails early if a process died.
    pub async fn wait_indexed(&mut self, timeout: Duration) -> Result<u64, StackError> {
        let want = self.writer.written();
        let deadline = Instant::now() + timeout;
        loop {
            for process in [&mut self.operator, &mut self.agent, &mut self.indexer].into_iter().flatten() {
                process.check_running()?;
            }
            let n = data::count(&self.es, &self.indices()).await?;
            if n >= want {
                return Ok(n);
            }
            if Instant::now() > deadline {
                // Says which half stalled: the agent (Kafka short too) or the indexer.
                let in_kafka = data::topic_lines(&self.bootstrap, &self.topic).await?.values().sum::<usize>();
                let what =
                    format!("{want} documents in {} (have {n}; {} holds {in_kafka})", self.indices(), self.topic);
                return Err(StackError::Timeout(what));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn conditions(&self) -> Result<Vec<Condition>, StackError> {
        cluster::conditions(&self.client, &self.namespace, &self.name).await
    }

    /// Stops what the stack started and removes what it created: the pipeline first, while the operator runs,
    /// so its finalizer deletes the run's topic; then the processes, the namespaces and the node.
    pub async fn shut_down(mut self) -> Result<(), StackError> {
        self.agent.take();
        self.indexer.take();
        let deleted = cluster::delete_pipeline(&self.client, &self.namespace, &self.name).await;
        self.operator.take();
        let mut namespaces = vec![self.namespace.clone()];
        namespaces.extend(self.pods.iter().map(|p| p.namespace.clone()));
        cluster::clean_up(&self.client, &namespaces, &self.node).await;
        deleted
    }
}

/// The pipeline of the options' manifest, in the run's namespace with the run's topic (deleted with the
/// pipeline), pointed at the options' servers.
fn pipeline_for_run(options: &StackOptions) -> Result<Value, StackError> {
    let mut pipeline: Value = yaml(&options.pipeline)?;
    pipeline["metadata"]["namespace"] = json!(options.run);
    let kafka = &mut pipeline["spec"]["kafka"];
    kafka["external"]["bootstrapServers"] = json!(options.kafka);
    kafka["topic"]["name"] = json!(topic_for_run(&options.run));
    kafka["topic"]["deleteOnRemoval"] = json!(true);
    pipeline["spec"]["indexer"]["elasticsearch"]["url"] = json!(options.elasticsearch);
    Ok(pipeline)
}

fn topic_for_run(run: &str) -> String {
    format!("logpipe.{run}")
}

fn yaml(text: &str) -> Result<Value, StackError> {
    serde_yaml::from_str(text).map_err(|e| StackError::Manifest(e.to_string()))
}

/// A free port on loopback, as `127.0.0.1:PORT`.
fn loopback_address() -> Result<String, StackError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| StackError::io(Path::new("127.0.0.1:0"), e))?;
    let address = listener.local_addr().map_err(|e| StackError::io(Path::new("127.0.0.1:0"), e))?;
    Ok(address.to_string())
}
