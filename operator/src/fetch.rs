//! Reads what a reconcile needs beyond the LogPipeline itself: the status as the API server has it, the Secrets of
//! the Kafka connection, and a managed Kafka's StatefulSets and pods, of which it makes the pipeline's [`Kafka`];
//! and what already holds the names of the children it is about to apply.

use crate::build::{self, Child, Component, Desired};
use crate::crd::{LogPipeline, LogPipelineStatus};
use crate::kafka::managed::admin::Access;
use crate::kafka::managed::{Cluster, Fetched, Managed, Settings};
use crate::kafka::{Credentials, External, Kafka};
use crate::model::{KafkaSasl, Pipeline};
use crate::names::PipelineName;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("Secret {namespace}/{name}: {source}")]
    Secret { namespace: String, name: String, source: kube::Error },
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    MissingKey { namespace: String, name: String, key: String },
    #[error("reading the status of {name}: {source}")]
    Status { name: String, source: kube::Error },
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
}

impl FetchError {
    pub fn kube_error(&self) -> Option<&kube::Error> {
        match self {
            FetchError::Secret { source, .. } | FetchError::Status { source, .. } | FetchError::Kube { source, .. } => {
                Some(source)
            }
            FetchError::MissingKey { .. } => None,
        }
    }
}

/// The status as the API server has it. A managed Kafka's operation in progress is read from here, not from the
/// controller's cache, which can lag behind the status written a moment ago: an operation read stale is lost, and a
/// status compared with a stale one may go unwritten.
pub async fn status(client: &Client, lp: &LogPipeline) -> Result<LogPipelineStatus, FetchError> {
    let name = lp.name_any();
    let api = Api::<LogPipeline>::namespaced(client.clone(), lp.namespace().as_deref().unwrap_or_default());
    let fresh = api.get_status(&name).await.map_err(|source| FetchError::Status { name, source })?;
    Ok(fresh.status.unwrap_or_default())
}

/// The pipeline's Kafka: an external one with its credentials, or a managed one with what its StatefulSets and
/// pods are now and the operation in progress from `status`.
pub async fn kafka(
    client: &Client,
    settings: &Settings,
    p: &Pipeline,
    owner: &OwnerReference,
    status: &LogPipelineStatus,
    access: Access,
) -> Result<Kafka, FetchError> {
    let Some(spec) = &p.managed else {
        return Ok(Kafka::external(External::new(&p.kafka, credentials(client, p).await?)));
    };
    let cluster = Cluster {
        name: p.name.clone(),
        bootstrap: p.kafka.bootstrap_servers.clone(),
        access,
        spec: spec.clone(),
        owner: owner.clone(),
        operation: status.kafka_operation.map(Into::into).unwrap_or_default(),
        reassigning_since: status.reassigning_since.as_ref().map(|t| t.0),
    };
    let fetched = managed(client, &p.name).await?;
    Ok(Kafka::Managed(Box::new(Managed::new(client.clone(), settings.clone(), cluster, fetched))))
}

/// The external Kafka's client, for cleanup when the topics are to be deleted.
/// The collector DaemonSet as it runs now, if it does.
pub async fn collector(client: &Client, name: &PipelineName) -> Result<Option<DaemonSet>, FetchError> {
    let api = Api::<DaemonSet>::namespaced(client.clone(), name.namespace());
    let what = || format!("reading DaemonSet {}", name.collector());
    api.get_opt(&name.collector()).await.map_err(|source| FetchError::Kube { what: what(), source })
}

pub async fn external(client: &Client, p: &Pipeline) -> Result<External, FetchError> {
    Ok(External::new(&p.kafka, credentials(client, p).await?))
}

async fn managed(client: &Client, name: &PipelineName) -> Result<Fetched, FetchError> {
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), name.namespace());
    let get = |set: String| {
        let sets = sets.clone();
        async move {
            sets.get_opt(&set)
                .await
                .map_err(|source| FetchError::Kube { what: format!("reading StatefulSet {set}"), source })
        }
    };
    Ok(Fetched {
        brokers: get(name.kafka_brokers()).await?,
        controllers: get(name.kafka_controllers()).await?,
        broker_pods: pods(client, name, Component::KafkaBroker).await?,
        controller_pods: pods(client, name, Component::KafkaController).await?,
    })
}

