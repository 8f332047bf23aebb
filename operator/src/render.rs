//! `logpipe-operator render`: the manifests a LogPipeline becomes, without a cluster, for review before it is
//! applied (GitOps). What needs the cluster (owner references, the Kafka broker count) is left out.

use crate::build::kafka::KafkaObjects;
use crate::build::{self, Desired};
use crate::crd::LogPipeline;
use crate::validate::{self, Defaults, Invalid};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("not a LogPipeline: {0}")]
    Parse(#[from] serde_yaml::Error),
    #[error("invalid LogPipeline: {0}")]
    Invalid(#[from] Invalid),
}

/// The objects as a multi-document YAML stream, in apply order.
pub fn render(text: &str, defaults: &Defaults) -> Result<String, RenderError> {
    let lp: LogPipeline = serde_yaml::from_str(text)?;
    let pipeline = validate::validate(&lp, defaults)?;
    let d = build::build(&pipeline, None);
    let t = &pipeline.topic;
    let mut out = format!(
        "# LogPipeline {}: topic {} ({} partitions, replication factor {}) and {}, created by the operator when \
         missing\n",
        pipeline.name, t.name, t.partitions, t.replication_factor, t.dead_letter
    );
    if let Some(k) = &pipeline.managed {
        push_kafka(&mut out, &build::kafka::build(&pipeline.name, k, None))?;
    }
    push_all(&mut out, &d)?;
    Ok(out)
}

/// A managed Kafka's objects at the spec's broker count, before the pipeline's own, which depend on it.
fn push_kafka(out: &mut String, k: &KafkaObjects) -> Result<(), serde_yaml::Error> {
    push(out, &k.config_map)?;
    for service in &k.services {
        push(out, service)?;
    }
    for pdb in &k.disruption_budgets {
        push(out, pdb)?;
    }
    for set in k.stateful_sets() {
        push(out, set)?;
    }
    Ok(())
}

fn push_all(out: &mut String, d: &Desired) -> Result<(), serde_yaml::Error> {
    for sa in &d.service_accounts {
        push(out, sa)?;
    }
    push(out, &d.cluster_role)?;
    push(out, &d.cluster_role_binding)?;
    for cm in &d.config_maps {
        push(out, cm)?;
    }
    push(out, &d.daemon_set)?;
    push(out, &d.deployment)
}

fn push<T: Serialize>(out: &mut String, obj: &T) -> Result<(), serde_yaml::Error> {
    out.push_str("---\n");
    out.push_str(&serde_yaml::to_string(obj)?);
    Ok(())
}
