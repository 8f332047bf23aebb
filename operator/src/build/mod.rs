//! The objects a valid pipeline needs, as pure functions of the [`Pipeline`]: same input, same objects, so a
//! server-side apply of an unchanged spec changes nothing and a test can compare them field by field.

mod collector;
mod config_maps;
mod indexer;
pub mod kafka;
mod pod;
mod rbac;

use crate::model::Pipeline;
use crate::names::PipelineName;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

/// Label on every object the operator creates; the controller watches children by it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "logpipe-operator");
/// Pod template annotation: a hash of the component's config, so pods roll when it changes.
pub const CONFIG_HASH_ANNOTATION: &str = "logpipe.dev/config-hash";
/// Labels of cluster-scoped objects, which cannot have a namespaced owner: they name their pipeline instead.
pub const PIPELINE_NAMESPACE_LABEL: &str = "logpipe.dev/pipeline-namespace";
pub const PIPELINE_NAME_LABEL: &str = "logpipe.dev/pipeline-name";

/// Everything one pipeline runs on, in the order it is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub service_accounts: Vec<ServiceAccount>,
    pub cluster_role: ClusterRole,
    pub cluster_role_binding: ClusterRoleBinding,
    pub config_maps: Vec<ConfigMap>,
    pub daemon_set: DaemonSet,
    pub deployment: Deployment,
    /// Hash of both rendered configs, reported in the status.
    pub config_hash: String,
}

/// `owner` is the LogPipeline's controller reference; none when rendering without a cluster.
pub fn build(p: &Pipeline, owner: Option<&OwnerReference>) -> Desired {
    let maps = config_maps::build(p, owner);
    let collector_hash = config_maps::hash(&maps.collector);
    let indexer_hash = config_maps::hash(&maps.indexer);
    Desired {
        service_accounts: rbac::service_accounts(p, owner),
        cluster_role: rbac::cluster_role(p),
        cluster_role_binding: rbac::cluster_role_binding(p),
        daemon_set: collector::daemon_set(p, owner, &collector_hash),
        deployment: indexer::deployment(p, owner, &indexer_hash),
        config_hash: format!("{collector_hash}-{indexer_hash}"),
        config_maps: vec![maps.collector, maps.indexer],
    }
}

/// The component a child belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Collector,
    Indexer,
    KafkaController,
    KafkaBroker,
}

impl Component {
    fn as_str(self) -> &'static str {
        match self {
            Component::Collector => "collector",
            Component::Indexer => "indexer",
            Component::KafkaController => "kafka-controller",
            Component::KafkaBroker => "kafka-broker",
        }
    }
}

/// The labels that select a component's pods; stable, since a Deployment's selector cannot change.
pub(crate) fn selector_labels(name: &PipelineName, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "logpipe".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), name.name().to_owned()),
        ("app.kubernetes.io/component".to_owned(), component.as_str().to_owned()),
    ])
}

fn labels(name: &PipelineName, component: Component) -> BTreeMap<String, String> {
    let mut labels = selector_labels(name, component);
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    labels
}

/// Metadata of a namespaced child.
fn meta(name: &PipelineName, object: String, component: Component, owner: Option<&OwnerReference>) -> ObjectMeta {
    ObjectMeta {
        name: Some(object),
        namespace: Some(name.namespace().to_owned()),
        labels: Some(labels(name, component)),
        owner_references: owner.map(|o| vec![o.clone()]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
