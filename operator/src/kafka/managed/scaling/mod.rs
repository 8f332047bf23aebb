//! Scaling and restarting the brokers of a Kafka cluster the operator runs: a pure function from what is observed
//! to the one next action, taken again at every reconcile. Brokers hold data, so:
//!
//! - scale-up adds brokers, waits until every one is registered in the cluster (not just Pod Ready), then moves
//!   replicas onto them a batch at a time;
//! - scale-down is refused below the largest replication factor; otherwise the departing brokers are drained (their
//!   replicas moved away), every ISR must be full, and brokers are removed one at a time, highest ordinal first,
//!   each only once it holds no replica. A drain that has not finished is never taken as done: it is observed again;
//! - a broker on a stale revision is restarted only when every ISR is full (so the one restarted before has
//!   rejoined, and no partition falls below `min.insync.replicas`) and nothing else is moving, unready ones first
//!   and the active controller last. A topic whose replication factor is not above its `min.insync.replicas` has
//!   no headroom to protect and does not block a restart;
//! - at most one disruptive step at a time: nothing is removed or restarted while a reassignment runs, a broker is
//!   down, or a partition is not fully in sync.
//!
//! The operation in progress is kept in the LogPipeline's status, so an operator restarted halfway picks it up.

mod plan;
pub mod timeout;
mod view;

#[cfg(test)]
mod tests;

pub use plan::{drain, spread, Move};
pub use view::{BrokerId, BrokerPod, ClusterView, Partition, Reassignment};

/// What the operator is in the middle of. Stored in status (as `crd::KafkaOperation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Operation {
    #[default]
    Idle,
    /// Brokers were added; once all are registered, replicas are spread onto them.
    ScalingUp,
    /// Replicas are moved off brokers `to..` before those are removed, highest first.
    Draining { to: u32 },
}

/// What the operator does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do: the cluster is as asked.
    Settled,
    /// Something is under way; look again later.
    Wait(Waiting),
    /// Set the broker StatefulSet's replicas.
    SetReplicas(u32),
    /// Start these reassignments (throttled).
    Reassign(Vec<Move>),
    /// Delete this broker's pod so the StatefulSet recreates it on the current revision.
    Restart(BrokerId),
    /// The request is unsafe; nothing changes until the spec does.
    Refuse(Refusal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// Brokers that should run are not ready or not registered yet.
    BrokersStarting { missing: Vec<BrokerId> },
    /// Partition reassignments are still running.
    Reassigning { partitions: usize },
    /// Some partitions have replicas out of the ISR.
    UnderReplicated { partitions: usize },
    /// The broker to remove next still holds replicas.
    NotEmpty { broker: BrokerId },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Fewer brokers than a topic's replication factor would lose data or availability.
    BelowReplicationFactor { requested: u32, needed: usize },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BelowReplicationFactor { requested, needed } => write!(
                f,
                "cannot scale down to {requested} brokers: a topic has replication factor {needed}, which needs at \
                 least {needed} brokers"
            ),
        }
    }
}

/// What the operator is asked for and how fast it may move data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub brokers: u32,
    /// Most partitions reassigned at once.
    pub max_moves: usize,
}

/// The next action and the operation to record with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub operation: Operation,
    pub action: Action,
}

impl Decision {
    fn new(operation: Operation, action: Action) -> Self {
        Self { operation, action }
    }
}

/// The one next step from `view` towards `target`, given the operation in progress.
pub fn decide(target: Target, operation: Operation, view: &ClusterView) -> Decision {
    let current = view.replicas;
    let needed = view.max_replication_factor();
    if target.brokers < current && (target.brokers as usize) < needed.max(1) {
        // Nothing of a drain towards this target is undone: what moved stays on brokers that remain.
        return refuse(target.brokers, needed.max(1));
    }
    if target.brokers > current {
        return Decision::new(Operation::ScalingUp, Action::SetReplicas(target.brokers));
    }
    let reassigning = view.partitions.iter().filter(|p| p.reassigning()).count();
    if reassigning > 0 {
        let operation = if target.brokers < current { Operation::Draining { to: target.brokers } } else { operation };
        return Decision::new(operation, Action::Wait(Waiting::Reassigning { partitions: reassigning }));
    }
    if target.brokers < current {
        return scale_down(target, view);
    }
    match operation {
        // A drain given up for a larger target left its brokers empty: spread onto them again.
        Operation::ScalingUp | Operation::Draining { .. } => scale_up(target, view),
        Operation::Idle => roll(view),
    }
}

