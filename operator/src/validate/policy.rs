//! The cluster administrator's policy over what a pipeline owner may ask for: which namespaces may hold pipelines,
//! whose logs a pipeline collects, which node directories collectors may read and write, and whether a spec may
//! name its own images. A spec outside it is refused like an invalid one, naming the field and the policy (the
//! operator's flag and the chart value that set it).

use super::Invalid;
use crate::crd::{FilterSpec, LogPipelineSpec};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// Where the collector keeps its checkpoints on the node; a spec's `stateDir` must lie below it.
pub const STATE_ROOT: &str = "/var/lib/logpipe";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Node directories a pipeline's collectors may mount and read, with everything below them.
    pub host_paths: Vec<PathBuf>,
    /// Whether `spec.collector.image`, `spec.indexer.image` and `spec.kafka.managed.image` are honoured.
    pub image_overrides: bool,
    /// Namespaces whose LogPipelines the operator rolls out.
    pub pipeline_namespaces: Namespaces,
    /// Namespaces whose pipelines may collect the logs of any namespace; a pipeline elsewhere collects its own.
    pub cluster_wide: Namespaces,
}

/// A set of namespaces named by the administrator, or every namespace (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    Any,
    Only(BTreeSet<String>),
}

impl Namespaces {
    /// From a flag's comma-separated list: `*` alone means any namespace.
    pub fn parse(list: &[String]) -> Self {
        let names: BTreeSet<String> = list.iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
        if names.contains("*") {
            return Self::Any;
        }
        Self::Only(names)
    }

    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(names) => names.contains(namespace),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Any => "every namespace".into(),
            Self::Only(names) if names.is_empty() => "none".into(),
            Self::Only(names) => names.iter().cloned().collect::<Vec<_>>().join(", "),
        }
    }
}

/// Whose logs a pipeline's collectors ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    /// Any namespace its filter admits.
    ClusterWide,
    /// Its own namespace only: the agent's namespace filter is set to it whatever the spec says.
    Confined(String),
}

impl Default for Policy {
    /// Only the kubelet's log directories; only the images the operator was installed with; pipelines in any
    /// namespace, each collecting its own namespace's logs.
    fn default() -> Self {
        Self {
            host_paths: vec!["/var/log/pods".into(), "/var/log/containers".into()],
            image_overrides: false,
            pipeline_namespaces: Namespaces::Any,
            cluster_wide: Namespaces::Only(BTreeSet::new()),
        }
    }
}

impl Policy {
    /// A pipeline in a namespace the administrator did not name for pipelines is refused as a whole.
    pub fn namespace(&self, namespace: &str) -> Result<(), Invalid> {
        if self.pipeline_namespaces.contains(namespace) {
            return Ok(());
        }
        Err(Invalid::new(
            "metadata.namespace",
            format!(
                "the operator's policy does not roll out pipelines in namespace {namespace} (allowed: {}; flag \
                 --pipeline-namespaces, chart value policy.pipelineNamespaces)",
                self.pipeline_namespaces.describe()
            ),
        ))
    }

    /// Whose logs the pipeline may collect. A confined pipeline whose filter names other namespaces is refused
    /// rather than silently narrowed, so its owner learns why those logs never arrive.
    pub fn collection(&self, namespace: &str, filter: &FilterSpec) -> Result<Collection, Invalid> {
        if self.cluster_wide.contains(namespace) {
            return Ok(Collection::ClusterWide);
        }
        let Some(other) = filter.include_namespaces.iter().find(|n| *n != namespace) else {
            return Ok(Collection::Confined(namespace.to_owned()));
        };
        Err(Invalid::new(
            "spec.collector.filter.includeNamespaces",
            format!(
                "{other}: a pipeline in namespace {namespace} collects its own namespace's logs only; the \
                 operator's policy allows collecting other namespaces to pipelines in: {} (flag \
                 --cluster-wide-namespaces, chart value policy.clusterWideNamespaces)",
                self.cluster_wide.describe()
            ),
        ))
    }

    /// Every directory the collector would mount from the node must lie within an allowed one.
    pub fn host_paths(&self, field: &str, dirs: &[String]) -> Result<(), Invalid> {
        let Some(outside) = dirs.iter().find(|d| !self.host_paths.iter().any(|a| within(Path::new(d), a))) else {
            return Ok(());
        };
        let allowed: Vec<String> = self.host_paths.iter().map(|p| p.display().to_string()).collect();
        Err(Invalid::new(
            field,
            format!(
                "{outside} is outside the node directories the operator's policy lets collectors read ({}; flag \
                 --allowed-host-paths, chart value policy.allowedHostPaths)",
                allowed.join(", ")
            ),
        ))
    }

