//! The controller: for each LogPipeline, fetch -> validate -> build -> apply -> status, and cleanup on deletion.

mod cleanup;
mod events;
mod managed;

pub use managed::{ManagedError, Settings as KafkaSettings};

use crate::apply::{self, ApplyError};
use crate::build;
use crate::crd::{LogPipeline, LogPipelineStatus};
use crate::fetch::{self, FetchError, KafkaView};
use crate::metrics::{Metrics, Outcome};
use crate::model::Pipeline;
use crate::status::{self, KafkaState, Observation};
use crate::validate::{self, Defaults, Invalid, Observed};
use events::Events;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Recorder;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Removes what owner references cannot: the collector's cluster-scoped RBAC, and the topics when asked.
pub const FINALIZER: &str = "logpipe.dev/cleanup";
/// How often a ready pipeline is looked at again without a change; children's changes wake it sooner.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a pipeline that is not ready yet is looked at again.
const NOT_READY_RETRY: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Managed(#[from] ManagedError),
    #[error("reading or writing the status of {name}: {source}")]
    Status { name: String, source: kube::Error },
    #[error("cleanup of {what}: {source}")]
    Cleanup { what: String, source: kube::Error },
    #[error("cleanup: {0}")]
    CleanupKafka(#[from] FetchError),
    #[error("{0} has no namespace or uid yet")]
    Incomplete(String),
    #[error(transparent)]
    Finalizer(Box<kube::runtime::finalizer::Error<ReconcileError>>),
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub defaults: Defaults,
    pub metrics: Arc<Metrics>,
    pub kafka: KafkaSettings,
}

/// Runs the controller until `shutdown` completes, for the LogPipelines of `namespace`, or of every namespace.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let children = watcher::Config::default().labels(&format!("{}={}", build::MANAGED_BY.0, build::MANAGED_BY.1));
    Controller::new(scoped::<LogPipeline>(&client, namespace), watcher::Config::default())
        .owns(scoped::<DaemonSet>(&client, namespace), children.clone())
        .owns(scoped::<Deployment>(&client, namespace), children.clone())
        .owns(scoped::<StatefulSet>(&client, namespace), children.clone())
        .owns(scoped::<ConfigMap>(&client, namespace), children.clone())
        .owns(scoped::<ServiceAccount>(&client, namespace), children)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::warn!(%error, "reconcile");
            }
        })
        .await;
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn reconcile(lp: Arc<LogPipeline>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let namespace = lp.namespace().ok_or_else(|| ReconcileError::Incomplete(lp.name_any()))?;
    let api = Api::<LogPipeline>::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, lp, |event| async {
        match event {
            Finalizer::Apply(lp) => reconcile_pipeline(&lp, &ctx).await,
            Finalizer::Cleanup(lp) => cleanup::run(&lp, &ctx).await,
        }
    })
    .await
    .map_err(|e| ReconcileError::Finalizer(Box::new(e)));
    if result.is_err() {
        ctx.metrics.reconciled(Outcome::Error);
    }
    result
}

fn error_policy(lp: Arc<LogPipeline>, error: &ReconcileError, _: Arc<Context>) -> Action {
    tracing::warn!(pipeline = %lp.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(10))
}

async fn reconcile_pipeline(lp: &LogPipeline, ctx: &Context) -> Result<Action, ReconcileError> {
    let events = Events::new(&ctx.recorder, lp);
    let pipeline = match validate::validate(lp, &ctx.defaults) {
        Ok(p) => p,
        Err(invalid) => return reject(lp, ctx, &events, &invalid).await,
    };
    let owner = lp.controller_owner_ref(&()).ok_or_else(|| ReconcileError::Incomplete(lp.name_any()))?;
    let mut previous = lp.status.clone().unwrap_or_default();
    let (kafka, scaling, requeue) = match &pipeline.managed {
        Some(spec) => {
            previous = fresh_status(lp, ctx).await?;
            let operation = previous.kafka_operation.map(Into::into).unwrap_or_default();
            let reassigning_since = previous.reassigning_since.as_ref().map(|t| t.0);
            let cluster = managed::Cluster { pipeline: &pipeline, spec, owner: &owner, operation, reassigning_since };
            let m = managed::reconcile(&cluster, ctx, &events).await?;
            (m.kafka, Some(m.scaling), m.requeue)
        }
        None => {
            let kafka = fetch::kafka(&ctx.client, &pipeline).await;
            if let Ok(view) = &kafka {
                let observed = Observed { broker_count: view.brokers };
                if let Err(invalid) = validate::against_cluster(&pipeline.topic, &observed) {
                    return reject(lp, ctx, &events, &invalid).await;
                }
            }
            (topics(&pipeline, kafka, &events).await, None, None)
        }
    };
    let desired = build::build(&pipeline, Some(&owner));
    let applied = apply::apply(&ctx.client, pipeline.name.namespace(), &desired).await?;
    if previous.config_hash.as_deref() != Some(desired.config_hash.as_str()) {
        events.normal("RolledOut", format!("configuration {} applied", desired.config_hash)).await;
    }
    let observation = Observation::Applied {
        config_hash: &desired.config_hash,
        topic: &pipeline.topic.name,
        kafka,
        daemon_set: &applied.daemon_set,
        deployment: &applied.deployment,
        scaling,
    };
    let status = write_status(lp, ctx, &previous, &observation).await?;
    let ready = status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
    ctx.metrics.reconciled(Outcome::Applied);
    let resync = if ready { RESYNC } else { NOT_READY_RETRY };
    Ok(Action::requeue(requeue.map_or(resync, |r| r.min(resync))))
}

