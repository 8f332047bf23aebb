use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

/// Where pod metadata comes from and what of it is shipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "snake_case")]
pub struct KubernetesConfig {
    /// Whether to watch this node's pods for labels, annotations, owner and image.
    pub metadata: MetadataMode,
    /// The node whose pods are watched. Default: the `NODE_NAME` environment variable (the downward API).
    pub node_name: Option<String>,
    /// How long a new log file waits for its pod's metadata before it is read with path metadata only, in ms.
    pub wait_for_metadata_ms: u64,
    /// How long a deleted pod's metadata is kept for the lines still to be read from its files, in ms.
    pub deleted_pod_grace_ms: u64,
    /// Ship `kubernetes.labels`.
    pub labels: bool,
    /// Ship `kubernetes.annotations`.
    pub annotations: bool,
    /// Ship `kubernetes.namespace_labels`.
    pub namespace_labels: bool,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            metadata: MetadataMode::Auto,
            node_name: None,
            wait_for_metadata_ms: 5000,
            deleted_pod_grace_ms: 300_000,
            labels: true,
            annotations: true,
            namespace_labels: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataMode {
    /// Enabled when running in a pod (`KUBERNETES_SERVICE_HOST` is set), else disabled.
    Auto,
    /// Always; the kube client comes from the pod's service account or `KUBECONFIG`.
    Enabled,
    /// Path metadata only (namespace, pod, uid, container, restart count).
    Disabled,
}

impl MetadataMode {
    /// Whether the pod watch runs, given whether this process runs in a pod.
    pub fn resolve(self, in_cluster: bool) -> bool {
        match self {
            MetadataMode::Auto => in_cluster,
            MetadataMode::Enabled => true,
            MetadataMode::Disabled => false,
        }
    }
}

/// Which pods' logs are collected. Everything is collected unless a rule here says otherwise; a file that is not a
/// pod log (outside the kubelet layout) is never filtered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "snake_case")]
pub struct FilterConfig {
    /// Only these namespaces, when not empty.
    pub include_namespaces: Vec<String>,
    /// Never these namespaces.
    pub exclude_namespaces: Vec<String>,
    /// Only namespaces whose labels match (Kubernetes `matchLabels` / `matchExpressions`). Needs pod metadata.
    pub namespace_selector: Option<LabelSelector>,
    /// Only pods whose labels match. Needs pod metadata.
    pub pod_selector: Option<LabelSelector>,
    /// Only these container names, when not empty.
    pub include_containers: Vec<String>,
    /// Never these container names.
    pub exclude_containers: Vec<String>,
    /// A pod with this annotation set to `"true"` is not collected. Needs pod metadata. Empty disables it.
    pub opt_out_annotation: String,
}

/// The annotation a pod sets to opt out of collection, unless configured otherwise.
pub const DEFAULT_OPT_OUT_ANNOTATION: &str = "logpipe.dev/exclude";

impl Default for FilterConfig {
    /// Collect everything, honour the opt-out annotation.
    fn default() -> Self {
        Self {
            include_namespaces: Vec::new(),
            exclude_namespaces: Vec::new(),
            namespace_selector: None,
            pod_selector: None,
            include_containers: Vec::new(),
            exclude_containers: Vec::new(),
            opt_out_annotation: DEFAULT_OPT_OUT_ANNOTATION.into(),
        }
    }
}

impl FilterConfig {
    /// Whether a rule needs the pod watch (selectors); the opt-out annotation is honoured only when it runs.
    pub fn needs_metadata(&self) -> bool {
        self.namespace_selector.is_some() || self.pod_selector.is_some()
    }
}
