use super::{Labels, PodMeta, Update};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct PodEntry {
    meta: Arc<PodMeta>,
    /// When the watch saw it deleted; it is forgotten a grace period later.
    deleted_at: Option<Instant>,
}

/// This node's pods and the cluster's namespace labels, as last seen by the watches.
pub struct MetaIndex {
    pods: HashMap<String, PodEntry>,
    /// `(namespace, pod name)` to uid, for `/var/log/containers` paths that carry no uid.
    by_name: HashMap<(String, String), String>,
    namespaces: HashMap<String, Arc<Labels>>,
    pods_relist: Option<HashSet<String>>,
    namespaces_relist: Option<HashSet<String>>,
    pods_synced: bool,
    namespaces_synced: bool,
    grace: Duration,
    /// Changes whenever something a record carries changed: rendered prefixes older than this are stale.
    version: u64,
}

impl MetaIndex {
    pub fn new(grace: Duration) -> Self {
        Self {
            pods: HashMap::new(),
            by_name: HashMap::new(),
            namespaces: HashMap::new(),
            pods_relist: None,
            namespaces_relist: None,
            pods_synced: false,
            namespaces_synced: false,
            grace,
            version: 0,
        }
    }

    /// Both watches have listed everything once: a pod not known now is newer than the watch.
    pub fn synced(&self) -> bool {
        self.pods_synced && self.namespaces_synced
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// The pod by uid, or by namespace and name when the path carried no uid.
    pub fn pod(&self, uid: Option<&str>, namespace: &str, name: &str) -> Option<&Arc<PodMeta>> {
        let uid = match uid {
            Some(uid) => uid,
            None => self.by_name.get(&(namespace.to_owned(), name.to_owned()))?,
        };
        self.pods.get(uid).map(|e| &e.meta)
    }

    pub fn namespace_labels(&self, namespace: &str) -> Option<&Arc<Labels>> {
        self.namespaces.get(namespace)
    }

    pub fn apply(&mut self, update: Update, now: Instant) {
        match update {
            Update::PodsRelist => self.pods_relist = Some(HashSet::new()),
            Update::Pod(meta) => {
                if let Some(seen) = &mut self.pods_relist {
                    seen.insert(meta.uid.clone());
                }
                self.put_pod(meta);
            }
            Update::PodDeleted { uid } => self.pod_deleted(&uid, now),
            Update::PodsListed => {
                let seen = self.pods_relist.take().unwrap_or_default();
                let gone: Vec<String> = self.pods.keys().filter(|uid| !seen.contains(*uid)).cloned().collect();
                for uid in gone {
                    self.pod_deleted(&uid, now);
                }
                self.pods_synced = true;
            }
            Update::NamespacesRelist => self.namespaces_relist = Some(HashSet::new()),
            Update::Namespace { name, labels } => {
                if let Some(seen) = &mut self.namespaces_relist {
                    seen.insert(name.clone());
                }
                if self.namespaces.get(&name).is_none_or(|l| **l != labels) {
                    self.namespaces.insert(name, Arc::new(labels));
                    self.version += 1;
                }
            }
            // Pods of a deleted namespace keep its labels through their own grace period; the namespace entry
            // goes when it is listed no more, which is what a relist says.
            Update::NamespaceDeleted { .. } => {}
            Update::NamespacesListed => {
                let seen = self.namespaces_relist.take().unwrap_or_default();
                self.namespaces.retain(|name, _| seen.contains(name));
                self.namespaces_synced = true;
            }
        }
    }

    /// Forgets pods deleted longer than the grace period ago.
    pub fn expire(&mut self, now: Instant) {
        let grace = self.grace;
        let before = self.pods.len();
        self.pods.retain(|_, e| e.deleted_at.is_none_or(|at| now.duration_since(at) < grace));
        if self.pods.len() != before {
            let pods = &self.pods;
            self.by_name.retain(|_, uid| pods.contains_key(uid));
        }
    }

    fn put_pod(&mut self, meta: PodMeta) {
        if self.pods.get(&meta.uid).is_some_and(|e| *e.meta == meta && e.deleted_at.is_none()) {
            return;
        }
        self.by_name.insert((meta.namespace.clone(), meta.name.clone()), meta.uid.clone());
        self.pods.insert(meta.uid.clone(), PodEntry { meta: Arc::new(meta), deleted_at: None });
        self.version += 1;
    }

    fn pod_deleted(&mut self, uid: &str, now: Instant) {
        if let Some(e) = self.pods.get_mut(uid) {
            e.deleted_at.get_or_insert(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, name: &str) -> PodMeta {
        PodMeta { namespace: "ns".into(), name: name.into(), uid: uid.into(), ..PodMeta::default() }
    }

    #[test]
    fn deleted_pods_stay_for_the_grace_period() {
        let t0 = Instant::now();
        let mut index = MetaIndex::new(Duration::from_secs(60));
        index.apply(Update::Pod(pod("u1", "a")), t0);
        index.apply(Update::PodDeleted { uid: "u1".into() }, t0);
        index.expire(t0 + Duration::from_secs(59));
        assert!(index.pod(Some("u1"), "ns", "a").is_some());
        assert!(index.pod(None, "ns", "a").is_some(), "found by name too");
        index.expire(t0 + Duration::from_secs(60));
        assert!(index.pod(Some("u1"), "ns", "a").is_none());
        assert!(index.pod(None, "ns", "a").is_none());
    }

    #[test]
    fn a_relist_deletes_what_it_no_longer_lists() {
        let t0 = Instant::now();
        let mut index = MetaIndex::new(Duration::from_secs(60));
        assert!(!index.synced());
        for u in [Update::PodsRelist, Update::Pod(pod("u1", "a")), Update::Pod(pod("u2", "b")), Update::PodsListed] {
            index.apply(u, t0);
        }
        let ns = Update::Namespace { name: "ns".into(), labels: Labels::from([("team".into(), "x".into())]) };
        for u in [Update::NamespacesRelist, ns, Update::NamespacesListed] {
            index.apply(u, t0);
        }
        assert!(index.synced());
        assert_eq!(index.namespace_labels("ns").unwrap()["team"], "x");
        for u in [Update::PodsRelist, Update::Pod(pod("u2", "b")), Update::PodsListed] {
            index.apply(u, t0);
        }
        for u in [Update::NamespacesRelist, Update::NamespacesListed] {
            index.apply(u, t0);
        }
        index.expire(t0 + Duration::from_secs(61));
        assert!(index.pod(Some("u1"), "ns", "a").is_none(), "u1 vanished while the watch was down");
        assert!(index.pod(Some("u2"), "ns", "b").is_some());
        assert!(index.namespace_labels("ns").is_none());
    }

    #[test]
    fn version_moves_only_on_change() {
        let t0 = Instant::now();
        let mut index = MetaIndex::new(Duration::from_secs(60));
        index.apply(Update::Pod(pod("u1", "a")), t0);
        let v = index.version();
        index.apply(Update::Pod(pod("u1", "a")), t0);
        assert_eq!(index.version(), v);
        let mut relabelled = pod("u1", "a");
        relabelled.labels.insert("k".into(), "v".into());
        index.apply(Update::Pod(relabelled), t0);
        assert_ne!(index.version(), v);
    }
}
