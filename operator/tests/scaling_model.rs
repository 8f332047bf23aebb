//! Model-based test of broker scaling: the operator's decision function drives a simulated cluster (brokers that
//! start and register over time, reassignments that complete over time or fail, brokers that fall out of the ISR,
//! spec and config changes and operator restarts at random moments) through thousands of random histories. Every
//! action is checked against the rules before it is applied, and once the disturbances stop the cluster must reach
//! what the spec asks.

use logpipe_operator::crd::KafkaOperation;
use logpipe_operator::kafka::managed::scaling::{
    decide, Action, BrokerId, BrokerPod, ClusterView, Move, Operation, Partition, Reassignment, Refusal, Target,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const STARTUP_TICKS: u32 = 2;
const REASSIGN_TICKS: u32 = 3;
const MAX_MOVES: usize = 4;

#[derive(Debug, Clone)]
enum Event {
    /// The spec asks for this many brokers.
    Brokers(u32),
    /// A new config or image: every pod is stale.
    NewRevision,
    /// A broker falls out of every ISR for a while.
    Lag(BrokerId),
    /// Every reassignment in flight fails: its partitions keep their old replicas.
    FailReassignments,
    /// The operator restarts: only what status holds survives.
    OperatorRestart,
    Tick,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        1 => (1u32..8).prop_map(Event::Brokers),
        1 => Just(Event::NewRevision),
        1 => (0..8).prop_map(Event::Lag),
        1 => Just(Event::FailReassignments),
        1 => Just(Event::OperatorRestart),
        6 => Just(Event::Tick),
    ]
}

/// A starting cluster: `brokers` up, partitions with replication factor up to 3 placed round robin.
fn cluster() -> impl Strategy<Value = ClusterView> {
    (3u32..6, proptest::collection::vec((1usize..=3, 0usize..8, any::<bool>()), 1..12)).prop_map(|(brokers, parts)| {
        let pod = BrokerPod { ready: true, current: true, active_controller: false };
        let mut pods: BTreeMap<BrokerId, BrokerPod> = ClusterView::ids(brokers).map(|b| (b, pod)).collect();
        if let Some(p) = pods.get_mut(&0) {
            p.active_controller = true;
        }
        let partitions = parts
            .into_iter()
            .enumerate()
            .map(|(i, (rf, first, strict))| {
                let replicas: Vec<BrokerId> = (0..rf).map(|k| ((first + k) % brokers as usize) as BrokerId).collect();
                // Some topics keep min ISR at RF-1, the others at 1.
                let min_isr = if strict { rf.saturating_sub(1).max(1) } else { 1 };
                Partition {
                    topic: format!("t{}", i % 3),
                    index: i as i32,
                    isr: replicas.clone(),
                    replicas,
                    min_isr,
                    reassignment: None,
                }
            })
            .collect();
        ClusterView { replicas: brokers, pods, registered: ClusterView::ids(brokers).collect(), partitions }
    })
}

/// The cluster the decisions act on, with the timers the operator cannot see.
struct Sim {
    view: ClusterView,
    /// Brokers starting: ticks until ready and registered.
    starting: BTreeMap<BrokerId, u32>,
    /// Partition index -> (new replicas, ticks until done).
    reassignments: BTreeMap<usize, (Vec<BrokerId>, u32)>,
    /// Brokers out of the ISR: ticks until they catch up.
    lagging: BTreeMap<BrokerId, u32>,
}

impl Sim {
    fn up(&self, b: BrokerId) -> bool {
        self.view.pods.get(&b).is_some_and(|p| p.ready) && !self.lagging.contains_key(&b)
    }

    /// Nothing is under way that the next ticks would change.
    fn quiet(&self) -> bool {
        self.starting.is_empty() && self.reassignments.is_empty() && self.lagging.is_empty()
    }

