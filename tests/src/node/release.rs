//! One installation of logpipe on the node, as a user makes it: a Helm release of the chart in its own namespace,
//! a LogPipeline in another, and the application pods whose logs it collects in a third. The end-to-end tests and
//! the demo use it.

use super::{Node, WAIT};
use crate::stack::{cluster, poll, StackError};
use logpipe_operator::crd::LogPipeline;
use serde_json::{json, Value};

/// The pipeline's name in its namespace.
pub const PIPELINE: &str = "logs";

/// The names one installation uses: its release, the operator's namespace, the pipeline's, the pods'.
pub struct Release {
    pub name: String,
    pub system: String,
    pub logging: String,
    pub apps: String,
}

impl Release {
    pub fn new(prefix: &str) -> Release {
        let id = crate::unique_name(prefix);
        Release {
            name: id.clone(),
            system: format!("{id}-sys"),
            logging: format!("{id}-log"),
            apps: format!("{id}-app"),
        }
    }

    /// `helm install` (or `upgrade`) of the chart with its defaults but for the namespace the operator watches,
    /// so that installations side by side leave each other's pipelines alone.
    pub fn helm(&self, node: &Node, action: &str, extra: &[&str]) -> Result<(), StackError> {
        // A Docker node's logs lie in the engine's container directory, which /var/log/pods links into: the
        // administrator allows it, as the README's install section says. The pipeline collects the pods' namespace,
        // not its own, so the administrator names its namespace for cluster-wide collection.
        let mut sets = vec![
            format!("watchNamespace={}", self.logging),
            format!("policy.allowedHostPaths={{/var/log/pods,/var/log/containers,{}}}", node.containers_dir.display()),
            format!("policy.clusterWideNamespaces={{{}}}", self.logging),
        ];
        sets.extend(extra.iter().map(|s| s.to_string()));
        node.helm(action, &self.name, &self.system, &sets)
    }

    /// Installs the chart, waits for the operator, and creates the pipeline's and the pods' namespaces.
    pub async fn install(&self, node: &Node) -> Result<(), StackError> {
        self.helm(node, "install", &[])?;
        node.wait_deployment_available(&self.system, &self.operator()).await?;
        node.create_namespace(&self.logging).await?;
        node.create_namespace(&self.apps).await
    }

    /// Installs the chart and applies the pipeline with two indexers; returns when the pipeline is Ready.
    pub async fn up(&self, node: &Node, indexer_batch: u32) -> Result<(), StackError> {
        self.install(node).await?;
        self.apply_pipeline(node, indexer_batch).await?;
        self.wait_ready(node, 2).await
    }

    /// The pipeline a Docker node needs: the engine's json-file logs are mounted besides /var/log/pods, which only
    /// links to them. Only the pods' namespace is collected; each namespace gets its own index.
    pub fn pipeline(&self, node: &Node, indexer_batch: u32) -> Value {
        json!({
            "apiVersion": "logpipe.dev/v1alpha1",
            "kind": "LogPipeline",
            "metadata": {"name": PIPELINE, "namespace": self.logging},
            "spec": {
                "kafka": {
                    "external": {"bootstrapServers": node.kafka},
                    "topic": {"name": format!("{}-logs", self.name), "partitions": 2, "replicationFactor": 1}
                },
                "collector": {
                    "extraHostPaths": [node.containers_dir],
                    "filter": {"includeNamespaces": [self.apps]}
                },
                "indexer": {
                    "replicas": 2,
                    "bulk": {"maxDocuments": indexer_batch},
                    "elasticsearch": {"url": node.elasticsearch},
                    "index": {"nameTemplate": "logs-{kubernetes.namespace}"},
                    "processors": [{"type": "parse_json", "field": "message"}]
                }
            }
        })
    }

    pub async fn apply_pipeline(&self, node: &Node, indexer_batch: u32) -> Result<(), StackError> {
        cluster::apply_pipeline(&node.client, &self.pipeline(node, indexer_batch)).await
    }

    /// The chart's name for the operator's Deployment.
    pub fn operator(&self) -> String {
        format!("{}-logpipe", self.name)
    }

    /// The indices the pods' documents go to.
    pub fn index(&self) -> String {
        format!("logs-{}*", self.apps)
    }

    /// Waits for Ready=True and the status columns users read: COLLECTORS 1/1, INDEXERS n/n.
    pub async fn wait_ready(&self, node: &Node, indexers: i32) -> Result<(), StackError> {
        let api = kube::Api::<LogPipeline>::namespaced(node.client.clone(), &self.logging);
        let wanted = format!("{indexers}/{indexers}");
        poll("the pipeline to be Ready with every pod ready", WAIT, || async {
            let status = api.get(PIPELINE).await.ok()?.status?;
            let ready = status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            let collectors = status.collector.as_ref().map(|c| c.summary.as_str()) == Some("1/1");
            let indexers = status.indexer.as_ref().map(|c| c.summary.as_str()) == Some(wanted.as_str());
            (ready && collectors && indexers).then_some(())
        })
        .await
    }

    /// Removes the installation as its uninstall steps say: the pipeline first, while the operator runs, so that its
    /// finalizer removes the pipeline's cluster-wide role; then the namespaces, the release with them.
    pub async fn remove(&self, node: &Node) -> Result<(), StackError> {
        let deleted = cluster::delete_pipeline(&node.client, &self.logging, PIPELINE).await;
        // helm uninstall, as the README says: it also removes the cluster-scoped objects (RBAC, the webhook
        // configuration), which deleting the namespaces would leave behind.
        let uninstalled = node.helm("uninstall", &self.name, &self.system, &[]);
        node.delete_namespaces(&[&self.apps, &self.logging, &self.system]).await;
        deleted.and(uninstalled)
    }
}

/// The label selector of one of the pipeline's components.
pub fn component(name: &str) -> String {
    format!("app.kubernetes.io/component={name}")
}
