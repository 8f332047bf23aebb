use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The node agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectorSpec {
    /// Container image of logpipe-collector. Default: the image the operator was installed with; another is
    /// honoured only when the operator's policy allows image overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Glob patterns of log files to read on each node. Default: `/var/log/pods/*/*/*.log` (the kubelet layout).
    /// The directory each pattern starts with is mounted from the node, read-only; it must lie within the node
    /// directories the operator's policy allows (default `/var/log/pods`, `/var/log/containers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Glob patterns of files never read, even when `paths` matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_paths: Vec<String>,
    /// More node directories to mount read-only, e.g. `/var/lib/docker/containers` where docker's json-file logs
    /// live behind the kubelet's symlinks. Each must lie within the node directories the operator's policy allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_host_paths: Vec<String>,
    /// Line format: `auto` (detected per file), `cri`, `docker` or `raw`. Default: auto.
    #[serde(default)]
    pub format: LogFormat,
    /// Joins lines into one record (stack traces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiline: Option<MultilineSpec>,
    /// Which pods' logs are collected. Default: every pod of the namespaces the pipeline may collect (see
    /// `includeNamespaces`), except pods annotated `logpipe.dev/exclude: "true"`.
    #[serde(default)]
    pub filter: FilterSpec,
    /// Bytes a collector has handed to Kafka and not yet seen acknowledged; reading waits while this many are out.
    /// Memory follows it: peak RSS is about 35 MiB plus 1.5 to 2.5 times this (76 MiB at the default, 43 MiB at
    /// 4194304, docs/benchmarks.md); a smaller bound slows how fast a node catches up after Kafka was away and
    /// costs some CPU in smaller messages. Default: 16777216.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 65536, max = 4_294_967_296_i64))]
    pub max_in_flight_bytes: Option<i64>,
    /// Resources of the collector container. Default: requests 50m CPU and 64Mi memory, limit 512Mi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Tolerations of the collector pods. Default: tolerate every taint, so every node's logs are collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Run collectors only on nodes with these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Priority class of the collector pods, e.g. `system-node-critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// No longer honoured: the operator derives the node directory of the collector's checkpoints,
    /// `/var/lib/logpipe/<namespace>-<name>-<uid prefix>`, and a spec that sets this is refused. Checkpoints of the
    /// directory the collectors used before are carried over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
}

/// How log lines are framed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Auto,
    Cri,
    Docker,
    Raw,
}

/// A line matching `start` begins a record; other lines continue it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultilineSpec {
    /// Regular expression (Rust regex syntax) of a record's first line, e.g. `^\S` or `^\d{4}-\d{2}-\d{2}`.
    pub start: String,
    /// A record is complete when no line continued it for this many milliseconds. Default: 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600_000))]
    pub timeout_ms: Option<u64>,
}

/// Include and exclude rules; everything is collected unless a rule says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilterSpec {
    /// Only these namespaces, when not empty. A pipeline collects other namespaces' logs only when it lives in a
    /// namespace the operator's policy names for cluster-wide collection; elsewhere it collects its own namespace
    /// and may name no other here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_namespaces: Vec<String>,
    /// Never these namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_namespaces: Vec<String>,
    /// Only namespaces whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Only pods whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Only these container names, when not empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_containers: Vec<String>,
    /// Never these container names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_containers: Vec<String>,
    /// Pods with this annotation set to "true" are not collected. Default: `logpipe.dev/exclude`; empty disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_annotation: Option<String>,
}
