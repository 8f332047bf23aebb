//! The cluster administrator's policy over what a pipeline owner may ask for: which node directories collectors may
//! read and write, and whether a spec may name its own images. A spec outside it is refused like an invalid one,
//! naming the field and the policy (the operator's flag and the chart value that set it).

use super::Invalid;
use crate::crd::LogPipelineSpec;
use std::path::{Component, Path, PathBuf};

/// Where the collector keeps its checkpoints on the node; a spec's `stateDir` must lie below it.
pub const STATE_ROOT: &str = "/var/lib/logpipe";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Node directories a pipeline's collectors may mount and read, with everything below them.
    pub host_paths: Vec<PathBuf>,
    /// Whether `spec.collector.image`, `spec.indexer.image` and `spec.kafka.managed.image` are honoured.
    pub image_overrides: bool,
}

impl Default for Policy {
    /// Only the kubelet's log directories; only the images the operator was installed with.
    fn default() -> Self {
        Self { host_paths: vec!["/var/log/pods".into(), "/var/log/containers".into()], image_overrides: false }
    }
}

impl Policy {
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

/// The collector's checkpoint directory: a writable node directory, so only below [`STATE_ROOT`].
pub fn state_dir(dir: &str) -> Result<(), Invalid> {
    if within(Path::new(dir), Path::new(STATE_ROOT)) && Path::new(dir) != Path::new(STATE_ROOT) {
        return Ok(());
    }
    Err(Invalid::new("spec.collector.stateDir", format!("{dir} is not a directory below {STATE_ROOT}")))
}

/// `path` is `dir` or below it, with no `..` to climb out.
fn within(path: &Path, dir: &Path) -> bool {
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
    fn state_dirs_below_the_state_root_only() {
        let cases = [
            ("/var/lib/logpipe/logging-web", true),
            ("/var/lib/logpipe", false),
            ("/var/lib/logpipe/../kubelet", false),
            ("/etc/cron.d", false),
            ("var/lib/logpipe/x", false),
        ];
        for (dir, ok) in cases {
            assert_eq!(state_dir(dir).is_ok(), ok, "{dir}");
        }
    }
}