    fn apply(&mut self, action: &Action) {
        match action {
            Action::SetReplicas(n) => {
                let new: Vec<BrokerId> = ClusterView::ids(*n).filter(|b| !self.view.pods.contains_key(b)).collect();
                for b in new {
                    self.view.pods.insert(b, BrokerPod { ready: false, current: true, active_controller: false });
                    self.starting.insert(b, STARTUP_TICKS);
                }
                for b in *n as BrokerId..self.view.replicas as BrokerId {
                    self.view.pods.remove(&b);
                    self.view.registered.remove(&b);
                    self.starting.remove(&b);
                }
                self.view.replicas = *n;
            }
            Action::Reassign(moves) => moves.iter().for_each(|m| self.reassign(m)),
            Action::Restart(b) => {
                self.view.pods.insert(*b, BrokerPod { ready: false, current: true, active_controller: false });
                self.view.registered.remove(b);
                self.view.partitions.iter_mut().for_each(|p| p.isr.retain(|r| r != b));
                self.starting.insert(*b, STARTUP_TICKS);
            }
            Action::Settled | Action::Wait(_) | Action::Refuse(_) => {}
        }
    }

    fn reassign(&mut self, m: &Move) {
        let i = self.view.partitions.iter().position(|p| p.index == m.partition).expect("moved partition exists");
        let p = &mut self.view.partitions[i];
        let adding: Vec<BrokerId> = m.replicas.iter().copied().filter(|b| !p.replicas.contains(b)).collect();
        let removing = p.replicas.iter().copied().filter(|b| !m.replicas.contains(b)).collect();
        p.replicas.extend(&adding);
        p.reassignment = Some(Reassignment { adding, removing });
        self.reassignments.insert(i, (m.replicas.clone(), REASSIGN_TICKS));
    }

    fn fail_reassignments(&mut self) {
        for (i, _) in std::mem::take(&mut self.reassignments) {
            let p = &mut self.view.partitions[i];
            if let Some(r) = p.reassignment.take() {
                p.replicas.retain(|b| !r.adding.contains(b));
                p.isr.retain(|b| !r.adding.contains(b));
            }
        }
    }

    fn tick(&mut self) {
        for (b, left) in self.starting.iter_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                if let Some(p) = self.view.pods.get_mut(b) {
                    p.ready = true;
                }
                self.view.registered.insert(*b);
            }
        }
        self.starting.retain(|_, left| *left > 0);
        self.lagging.iter_mut().for_each(|(_, left)| *left = left.saturating_sub(1));
        self.lagging.retain(|_, left| *left > 0);
        // Caught-up replicas of up brokers rejoin the ISR.
        let up: Vec<BrokerId> = self.view.pods.keys().copied().filter(|&b| self.up(b)).collect();
        for p in &mut self.view.partitions {
            for r in p.replicas.clone() {
                if up.contains(&r) && !p.isr.contains(&r) {
                    p.isr.push(r);
                }
            }
        }
        let mut done = Vec::new();
        for (i, (replicas, left)) in self.reassignments.iter_mut() {
            let p = &self.view.partitions[*i];
            // Completes only when every new replica has caught up.
            if replicas.iter().all(|r| p.isr.contains(r)) {
                *left = left.saturating_sub(1);
            }
            if *left == 0 {
                done.push(*i);
            }
        }
        for i in done {
            let (replicas, _) = self.reassignments.remove(&i).expect("listed above");
            let p = &mut self.view.partitions[i];
            p.isr.retain(|r| replicas.contains(r));
            p.replicas = replicas;
            p.reassignment = None;
        }
    }
}

