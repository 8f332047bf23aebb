//! The broker pods as the scaling decision sees them: which ordinals run, which are ready, which run the
//! StatefulSet's current revision. Pure, so it is table-tested.

use super::scaling::{BrokerId, BrokerPod};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;

/// The label the StatefulSet controller puts on each pod: the revision it was created from.
const REVISION_LABEL: &str = "controller-revision-hash";

/// Why the pods cannot be judged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotObserved(pub String);

/// The pods of `set` by ordinal. Until the StatefulSet controller has seen the set's latest spec, its update
/// revision is stale and no pod can be called current or stale.
pub fn broker_pods(set: Option<&StatefulSet>, pods: &[Pod]) -> Result<BTreeMap<BrokerId, BrokerPod>, NotObserved> {
    let Some(set) = set else {
        return Err(NotObserved("the StatefulSet does not exist yet".into()));
    };
    let name = set.metadata.name.as_deref().unwrap_or_default();
    let status = set.status.clone().unwrap_or_default();
    let generation = set.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return Err(NotObserved(format!("the StatefulSet controller has not seen generation {generation} of {name}")));
    }
    let revision = status.update_revision.unwrap_or_default();
    let mut out = BTreeMap::new();
    for pod in pods {
        let Some(ordinal) = ordinal(name, pod) else { continue };
        let labels = pod.metadata.labels.as_ref();
        let current = labels.and_then(|l| l.get(REVISION_LABEL)).is_some_and(|r| *r == revision);
        out.insert(ordinal, BrokerPod { ready: ready(pod), current, active_controller: false });
    }
    Ok(out)
}

/// `<set>-<n>` gives `n`; pods of other sets give nothing.
fn ordinal(set: &str, pod: &Pod) -> Option<BrokerId> {
    let name = pod.metadata.name.as_deref()?;
    name.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// Ready and not on its way out.
fn ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    let ready = conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && pod.metadata.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(generation: i64, observed: i64) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "p-kafka", "generation": generation},
            "status": {"replicas": 3, "observedGeneration": observed, "updateRevision": "p-kafka-new"}
        }))
        .unwrap()
    }

    fn pod(name: &str, revision: &str, ready: &str, deleting: bool) -> Pod {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {REVISION_LABEL: revision}},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}
        }))
        .unwrap();
        if deleting {
            pod.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        }
        pod
    }

    #[test]
    fn pods_by_ordinal() {
        let cases = [
            ("ready, current", pod("p-kafka-0", "p-kafka-new", "True", false), Some((0, true, true))),
            ("not ready", pod("p-kafka-1", "p-kafka-new", "False", false), Some((1, false, true))),
            ("stale", pod("p-kafka-2", "p-kafka-old", "True", false), Some((2, true, false))),
            ("terminating", pod("p-kafka-12", "p-kafka-new", "True", true), Some((12, false, true))),
            ("another set", pod("p-kafka-controller-0", "x", "True", false), None),
            ("no ordinal", pod("p-kafka-x", "p-kafka-new", "True", false), None),
        ];
        for (what, pod, want) in cases {
            let got = broker_pods(Some(&set(2, 2)), std::slice::from_ref(&pod)).unwrap();
            let got = got.into_iter().next().map(|(b, p)| (b, p.ready, p.current));
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn nothing_is_judged_before_the_controller_saw_the_spec() {
        let pods = [pod("p-kafka-0", "p-kafka-new", "True", false)];
        assert!(broker_pods(Some(&set(3, 2)), &pods).is_err());
        assert_eq!(broker_pods(Some(&set(3, 3)), &pods).unwrap().len(), 1);
        assert!(broker_pods(None, &pods).is_err());
    }
}
