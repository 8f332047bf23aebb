use super::{labels, meta, Component, PIPELINE_NAMESPACE_LABEL, PIPELINE_NAME_LABEL};
use crate::model::Pipeline;
use crate::validate::Collection;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
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

/// The collector reads pod metadata (its node's pods) and namespace labels: read-only, nothing else. A pipeline
/// confined to its namespace reads that namespace's pods only (see [`namespace_role`]).
pub(super) fn cluster_role(p: &Pipeline) -> ClusterRole {
    let resources: &[&str] = match p.collection {
        Collection::ClusterWide => &["pods", "namespaces"],
        Collection::Confined(_) => &["namespaces"],
    };
    ClusterRole { metadata: cluster_meta(p), rules: Some(vec![read(resources)]), ..Default::default() }
}

/// The pods of its own namespace, for a pipeline confined to it.
pub(super) fn namespace_role(p: &Pipeline, owner: Option<&OwnerReference>) -> Option<(Role, RoleBinding)> {
    let Collection::Confined(_) = p.collection else {
        return None;
    };
    let meta = meta(&p.name, p.name.collector(), Component::Collector, owner);
    let role = Role { metadata: meta.clone(), rules: Some(vec![read(&["pods"])]) };
    let binding = RoleBinding {
        metadata: meta,
        role_ref: RoleRef { api_group: RBAC_GROUP.into(), kind: "Role".into(), name: p.name.collector() },
        subjects: Some(vec![collector_account(p)]),
    };
    Some((role, binding))
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn read(resources: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        ..Default::default()
    }
}

fn collector_account(p: &Pipeline) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: p.name.collector(),
        namespace: Some(p.name.namespace().into()),
        ..Default::default()
    }
}

pub(super) fn cluster_role_binding(p: &Pipeline) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: cluster_meta(p),
        role_ref: RoleRef {
            api_group: RBAC_GROUP.into(),
            kind: "ClusterRole".into(),
            name: p.name.collector_cluster_role(),
        },
        subjects: Some(vec![collector_account(p)]),
    }
}

/// Cluster-scoped objects cannot be owned by a namespaced LogPipeline; the finalizer deletes them by name.
fn cluster_meta(p: &Pipeline) -> ObjectMeta {
    let mut labels = labels(&p.name, Component::Collector);
    labels.insert(PIPELINE_NAMESPACE_LABEL.into(), p.name.namespace().into());
    labels.insert(PIPELINE_NAME_LABEL.into(), p.name.name().into());
    ObjectMeta { name: Some(p.name.collector_cluster_role()), labels: Some(labels), ..Default::default() }
}
