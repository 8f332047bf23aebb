//! The objects a valid pipeline needs, as pure functions of the [`Pipeline`]: same input, same objects, so a
//! server-side apply of an unchanged spec changes nothing and a test can compare them field by field.

mod collector;
mod config_maps;
pub(crate) use config_maps::digest;
mod indexer;
pub mod kafka;
mod pod;
mod rbac;

use crate::model::{ManagedCluster, Pipeline};
use crate::names::PipelineName;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

/// Label on every object the operator creates; the controller watches children by it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "logpipe-operator");
/// Pod template annotation: a hash of the component's config, so pods roll when it changes.
pub const CONFIG_HASH_ANNOTATION: &str = "logpipe.dev/config-hash";
/// Labels of cluster-scoped objects, which cannot have a namespaced owner: they name their pipeline instead.
pub const PIPELINE_NAMESPACE_LABEL: &str = "logpipe.dev/pipeline-namespace";
pub const PIPELINE_NAME_LABEL: &str = "logpipe.dev/pipeline-name";

/// Everything one pipeline runs on, in the order it is applied: a managed Kafka first (its clients need it), then
/// identities before the workloads that run as them, configs before the pods that mount them.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub children: Vec<Child>,
    /// Hash of both rendered configs, reported in the status.
    pub config_hash: String,
}

/// One object the operator applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Child {
    ServiceAccount(ServiceAccount),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    Role(Role),
    RoleBinding(RoleBinding),
    ConfigMap(ConfigMap),
    Service(Service),
    PodDisruptionBudget(PodDisruptionBudget),
    NetworkPolicy(NetworkPolicy),
    StatefulSet(StatefulSet),
    DaemonSet(DaemonSet),
    Deployment(Deployment),
}

/// `owner` is the LogPipeline's controller reference; none when rendering without a cluster. `kafka` is the
/// managed cluster at the size it runs now (scaling changes it one step at a time), none for an external one.
pub fn build(p: &Pipeline, owner: Option<&OwnerReference>, kafka: Option<&ManagedCluster>) -> Desired {
    let maps = config_maps::build(p, owner);
    let collector_hash = config_maps::hash(&maps.collector);
    let indexer_hash = config_maps::hash(&maps.indexer);
    let mut children = kafka.map(|k| kafka::build(&p.name, k, owner).into_children()).unwrap_or_default();
    children.extend(rbac::service_accounts(p, owner).into_iter().map(Child::ServiceAccount));
    children.push(Child::ClusterRole(rbac::cluster_role(p)));
    children.push(Child::ClusterRoleBinding(rbac::cluster_role_binding(p)));
    if let Some((role, binding)) = rbac::namespace_role(p, owner) {
        children.extend([Child::Role(role), Child::RoleBinding(binding)]);
    }
    children.push(Child::ConfigMap(maps.collector.clone()));
    children.push(Child::ConfigMap(maps.indexer.clone()));
    children.push(Child::DaemonSet(collector::daemon_set(p, owner, &collector_hash)));
    children.push(Child::Deployment(indexer::deployment(p, owner, &indexer_hash)));
    Desired { children, config_hash: format!("{collector_hash}-{indexer_hash}") }
}

impl Desired {
    pub fn daemon_set(&self) -> Option<&DaemonSet> {
        self.children.iter().find_map(|c| match c {
            Child::DaemonSet(d) => Some(d),
            _ => None,
        })
    }

    pub fn deployment(&self) -> Option<&Deployment> {
        self.children.iter().find_map(|c| match c {
            Child::Deployment(d) => Some(d),
            _ => None,
        })
    }
}

impl Child {
    pub fn kind(&self) -> &'static str {
        match self {
            Child::ServiceAccount(_) => "ServiceAccount",
            Child::ClusterRole(_) => "ClusterRole",
            Child::ClusterRoleBinding(_) => "ClusterRoleBinding",
            Child::Role(_) => "Role",
            Child::RoleBinding(_) => "RoleBinding",
            Child::ConfigMap(_) => "ConfigMap",
            Child::Service(_) => "Service",
            Child::PodDisruptionBudget(_) => "PodDisruptionBudget",
            Child::NetworkPolicy(_) => "NetworkPolicy",
            Child::StatefulSet(_) => "StatefulSet",
            Child::DaemonSet(_) => "DaemonSet",
            Child::Deployment(_) => "Deployment",
        }
    }

    pub fn name(&self) -> String {
        self.metadata().name.clone().unwrap_or_default()
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Child::ServiceAccount(o) => &o.metadata,
            Child::ClusterRole(o) => &o.metadata,
            Child::ClusterRoleBinding(o) => &o.metadata,
            Child::Role(o) => &o.metadata,
            Child::RoleBinding(o) => &o.metadata,
            Child::ConfigMap(o) => &o.metadata,
            Child::Service(o) => &o.metadata,
            Child::PodDisruptionBudget(o) => &o.metadata,
            Child::NetworkPolicy(o) => &o.metadata,
            Child::StatefulSet(o) => &o.metadata,
            Child::DaemonSet(o) => &o.metadata,
            Child::Deployment(o) => &o.metadata,
        }
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

/// Selects every child of one pipeline in its namespace, whatever its component.
pub(crate) fn instance_selector(name: &PipelineName) -> String {
    format!("app.kubernetes.io/instance={},{}={}", name.name(), MANAGED_BY.0, MANAGED_BY.1)
}

pub(crate) fn labels(name: &PipelineName, component: Component) -> BTreeMap<String, String> {
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
