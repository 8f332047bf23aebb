//! Server-side apply of the desired children in their order, with one field manager; then the pruning of the
//! children this pipeline made earlier that its spec no longer wants.

use crate::build::{self, Child, Desired, PIPELINE_NAMESPACE_LABEL, PIPELINE_NAME_LABEL};
use crate::names::PipelineName;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Debug;

/// The field manager of every object the operator writes.
pub const MANAGER: &str = "logpipe-operator";

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("applying {kind} {name}: {source}")]
    Patch { kind: String, name: String, source: kube::Error },
    #[error("listing the {kind}s of the pipeline to prune: {source}")]
    List { kind: String, source: kube::Error },
    #[error("deleting {kind} {name}, which the spec no longer wants: {source}")]
    Delete { kind: String, name: String, source: kube::Error },
}

impl ApplyError {
    pub fn source_error(&self) -> &kube::Error {
        match self {
            ApplyError::Patch { source, .. } | ApplyError::List { source, .. } | ApplyError::Delete { source, .. } => {
                source
            }
        }
    }
}

/// The children as the API server returned them, status included, where a later step reads them.
#[derive(Default)]
pub struct Applied {
    pub daemon_set: Option<DaemonSet>,
    pub deployment: Option<Deployment>,
    pub stateful_sets: Vec<StatefulSet>,
    /// False when the cluster does not serve policy/v1 (Kubernetes before 1.21): the brokers have no
    /// PodDisruptionBudget then, and the caller says so.
    pub disruption_budgets: bool,
    /// Children deleted because the spec no longer wants them, as `Kind/name`.
    pub pruned: Vec<String>,
}

impl Applied {
    pub fn stateful_set(&self, name: &str) -> Option<&StatefulSet> {
        self.stateful_sets.iter().find(|s| s.metadata.name.as_deref() == Some(name))
    }
}

/// Applies every child in order, then deletes this pipeline's children (by its labels and `owner`) that were not
/// applied.
pub async fn apply(
    client: &Client,
    name: &PipelineName,
    owner: &OwnerReference,
    d: &Desired,
) -> Result<Applied, ApplyError> {
    let ns = name.namespace();
    let mut applied = Applied { disruption_budgets: true, ..Applied::default() };
    for child in &d.children {
        match child {
            Child::ServiceAccount(o) => {
                namespaced(client, ns, o).await?;
            }
            Child::ClusterRole(o) => {
                cluster(client, o).await?;
            }
            Child::ClusterRoleBinding(o) => {
                cluster(client, o).await?;
            }
            Child::Role(o) => {
                namespaced(client, ns, o).await?;
            }
            Child::RoleBinding(o) => {
                namespaced(client, ns, o).await?;
            }
            Child::ConfigMap(o) => {
                namespaced(client, ns, o).await?;
            }
            Child::Service(o) => {
                namespaced(client, ns, o).await?;
            }
            Child::PodDisruptionBudget(o) => match namespaced(client, ns, o).await {
                Ok(_) => {}
                Err(ApplyError::Patch { source: kube::Error::Api(e), .. }) if e.code == 404 => {
                    applied.disruption_budgets = false;
                }
                Err(e) => return Err(e),
            },
            Child::NetworkPolicy(o) => {
                namespaced(client, ns, o).await?;
            }
            Child::StatefulSet(o) => applied.stateful_sets.push(namespaced(client, ns, o).await?),
            Child::DaemonSet(o) => applied.daemon_set = Some(namespaced(client, ns, o).await?),
            Child::Deployment(o) => applied.deployment = Some(namespaced(client, ns, o).await?),
        }
    }
    applied.pruned = prune(client, name, owner, d).await?;
    Ok(applied)
}

/// One StatefulSet alone, e.g. the brokers with new replicas.
pub async fn stateful_set(client: &Client, namespace: &str, set: &StatefulSet) -> Result<StatefulSet, ApplyError> {
    namespaced(client, namespace, set).await
}

