//! The watches: this node's pods (field selector `spec.nodeName`; in one namespace when the agent collects one
//! only, so that a Role of that namespace suffices) and the metadata of all namespaces, each
//! forwarded as `Update`s into a channel the agent's loop drains. A watch that fails is retried with backoff; the
//! agent keeps shipping with what it knows meanwhile.

use super::{PodMeta, Update};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use std::sync::mpsc::{channel, Receiver, Sender};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("no Kubernetes client (in-cluster service account or KUBECONFIG): {0}")]
    Client(#[from] kube::Error),
}

/// Starts both watches on the current runtime; updates arrive on the returned channel. `namespace`: watch the
/// pods of this namespace only.
pub async fn start(node: &str, namespace: Option<&str>) -> Result<Receiver<Update>, WatchError> {
    let client = kube::Client::try_default().await?;
    let (tx, rx) = channel();
    let api = match namespace {
        Some(ns) => Api::<Pod>::namespaced(client.clone(), ns),
        None => Api::<Pod>::all(client.clone()),
    };
    let pods = watcher(api, watcher::Config::default().fields(&format!("spec.nodeName={node}")));
    tokio::spawn(forward("pods", pods, tx.clone(), |event| match event {
        Event::Init => Some(Update::PodsRelist),
        Event::InitApply(pod) | Event::Apply(pod) => PodMeta::from_pod(&pod).map(Update::Pod),
        Event::Delete(pod) => pod.metadata.uid.map(|uid| Update::PodDeleted { uid }),
        Event::InitDone => Some(Update::PodsListed),
    }));
    let namespaces = watcher(Api::<PartialObjectMeta<Namespace>>::all(client), watcher::Config::default());
    tokio::spawn(forward("namespaces", namespaces, tx, |event| match event {
        Event::Init => Some(Update::NamespacesRelist),
        Event::InitApply(ns) | Event::Apply(ns) => {
            Some(Update::Namespace { name: ns.metadata.name?, labels: ns.metadata.labels.unwrap_or_default() })
        }
        Event::Delete(ns) => Some(Update::NamespaceDeleted { name: ns.metadata.name? }),
        Event::InitDone => Some(Update::NamespacesListed),
    }));
    Ok(rx)
}

async fn forward<K>(
    what: &'static str,
    events: impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    tx: Sender<Update>,
    to_update: fn(Event<K>) -> Option<Update>,
) {
    let mut events = std::pin::pin!(events.default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                if let Some(update) = to_update(event) {
                    if tx.send(update).is_err() {
                        return; // the agent has stopped
                    }
                }
            }
            Err(error) => tracing::warn!(watch = what, %error, "watch failed; retrying with backoff"),
        }
    }
}