/// The status as the API server has it. A managed Kafka's operation in progress is read from here, not from the
/// controller's cache, which can lag behind the status written a moment ago: an operation read stale is lost, and a
/// status compared with a stale one may go unwritten.
async fn fresh_status(lp: &LogPipeline, ctx: &Context) -> Result<LogPipelineStatus, ReconcileError> {
    let name = lp.name_any();
    let api = Api::<LogPipeline>::namespaced(ctx.client.clone(), lp.namespace().as_deref().unwrap_or_default());
    let fresh = api.get_status(&name).await.map_err(|source| ReconcileError::Status { name, source })?;
    Ok(fresh.status.unwrap_or_default())
}

/// Creates missing topics when Kafka could be reached.
async fn topics(p: &Pipeline, kafka: Result<KafkaView, FetchError>, events: &Events<'_>) -> KafkaState {
    let view = match kafka {
        Ok(view) => view,
        Err(e) => {
            let message = e.to_string();
            events.warning("KafkaUnreachable", message.clone()).await;
            return KafkaState::NotReady { reason: "KafkaUnreachable", message };
        }
    };
    match view.connection.ensure_topics(&p.topic).await {
        Ok(created) => {
            for topic in &created {
                events.normal("TopicCreated", format!("created Kafka topic {topic}")).await;
            }
            let partitions = if view.partitions == 0 { p.topic.partitions as usize } else { view.partitions };
            KafkaState::Ready { brokers: view.brokers, partitions }
        }
        Err(e) => {
            let message = e.to_string();
            events.warning("TopicError", message.clone()).await;
            KafkaState::NotReady { reason: "TopicError", message }
        }
    }
}

/// An invalid spec: say so in the status and an Event, and leave the running children alone.
async fn reject(
    lp: &LogPipeline,
    ctx: &Context,
    events: &Events<'_>,
    invalid: &Invalid,
) -> Result<Action, ReconcileError> {
    tracing::info!(pipeline = %lp.name_any(), %invalid, "invalid spec");
    events.warning("InvalidSpec", invalid.to_string()).await;
    write_status(lp, ctx, &lp.status.clone().unwrap_or_default(), &Observation::Invalid(invalid)).await?;
    ctx.metrics.reconciled(Outcome::Invalid);
    // Only a spec change (which wakes the controller) or a Kafka cluster change fixes it.
    Ok(Action::requeue(Duration::from_secs(60)))
}

/// Writes the status that follows `previous`, unless nothing changed.
async fn write_status(
    lp: &LogPipeline,
    ctx: &Context,
    previous: &LogPipelineStatus,
    observation: &Observation<'_>,
) -> Result<LogPipelineStatus, ReconcileError> {
    let status = status::next(previous, lp.metadata.generation, observation, &Time(Timestamp::now()));
    if status == *previous {
        return Ok(status);
    }
    let name = lp.name_any();
    let api = Api::<LogPipeline>::namespaced(ctx.client.clone(), lp.namespace().as_deref().unwrap_or_default());
    let patch = Patch::Merge(serde_json::json!({ "status": status }));
    api.patch_status(&name, &PatchParams::default(), &patch)
        .await
        .map_err(|source| ReconcileError::Status { name, source })?;
    Ok(status)
}