/// The rules every action must keep, checked against the cluster it is taken on.
fn check(action: &Action, target: Target, view: &ClusterView) {
    let needed = view.max_replication_factor();
    match action {
        Action::SetReplicas(n) if *n < view.replicas => {
            assert_eq!(*n, view.replicas - 1, "one broker at a time");
            assert!(!view.holds_replicas(*n as BrokerId), "removed broker {n} still holds a replica: {view:?}");
            assert!(*n as usize >= needed, "below the replication factor");
            assert!(view.partitions.iter().all(|p| !p.reassigning() && p.fully_in_sync()), "removed while moving");
        }
        Action::SetReplicas(n) => assert_eq!(*n, target.brokers),
        Action::Reassign(moves) => {
            assert!(!moves.is_empty() && moves.len() <= target.max_moves);
            assert!(view.partitions.iter().all(|p| !p.reassigning()), "reassigned while reassigning");
            for m in moves {
                let p = view.partitions.iter().find(|p| p.index == m.partition).expect("partition exists");
                let mut distinct = m.replicas.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), p.replication_factor(), "replication factor kept, no broker twice: {m:?}");
                for b in &m.replicas {
                    assert!(*b < view.replicas.min(target.brokers) as BrokerId, "moved onto departing broker {b}");
                    assert!(view.registered.contains(b) && view.pods[b].ready, "moved onto broker {b} not up");
                }
            }
        }
        Action::Restart(b) => {
            let pod = view.pods[b];
            assert!(!pod.current, "restarted a current broker");
            if pod.ready {
                assert!(view.all_up(), "restart while another broker is down");
                for p in &view.partitions {
                    assert!(!p.reassigning() && p.fully_in_sync(), "restart while moving or under-replicated");
                    let headroom = p.replicas.len() > p.min_isr;
                    assert!(
                        !headroom || !p.isr.contains(b) || p.isr.len() > p.min_isr,
                        "restart takes {p:?} below min ISR"
                    );
                }
            }
        }
        Action::Refuse(Refusal::BelowReplicationFactor { requested, .. }) => {
            assert!((*requested as usize) < needed.max(1) && *requested < view.replicas)
        }
        Action::Settled | Action::Wait(_) => {}
    }
}

/// One reconcile: decide, check, apply, and let the cluster move on one tick.
fn step(sim: &mut Sim, target: Target, operation: &mut Operation) -> Action {
    let d = decide(target, *operation, &sim.view);
    check(&d.action, target, &sim.view);
    sim.apply(&d.action);
    *operation = d.operation;
    sim.tick();
    d.action
}

fn run(view: ClusterView, events: Vec<Event>) {
    let mut target = Target { brokers: view.replicas, max_moves: MAX_MOVES };
    let mut sim = Sim { view, starting: BTreeMap::new(), reassignments: BTreeMap::new(), lagging: BTreeMap::new() };
    let mut operation = Operation::Idle;
    for e in events {
        match e {
            Event::Brokers(n) => target.brokers = n,
            Event::NewRevision => sim.view.pods.values_mut().for_each(|p| p.current = false),
            Event::Lag(b) => {
                if sim.view.pods.contains_key(&b) {
                    sim.lagging.insert(b, 3);
                    sim.view.partitions.iter_mut().for_each(|p| p.isr.retain(|r| *r != b));
                }
            }
            // The operation is what status holds; a restarted operator reads it back unchanged.
            Event::FailReassignments => sim.fail_reassignments(),
            Event::OperatorRestart => {
                // Through the status, as a restarted operator reads it.
                let stored = serde_json::json!(KafkaOperation::from(operation));
                operation = serde_json::from_value::<KafkaOperation>(stored).unwrap().into();
            }
            Event::Tick => {
                step(&mut sim, target, &mut operation);
            }
        }
    }
    // Quiet now: the cluster must get where the spec says.
    let mut last = Action::Settled;
    for _ in 0..2_000 {
        last = step(&mut sim, target, &mut operation);
        if matches!(last, Action::Settled | Action::Refuse(_)) && sim.quiet() {
            break;
        }
    }
    match last {
        Action::Settled => {
            assert_eq!(sim.view.replicas, target.brokers);
            assert!(sim.view.pods.values().all(|p| p.current && p.ready), "stale or down brokers left");
            assert!(sim.view.partitions.iter().all(|p| p.fully_in_sync() && !p.reassigning()));
            assert_eq!(operation, Operation::Idle);
        }
        Action::Refuse(_) => assert!((target.brokers as usize) < sim.view.max_replication_factor()),
        other => panic!("no progress: still {other:?} with target {target:?}: {:?}", sim.view),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn scaling_is_safe_and_gets_there(view in cluster(), events in proptest::collection::vec(event(), 0..80)) {
        run(view, events);
    }
}
