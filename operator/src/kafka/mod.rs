//! The pipeline's Kafka cluster, external or managed, behind one type. The fetch step makes a [`Kafka`] from what
//! it read; a reconcile then calls [`Kafka::observe`] (brokers and the topic), builds and applies the Kubernetes
//! objects, and calls [`Kafka::ensure_topics`] and, for a managed cluster, [`Kafka::scale`].

pub mod external;
pub mod managed;

pub use external::{Credentials, External, ExternalError};
pub use managed::{Managed, ManagedError, Settings};

use crate::apply::Applied;
use crate::events::Events;
use crate::model::{ManagedCluster, Topic};
use crate::status::{KafkaState, Scaling};
use std::time::Duration;

pub enum Kafka {
    External { client: External, found: Found },
    Managed(Box<Managed>),
}

/// What observing an external cluster found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    NotObserved,
    Cluster { brokers: usize, partitions: usize },
    Unreachable(String),
}

/// What became of the topics, and what to tell the user about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub state: KafkaState,
    pub created: Vec<String>,
    /// A Warning Event's reason and note.
    pub warning: Option<(&'static str, String)>,
}

/// Where a managed cluster's scaling stands after this reconcile, and when to look again (`None`: settled).
pub struct Scaled {
    pub scaling: Scaling,
    pub requeue: Option<Duration>,
}

impl Kafka {
    pub fn external(client: External) -> Self {
        Kafka::External { client, found: Found::NotObserved }
    }

    /// Reads the cluster: its brokers and the pipeline's topic; for a managed one also the pods and the replicas
    /// that scaling is decided from. Never fails: what cannot be read is remembered as not ready.
    pub async fn observe(&mut self, topic: &Topic) {
        match self {
            Kafka::External { client, found } => {
                *found = match client.describe(&topic.name).await {
                    Ok((brokers, partitions)) => Found::Cluster { brokers, partitions },
                    Err(e) => Found::Unreachable(e.to_string()),
                }
            }
            Kafka::Managed(m) => m.observe().await,
        }
    }

    /// The broker count the spec must fit, when it comes from an observed cluster rather than from the spec.
    pub fn observed_brokers(&self) -> Option<usize> {
        match self {
            Kafka::External { found: Found::Cluster { brokers, .. }, .. } => Some(*brokers),
            Kafka::External { .. } | Kafka::Managed(_) => None,
        }
    }

    /// The managed cluster at the size its StatefulSets have now: what the build step renders.
    pub fn running(&self) -> Option<&ManagedCluster> {
        match self {
            Kafka::External { .. } => None,
            Kafka::Managed(m) => Some(m.running()),
        }
    }

    /// Creates the topic and its dead-letter topic when missing, once the cluster can take them.
    pub async fn ensure_topics(&mut self, topic: &Topic) -> Topics {
        match self {
            Kafka::External { client, found } => external_topics(client, found, topic).await,
            Kafka::Managed(m) => m.ensure_topics(topic).await,
        }
    }

    /// The one next scaling step of a managed cluster, from what `observe` saw and what was applied since.
    pub async fn scale(&mut self, applied: &Applied, events: &Events<'_>) -> Result<Option<Scaled>, ManagedError> {
        match self {
            Kafka::External { .. } => Ok(None),
            Kafka::Managed(m) => m.scale(applied, events).await.map(Some),
        }
    }
}

async fn external_topics(client: &External, found: &Found, topic: &Topic) -> Topics {
    let not_ready = |reason: &'static str, message: String| Topics {
        state: KafkaState::NotReady { reason, message: message.clone() },
        created: Vec::new(),
        warning: Some((reason, message)),
    };
    let Found::Cluster { brokers, partitions } = *found else {
        let message = match found {
            Found::Unreachable(e) => e.clone(),
            _ => "the Kafka cluster was not observed".to_owned(),
        };
        return not_ready("KafkaUnreachable", message);
    };
    match client.ensure_topics(topic).await {
        Ok(created) => {
            let partitions = if partitions == 0 { topic.partitions as usize } else { partitions };
            Topics { state: KafkaState::Ready { brokers, partitions }, created, warning: None }
        }
        Err(e) => not_ready("TopicError", e.to_string()),
    }
}
