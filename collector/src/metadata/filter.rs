use super::{Labels, PodMeta};
use crate::config::FilterConfig;
use kube::core::{Selector, SelectorExt};
use std::collections::HashSet;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("filter.{field}: {source}")]
    Selector { field: &'static str, source: kube::core::ParseExpressionError },
}

/// Whether a file's lines are collected, and if not, which rule said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Collect,
    Skip(&'static str),
}

/// The compiled `filter` section of the agent config.
#[derive(Debug, Default)]
pub struct Filter {
    include_namespaces: HashSet<String>,
    exclude_namespaces: HashSet<String>,
    namespace_selector: Option<Selector>,
    pod_selector: Option<Selector>,
    include_containers: HashSet<String>,
    exclude_containers: HashSet<String>,
    opt_out_annotation: Option<String>,
}

impl Filter {
    pub fn new(config: &FilterConfig) -> Result<Self, FilterError> {
        let selector = |field, s: &Option<_>| -> Result<Option<Selector>, FilterError> {
            s.clone().map(Selector::try_from).transpose().map_err(|source| FilterError::Selector { field, source })
        };
        let set = |v: &[String]| v.iter().cloned().collect::<HashSet<_>>();
        Ok(Self {
            include_namespaces: set(&config.include_namespaces),
            exclude_namespaces: set(&config.exclude_namespaces),
            namespace_selector: selector("namespace_selector", &config.namespace_selector)?,
            pod_selector: selector("pod_selector", &config.pod_selector)?,
            include_containers: set(&config.include_containers),
            exclude_containers: set(&config.exclude_containers),
            opt_out_annotation: Some(config.opt_out_annotation.clone()).filter(|a| !a.is_empty()),
        })
    }

    /// A file whose path names no pod: collected unless only some namespaces are, since it is in none of them.
    pub fn without_pod(&self) -> Decision {
        if self.include_namespaces.is_empty() {
            return Decision::Collect;
        }
        Decision::Skip("not a pod's log, and include_namespaces is set")
    }

    /// What the kubelet path alone decides.
    pub fn by_path(&self, namespace: &str, container: &str) -> Decision {
        if !self.include_namespaces.is_empty() && !self.include_namespaces.contains(namespace) {
            return Decision::Skip("namespace not in include_namespaces");
        }
        if self.exclude_namespaces.contains(namespace) {
            return Decision::Skip("namespace in exclude_namespaces");
        }
        if !self.include_containers.is_empty() && !self.include_containers.contains(container) {
            return Decision::Skip("container not in include_containers");
        }
        if self.exclude_containers.contains(container) {
            return Decision::Skip("container in exclude_containers");
        }
        Decision::Collect
    }

    /// What the pod's metadata decides; a namespace not seen (yet) has no labels.
    pub fn by_metadata(&self, pod: &PodMeta, namespace_labels: Option<&Labels>) -> Decision {
        if let Some(a) = &self.opt_out_annotation {
            if pod.annotations.get(a).is_some_and(|v| v == "true") {
                return Decision::Skip("pod opted out by annotation");
            }
        }
        if let Some(s) = &self.namespace_selector {
            let empty = Labels::new();
            if !s.matches(namespace_labels.unwrap_or(&empty)) {
                return Decision::Skip("namespace labels do not match namespace_selector");
            }
        }
        if self.pod_selector.as_ref().is_some_and(|s| !s.matches(&pod.labels)) {
            return Decision::Skip("pod labels do not match pod_selector");
        }
        Decision::Collect
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(config: serde_json::Value) -> Filter {
        Filter::new(&serde_json::from_value(config).unwrap()).unwrap()
    }

    #[test]
    fn by_path_table() {
        let cases = [
            (json!({}), "any", "app", Decision::Collect),
            (json!({"include_namespaces": ["a"]}), "a", "app", Decision::Collect),
            (json!({"include_namespaces": ["a"]}), "b", "app", Decision::Skip("namespace not in include_namespaces")),
            (
                json!({"exclude_namespaces": ["kube-system"]}),
                "kube-system",
                "x",
                Decision::Skip("namespace in exclude_namespaces"),
            ),
            (
                json!({"include_containers": ["app"]}),
                "a",
                "sidecar",
                Decision::Skip("container not in include_containers"),
            ),
            (
                json!({"exclude_containers": ["istio-proxy"]}),
                "a",
                "istio-proxy",
                Decision::Skip("container in exclude_containers"),
            ),
            (json!({"exclude_containers": ["istio-proxy"]}), "a", "app", Decision::Collect),
        ];
        for (config, ns, container, want) in cases {
            assert_eq!(filter(config.clone()).by_path(ns, container), want, "{config} {ns} {container}");
        }
    }

    #[test]
    fn files_of_no_pod_only_without_a_namespace_list() {
        assert_eq!(filter(json!({})).without_pod(), Decision::Collect);
        assert_eq!(filter(json!({"exclude_namespaces": ["a"]})).without_pod(), Decision::Collect);
        assert!(matches!(filter(json!({"include_namespaces": ["a"]})).without_pod(), Decision::Skip(_)));
    }

    #[test]
    fn by_metadata_table() {
        let pod = |labels: &[(&str, &str)], annotations: &[(&str, &str)]| PodMeta {
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..PodMeta::default()
        };
        let team_a = Labels::from([("team".to_string(), "a".to_string())]);
        let by_team = json!({"namespace_selector": {"matchLabels": {"team": "a"}}});
        let by_tier = json!({"pod_selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}});
        let cases = [
            (json!({}), pod(&[], &[]), None, Decision::Collect),
            (
                json!({}),
                pod(&[], &[("logpipe.dev/exclude", "true")]),
                None,
                Decision::Skip("pod opted out by annotation"),
            ),
            (json!({}), pod(&[], &[("logpipe.dev/exclude", "false")]), None, Decision::Collect),
            (json!({"opt_out_annotation": ""}), pod(&[], &[("logpipe.dev/exclude", "true")]), None, Decision::Collect),
            (by_team.clone(), pod(&[], &[]), Some(&team_a), Decision::Collect),
            (by_team.clone(), pod(&[], &[]), None, Decision::Skip("namespace labels do not match namespace_selector")),
            (by_tier.clone(), pod(&[("tier", "api")], &[]), None, Decision::Collect),
            (
                by_tier.clone(),
                pod(&[("tier", "db")], &[]),
                None,
                Decision::Skip("pod labels do not match pod_selector"),
            ),
            (by_tier, pod(&[], &[]), None, Decision::Skip("pod labels do not match pod_selector")),
        ];
        for (config, pod, ns, want) in cases {
            assert_eq!(filter(config.clone()).by_metadata(&pod, ns), want, "{config} {pod:?}");
        }
    }

    #[test]
    fn a_bad_selector_is_an_error() {
        let config = json!({"pod_selector": {"matchExpressions": [{"key": "k", "operator": "Bogus"}]}});
        let err = Filter::new(&serde_json::from_value(config).unwrap()).unwrap_err();
        assert!(err.to_string().starts_with("filter.pod_selector"), "{err}");
    }
}