/// Deletes the children that carry this pipeline's labels (and, namespaced, its owner) but are not in `d`, e.g.
/// the cluster-scoped RBAC under the name an earlier release gave it. A pruned StatefulSet's volume claims are
/// kept, as Kubernetes keeps them.
async fn prune(
    client: &Client,
    name: &PipelineName,
    owner: &OwnerReference,
    d: &Desired,
) -> Result<Vec<String>, ApplyError> {
    let wanted: BTreeSet<(String, String)> = d.children.iter().map(|c| (c.kind().to_owned(), c.name())).collect();
    let scope = Scope { client, name, owner, wanted: &wanted };
    let mut pruned = scope.prune::<ServiceAccount>().await?;
    pruned.extend(scope.prune::<RoleBinding>().await?);
    pruned.extend(scope.prune::<Role>().await?);
    pruned.extend(scope.prune::<ConfigMap>().await?);
    pruned.extend(scope.prune::<Service>().await?);
    pruned.extend(scope.prune::<PodDisruptionBudget>().await?);
    pruned.extend(scope.prune::<NetworkPolicy>().await?);
    pruned.extend(scope.prune::<StatefulSet>().await?);
    pruned.extend(scope.prune::<DaemonSet>().await?);
    pruned.extend(scope.prune::<Deployment>().await?);
    pruned.extend(delete_cluster_children(client, name, &wanted).await?);
    Ok(pruned)
}

/// Deletes this pipeline's cluster-scoped children (found by its labels: they cannot have a namespaced owner)
/// except those in `keep`, as `(kind, name)`; all of them when `keep` is empty, as the finalizer does.
pub async fn delete_cluster_children(
    client: &Client,
    name: &PipelineName,
    keep: &BTreeSet<(String, String)>,
) -> Result<Vec<String>, ApplyError> {
    let mut deleted = delete_labelled::<ClusterRoleBinding>(client, name, keep).await?;
    deleted.extend(delete_labelled::<ClusterRole>(client, name, keep).await?);
    Ok(deleted)
}

async fn delete_labelled<K>(
    client: &Client,
    name: &PipelineName,
    keep: &BTreeSet<(String, String)>,
) -> Result<Vec<String>, ApplyError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope> + Clone + Debug + DeserializeOwned,
{
    let kind = K::kind(&()).into_owned();
    let api: Api<K> = Api::all(client.clone());
    let selector = format!("{PIPELINE_NAMESPACE_LABEL}={},{PIPELINE_NAME_LABEL}={}", name.namespace(), name.name());
    let list = api
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| ApplyError::List { kind: kind.clone(), source })?;
    let mut deleted = Vec::new();
    for object in list.items {
        let object_name = object.name_any();
        if keep.contains(&(kind.clone(), object_name.clone())) {
            continue;
        }
        delete(&api, &kind, &object_name).await?;
        deleted.push(format!("{kind}/{object_name}"));
    }
    Ok(deleted)
}

async fn delete<K>(api: &Api<K>, kind: &str, name: &str) -> Result<(), ApplyError>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(ApplyError::Delete { kind: kind.into(), name: name.into(), source }),
    }
}

struct Scope<'a> {
    client: &'a Client,
    name: &'a PipelineName,
    owner: &'a OwnerReference,
    wanted: &'a BTreeSet<(String, String)>,
}

impl Scope<'_> {
    async fn prune<K>(&self) -> Result<Vec<String>, ApplyError>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    {
        let kind = K::kind(&()).into_owned();
        let api: Api<K> = Api::namespaced(self.client.clone(), self.name.namespace());
        let selector = build::instance_selector(self.name);
        let list = match api.list_metadata(&ListParams::default().labels(&selector)).await {
            Ok(list) => list,
            // A kind this cluster does not serve (policy/v1 before Kubernetes 1.21) has nothing to prune.
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Vec::new()),
            Err(source) => return Err(ApplyError::List { kind, source }),
        };
        let mut pruned = Vec::new();
        for object in list.items {
            let object_name = object.name_any();
            let ours = object.owner_references().iter().any(|o| o.uid == self.owner.uid);
            if !ours || self.wanted.contains(&(kind.clone(), object_name.clone())) {
                continue;
            }
            delete(&api, &kind, &object_name).await?;
            pruned.push(format!("{kind}/{object_name}"));
        }
        Ok(pruned)
    }
}

async fn namespaced<K>(client: &Client, namespace: &str, obj: &K) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
{
    patch(Api::namespaced(client.clone(), namespace), obj).await
}

async fn cluster<K>(client: &Client, obj: &K) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    patch(Api::all(client.clone()), obj).await
}

async fn patch<K>(api: Api<K>, obj: &K) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = obj.name_any();
    // Force: this operator owns these fields; another manager's edit is drift, and is undone.
    let params = PatchParams::apply(MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(obj)).await.map_err(|source| ApplyError::Patch {
        kind: K::kind(&()).into_owned(),
        name,
        source,
    })
}
