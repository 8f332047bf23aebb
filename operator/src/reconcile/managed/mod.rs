//! A managed Kafka in one reconcile: apply its objects at the broker count scaling has reached so far, observe the
//! brokers (their pods, and the cluster through the Kafka admin API), create the pipeline's topics, and take the
//! one next step that `crate::scaling::decide` chooses. Every reconcile starts again from what it observes; only
//! the operation in progress comes from the status.

mod act;
mod observe;

use super::events::Events;
use super::Context;
use crate::apply::{self, ApplyError};
use crate::build::{self, Component};
use crate::kafka_admin::{Admin, AdminError, Created};
use crate::model::{ManagedCluster, Pipeline};
use crate::scaling::timeout::{self, Moves};
use crate::scaling::{decide, Action, BrokerId, BrokerPod, ClusterView, Operation, Target};
use crate::status::{KafkaState, Scaling};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::Api;
use std::collections::BTreeMap;
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

/// What one reconcile found and did.
pub(super) struct Managed {
    pub kafka: KafkaState,
    pub scaling: Scaling,
    /// When to look again; `None` when settled.
    pub requeue: Option<Duration>,
}

/// The cluster as far as scaling has taken it, and the spec it is going towards.
pub(super) struct Cluster<'a> {
    pub pipeline: &'a Pipeline,
    pub spec: &'a ManagedCluster,
    pub owner: &'a OwnerReference,
    /// The operation in progress, from the status.
    pub operation: Operation,
    /// When the moves under way started, from the status.
    pub reassigning_since: Option<Timestamp>,
}

pub(super) async fn reconcile(c: &Cluster<'_>, ctx: &Context, events: &Events<'_>) -> Result<Managed, ManagedError> {
    let name = &c.pipeline.name;
    let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), name.namespace());
    let running = running(&sets, c).await?;
    let objects = build::kafka::build(name, &running, Some(c.owner));
    let applied = apply::kafka(&ctx.client, name.namespace(), &objects).await?;
    if !applied.disruption_budgets {
        tracing::debug!(pipeline = %name, "this cluster does not serve policy/v1; the brokers have no PodDisruptionBudget");
    }
    let poll = Some(ctx.kafka.poll);
    let pods = list_pods(ctx, c, Component::KafkaBroker).await?;
    let pods = match observe::broker_pods(&applied.brokers, &pods) {
        Ok(pods) => pods,
        Err(observe::NotObserved(message)) => {
            let scaling = waiting(c, "RolloutPending", message);
            let kafka = KafkaState::NotReady { reason: "RolloutPending", message: scaling.message.clone() };
            return Ok(Managed { kafka, scaling, requeue: poll });
        }
    };
    let mut admin = match connect_and_view(ctx, c, running.brokers, pods).await {
        Ok(found) => found,
        Err(e) => {
            let message = format!("the managed Kafka cannot be observed yet: {e}");
            let scaling = waiting(c, "KafkaUnreachable", message);
            let kafka = KafkaState::NotReady { reason: "KafkaUnreachable", message: scaling.message.clone() };
            return Ok(Managed { kafka, scaling, requeue: poll });
        }
    };
    let kafka = topics(&mut admin.admin, c.pipeline, &admin.view, events).await;
    let target = Target { brokers: c.spec.brokers, max_moves: ctx.kafka.max_moves };
    let decision = decide(target, c.operation, &admin.view);
    tracing::debug!(pipeline = %name, ?decision, since = ?c.reassigning_since, "managed Kafka");
    let step = act::Step { cluster: c, running: &running, view: &admin.view, ctx, events };
    let starting = matches!(decision.action, Action::Reassign(_));
    let moving = admin.view.partitions.iter().any(|p| p.reassigning());
    let clock = timeout::moves(c.reassigning_since, moving, starting, Timestamp::now(), c.spec.reassignment_timeout);
    let mut scaling = match clock {
        Moves::TimedOut => step.cancel(decision.operation, &mut admin.admin).await,
        Moves::Idle | Moves::Since(_) => step.take(decision, &mut admin.admin).await?,
    };
    if !starting {
        step.unthrottle(&mut admin.admin).await;
    }
    if scaling.settled {
        let controllers = list_pods(ctx, c, Component::KafkaController).await?;
        scaling = step.controllers(&applied.controllers, controllers).await?.unwrap_or(scaling);
    }
    scaling.reassigning_since = match clock {
        Moves::Since(t) => Some(Time(t)),
        Moves::Idle | Moves::TimedOut => None,
    };
    // A refusal waits for a spec change, which wakes the controller anyway.
    let refused = scaling.reason == act::REFUSED;
    let requeue = (!scaling.settled).then_some(if refused { ctx.kafka.poll * 12 } else { ctx.kafka.poll });
    Ok(Managed { kafka, scaling, requeue })
}

