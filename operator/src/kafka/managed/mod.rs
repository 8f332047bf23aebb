//! A Kafka cluster the operator runs. Fetch reads its StatefulSets and pods; [`Managed::observe`] judges the
//! pods and reads the cluster through the Kafka admin API; [`Managed::ensure_topics`] creates the pipeline's topics
//! once every broker is up; [`Managed::scale`] takes the one next step that [`scaling::decide`] chooses. Every
//! reconcile starts again from what it observes; only the operation in progress comes from the status.

mod act;
pub mod admin;
pub mod credentials;
mod pods;
pub mod scaling;

use super::{Scaled, Topics};
use crate::apply::{Applied, ApplyError};
use crate::events::Events;
use crate::model::{ManagedCluster, Topic};
use crate::names::PipelineName;
use crate::status::{KafkaState, Scaling};
use admin::{Admin, AdminError, Created};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use scaling::timeout::{self, Moves};
use scaling::{decide, Action, ClusterView, Operation, Target};
use std::time::Duration;

/// How the operator drives the Kafka clusters it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the operator reaches every managed cluster instead of its bootstrap Service, for an operator that
    /// runs outside the cluster (through a port-forward) and for tests.
    pub admin_address: Option<String>,
    /// How soon a cluster that is scaling, restarting or starting is looked at again.
    pub poll: Duration,
    /// Most partitions reassigned at once: bounds the data moving between brokers at any time.
    pub max_moves: usize,
    /// How long one admin request may take.
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self { admin_address: None, poll: Duration::from_secs(5), max_moves: 10, timeout: Duration::from_secs(30) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
}

/// The cluster the spec asks for, and the operation in progress from the status.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: PipelineName,
    /// Where the operator's admin client connects unless `Settings::admin_address` says otherwise.
    pub bootstrap: String,
    /// TLS and SCRAM, or neither; the certificate is checked for the bootstrap Service's name wherever it dials.
    pub access: admin::Access,
    pub spec: ManagedCluster,
    pub owner: OwnerReference,
    pub operation: Operation,
    /// When the moves under way started.
    pub reassigning_since: Option<Timestamp>,
}

/// The cluster's Kubernetes side as the fetch step read it.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub brokers: Option<StatefulSet>,
    pub controllers: Option<StatefulSet>,
    pub broker_pods: Vec<Pod>,
    pub controller_pods: Vec<Pod>,
}

enum Observed {
    NotYet,
    /// Nothing can be decided yet: why, for the condition.
    Waiting {
        reason: &'static str,
        message: String,
    },
    Up {
        admin: Admin,
        view: ClusterView,
    },
}

pub struct Managed {
    client: Client,
    settings: Settings,
    cluster: Cluster,
    /// The spec with the broker and controller counts the StatefulSets have now: only a scaling step changes the
    /// brokers, and the controller quorum is never resized. A new cluster starts as the spec asks.
    running: ManagedCluster,
    fetched: Fetched,
    observed: Observed,
}

impl Managed {
    pub fn new(client: Client, settings: Settings, cluster: Cluster, fetched: Fetched) -> Self {
        let replicas = |set: Option<&StatefulSet>| set.and_then(|s| s.spec.as_ref()?.replicas).map(|r| r.max(0) as u32);
        let running = ManagedCluster {
            brokers: replicas(fetched.brokers.as_ref()).unwrap_or(cluster.spec.brokers),
            controllers: replicas(fetched.controllers.as_ref()).unwrap_or(cluster.spec.controllers),
            ..cluster.spec.clone()
        };
        Self { client, settings, cluster, running, fetched, observed: Observed::NotYet }
    }

    pub fn running(&self) -> &ManagedCluster {
        &self.running
    }

    pub async fn observe(&mut self) {
        self.observed = match pods::broker_pods(self.fetched.brokers.as_ref(), &self.fetched.broker_pods) {
            Err(pods::NotObserved(message)) => Observed::Waiting { reason: "RolloutPending", message },
            Ok(pods) => match self.connect().await {
                Ok(mut admin) => match view(&mut admin, self.running.brokers, pods).await {
                    Ok(view) => Observed::Up { admin, view },
                    Err(e) => unreachable(&e),
                },
                Err(e) => unreachable(&e),
            },
        };
    }

    async fn connect(&self) -> Result<Admin, AdminError> {
        let address = self.settings.admin_address.as_deref().unwrap_or(&self.cluster.bootstrap);
        Admin::connect(address, self.settings.timeout, &self.cluster.access).await
    }

