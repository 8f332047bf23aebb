use super::{labels, meta, Component, PIPELINE_NAMESPACE_LABEL, PIPELINE_NAME_LABEL};
use crate::model::Pipeline;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub(super) fn service_accounts(p: &Pipeline, owner: Option<&OwnerReference>) -> Vec<ServiceAccount> {
    [(p.name.collector(), Component::Collector, true), (p.name.indexer(), Component::Indexer, false)]
        .into_iter()
        .map(|(name, component, uses_api)| ServiceAccount {
            metadata: meta(&p.name, name, component, owner),
            // The indexer never calls the Kubernetes API: it gets no token at all.
            automount_service_account_token: Some(uses_api),
            ..Default::default()
        })
        .collect()
}

/// The collector reads pod metadata (its node's pods) and namespace labels: read-only, nothing else.
pub(super) fn cluster_role(p: &Pipeline) -> ClusterRole {
    ClusterRole {
        metadata: cluster_meta(p),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".into(), "namespaces".into()]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..Default::default()
        }]),
        ..Default::default()
    }
}

pub(super) fn cluster_role_binding(p: &Pipeline) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: cluster_meta(p),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: p.name.collector_cluster_role(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: p.name.collector(),
            namespace: Some(p.name.namespace().into()),
            ..Default::default()
        }]),
    }
}

/// Cluster-scoped objects cannot be owned by a namespaced LogPipeline; the finalizer deletes them by name.
fn cluster_meta(p: &Pipeline) -> ObjectMeta {
    let mut labels = labels(&p.name, Component::Collector);
    labels.insert(PIPELINE_NAMESPACE_LABEL.into(), p.name.namespace().into());
    labels.insert(PIPELINE_NAME_LABEL.into(), p.name.name().into());
    ObjectMeta { name: Some(p.name.collector_cluster_role()), labels: Some(labels), ..Default::default() }
}
