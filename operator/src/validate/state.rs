//! Where an earlier release kept a pipeline's checkpoints on the nodes, judged from its collector DaemonSet as it
//! runs, so that moving the state directory reads no file twice.

use super::policy::{within, STATE_ROOT};
use crate::model::paths::STATE_VOLUME;
use k8s_openapi::api::apps::v1::DaemonSet;
use std::path::Path;

/// On the collector DaemonSet: the node directory its collectors carry checkpoints over from. It keeps the
/// choice for nodes the rollout has not reached yet, since their collectors still need it after the DaemonSet's
/// own state volume has moved.
pub const CARRIED_FROM_ANNOTATION: &str = "logpipe.dev/state-carried-from";

/// The node directory whose checkpoints the collectors must carry over into `state_dir`: the one the running
/// DaemonSet already carries from, else its state volume when that is elsewhere. Only a directory below
/// [`STATE_ROOT`] is ever mounted, whatever the DaemonSet says.
pub fn earlier_state_dir(state_dir: &str, running: Option<&DaemonSet>) -> Option<String> {
    let ds = running?;
    let annotated = ds.metadata.annotations.as_ref().and_then(|a| a.get(CARRIED_FROM_ANNOTATION)).cloned();
    let earlier = annotated.or_else(|| state_volume(ds))?;
    let below_root = within(Path::new(&earlier), Path::new(STATE_ROOT)) && Path::new(&earlier) != Path::new(STATE_ROOT);
    (earlier != state_dir && below_root).then_some(earlier)
}

fn state_volume(ds: &DaemonSet) -> Option<String> {
    let volumes = ds.spec.as_ref()?.template.spec.as_ref()?.volumes.as_ref()?;
    let state = volumes.iter().find(|v| v.name == STATE_VOLUME)?;
    Some(state.host_path.as_ref()?.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn daemon_set(state: Option<&str>, annotation: Option<&str>) -> DaemonSet {
        let mut ds = json!({"metadata": {"name": "web-collector"}, "spec": {
            "selector": {},
            "template": {"spec": {"containers": [], "volumes": [{"name": "config", "configMap": {"name": "x"}}]}}
        }});
        if let Some(path) = state {
            let volume = json!({"name": "state", "hostPath": {"path": path}});
            ds["spec"]["template"]["spec"]["volumes"].as_array_mut().unwrap().push(volume);
        }
        if let Some(from) = annotation {
            ds["metadata"]["annotations"] = json!({CARRIED_FROM_ANNOTATION: from});
        }
        serde_json::from_value(ds).unwrap()
    }

    #[test]
    fn the_running_collectors_say_where_checkpoints_were() {
        let now = "/var/lib/logpipe/logging-web-0b9c6f1e";
        let before = "/var/lib/logpipe/logging-web";
        let cases = [
            ("a new pipeline", None, None),
            ("already moved", Some(daemon_set(Some(now), None)), None),
            ("an earlier release's directory", Some(daemon_set(Some(before), None)), Some(before)),
            ("moved, nodes still rolling", Some(daemon_set(Some(now), Some(before))), Some(before)),
            (
                "a stateDir the spec chose",
                Some(daemon_set(Some("/var/lib/logpipe/mine"), None)),
                Some("/var/lib/logpipe/mine"),
            ),
            ("outside the state root", Some(daemon_set(Some("/etc"), None)), None),
            ("an annotation outside it", Some(daemon_set(Some(now), Some("/var/lib/logpipe/../kubelet"))), None),
            ("the root itself", Some(daemon_set(Some("/var/lib/logpipe"), None)), None),
            ("no state volume", Some(daemon_set(None, None)), None),
        ];
        for (what, running, want) in cases {
            assert_eq!(earlier_state_dir(now, running.as_ref()).as_deref(), want, "{what}");
        }
    }
}
