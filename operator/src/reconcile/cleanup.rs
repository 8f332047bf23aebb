//! What a deleted LogPipeline leaves that garbage collection does not remove: its cluster-scoped RBAC (which cannot
//! have a namespaced owner, so it is found by the pipeline's labels) and, when the spec asks for it, its topics.

use super::{Context, ReconcileError};
use crate::apply;
use crate::crd::LogPipeline;
use crate::fetch;
use crate::metrics::Outcome;
use crate::names::PipelineName;
use crate::validate;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use std::collections::BTreeSet;

pub(super) async fn run(lp: &LogPipeline, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = lp.namespace().unwrap_or_default();
    if let Ok(name) = PipelineName::new(&namespace, &lp.name_any()) {
        let deleted = apply::delete_cluster_children(&ctx.client, &name, &BTreeSet::new()).await;
        deleted.map_err(ReconcileError::Cleanup)?;
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