/// Nothing can be decided yet: the operation and the clock of the moves stay as they were.
fn waiting(c: &Cluster<'_>, reason: &'static str, message: String) -> Scaling {
    let reassigning_since = c.reassigning_since.map(Time);
    Scaling { operation: c.operation, settled: false, reason, message, reassigning_since }
}

/// The spec with the broker and controller counts the StatefulSets have now: only a scaling step changes the
/// brokers, and the controller quorum is never resized. A new cluster starts as the spec asks.
async fn running(sets: &Api<StatefulSet>, c: &Cluster<'_>) -> Result<ManagedCluster, ManagedError> {
    let name = &c.pipeline.name;
    let replicas = |set: Option<StatefulSet>| set.and_then(|s| s.spec?.replicas).map(|r| r.max(0) as u32);
    let brokers = replicas(get(sets, &name.kafka_brokers()).await?).unwrap_or(c.spec.brokers);
    let controllers = replicas(get(sets, &name.kafka_controllers()).await?).unwrap_or(c.spec.controllers);
    Ok(ManagedCluster { brokers, controllers, ..c.spec.clone() })
}

async fn get(sets: &Api<StatefulSet>, name: &str) -> Result<Option<StatefulSet>, ManagedError> {
    sets.get_opt(name)
        .await
        .map_err(|source| ManagedError::Kube { what: format!("reading StatefulSet {name}"), source })
}

async fn list_pods(ctx: &Context, c: &Cluster<'_>, component: Component) -> Result<Vec<Pod>, ManagedError> {
    let name = &c.pipeline.name;
    let selector: Vec<String> =
        build::selector_labels(name, component).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), name.namespace());
    let list = api.list(&ListParams::default().labels(&selector.join(","))).await;
    let list = list.map_err(|source| ManagedError::Kube { what: format!("listing the pods of {name}"), source })?;
    Ok(list.items)
}

struct Observed {
    admin: Admin,
    view: ClusterView,
}

async fn connect_and_view(
    ctx: &Context,
    c: &Cluster<'_>,
    replicas: u32,
    pods: BTreeMap<BrokerId, BrokerPod>,
) -> Result<Observed, AdminError> {
    let address = ctx.kafka.admin_address.clone().unwrap_or_else(|| c.pipeline.kafka.bootstrap_servers.clone());
    let mut admin = Admin::connect(&address, ctx.kafka.timeout).await?;
    let registered = admin.cluster().await?.brokers;
    let partitions = admin.partitions().await?;
    Ok(Observed { admin, view: ClusterView { replicas, pods, registered, partitions } })
}

/// Creates the pipeline's topic and dead-letter topic once every broker of the set is up: Kafka places a new
/// topic's replicas on the brokers registered at that moment, and a topic made while some were still starting
/// would leave them empty until the next scaling.
async fn topics(admin: &mut Admin, p: &Pipeline, view: &ClusterView, events: &Events<'_>) -> KafkaState {
    let t = &p.topic;
    let brokers = view.registered.len();
    let exists = view.partitions.iter().any(|x| x.topic == t.name);
    if !exists && !view.all_up() {
        let message = format!("{brokers} of {} broker(s) up; the topics are created once all are", view.replicas);
        return KafkaState::NotReady { reason: "BrokersStarting", message };
    }
    let configs = [("retention.ms", t.retention_ms.to_string())];
    let rf = i16::try_from(t.replication_factor).unwrap_or(i16::MAX);
    for (topic, partitions) in [(&t.name, t.partitions), (&t.dead_letter, 1)] {
        match admin.create_topic(topic, partitions, rf, &configs).await {
            Ok(Created::New) => events.normal("TopicCreated", format!("created Kafka topic {topic}")).await,
            Ok(Created::Existed) => {}
            Err(e) => {
                let message = format!("topic {topic}: {e}");
                events.warning("TopicError", message.clone()).await;
                return KafkaState::NotReady { reason: "TopicError", message };
            }
        }
    }
    let partitions = view.partitions.iter().filter(|x| x.topic == t.name).count();
    KafkaState::Ready { brokers, partitions: if partitions == 0 { t.partitions as usize } else { partitions } }
}
