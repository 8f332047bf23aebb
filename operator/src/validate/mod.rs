//! Checks a LogPipeline's spec and resolves it into a [`Pipeline`]; pure, so every rule is table-tested.
//! The collector's and the indexer's configs are rendered here and checked by the collector's own rules, so a spec
//! the operator accepts is one the collector accepts.

mod config;
mod kafka;
pub use kafka::{ManagedUser, MANAGED_MECHANISM};
mod managed;
mod ownership;
mod policy;
mod state;

pub use ownership::ownership;
pub use policy::{Collection, Namespaces, Policy, STATE_ROOT};
pub use state::{earlier_state_dir, CARRIED_FROM_ANNOTATION};

use crate::crd::{LogPipeline, LogPipelineSpec};
use crate::model::{OperatorPods, Pipeline, Topic, Workload};
use crate::names::PipelineName;
use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// Settings of the operator that fill in what a spec leaves out, and limit what it may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// The logpipe-collector image for collectors and indexers.
    pub collector_image: String,
    pub policy: Policy,
    /// Where the operator runs: a managed Kafka admits its connections.
    pub operator: OperatorPods,
}

impl Defaults {
    /// This image and the default policy.
    pub fn new(collector_image: impl Into<String>) -> Self {
        Self { collector_image: collector_image.into(), policy: Policy::default(), operator: OperatorPods::default() }
    }
}

/// What the fetch step learnt from the Kafka cluster the spec names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub broker_count: usize,
}

/// Why a spec cannot be rolled out: the field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// Everything that can be checked from the spec alone.
pub fn validate(lp: &LogPipeline, defaults: &Defaults) -> Result<Pipeline, Invalid> {
    let namespace = lp.metadata.namespace.as_deref().unwrap_or("default");
    let name = lp.metadata.name.as_deref().ok_or_else(|| Invalid::new("metadata.name", "is required"))?;
    let name = PipelineName::new(namespace, name).map_err(|e| Invalid::new("metadata.name", e.to_string()))?;
    let spec = &lp.spec;
    defaults.policy.namespace(namespace)?;
    defaults.policy.images(spec)?;
    let collection = defaults.policy.collection(namespace, &spec.collector.filter)?;
    let uid = lp.metadata.uid.as_deref().unwrap_or_default();
    let (kafka, kafka_secrets, managed) =
        kafka::target(&name, &spec.kafka, uid, &defaults.operator, recorded(lp.status.as_ref()))?;
    let topic = kafka::topic(&name, &spec.kafka.topic)?;
    if let Some(cluster) = &managed {
        against_cluster(&topic, &Facts { broker_count: cluster.brokers as usize })?;
    }
    let secrets = config::secret_mounts(spec, kafka_secrets)?;
    let agent_config = config::agent(spec, &collection, &kafka, &topic)?;
    let indexer_config = config::indexer(&name, spec, &kafka, &topic, &secrets)?;
    let host_paths = config::host_paths(&spec.collector, &agent_config)?;
    let bases: Vec<String> = agent_config
        .tail
        .include
        .iter()
        .map(|p| logpipe_config::glob_base_dir(p.as_ref()).display().to_string())
        .collect();
    defaults.policy.host_paths("spec.collector.paths", &bases)?;
    defaults.policy.host_paths("spec.collector.extraHostPaths", &spec.collector.extra_host_paths)?;
    if spec.collector.state_dir.is_some() {
        let reason = "the operator derives the collectors' state directory (/var/lib/logpipe/<namespace>-<name>-<uid \
                      prefix>); remove the field: the checkpoints of the directory the collectors use now are \
                      carried over";
        return Err(Invalid::new("spec.collector.stateDir", reason));
    }
    let state_dir = name.state_dir(lp.metadata.uid.as_deref().unwrap_or_default());
    Ok(Pipeline {
        collector: collector_workload(spec, defaults)?,
        indexer: indexer_workload(spec, defaults)?,
        collection,
        host_paths,
        state_dir,
        earlier_state_dir: None,
        name,
        kafka,
        managed,
        topic,
        agent_config,
        indexer_config,
        secrets,
    })
}

/// What the status says the operator has made. A managed Kafka with a scaling operation but no recorded
/// listeners was made by a release that knew only `PLAINTEXT`.
fn recorded(status: Option<&crate::crd::LogPipelineStatus>) -> kafka::Recorded {
    let listeners = status.and_then(|s| {
        s.kafka_listeners.or(s.kafka_operation.as_ref().map(|_| crate::crd::ListenerSecurity::Plaintext))
    });
    kafka::Recorded { listeners }
}

/// What depends on the Kafka cluster the spec points at (for a managed one, the brokers it asks for).
pub fn against_cluster(topic: &Topic, facts: &Facts) -> Result<(), Invalid> {
    let brokers = facts.broker_count;
    if topic.replication_factor as usize > brokers {
        return Err(Invalid::new(
            "spec.kafka.topic.replicationFactor",
            format!("{} is more than the {brokers} broker(s) of the Kafka cluster", topic.replication_factor),
        ));
    }
    Ok(())
}

fn collector_workload(spec: &LogPipelineSpec, defaults: &Defaults) -> Result<Workload, Invalid> {
    let c = &spec.collector;
    Ok(Workload {
        image: image("spec.collector.image", c.image.as_ref(), defaults)?,
        replicas: 1,
        resources: c.resources.clone().unwrap_or_else(|| resources("50m", "64Mi", "512Mi")),
        // A node whose logs are not collected is a silent gap: tolerate every taint unless told otherwise.
        tolerations: c
            .tolerations
            .clone()
            .unwrap_or_else(|| vec![Toleration { operator: Some("Exists".into()), ..Default::default() }]),
        node_selector: c.node_selector.clone(),
        priority_class_name: c.priority_class_name.clone(),
    })
}

fn indexer_workload(spec: &LogPipelineSpec, defaults: &Defaults) -> Result<Workload, Invalid> {
    let i = &spec.indexer;
    let replicas = i.replicas.unwrap_or(2);
    if replicas < 0 {
        return Err(Invalid::new("spec.indexer.replicas", "must not be negative"));
    }
    Ok(Workload {
        image: image("spec.indexer.image", i.image.as_ref(), defaults)?,
        replicas,
        resources: i.resources.clone().unwrap_or_else(|| resources("100m", "128Mi", "1Gi")),
        tolerations: i.tolerations.clone().unwrap_or_default(),
        node_selector: i.node_selector.clone(),
        priority_class_name: None,
    })
}

fn image(field: &str, image: Option<&String>, defaults: &Defaults) -> Result<String, Invalid> {
    let image = image.unwrap_or(&defaults.collector_image);
    if image.trim().is_empty() || image.contains(char::is_whitespace) {
        return Err(Invalid::new(field, format!("{image:?} is not an image reference")));
    }
    Ok(image.clone())
}

fn resources(cpu: &str, memory: &str, memory_limit: &str) -> ResourceRequirements {
    let q = |s: &str| Quantity(s.to_owned());
    ResourceRequirements {
        requests: Some(BTreeMap::from([("cpu".to_owned(), q(cpu)), ("memory".to_owned(), q(memory))])),
        limits: Some(BTreeMap::from([("memory".to_owned(), q(memory_limit))])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
