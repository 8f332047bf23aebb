//! The Kubernetes side of a stack: the CRD, namespaces, a Node, Pods bound to it, the pipeline, and what the
//! operator wrote back (ConfigMaps, conditions). Pods stay Pending (no kubelet runs); the agent needs only their
//! metadata.

use super::{poll, StackError};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use logpipe_operator::crd::LogPipeline;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

const MANAGER: &str = "logpipe-stack";
const CRD: &str = include_str!("../../../crds/logpipeline.yaml");
const WAIT: Duration = Duration::from_secs(60);

fn object<T: DeserializeOwned>(value: Value) -> Result<T, StackError> {
    serde_json::from_value(value).map_err(|e| StackError::Manifest(e.to_string()))
}

fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> StackError {
    let what = what.into();
    move |source| StackError::Kube { what, source }
}

/// Applies the repository's CRD, as `kubectl apply --server-side -f crds/` would.
pub async fn apply_crd(client: &Client) -> Result<(), StackError> {
    let crd: CustomResourceDefinition = serde_yaml::from_str(CRD).map_err(|e| StackError::Manifest(e.to_string()))?;
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&crd)).await.map_err(kube("the CRD"))?;
    Ok(())
}

pub async fn create_namespace(client: &Client, name: &str, labels: Value) -> Result<(), StackError> {
    let ns: Namespace = object(json!({"metadata": {"name": name, "labels": labels}}))?;
    let api = Api::<Namespace>::all(client.clone());
    api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&ns)).await.map_err(kube(name))?;
    Ok(())
}

/// A Node object, as a kubelet registers itself: the DaemonSet controller then wants a collector on it.
pub async fn register_node(client: &Client, name: &str) -> Result<(), StackError> {
    let node: Node = object(json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}))?;
    Api::<Node>::all(client.clone()).create(&PostParams::default(), &node).await.map_err(kube(name))?;
    Ok(())
}

/// Creates each pod, and its namespace labelled with the team (the namespace's last word), on `node`; returns
/// their uids in order.
pub async fn create_pods(
    client: &Client,
    node: &str,
    pods: &[super::logs::PodSpec],
) -> Result<Vec<String>, StackError> {
    let mut uids = Vec::new();
    for pod in pods {
        let team = pod.namespace.rsplit('-').next().unwrap_or_default();
        create_namespace(client, &pod.namespace, json!({"team": team})).await?;
        uids.push(create_pod(client, node, pod).await?);
    }
    Ok(uids)
}

/// Creates a Pod bound to `node` and returns its uid, which names its log directory.
async fn create_pod(client: &Client, node: &str, pod: &super::logs::PodSpec) -> Result<String, StackError> {
    let object: Pod = object(json!({
        "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": pod.labels},
        "spec": {"nodeName": node, "containers": [{"name": pod.container, "image": pod.image}]}
    }))?;
    let api = Api::<Pod>::namespaced(client.clone(), &pod.namespace);
    // Admission refuses pods until the namespace's default ServiceAccount exists.
    let created =
        poll("pod creation", WAIT, || async { api.create(&PostParams::default(), &object).await.ok() }).await?;
    created.metadata.uid.ok_or_else(|| StackError::Manifest(format!("pod {} has no uid", pod.name)))
}

pub async fn apply_pipeline(client: &Client, pipeline: &Value) -> Result<(), StackError> {
    let (namespace, name) = (pipeline["metadata"]["namespace"].as_str(), pipeline["metadata"]["name"].as_str());
    let (Some(namespace), Some(name)) = (namespace, name) else {
        return Err(StackError::Manifest("the pipeline needs metadata.namespace and metadata.name".into()));
    };
    let api = Api::<LogPipeline>::namespaced(client.clone(), namespace);
    // The CRD was applied a moment ago: the kind is served once it is established.
    poll("the LogPipeline kind to be served", WAIT, || async {
        api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(pipeline)).await.ok()
    })
    .await?;
    Ok(())
}

/// `type=status (reason): message` of each of the pipeline's conditions.
pub async fn conditions(client: &Client, namespace: &str, name: &str) -> Result<Vec<Condition>, StackError> {
    let pipeline = Api::<LogPipeline>::namespaced(client.clone(), namespace).get(name).await.map_err(kube(name))?;
    let conditions = pipeline.status.map(|s| s.conditions).unwrap_or_default();
    Ok(conditions
        .into_iter()
        .map(|c| Condition { type_: c.type_, status: c.status, reason: c.reason, message: c.message })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// Waits until the operator reports each condition of `types` True.
pub async fn wait_true(client: &Client, namespace: &str, name: &str, types: &[&str]) -> Result<(), StackError> {
    for type_ in types {
        poll(&format!("{type_}=True on {namespace}/{name}"), WAIT, || async {
            let now = conditions(client, namespace, name).await.ok()?;
            now.iter().any(|c| c.type_ == *type_ && c.status == "True").then_some(())
        })
        .await?;
    }
    Ok(())
}

/// One file of a ConfigMap the operator rendered, once it exists.
pub async fn config_file(client: &Client, namespace: &str, name: &str, key: &str) -> Result<String, StackError> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    poll(&format!("ConfigMap {namespace}/{name} with {key}"), WAIT, || async {
        api.get_opt(name).await.ok()??.data?.remove(key)
    })
    .await
}

/// Deletes the pipeline and waits until the operator's finalizer has cleaned up after it.
pub async fn delete_pipeline(client: &Client, namespace: &str, name: &str) -> Result<(), StackError> {
    let api = Api::<LogPipeline>::namespaced(client.clone(), namespace);
    api.delete(name, &DeleteParams::default()).await.map_err(kube(name))?;
    poll(&format!("the operator to clean up {namespace}/{name}"), WAIT, || async {
        api.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await
}

/// Deletes what a stack created in the cluster; the namespaces take their pods and the pipeline with them.
pub async fn clean_up(client: &Client, namespaces: &[String], node: &str) {
    let namespaces_api = Api::<Namespace>::all(client.clone());
    for ns in namespaces {
        // Best effort: the run is over, and a namespace already gone is what we want.
        let _ = namespaces_api.delete(ns, &DeleteParams::default()).await;
    }
    let _ = Api::<Node>::all(client.clone()).delete(node, &DeleteParams::default()).await;
}
