//! The `kubernetes` object of a document: from the log path, and from the pod's metadata when the watch has it.

use super::{escape_json_str, PathMeta};
use crate::metadata::{dedot, Labels, PodMeta};

/// Which metadata maps a document carries (they can be large; the names and ids always go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaFields {
    pub labels: bool,
    pub annotations: bool,
    pub namespace_labels: bool,
}

/// A pod's metadata as a file's documents carry it.
pub struct PodContext<'a> {
    pub pod: &'a PodMeta,
    pub namespace_labels: Option<&'a Labels>,
    pub fields: MetaFields,
}

pub(super) fn kubernetes_object(m: &PathMeta, pod: Option<&PodContext<'_>>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"namespace\":");
    escape_json_str(m.namespace.as_bytes(), out);
    out.extend_from_slice(b",\"pod\":{\"name\":");
    escape_json_str(m.pod.as_bytes(), out);
    if let Some(uid) = m.uid.as_deref().or(pod.map(|p| p.pod.uid.as_str())) {
        out.extend_from_slice(b",\"uid\":");
        escape_json_str(uid.as_bytes(), out);
    }
    out.extend_from_slice(b"},\"container\":{\"name\":");
    escape_json_str(m.container.as_bytes(), out);
    if let Some(restarts) = m.restart_count {
        out.extend_from_slice(b",\"restart_count\":");
        out.extend_from_slice(itoa::Buffer::new().format(restarts).as_bytes());
    }
    if let Some(image) = pod.and_then(|p| p.pod.images.get(&m.container)) {
        out.extend_from_slice(b",\"image\":");
        escape_json_str(image.as_bytes(), out);
    }
    out.push(b'}');
    if let Some(p) = pod {
        pod_fields(p, out);
    }
    out.push(b'}');
}

fn pod_fields(p: &PodContext<'_>, out: &mut Vec<u8>) {
    if let Some(node) = &p.pod.node {
        out.extend_from_slice(b",\"node\":{\"name\":");
        escape_json_str(node.as_bytes(), out);
        out.push(b'}');
    }
    if let Some(owner) = &p.pod.owner {
        out.extend_from_slice(b",\"owner\":{\"kind\":");
        escape_json_str(owner.kind.as_bytes(), out);
        out.extend_from_slice(b",\"name\":");
        escape_json_str(owner.name.as_bytes(), out);
        out.push(b'}');
    }
    let maps = [
        ("labels", p.fields.labels.then_some(&p.pod.labels)),
        ("annotations", p.fields.annotations.then_some(&p.pod.annotations)),
        ("namespace_labels", p.namespace_labels.filter(|_| p.fields.namespace_labels)),
    ];
    for (name, map) in maps {
        if let Some(map) = map.filter(|m| !m.is_empty()) {
            out.extend_from_slice(format!(",\"{name}\":").as_bytes());
            labels_object(map, out);
        }
    }
}

fn labels_object(labels: &Labels, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape_json_str(dedot(k).as_bytes(), out);
        out.push(b':');
        escape_json_str(v.as_bytes(), out);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::super::file_prefix;
    use super::*;
    use crate::metadata::Owner;
    use serde_json::{json, Value};
    use std::path::Path;

    fn document(path: &str, pod: Option<&PodContext<'_>>) -> Value {
        let meta = PathMeta::from_path(Path::new(path));
        let mut doc = file_prefix("n", Path::new(path), meta.as_ref(), pod);
        doc.extend_from_slice(b"0}}");
        serde_json::from_slice::<Value>(&doc).unwrap()["kubernetes"].clone()
    }

    #[test]
    fn kubernetes_object_table() {
        let pod = PodMeta {
            namespace: "shop".into(),
            name: "web-0".into(),
            uid: "u1".into(),
            node: Some("node-a".into()),
            labels: Labels::from([("app.kubernetes.io/name".into(), "web".into()), ("app".into(), "w".into())]),
            annotations: Labels::from([("note".into(), "x\"y".into())]),
            owner: Some(Owner { kind: "StatefulSet".into(), name: "web".into() }),
            images: [("app".to_string(), "web:1".to_string())].into(),
        };
        let ns = Labels::from([("team".into(), "a".into())]);
        let all = MetaFields { labels: true, annotations: true, namespace_labels: true };
        let none = MetaFields { labels: false, annotations: false, namespace_labels: false };
        let full = PodContext { pod: &pod, namespace_labels: Some(&ns), fields: all };
        let slim = PodContext { pod: &pod, namespace_labels: Some(&ns), fields: none };
        let path = "/var/log/pods/shop_web-0_u1/app/0.log";
        let link = "/var/log/containers/web-0_shop_app-0123.log";
        let cases = [
            (
                path,
                None,
                json!({"namespace": "shop", "pod": {"name": "web-0", "uid": "u1"},
                "container": {"name": "app", "restart_count": 0}}),
            ),
            (
                path,
                Some(&full),
                json!({"namespace": "shop", "pod": {"name": "web-0", "uid": "u1"},
                "container": {"name": "app", "restart_count": 0, "image": "web:1"},
                "node": {"name": "node-a"}, "owner": {"kind": "StatefulSet", "name": "web"},
                "labels": {"app": "w", "app_kubernetes_io/name": "web"}, "annotations": {"note": "x\"y"},
                "namespace_labels": {"team": "a"}}),
            ),
            (
                path,
                Some(&slim),
                json!({"namespace": "shop", "pod": {"name": "web-0", "uid": "u1"},
                "container": {"name": "app", "restart_count": 0, "image": "web:1"},
                "node": {"name": "node-a"}, "owner": {"kind": "StatefulSet", "name": "web"}}),
            ),
            (
                link,
                Some(&slim),
                json!({"namespace": "shop", "pod": {"name": "web-0", "uid": "u1"},
                "container": {"name": "app", "image": "web:1"},
                "node": {"name": "node-a"}, "owner": {"kind": "StatefulSet", "name": "web"}}),
            ),
        ];
        for (path, pod, want) in cases {
            assert_eq!(document(path, pod), want, "{path}");
        }
    }
}
