//! What the scaling decision sees of a managed Kafka cluster: the broker pods (from the StatefulSet) and the
//! brokers and partitions (from the Kafka admin API).

use std::collections::{BTreeMap, BTreeSet};

/// A broker's node id; the StatefulSet ordinal of its pod.
pub type BrokerId = i32;

/// One broker pod as the StatefulSet side sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerPod {
    pub ready: bool,
    /// Runs the StatefulSet's current revision (config and image); with `OnDelete`, a stale pod runs until the
    /// operator deletes it.
    pub current: bool,
    /// The active controller of the quorum (combined nodes or the controller StatefulSet): restarted last.
    pub active_controller: bool,
}

/// One partition as the cluster metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub topic: String,
    pub index: i32,
    /// Assigned replicas, preferred leader first. During a reassignment, the union of old and new.
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    /// The topic's `min.insync.replicas`.
    pub min_isr: usize,
    /// A reassignment of this partition in progress (ListPartitionReassignments).
    pub reassignment: Option<Reassignment>,
}

/// A partition reassignment under way: `replicas` holds old and new until it completes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reassignment {
    pub adding: Vec<BrokerId>,
    pub removing: Vec<BrokerId>,
}

impl Partition {
    /// Every assigned replica is in sync.
    pub fn fully_in_sync(&self) -> bool {
        self.replicas.iter().all(|r| self.isr.contains(r))
    }

    /// The replication factor the topic asks for: while reassigning, `replicas` holds old and new.
    pub fn replication_factor(&self) -> usize {
        let adding = self.reassignment.as_ref().map_or(0, |r| r.adding.len());
        self.replicas.len() - adding.min(self.replicas.len())
    }

    pub fn reassigning(&self) -> bool {
        self.reassignment.is_some()
    }
}

/// Everything one decision is taken from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// The StatefulSet's `spec.replicas`: brokers `0..replicas` should exist.
    pub replicas: u32,
    pub pods: BTreeMap<BrokerId, BrokerPod>,
    /// Brokers registered and running in the cluster metadata (DescribeCluster), not merely Pod Ready.
    pub registered: BTreeSet<BrokerId>,
    pub partitions: Vec<Partition>,
}

impl ClusterView {
    /// Brokers `0..n`.
    pub fn ids(n: u32) -> impl Iterator<Item = BrokerId> {
        0..n as BrokerId
    }

    /// Whether every broker the StatefulSet should run is ready and registered.
    pub fn all_up(&self) -> bool {
        Self::ids(self.replicas).all(|b| self.pods.get(&b).is_some_and(|p| p.ready) && self.registered.contains(&b))
    }

    /// The highest replication factor of any partition: the fewest brokers the cluster can have.
    pub fn max_replication_factor(&self) -> usize {
        self.partitions.iter().map(Partition::replication_factor).max().unwrap_or(0)
    }

    /// Whether `broker` holds a replica of any partition, in sync or not.
    pub fn holds_replicas(&self, broker: BrokerId) -> bool {
        self.partitions.iter().any(|p| p.replicas.contains(&broker))
    }
}
