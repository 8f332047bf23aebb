//! Who may connect to a managed Kafka: its own nodes, the pipeline's collectors and indexers, and the operator.
//! Anything else in the cluster is refused, so no other pod reads the logs or produces records with forged
//! `logpipe.*` headers. NetworkPolicies add up: a user who wants another client admits it with one of their own.

use super::super::{labels, selector_labels, Component};
use crate::model::ManagedCluster;
use crate::names::PipelineName;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use std::collections::BTreeMap;

/// The namespace label every namespace carries from Kubernetes 1.21, the only stable way to select one by name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub(super) fn network_policy(name: &PipelineName, k: &ManagedCluster, owner: Option<&OwnerReference>) -> NetworkPolicy {
    let kafka = [Component::KafkaController, Component::KafkaBroker];
    let clients = [Component::KafkaController, Component::KafkaBroker, Component::Collector, Component::Indexer];
    let operator = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(NAMESPACE_NAME_LABEL.into(), k.operator.namespace.clone())])),
            ..Default::default()
        }),
        pod_selector: Some(LabelSelector { match_labels: Some(k.operator.pod_labels.clone()), ..Default::default() }),
        ..Default::default()
    };
    let pipeline = NetworkPolicyPeer { pod_selector: Some(components(name, &clients)), ..Default::default() };
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(format!("{}-clients", name.kafka_brokers())),
            namespace: Some(name.namespace().to_owned()),
            labels: Some(labels(name, Component::KafkaBroker)),
            owner_references: owner.map(|o| vec![o.clone()]),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(components(name, &kafka)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule { from: Some(vec![pipeline, operator]), ports: None }]),
            ..Default::default()
        }),
    }
}

/// The pods of these components of one pipeline.
fn components(name: &PipelineName, of: &[Component]) -> LabelSelector {
    let key = "app.kubernetes.io/component";
    let mut match_labels = selector_labels(name, of[0]);
    match_labels.remove(key);
    let values = of.iter().map(|c| c.as_str().to_owned()).collect();
    LabelSelector {
        match_labels: Some(match_labels),
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.into(),
            operator: "In".into(),
            values: Some(values),
        }]),
    }
}
