use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

/// What a record carries of its pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMeta {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: Option<String>,
    pub labels: Labels,
    pub annotations: Labels,
    pub owner: Option<Owner>,
    /// Image per container name (init and ephemeral containers included: they log too).
    pub images: BTreeMap<String, String>,
}

/// The controller that owns the pod (ReplicaSet, StatefulSet, DaemonSet, Job...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

impl PodMeta {
    /// `None` for a pod without namespace, name or uid (never the case for pods read from the API).
    pub fn from_pod(pod: &Pod) -> Option<Self> {
        let m = &pod.metadata;
        let owner = m.owner_references.iter().flatten().find(|o| o.controller == Some(true));
        let spec = pod.spec.as_ref();
        let containers = spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
        let mut images: BTreeMap<String, String> =
            containers.filter_map(|c| Some((c.name.clone(), c.image.clone()?))).collect();
        for e in spec.into_iter().flat_map(|s| s.ephemeral_containers.iter().flatten()) {
            if let Some(image) = &e.image {
                images.insert(e.name.clone(), image.clone());
            }
        }
        Some(Self {
            namespace: m.namespace.clone()?,
            name: m.name.clone()?,
            uid: m.uid.clone()?,
            node: spec.and_then(|s| s.node_name.clone()),
            labels: m.labels.clone().unwrap_or_default(),
            annotations: m.annotations.clone().unwrap_or_default(),
            owner: owner.map(|o| Owner { kind: o.kind.clone(), name: o.name.clone() }),
            images,
        })
    }
}

/// A label or annotation key made safe as an Elasticsearch field name: dots would make `app` and
/// `app.kubernetes.io/name` an object and a value at once, which Elasticsearch rejects.
pub fn dedot(key: &str) -> String {
    key.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn from_pod_table() {
        let full = pod(serde_json::json!({
            "metadata": {"namespace": "shop", "name": "web-1", "uid": "u-1",
                "labels": {"app.kubernetes.io/name": "web"}, "annotations": {"a": "b"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "o1"},
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d", "uid": "o2", "controller": true}]},
            "spec": {"nodeName": "node-a",
                "containers": [{"name": "app", "image": "web:1"}],
                "initContainers": [{"name": "init", "image": "busybox"}],
                "ephemeralContainers": [{"name": "debug", "image": "debug:2"}]}
        }));
        let m = PodMeta::from_pod(&full).unwrap();
        assert_eq!(m.owner, Some(Owner { kind: "ReplicaSet".into(), name: "web-5d".into() }));
        assert_eq!(m.node.as_deref(), Some("node-a"));
        assert_eq!(
            m.images.into_iter().collect::<Vec<_>>(),
            [("app", "web:1"), ("debug", "debug:2"), ("init", "busybox")].map(|(a, b)| (a.into(), b.into()))
        );
        assert_eq!(m.labels["app.kubernetes.io/name"], "web");

        let bare = pod(serde_json::json!({"metadata": {"namespace": "n", "name": "p", "uid": "u"}}));
        let m = PodMeta::from_pod(&bare).unwrap();
        assert_eq!((m.owner, m.node, m.images.len(), m.labels.len()), (None, None, 0, 0));

        let no_uid = pod(serde_json::json!({"metadata": {"namespace": "n", "name": "p"}}));
        assert_eq!(PodMeta::from_pod(&no_uid), None);
    }

    #[test]
    fn dedot_table() {
        for (key, safe) in [("app", "app"), ("app.kubernetes.io/name", "app_kubernetes_io/name"), ("", "")] {
            assert_eq!(dedot(key), safe);
        }
    }
}
