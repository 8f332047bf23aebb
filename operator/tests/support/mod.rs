//! An operator running in-process against the test kube-apiserver, scoped to a namespace of its own so tests can
//! run side by side, and helpers to watch what it does.
// Each test binary uses a part of this module.
#![allow(dead_code)]

pub mod kubelet;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client};
use logpipe_operator::crd::LogPipeline;
use logpipe_operator::kafka::Settings as KafkaSettings;
use logpipe_operator::metrics::Metrics;
use logpipe_operator::reconcile::{self, Context};
use logpipe_operator::validate::Defaults;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Operator {
    pub client: Client,
    pub namespace: String,
    pub pipelines: Api<LogPipeline>,
    /// What the next `restart` runs with: the default policy unless a test changes it.
    pub defaults: Defaults,
    kafka: KafkaSettings,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Operator {
    /// Installs the CRD from `crds/`, creates a namespace, and starts the controller for it.
    pub async fn start(prefix: &str) -> Operator {
        Self::start_with(prefix, KafkaSettings::default()).await
    }

    /// As `start`, with these settings for managed Kafka clusters.
    pub async fn start_with(prefix: &str, kafka: KafkaSettings) -> Operator {
        capture_logs();
        let client = logpipe_tests::kube_client().await;
        install_crd(&client).await;
        let namespace = logpipe_tests::unique_name(prefix);
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
        let pipelines = Api::namespaced(client.clone(), &namespace);
        let defaults = Defaults::new("logpipe/collector:test");
        let mut op = Operator { client, namespace, pipelines, defaults, kafka, stop: None, task: None };
        op.restart();
        op
    }

    /// Starts the controller again after `stop`: a new operator process, as far as the cluster can tell.
    pub fn restart(&mut self) {
        let client = self.client.clone();
        let ctx = Arc::new(Context {
            client: client.clone(),
            recorder: Recorder::new(client.clone(), Reporter { controller: "logpipe-operator".into(), instance: None }),
            defaults: self.defaults.clone(),
            metrics: Arc::new(Metrics::default()),
            kafka: self.kafka.clone(),
            backoff: Default::default(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let ns = self.namespace.clone();
        let task = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.await;
            };
            reconcile::run(ctx, Some(&ns), stopped).await;
        });
        self.stop = Some(stop);
        self.task = Some(task);
    }

    /// Stops the controller (as a crash would, from the cluster's point of view: nothing is cleaned up).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub async fn apply(&self, pipeline: serde_json::Value) {
        let name = pipeline["metadata"]["name"].as_str().unwrap().to_owned();
        let params = PatchParams::apply("test").force();
        self.pipelines.patch(&name, &params, &Patch::Apply(&pipeline)).await.unwrap();
    }

    /// Waits until the pipeline's condition `kind` has `status`, and returns its message.
    pub async fn condition(&self, name: &str, kind: &str, status: &str) -> String {
        let what = format!("{name}: condition {kind}={status}");
        logpipe_tests::wait_for(&what, TIMEOUT, || async {
            let lp = self.pipelines.get(name).await.ok()?;
            let generation = lp.metadata.generation;
            let status_ = lp.status?;
            let c = status_.conditions.iter().find(|c| c.type_ == kind)?;
            (c.status == status && status_.observed_generation == generation).then(|| c.message.clone())
        })
        .await
    }
}

/// A pipeline against the test Kafka and Elasticsearch (loopback), one broker, so replication factor 1.
pub fn pipeline(name: &str, node_label: &str) -> serde_json::Value {
    json!({
        "apiVersion": "logpipe.dev/v1alpha1",
        "kind": "LogPipeline",
        "metadata": {"name": name},
        "spec": {
            "collector": {"nodeSelector": {"logpipe.dev/test-node": node_label}},
            "kafka": {
                "external": {"bootstrapServers": logpipe_tests::kafka_bootstrap()},
                "topic": {"name": format!("{name}-logs"), "partitions": 2, "replicationFactor": 1, "deleteOnRemoval": true}
            },
            "indexer": {"replicas": 1, "elasticsearch": {"url": logpipe_tests::elasticsearch_url()}}
        }
    })
}

/// The operator's log in the test's output (shown when a test fails, or with `--nocapture`); `RUST_LOG` overrides.
fn capture_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("logpipe_operator=info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

async fn install_crd(client: &Client) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/logpipeline.yaml");
    let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let name = crd.metadata.name.clone().unwrap();
    api.patch(&name, &PatchParams::apply("logpipe-tests").force(), &Patch::Apply(&crd)).await.unwrap();
    logpipe_tests::wait_for("the LogPipeline CRD to be established", TIMEOUT, || async {
        let crd = api.get(&name).await.ok()?;
        let established = crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True");
        established.then_some(())
    })
    .await;
}
