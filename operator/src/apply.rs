//! Server-side apply of the desired objects, with one field manager, in dependency order.

use crate::build::kafka::KafkaObjects;
use crate::build::Desired;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// The field manager of every object the operator writes.
pub const MANAGER: &str = "logpipe-operator";

#[derive(Debug, thiserror::Error)]
#[error("applying {kind} {name}: {source}")]
pub struct ApplyError {
    pub kind: String,
    pub name: String,
    pub source: kube::Error,
}

/// The workloads as the API server returned them, status included.
pub struct Applied {
    pub daemon_set: DaemonSet,
    pub deployment: Deployment,
}

pub async fn apply(client: &Client, namespace: &str, d: &Desired) -> Result<Applied, ApplyError> {
    for sa in &d.service_accounts {
        namespaced(client, namespace, sa).await?;
    }
    cluster(client, &d.cluster_role).await?;
    cluster(client, &d.cluster_role_binding).await?;
    for cm in &d.config_maps {
        namespaced(client, namespace, cm).await?;
    }
    let daemon_set = namespaced(client, namespace, &d.daemon_set).await?;
    let deployment = namespaced(client, namespace, &d.deployment).await?;
    Ok(Applied { daemon_set, deployment })
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
    api.patch(&name, &params, &Patch::Apply(obj)).await.map_err(|source| ApplyError {
        kind: K::kind(&()).into_owned(),
        name,
        source,
    })
}

/// The StatefulSets as the API server returned them, and whether a PodDisruptionBudget protects the sets.
pub struct AppliedKafka {
    pub brokers: StatefulSet,
    pub controllers: StatefulSet,
    pub disruption_budgets: bool,
}

/// A managed Kafka's objects. A cluster that does not serve policy/v1 (Kubernetes before 1.21) gets no
/// PodDisruptionBudget, and the caller says so; everything else is required.
pub async fn kafka(client: &Client, namespace: &str, k: &KafkaObjects) -> Result<AppliedKafka, ApplyError> {
    namespaced(client, namespace, &k.config_map).await?;
    for service in &k.services {
        namespaced(client, namespace, service).await?;
    }
    let mut disruption_budgets = true;
    for pdb in &k.disruption_budgets {
        match namespaced(client, namespace, pdb).await {
            Ok(_) => {}
            Err(ApplyError { source: kube::Error::Api(e), .. }) if e.code == 404 => disruption_budgets = false,
            Err(e) => return Err(e),
        }
    }
    Ok(AppliedKafka {
        controllers: namespaced(client, namespace, &k.controllers).await?,
        brokers: namespaced(client, namespace, &k.brokers).await?,
        disruption_budgets,
    })
}

/// The broker StatefulSet alone, e.g. with new replicas.
pub async fn stateful_set(client: &Client, namespace: &str, set: &StatefulSet) -> Result<StatefulSet, ApplyError> {
    namespaced(client, namespace, set).await
}