    /// The images a spec names itself, refused unless the policy honours them.
    pub fn images(&self, spec: &LogPipelineSpec) -> Result<(), Invalid> {
        let named = [
            ("spec.collector.image", spec.collector.image.is_some()),
            ("spec.indexer.image", spec.indexer.image.is_some()),
            ("spec.kafka.managed.image", spec.kafka.managed.as_ref().is_some_and(|m| m.image.is_some())),
        ];
        match named.into_iter().find(|(_, set)| *set) {
            Some((field, _)) if !self.image_overrides => Err(Invalid::new(
                field,
                "the operator's policy does not honour images named by a pipeline: its components run the images \
                 the operator was installed with (flag --allow-image-overrides, chart value \
                 policy.allowImageOverrides)",
            )),
            _ => Ok(()),
        }
    }
}

/// `path` is `dir` or below it, with no `..` to climb out.
pub(super) fn within(path: &Path, dir: &Path) -> bool {
    let climbs = path.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir));
    path.is_absolute() && !climbs && path.starts_with(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_within_the_allowed_directories_only() {
        let policy = Policy::default();
        let cases = [
            (vec!["/var/log/pods"], true),
            (vec!["/var/log/pods", "/var/log/containers"], true),
            (vec!["/var/log/pods/ns_pod_uid"], true),
            (vec!["/var/log"], false),
            (vec!["/etc/kubernetes/pki"], false),
            (vec!["/var/log/pods/../../../etc"], false),
            (vec!["/var/log/podsx"], false),
            (vec!["/var/log/pods", "/var/lib/docker/containers"], false),
        ];
        for (dirs, ok) in cases {
            let dirs: Vec<String> = dirs.into_iter().map(String::from).collect();
            let got = policy.host_paths("spec.collector.paths", &dirs);
            assert_eq!(got.is_ok(), ok, "{dirs:?}: {got:?}");
            if let Err(e) = got {
                assert!(e.reason.contains("policy.allowedHostPaths"), "{e}");
            }
        }
        let docker = Policy { host_paths: vec!["/var/log".into(), "/var/lib/docker/containers".into()], ..policy };
        assert!(docker.host_paths("f", &["/var/lib/docker/containers".into(), "/var/log/pods".into()]).is_ok());
    }

    #[test]
    fn namespaces_from_flags() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(Namespaces::parse(&list(&["*"])), Namespaces::Any);
        assert_eq!(Namespaces::parse(&list(&["a", "*"])), Namespaces::Any);
        assert_eq!(Namespaces::parse(&list(&[])), Namespaces::Only(BTreeSet::new()));
        assert_eq!(Namespaces::parse(&list(&[""])), Namespaces::Only(BTreeSet::new()), "an empty flag names none");
        let some = Namespaces::parse(&list(&[" logging", "ops "]));
        assert!(some.contains("logging") && some.contains("ops") && !some.contains("web"));
    }

    #[test]
    fn only_named_namespaces_hold_pipelines() {
        let mut policy = Policy::default();
        assert!(policy.namespace("anything").is_ok(), "any namespace by default");
        policy.pipeline_namespaces = Namespaces::Only(["logging".to_owned()].into());
        assert!(policy.namespace("logging").is_ok());
        let refused = policy.namespace("web").unwrap_err();
        assert_eq!(refused.field, "metadata.namespace");
        assert!(
            refused.reason.contains("policy.pipelineNamespaces") && refused.reason.contains("logging"),
            "{refused}"
        );
    }

    #[test]
    fn pipelines_collect_their_own_namespace_unless_named_cluster_wide() {
        let filter = |include: &[&str]| FilterSpec {
            include_namespaces: include.iter().map(|s| s.to_string()).collect(),
            ..FilterSpec::default()
        };
        let confined = Collection::Confined("web".into());
        let cases: [(&[&str], &[&str], Option<Collection>); 7] = [
            (&[], &[], Some(confined.clone())),
            (&[], &["web"], Some(confined.clone())),
            (&[], &["shop"], None),
            (&[], &["web", "shop"], None),
            (&["ops"], &["shop"], None),
            (&["web"], &["shop", "web"], Some(Collection::ClusterWide)),
            (&["*"], &[], Some(Collection::ClusterWide)),
        ];
        for (cluster_wide, include, want) in cases {
            let cluster_wide = Namespaces::parse(&cluster_wide.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            let policy = Policy { cluster_wide, ..Policy::default() };
            let got = policy.collection("web", &filter(include));
            match (got, want) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{include:?}"),
                (Err(e), None) => {
                    assert_eq!(e.field, "spec.collector.filter.includeNamespaces");
                    assert!(e.reason.contains("policy.clusterWideNamespaces"), "{e}");
                }
                (got, want) => panic!("{:?} under {:?}: got {got:?}, want {want:?}", include, policy.cluster_wide),
            }
        }
    }
}
