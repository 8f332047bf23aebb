//! `logpipe-operator render`: the manifests a LogPipeline becomes, without a cluster, for review before it is
//! applied (GitOps). What needs the cluster (owner references, the Kafka broker count) is left out.

use crate::build::{self, Child};
use crate::crd::LogPipeline;
use crate::validate::{self, Defaults, Invalid};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("not a LogPipeline: {0}")]
    Parse(#[from] serde_yaml::Error),
    #[error("invalid LogPipeline: {0}")]
    Invalid(#[from] Invalid),
}

/// The objects as a multi-document YAML stream, in apply order; a managed Kafka at the spec's broker count.
pub fn render(text: &str, defaults: &Defaults) -> Result<String, RenderError> {
    let lp: LogPipeline = serde_yaml::from_str(text)?;
    let pipeline = validate::validate(&lp, defaults)?;
    let d = build::build(&pipeline, None, pipeline.managed.as_ref());
    let t = &pipeline.topic;
    let mut out = format!(
        "# LogPipeline {}: topic {} ({} partitions, replication factor {}) and {}, created by the operator when \
         missing\n",
        pipeline.name, t.name, t.partitions, t.replication_factor, t.dead_letter
    );
    for child in &d.children {
        out.push_str("---\n");
        out.push_str(&yaml(child)?);
    }
    Ok(out)
}

fn yaml(child: &Child) -> Result<String, serde_yaml::Error> {
    match child {
        Child::ServiceAccount(o) => serde_yaml::to_string(o),
        Child::ClusterRole(o) => serde_yaml::to_string(o),
        Child::ClusterRoleBinding(o) => serde_yaml::to_string(o),
        Child::Role(o) => serde_yaml::to_string(o),
        Child::RoleBinding(o) => serde_yaml::to_string(o),
        Child::ConfigMap(o) => serde_yaml::to_string(o),
        Child::Service(o) => serde_yaml::to_string(o),
        Child::PodDisruptionBudget(o) => serde_yaml::to_string(o),
        Child::NetworkPolicy(o) => serde_yaml::to_string(o),
        Child::StatefulSet(o) => serde_yaml::to_string(o),
        Child::DaemonSet(o) => serde_yaml::to_string(o),
        Child::Deployment(o) => serde_yaml::to_string(o),
    }
}