async fn pods(client: &Client, name: &PipelineName, component: Component) -> Result<Vec<Pod>, FetchError> {
    let selector: Vec<String> =
        build::selector_labels(name, component).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let api: Api<Pod> = Api::namespaced(client.clone(), name.namespace());
    let list = api.list(&ListParams::default().labels(&selector.join(","))).await;
    let list = list.map_err(|source| FetchError::Kube { what: format!("listing the pods of {name}"), source })?;
    Ok(list.items)
}

async fn credentials(client: &Client, p: &Pipeline) -> Result<Credentials, FetchError> {
    let secrets = SecretReader { api: Api::namespaced(client.clone(), p.name.namespace()), ns: p.name.namespace() };
    let ca_pem = match &p.secrets.kafka_ca {
        Some(ca) => Some(secrets.read(&ca.name, &ca.key).await?),
        None => None,
    };
    // Only an external cluster's credentials are the spec's; a managed one's are the operator's own.
    let sasl = match &p.secrets.kafka_sasl {
        KafkaSasl::Shared(s) => Some((
            secrets.read(&s.secret_name, &s.username_key).await?,
            secrets.read(&s.secret_name, &s.password_key).await?,
        )),
        KafkaSasl::None | KafkaSasl::PerClient { .. } => None,
    };
    Ok(Credentials { ca_pem, sasl })
}

struct SecretReader<'a> {
    api: Api<Secret>,
    ns: &'a str,
}

impl SecretReader<'_> {
    async fn read(&self, name: &str, key: &str) -> Result<String, FetchError> {
        let secret = self.api.get(name).await.map_err(|source| FetchError::Secret {
            namespace: self.ns.into(),
            name: name.into(),
            source,
        })?;
        let value = secret.data.as_ref().and_then(|d| d.get(key)).ok_or_else(|| FetchError::MissingKey {
            namespace: self.ns.into(),
            name: name.into(),
            key: key.into(),
        })?;
        Ok(String::from_utf8_lossy(&value.0).trim_end_matches(['\n', '\r']).to_owned())
    }
}

/// The metadata of what already has each desired child's name (`None`: nothing does), for the ownership check.
pub async fn existing(
    client: &Client,
    name: &PipelineName,
    d: &Desired,
) -> Result<Vec<Option<ObjectMeta>>, FetchError> {
    let ns = name.namespace();
    let mut found = Vec::with_capacity(d.children.len());
    for child in &d.children {
        let object = child.name();
        let meta = match child {
            Child::ServiceAccount(_) => metadata::<ServiceAccount>(Api::namespaced(client.clone(), ns), &object).await,
            Child::ClusterRole(_) => metadata::<ClusterRole>(Api::all(client.clone()), &object).await,
            Child::ClusterRoleBinding(_) => metadata::<ClusterRoleBinding>(Api::all(client.clone()), &object).await,
            Child::Role(_) => metadata::<Role>(Api::namespaced(client.clone(), ns), &object).await,
            Child::RoleBinding(_) => metadata::<RoleBinding>(Api::namespaced(client.clone(), ns), &object).await,
            Child::ConfigMap(_) => metadata::<ConfigMap>(Api::namespaced(client.clone(), ns), &object).await,
            Child::Service(_) => metadata::<Service>(Api::namespaced(client.clone(), ns), &object).await,
            Child::PodDisruptionBudget(_) => {
                metadata::<PodDisruptionBudget>(Api::namespaced(client.clone(), ns), &object).await
            }
            Child::NetworkPolicy(_) => metadata::<NetworkPolicy>(Api::namespaced(client.clone(), ns), &object).await,
            Child::StatefulSet(_) => metadata::<StatefulSet>(Api::namespaced(client.clone(), ns), &object).await,
            Child::DaemonSet(_) => metadata::<DaemonSet>(Api::namespaced(client.clone(), ns), &object).await,
            Child::Deployment(_) => metadata::<Deployment>(Api::namespaced(client.clone(), ns), &object).await,
        };
        found.push(
            meta.map_err(|source| FetchError::Kube { what: format!("reading {} {object}", child.kind()), source })?,
        );
    }
    Ok(found)
}

/// `None` also for a kind the cluster does not serve (policy/v1 before Kubernetes 1.21): nothing can be in the way.
async fn metadata<K>(api: Api<K>, name: &str) -> Result<Option<ObjectMeta>, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    match api.get_metadata_opt(name).await {
        Ok(found) => Ok(found.map(|m| m.metadata)),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}