    /// Creates the pipeline's topic and dead-letter topic once every broker of the set is up: Kafka places a new
    /// topic's replicas on the brokers registered at that moment, and a topic made while some were still starting
    /// would leave them empty until the next scaling.
    pub async fn ensure_topics(&mut self, t: &Topic) -> Topics {
        let quiet = |reason: &'static str, message: String| Topics {
            state: KafkaState::NotReady { reason, message },
            created: Vec::new(),
            warning: None,
        };
        let (admin, view) = match &mut self.observed {
            Observed::Up { admin, view } => (admin, &*view),
            Observed::Waiting { reason, message } => return quiet(reason, message.clone()),
            Observed::NotYet => return quiet("KafkaUnreachable", "the managed Kafka was not observed".into()),
        };
        let brokers = view.registered.len();
        let exists = view.partitions.iter().any(|x| x.topic == t.name);
        if !exists && !view.all_up() {
            let message = format!("{brokers} of {} broker(s) up; the topics are created once all are", view.replicas);
            return quiet("BrokersStarting", message);
        }
        let configs = [("retention.ms", t.retention_ms.to_string())];
        let rf = i16::try_from(t.replication_factor).unwrap_or(i16::MAX);
        let mut created = Vec::new();
        for (topic, partitions) in [(&t.name, t.partitions), (&t.dead_letter, 1)] {
            match admin.create_topic(topic, partitions, rf, &configs).await {
                Ok(Created::New) => created.push(topic.clone()),
                Ok(Created::Existed) => {}
                Err(e) => {
                    let message = format!("topic {topic}: {e}");
                    let state = KafkaState::NotReady { reason: "TopicError", message: message.clone() };
                    return Topics { state, created, warning: Some(("TopicError", message)) };
                }
            }
        }
        let partitions = view.partitions.iter().filter(|x| x.topic == t.name).count();
        let partitions = if partitions == 0 { t.partitions as usize } else { partitions };
        Topics { state: KafkaState::Ready { brokers, partitions }, created, warning: None }
    }

    /// The one next step towards the spec's broker count, all brokers and controllers on the current revision.
    pub async fn scale(&mut self, applied: &Applied, events: &Events<'_>) -> Result<Scaled, ManagedError> {
        let poll = Some(self.settings.poll);
        let (admin, view) = match &mut self.observed {
            Observed::Up { admin, view } => (admin, &*view),
            Observed::Waiting { reason, message } => {
                return Ok(Scaled { scaling: self.cluster.waiting(reason, message.clone()), requeue: poll });
            }
            Observed::NotYet => {
                let scaling = self.cluster.waiting("KafkaUnreachable", "the managed Kafka was not observed".into());
                return Ok(Scaled { scaling, requeue: poll });
            }
        };
        let brokers = self.cluster.name.kafka_brokers();
        if changed(self.fetched.brokers.as_ref(), applied.stateful_set(&brokers)) {
            // The pods were judged against the revision before this apply; the StatefulSet's change wakes the next.
            let message = format!("StatefulSet {brokers} changed in this reconcile; its pods are judged next time");
            return Ok(Scaled { scaling: self.cluster.waiting("RolloutPending", message), requeue: poll });
        }
        let c = &self.cluster;
        let target = Target { brokers: c.spec.brokers, max_moves: self.settings.max_moves };
        let decision = decide(target, c.operation, view);
        tracing::debug!(pipeline = %c.name, ?decision, since = ?c.reassigning_since, "managed Kafka");
        let step = act::Step { cluster: c, running: &self.running, view, client: &self.client, events };
        let starting = matches!(decision.action, Action::Reassign(_));
        let moving = view.partitions.iter().any(|p| p.reassigning());
        let clock =
            timeout::moves(c.reassigning_since, moving, starting, Timestamp::now(), c.spec.reassignment_timeout);
        let mut scaling = match clock {
            Moves::TimedOut => step.cancel(decision.operation, admin).await,
            Moves::Idle | Moves::Since(_) => step.take(decision, admin).await?,
        };
        if !starting {
            step.unthrottle(admin).await;
        }
        if scaling.settled {
            let set = applied.stateful_set(&c.name.kafka_controllers());
            scaling = step.controllers(set, &self.fetched.controller_pods).await?.unwrap_or(scaling);
        }
        scaling.reassigning_since = match clock {
            Moves::Since(t) => Some(Time(t)),
            Moves::Idle | Moves::TimedOut => None,
        };
        // A refusal waits for a spec change, which wakes the controller anyway.
        let refused = scaling.reason == act::REFUSED;
        let poll = self.settings.poll;
        let requeue = (!scaling.settled).then_some(if refused { poll * 12 } else { poll });
        Ok(Scaled { scaling, requeue })
    }
}

impl Cluster {
    /// Nothing can be decided yet: the operation and the clock of the moves stay as they were.
    fn waiting(&self, reason: &'static str, message: String) -> Scaling {
        let reassigning_since = self.reassigning_since.map(Time);
        Scaling { operation: self.operation, settled: false, reason, message, reassigning_since }
    }
}

fn unreachable(e: &AdminError) -> Observed {
    Observed::Waiting { reason: "KafkaUnreachable", message: format!("the managed Kafka cannot be observed yet: {e}") }
}

/// The apply changed the set's spec since it was fetched (or made it).
fn changed(fetched: Option<&StatefulSet>, applied: Option<&StatefulSet>) -> bool {
    let generation = |s: Option<&StatefulSet>| s.and_then(|s| s.metadata.generation);
    generation(fetched) != generation(applied)
}

async fn view(
    admin: &mut Admin,
    replicas: u32,
    pods: std::collections::BTreeMap<scaling::BrokerId, scaling::BrokerPod>,
) -> Result<ClusterView, AdminError> {
    let registered = admin.cluster().await?.brokers;
    let partitions = admin.partitions().await?;
    Ok(ClusterView { replicas, pods, registered, partitions })
}