fn scale_up(target: Target, view: &ClusterView) -> Decision {
    let operation = Operation::ScalingUp;
    if let Some(wait) = brokers_starting(view) {
        return Decision::new(operation, Action::Wait(wait));
    }
    let moves = spread(view, view.replicas, target.max_moves);
    if moves.is_empty() {
        return roll(view);
    }
    Decision::new(operation, Action::Reassign(moves))
}

fn scale_down(target: Target, view: &ClusterView) -> Decision {
    let operation = Operation::Draining { to: target.brokers };
    let under = view.partitions.iter().filter(|p| !p.fully_in_sync()).count();
    if under > 0 {
        return Decision::new(operation, Action::Wait(Waiting::UnderReplicated { partitions: under }));
    }
    // Moves go only to brokers that are up, so the replicas they create can join the ISR.
    let remaining = ClusterView { replicas: target.brokers, ..view.clone() };
    if let Some(wait) = brokers_starting(&remaining) {
        return Decision::new(operation, Action::Wait(wait));
    }
    let highest = view.replicas as BrokerId - 1;
    match drain(view, target.brokers, target.max_moves) {
        // Refused in `decide` already; kept so a planning gap can never turn into a removal.
        None => refuse(target.brokers, view.max_replication_factor()),
        Some(moves) if !moves.is_empty() => Decision::new(operation, Action::Reassign(moves)),
        // Verified on what the cluster reports, not inferred from the plan: only an empty broker is removed.
        Some(_) if view.holds_replicas(highest) => {
            Decision::new(operation, Action::Wait(Waiting::NotEmpty { broker: highest }))
        }
        Some(_) => Decision::new(operation, Action::SetReplicas(view.replicas - 1)),
    }
}

fn refuse(requested: u32, needed: usize) -> Decision {
    Decision::new(Operation::Idle, Action::Refuse(Refusal::BelowReplicationFactor { requested, needed }))
}

fn brokers_starting(view: &ClusterView) -> Option<Waiting> {
    if view.all_up() {
        return None;
    }
    let missing = ClusterView::ids(view.replicas)
        .filter(|b| !view.pods.get(b).is_some_and(|p| p.ready) || !view.registered.contains(b))
        .collect();
    Some(Waiting::BrokersStarting { missing })
}

/// Rolling restart onto the current revision, one broker at a time.
fn roll(view: &ClusterView) -> Decision {
    let idle = Operation::Idle;
    let in_set = |b: &BrokerId| *b < view.replicas as BrokerId;
    let stale: Vec<(BrokerId, BrokerPod)> =
        view.pods.iter().filter(|(b, p)| !p.current && in_set(b)).map(|(b, p)| (*b, *p)).collect();
    // A stale broker that is down anyway costs nothing more to restart: first.
    if let Some((b, _)) = stale.iter().find(|(_, p)| !p.ready) {
        return Decision::new(idle, Action::Restart(*b));
    }
    if let Some(wait) = brokers_starting(view) {
        return Decision::new(idle, Action::Wait(wait));
    }
    // The active controller last, so the quorum changes leader once.
    let Some(&(broker, _)) = stale.iter().min_by_key(|(b, p)| (p.active_controller, *b)) else {
        return Decision::new(idle, Action::Settled);
    };
    // Every ISR full, so the broker restarted last has rejoined, and a restart leaves each partition whose
    // replication factor is above its min ISR at or above it. A topic with no such headroom is unavailable during
    // any restart of its brokers whatever the order; waiting for it would block every config change.
    let under = view.partitions.iter().filter(|p| !p.fully_in_sync()).count();
    if under > 0 {
        return Decision::new(idle, Action::Wait(Waiting::UnderReplicated { partitions: under }));
    }
    Decision::new(idle, Action::Restart(broker))
}
