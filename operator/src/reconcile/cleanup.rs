//! What a deleted LogPipeline leaves that garbage collection does not remove: its cluster-scoped RBAC (which cannot
//! have a namespaced owner) and, when the spec asks for it, its topics.

use super::{Context, ReconcileError};
use crate::crd::LogPipeline;
use crate::fetch;
use crate::metrics::Outcome;
use crate::names::PipelineName;
use crate::validate;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

pub(super) async fn run(lp: &LogPipeline, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = lp.namespace().unwrap_or_default();
    if let Ok(name) = PipelineName::new(&namespace, &lp.name_any()) {
        let role = name.collector_cluster_role();
        delete(Api::<ClusterRoleBinding>::all(ctx.client.clone()), &role).await?;
        delete(Api::<ClusterRole>::all(ctx.client.clone()), &role).await?;
    }
    // The topics are known only from a valid spec; one that turned invalid keeps its topics (noted in the docs).
    if let Ok(p) = validate::validate(lp, &ctx.defaults) {
        // A managed cluster goes with the pipeline; its volume claims are kept, and its topics with them.
        if p.topic.delete_on_removal && p.managed.is_none() {
            fetch::external(&ctx.client, &p).await?.delete_topics(&p.topic).await?;
            tracing::info!(topic = %p.topic.name, "deleted the pipeline's topics");
        }
    }
    ctx.metrics.reconciled(Outcome::CleanedUp);
    Ok(Action::await_change())
}

async fn delete<K>(api: Api<K>, name: &str) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(ReconcileError::Cleanup { what: format!("{} {name}", K::kind(&())), source }),
    }
}
