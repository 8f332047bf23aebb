//! Names of everything a pipeline owns, derived from its namespace and name in one place.

use std::fmt;

/// Longest LogPipeline name: derived names (`<name>-collector-xxxxx` pods, label values) must fit 63 characters.
pub const MAX_NAME_LEN: usize = 40;

/// A LogPipeline's namespace and name, checked to leave room for the names derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PipelineName {
    namespace: String,
    name: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("metadata.name: {name:?} is longer than {MAX_NAME_LEN} characters, too long for the names derived from it")]
pub struct NameTooLong {
    pub name: String,
}

impl PipelineName {
    pub fn new(namespace: &str, name: &str) -> Result<Self, NameTooLong> {
        if name.len() > MAX_NAME_LEN {
            return Err(NameTooLong { name: name.into() });
        }
        Ok(Self { namespace: namespace.into(), name: name.into() })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// DaemonSet, ServiceAccount and ConfigMap of the collector.
    pub fn collector(&self) -> String {
        format!("{}-collector", self.name)
    }

    /// Deployment, ServiceAccount and ConfigMap of the indexer.
    pub fn indexer(&self) -> String {
        format!("{}-indexer", self.name)
    }

    /// ClusterRole and ClusterRoleBinding of the collector. Cluster-scoped, so the namespace is part of the name,
    /// and so is a hash of `namespace/name`: `a-b` + `c` and `a` + `b-c` read alike but never collide.
    pub fn collector_cluster_role(&self) -> String {
        use sha2::{Digest, Sha256};
        let hash = Sha256::digest(format!("{}/{}", self.namespace, self.name));
        let short: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("logpipe-{}-{}-{short}-collector", self.namespace, self.name)
    }

    /// StatefulSet and headless Service of the KRaft controllers of a managed Kafka. StatefulSet names stay within
    /// 52 characters: the controller-revision-hash label adds 11 to them and label values end at 63.
    pub fn kafka_controllers(&self) -> String {
        format!("{}-kraft", self.name)
    }

    /// StatefulSet and headless Service of the brokers of a managed Kafka.
    pub fn kafka_brokers(&self) -> String {
        format!("{}-kafka", self.name)
    }

    /// Secret of a managed Kafka's CA and the certificate every node serves.
    pub fn kafka_tls(&self) -> String {
        format!("{}-kafka-tls", self.name)
    }

    /// Secret of a managed Kafka's SCRAM users and their passwords.
    pub fn kafka_users(&self) -> String {
        format!("{}-kafka-users", self.name)
    }

    /// The Service clients bootstrap from: any ready broker.
    pub fn kafka_bootstrap(&self) -> String {
        format!("{}-kafka-bootstrap", self.name)
    }

    /// The topic when the spec names none, and the indexers' consumer group.
    pub fn default_topic(&self) -> String {
        format!("logpipe.{}.{}", self.namespace, self.name)
    }

    /// The node directory of the collector's checkpoints: one per pipeline object, so no two pipelines on a node
    /// share checkpoints, not even `a-b/c` and `a/b-c`, nor a pipeline and an earlier one of the same name. `uid`
    /// is the LogPipeline's; without one (rendering a file) the directory has no suffix.
    pub fn state_dir(&self, uid: &str) -> String {
        let suffix = uid.get(..8).map(|u| format!("-{u}")).unwrap_or_default();
        format!("/var/lib/logpipe/{}-{}{suffix}", self.namespace, self.name)
    }
}

impl fmt::Display for PipelineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_scoped_names_never_collide() {
        let pairs =
            [(("a-b", "c"), ("a", "b-c")), (("logging", "web"), ("logging", "web2")), (("x", "y"), ("x-y", "y"))];
        for ((ns1, n1), (ns2, n2)) in pairs {
            let (a, b) = (PipelineName::new(ns1, n1).unwrap(), PipelineName::new(ns2, n2).unwrap());
            assert_ne!(a.collector_cluster_role(), b.collector_cluster_role(), "{a} and {b}");
        }
        let longest = PipelineName::new(&"n".repeat(63), &"p".repeat(MAX_NAME_LEN)).unwrap();
        assert!(longest.collector_cluster_role().len() <= 253);
        let role = PipelineName::new("logging", "web").unwrap().collector_cluster_role();
        assert!(role.starts_with("logpipe-logging-web-") && role.ends_with("-collector"), "{role}");
    }
}
