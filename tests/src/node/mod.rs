//! The real node of `scripts/node.sh`: a kubelet running pods through a Docker engine, with its own control plane
//! on the engine's bridge. Tests here install logpipe as a user does (the chart, with Helm's engine) and watch what
//! the pods do.

pub mod release;

use crate::stack::{poll, StackError};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What `scripts/node.sh env` prints, read once.
pub struct Node {
    pub client: Client,
    pub kubeconfig: PathBuf,
    /// The Node object's name.
    pub name: String,
    /// Kafka and Elasticsearch on the engine's bridge, where pods reach them.
    pub kafka: String,
    pub elasticsearch: String,
    docker_host: String,
    /// The engine's `containers/` directory: the json-file logs that /var/log/pods links to.
    pub containers_dir: PathBuf,
    pub logger_image: String,
}

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs the real node. Run `scripts/test.sh`, or \
             `eval \"$(scripts/node.sh up)\"` before `cargo test`."
        ),
    }
}

fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> StackError {
    let what = what.into();
    move |source| StackError::Kube { what, source }
}

impl Node {
    pub async fn from_env() -> Node {
        let kubeconfig = PathBuf::from(required_env("LOGPIPE_NODE_KUBECONFIG"));
        let config = Kubeconfig::read_from(&kubeconfig).expect("the node's kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
            .await
            .expect("a client config for the node's apiserver");
        Node {
            client: Client::try_from(config).expect("a client for the node's apiserver"),
            kubeconfig,
            name: required_env("LOGPIPE_NODE_NAME"),
            kafka: required_env("LOGPIPE_NODE_KAFKA"),
            elasticsearch: required_env("LOGPIPE_NODE_ELASTICSEARCH"),
            docker_host: required_env("LOGPIPE_NODE_DOCKER_HOST"),
            containers_dir: PathBuf::from(required_env("LOGPIPE_NODE_CONTAINERS_DIR")),
            logger_image: required_env("LOGPIPE_NODE_LOGGER_IMAGE"),
        }
    }

    /// `helm install --create-namespace`, `helm upgrade` or `helm uninstall` of the repository's chart, by Helm's
    /// own engine.
    pub fn helm(&self, action: &str, release: &str, namespace: &str, sets: &[String]) -> Result<(), StackError> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut command = Command::new(crate::helm_python());
        command.arg(workspace.join("scripts/chart.py")).arg(action).arg("--kubeconfig").arg(&self.kubeconfig);
        command.args(["--release", release, "--namespace", namespace]);
        for set in sets {
            command.args(["--set", set]);
        }
        run(&mut command).map(drop)
    }

    /// Kills the process of each container of `pod` with SIGKILL, through the engine: a crash, not a deletion.
    pub fn kill_containers(&self, pod: &Pod) -> Result<(), StackError> {
        let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        for id in statuses.iter().filter_map(|c| c.container_id.as_deref()) {
            let id = id.trim_start_matches("docker://");
            run(Command::new("/usr/bin/docker").args(["--host", &self.docker_host, "kill", "--signal", "KILL", id]))?;
        }
        Ok(())
    }

    /// How many times the engine has rotated the log of each container of `pod` (json-file keeps `<id>-json.log.N`).
    pub fn rotations(&self, pod: &Pod) -> usize {
        let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        statuses
            .iter()
            .filter_map(|c| c.container_id.as_deref())
            .map(|id| id.trim_start_matches("docker://"))
            .map(|id| {
                let dir = self.containers_dir.join(id);
                let rotated = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().contains("-json.log.");
                std::fs::read_dir(dir).map(|d| d.flatten().filter(rotated).count()).unwrap_or(0)
            })
            .sum()
    }

    pub async fn create_namespace(&self, name: &str) -> Result<(), StackError> {
        // The label Kubernetes sets itself from 1.21 (the node runs 1.20): the chart's webhook selects by it.
        let labels = json!({"kubernetes.io/metadata.name": name});
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
            .map_err(|e| StackError::Manifest(e.to_string()))?;
        Api::<Namespace>::all(self.client.clone()).create(&PostParams::default(), &ns).await.map_err(kube(name))?;
        Ok(())
    }

