//! Kubernetes metadata that the kubelet writes into log paths:
//! `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log` and the
//! `/var/log/containers/<pod>_<namespace>_<container>-<container id>.log` links.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMeta {
    pub namespace: String,
    pub pod: String,
    pub uid: Option<String>,
    pub container: String,
    pub restart_count: Option<u32>,
}

impl PathMeta {
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let parent = path.parent()?;
        if parent.file_name()?.to_str()? == "containers" {
            return Self::from_containers_link(name);
        }
        let container = parent.file_name()?.to_str()?;
        let pod_dir = parent.parent()?.file_name()?.to_str()?;
        // Namespace and pod names are DNS names: they hold no `_`.
        let mut parts = pod_dir.splitn(3, '_');
        let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
        let restart_count = name.split('.').next().and_then(|n| n.parse().ok());
        Some(Self {
            namespace: namespace.into(),
            pod: pod.into(),
            uid: Some(uid.into()),
            container: container.into(),
            restart_count,
        })
    }

    fn from_containers_link(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".log")?;
        let mut parts = stem.splitn(3, '_');
        let (pod, namespace, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let (container, _id) = rest.rsplit_once('-')?;
        Some(Self {
            namespace: namespace.into(),
            pod: pod.into(),
            uid: None,
            container: container.into(),
            restart_count: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let m = |p: &str| PathMeta::from_path(Path::new(p));
        assert_eq!(
            m("/var/log/pods/kube-system_coredns-5d78c9869d-x2x_0c5e-11/coredns/3.log"),
            Some(PathMeta {
                namespace: "kube-system".into(),
                pod: "coredns-5d78c9869d-x2x".into(),
                uid: Some("0c5e-11".into()),
                container: "coredns".into(),
                restart_count: Some(3),
            })
        );
        let rotated = m("/var/log/pods/a_b_c/d/0.log.20240101-120000").unwrap();
        assert_eq!((rotated.container.as_str(), rotated.restart_count), ("d", Some(0)));
        assert_eq!(
            m("/var/log/containers/web-0_prod_nginx-0123abcd.log"),
            Some(PathMeta {
                namespace: "prod".into(),
                pod: "web-0".into(),
                uid: None,
                container: "nginx".into(),
                restart_count: None
            })
        );
        assert_eq!(m("/var/log/syslog"), None);
        assert_eq!(m("/var/log/pods/not-a-pod-dir/c/0.log"), None);
    }
}
