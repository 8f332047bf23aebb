//! The controller: for each LogPipeline, validate -> fetch -> build -> apply (Kubernetes objects, then topics and
//! a managed Kafka's scaling step) -> status; cleanup on deletion; backoff and an Event when a step fails.

mod backoff;
mod cleanup;
mod error;

pub use backoff::Backoff;
pub use error::{Category, ReconcileError};

use crate::apply;
use crate::build;
use crate::crd::{LogPipeline, LogPipelineStatus};
use crate::events::Events;
use crate::fetch;
use crate::kafka;
use crate::metrics::{Metrics, Outcome};
use crate::status::{self, Observation};
use crate::validate::{self, Defaults, Invalid};
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
/// How soon a spec that does not fit its external Kafka cluster, or whose children's names are taken, is checked
/// again: the cluster may grow, the object in the way may go.
const MISFIT_RETRY: Duration = Duration::from_secs(60);

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub defaults: Defaults,
    pub metrics: Arc<Metrics>,
    pub kafka: kafka::Settings,
    pub backoff: Backoff,
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
    let key = format!("{namespace}/{}", lp.name_any());
    let result = finalizer(&api, FINALIZER, Arc::clone(&lp), |event| async {
        match event {
            Finalizer::Apply(lp) => reconcile_pipeline(&lp, &ctx).await,
            Finalizer::Cleanup(lp) => cleanup::run(&lp, &ctx).await,
        }
    })
    .await
    .map_err(|e| ReconcileError::Finalizer(Box::new(e)));
    match &result {
        Ok(_) => ctx.backoff.succeeded(&key),
        Err(error) => {
            let (step, category) = (error.step(), error.category());
            ctx.metrics.failed(step, category.as_str());
            Events::new(&ctx.recorder, &lp).warning(&format!("{step}Failed"), error.to_string()).await;
        }
    }
    result
}

fn error_policy(lp: Arc<LogPipeline>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let key = format!("{}/{}", lp.namespace().unwrap_or_default(), lp.name_any());
    let delay = ctx.backoff.failed(&key);
    let category = error.category().as_str();
    tracing::warn!(pipeline = %key, step = error.step(), category, %error, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

async fn reconcile_pipeline(lp: &LogPipeline, ctx: &Context) -> Result<Action, ReconcileError> {
    let events = Events::new(&ctx.recorder, lp);
    let mut pipeline = match validate::validate(lp, &ctx.defaults) {
        Ok(p) => p,
        Err(invalid) => return reject(lp, ctx, &events, &invalid, Action::await_change()).await,
    };
    let running = fetch::collector(&ctx.client, &pipeline.name).await?;
    if let Some(earlier) = validate::earlier_state_dir(&pipeline.state_dir, running.as_ref()) {
        pipeline.carry_state_from(earlier);
    }
    let owner = lp.controller_owner_ref(&()).ok_or_else(|| ReconcileError::Incomplete(lp.name_any()))?;
    let previous = match pipeline.managed {
        Some(_) => fetch::status(&ctx.client, lp).await?,
        None => lp.status.clone().unwrap_or_default(),
    };
    let access = kafka::managed::credentials::prepare(&ctx.client, &mut pipeline, &owner).await?;
    let mut kafka = fetch::kafka(&ctx.client, &ctx.kafka, &pipeline, &owner, &previous, access).await?;
    kafka.observe(&pipeline.topic).await;
    if let Some(broker_count) = kafka.observed_brokers() {
        if let Err(invalid) = validate::against_cluster(&pipeline.topic, &validate::Facts { broker_count }) {
            return reject(lp, ctx, &events, &invalid, Action::requeue(MISFIT_RETRY)).await;
        }
    }
    let desired = build::build(&pipeline, Some(&owner), kafka.running());
    let existing = fetch::existing(&ctx.client, &pipeline.name, &desired).await?;
    if let Err(taken) = validate::ownership(&desired, &existing, &pipeline.name, &owner.uid) {
        // Only a change elsewhere (the object removed) resolves it, and that does not wake the controller.
        return reject(lp, ctx, &events, &taken, Action::requeue(MISFIT_RETRY)).await;
    }
    let applied = apply::apply(&ctx.client, &pipeline.name, &owner, &desired).await?;
    announce(&events, &previous, &desired.config_hash, &applied).await;
    let topics = kafka.ensure_topics(&pipeline.topic).await;
    topic_events(&events, &topics).await;
    let scaled = kafka.scale(&applied, &events).await?;
    let (daemon_set, deployment) = (applied.daemon_set.unwrap_or_default(), applied.deployment.unwrap_or_default());
    let (scaling, requeue) = match scaled {
        Some(s) => (Some(s.scaling), s.requeue),
        None => (None, None),
    };
    let observation = Observation::Applied {
        config_hash: &desired.config_hash,
        topic: &pipeline.topic.name,
        kafka: topics.state,
        daemon_set: &daemon_set,
        deployment: &deployment,
        scaling,
        listeners: pipeline.managed.as_ref().map(|m| m.security),
    };
    let status = write_status(lp, ctx, &previous, &observation).await?;
    let ready = status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
    ctx.metrics.reconciled(Outcome::Applied);
    let resync = if ready { RESYNC } else { NOT_READY_RETRY };
    Ok(Action::requeue(requeue.map_or(resync, |r| r.min(resync))))
}

async fn announce(events: &Events<'_>, previous: &LogPipelineStatus, config_hash: &str, applied: &apply::Applied) {
    if !applied.disruption_budgets {
        tracing::debug!("this cluster does not serve policy/v1; the brokers have no PodDisruptionBudget");
    }
    for child in &applied.pruned {
        events.normal("Pruned", format!("deleted {child}, which the spec no longer asks for")).await;
    }
    if previous.config_hash.as_deref() != Some(config_hash) {
        events.normal("RolledOut", format!("configuration {config_hash} applied")).await;
    }
}

async fn topic_events(events: &Events<'_>, topics: &kafka::Topics) {
    for topic in &topics.created {
        events.normal("TopicCreated", format!("created Kafka topic {topic}")).await;
    }
    if let Some((reason, note)) = &topics.warning {
        events.warning(reason, note.clone()).await;
    }
}

/// An invalid spec: say so in the status and an Event, and leave the running children alone until `then`.
async fn reject(
    lp: &LogPipeline,
    ctx: &Context,
    events: &Events<'_>,
    invalid: &Invalid,
    then: Action,
) -> Result<Action, ReconcileError> {
    tracing::info!(pipeline = %lp.name_any(), %invalid, "invalid spec");
    events.warning("InvalidSpec", invalid.to_string()).await;
    write_status(lp, ctx, &lp.status.clone().unwrap_or_default(), &Observation::Invalid(invalid)).await?;
    ctx.metrics.reconciled(Outcome::Invalid);
    Ok(then)
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