    /// Deletes namespaces, best effort: the test is over, and one already gone is what we want.
    pub async fn delete_namespaces(&self, names: &[&str]) {
        let api = Api::<Namespace>::all(self.client.clone());
        for name in names {
            let _ = api.delete(name, &DeleteParams::default()).await;
        }
    }

    /// A pod of the test logger image that writes `lines` lines, `per_second` a second (in steps of ten), and exits.
    pub async fn start_logger(
        &self,
        namespace: &str,
        name: &str,
        lines: u32,
        per_second: u32,
    ) -> Result<(), StackError> {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "logger", "run": name}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "logger",
                    "image": self.logger_image,
                    "imagePullPolicy": "Never",
                    "env": [{"name": "LINES", "value": lines.to_string()}, {"name": "PACE", "value": (per_second / 10).max(1).to_string()}]
                }]
            }
        }))
        .map_err(|e| StackError::Manifest(e.to_string()))?;
        let api = Api::<Pod>::namespaced(self.client.clone(), namespace);
        // Admission refuses pods until the namespace's default ServiceAccount exists.
        poll("logger pod creation", WAIT, || async { api.create(&PostParams::default(), &pod).await.ok() }).await?;
        Ok(())
    }

    pub async fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<Pod>, StackError> {
        let api = Api::<Pod>::namespaced(self.client.clone(), namespace);
        let list = api.list(&ListParams::default().labels(selector)).await.map_err(kube(selector))?;
        Ok(list.items)
    }

    /// Waits until every pod matching `selector` has `phase` and there are `count` of them; returns them.
    pub async fn wait_pods(
        &self,
        namespace: &str,
        selector: &str,
        count: usize,
        phase: &str,
    ) -> Result<Vec<Pod>, StackError> {
        poll(&format!("{count} pods {selector} in {namespace} {phase}"), WAIT, || async {
            let pods = self.pods(namespace, selector).await.ok()?;
            let ready =
                pods.len() == count && pods.iter().all(|p| phase_is(p, phase) && (phase != "Running" || ready(p)));
            ready.then_some(pods)
        })
        .await
    }

    pub async fn wait_deployment_available(&self, namespace: &str, name: &str) -> Result<Deployment, StackError> {
        let api = Api::<Deployment>::namespaced(self.client.clone(), namespace);
        poll(&format!("Deployment {namespace}/{name} available"), WAIT, || async {
            let d = api.get_opt(name).await.ok()??;
            let (spec, status) = (d.spec.as_ref()?, d.status.as_ref()?);
            let want = spec.replicas.unwrap_or(1);
            let rolled = status.observed_generation == d.metadata.generation
                && status.updated_replicas == Some(want)
                && status.ready_replicas == Some(want)
                && status.replicas == Some(want);
            rolled.then_some(d)
        })
        .await
    }

    pub async fn daemon_set(&self, namespace: &str, name: &str) -> Result<DaemonSet, StackError> {
        Api::<DaemonSet>::namespaced(self.client.clone(), namespace).get(name).await.map_err(kube(name))
    }

    pub async fn deployment(&self, namespace: &str, name: &str) -> Result<Deployment, StackError> {
        Api::<Deployment>::namespaced(self.client.clone(), namespace).get(name).await.map_err(kube(name))
    }
}

/// How long a pod or workload may take to come up on the node: images are local, so seconds; the margin is for a
/// loaded CI machine.
pub const WAIT: Duration = Duration::from_secs(180);

/// Waits until `pattern` holds at least `total` documents and returns how many it holds: more is a duplicate,
/// which the caller's assertion reports.
pub async fn wait_count(
    es: &elasticsearch::Elasticsearch,
    pattern: &str,
    total: u64,
    timeout: Duration,
) -> Result<u64, StackError> {
    poll(&format!("{total} documents in {pattern}"), timeout, || async {
        let n = crate::stack::data::count(es, pattern).await.ok()?;
        (n >= total).then_some(n)
    })
    .await
}

pub fn phase_is(pod: &Pod, phase: &str) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase)
}

pub fn ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn run(command: &mut Command) -> Result<String, StackError> {
    let output = command.output().map_err(|e| StackError::Data(format!("{command:?}: {e}")))?;
    if !output.status.success() {
        return Err(StackError::Data(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
