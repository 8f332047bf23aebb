//! Broker scaling end to end through the Kafka protocol: the operator's decision and its Kafka admin client
//! against a simulated multi-broker cluster on loopback (tests/src/kafka_sim.rs). The broker StatefulSet is
//! played by the test: setting its replicas registers or removes brokers, and removing one that still holds a
//! replica fails the test.

use logpipe_operator::kafka::managed::admin::{Access, Admin};
use logpipe_operator::kafka::managed::scaling::{
    decide, Action, BrokerPod, ClusterView, Operation, Refusal, Target, Waiting,
};
use logpipe_tests::kafka_sim::KafkaSim;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Harness {
    sim: KafkaSim,
    admin: Admin,
    /// The StatefulSet's replicas.
    replicas: u32,
    operation: Operation,
}

impl Harness {
    async fn start(brokers: u32) -> Self {
        let sim = KafkaSim::start(0..brokers as i32, Duration::from_millis(150)).await;
        let mut admin = Admin::connect(&sim.bootstrap(), TIMEOUT, &Access::Plaintext).await.unwrap();
        for t in 0..3 {
            let configs = [("min.insync.replicas", "2".to_owned())];
            admin.create_topic(&format!("logs-{t}"), 6, 3, &configs).await.unwrap();
        }
        Self { sim, admin, replicas: brokers, operation: Operation::Idle }
    }

    async fn view(&mut self) -> ClusterView {
        let cluster = self.admin.cluster().await.unwrap();
        let pod = |b: &i32| BrokerPod { ready: cluster.brokers.contains(b), current: true, active_controller: false };
        let pods: BTreeMap<i32, BrokerPod> = ClusterView::ids(self.replicas).map(|b| (b, pod(&b))).collect();
        let partitions = self.admin.partitions().await.unwrap();
        ClusterView { replicas: self.replicas, pods, registered: cluster.brokers, partitions }
    }

    /// Reconciles until the decision settles or refuses; returns that last action and every wait seen.
    async fn reconcile(&mut self, brokers: u32) -> (Action, Vec<Waiting>) {
        let target = Target { brokers, max_moves: 5 };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut waits = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "no settling within 60 s; waits: {waits:?}");
            let view = self.view().await;
            let d = decide(target, self.operation, &view);
            self.operation = d.operation;
            match d.action {
                Action::SetReplicas(n) => self.set_replicas(n),
                Action::Reassign(moves) => self.admin.reassign(&moves).await.unwrap(),
                Action::Restart(b) => panic!("no broker is stale here, yet {b} was restarted"),
                // The operator's requeue: look again shortly.
                Action::Wait(w) => {
                    waits.push(w);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                done @ (Action::Settled | Action::Refuse(_)) => return (done, waits),
            }
        }
    }

    /// What the StatefulSet controller does: new pods register, removed ones leave with their data.
    fn set_replicas(&mut self, n: u32) {
        let mut state = self.sim.state();
        for b in ClusterView::ids(n) {
            state.brokers.insert(b);
        }
        for b in n as i32..self.replicas as i32 {
            let held: Vec<_> = state
                .topics
                .iter()
                .flat_map(|(t, (_, ps))| ps.iter().enumerate().map(move |(i, p)| (t, i, p)))
                .filter(|(_, _, p)| p.replicas.contains(&b) || p.moving.iter().any(|(m, _)| m.contains(&b)))
                .map(|(t, i, _)| format!("{t}/{i}"))
                .collect();
            assert!(held.is_empty(), "broker {b} removed while it holds replicas of {held:?}");
            state.brokers.remove(&b);
        }
        self.replicas = n;
    }

    /// Replicas per broker.
    fn load(&self) -> BTreeMap<i32, usize> {
        let state = self.sim.state();
        let mut load: BTreeMap<i32, usize> = state.brokers.iter().map(|&b| (b, 0)).collect();
        for p in state.topics.values().flat_map(|(_, ps)| ps) {
            for r in &p.replicas {
                *load.entry(*r).or_default() += 1;
            }
        }
        load
    }
}

#[tokio::test]
async fn scale_up_spreads_and_scale_down_drains_through_the_kafka_protocol() {
    let mut h = Harness::start(3).await;

    let (done, _) = h.reconcile(5).await;
    assert_eq!(done, Action::Settled);
    let load = h.load();
    assert_eq!(load.len(), 5);
    let (min, max) = (load.values().min().unwrap(), load.values().max().unwrap());
    assert!(max - min <= 1, "54 replicas over 5 brokers, balanced: {load:?}");

    let (done, _) = h.reconcile(3).await;
    assert_eq!(done, Action::Settled);
    assert_eq!(h.load().keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(h.operation, Operation::Idle);

    let (done, _) = h.reconcile(2).await;
    assert_eq!(done, Action::Refuse(Refusal::BelowReplicationFactor { requested: 2, needed: 3 }));
    assert_eq!(h.replicas, 3, "a refused scale-down changes nothing");
}

/// A broker out of the ISR holds the drain: nothing is removed until every ISR is full again.
#[tokio::test]
async fn a_lagging_broker_holds_the_scale_down() {
    let mut h = Harness::start(4).await;
    h.sim.state().lagging.insert(1);
    let target = Target { brokers: 3, max_moves: 5 };
    let view = h.view().await;
    let d = decide(target, h.operation, &view);
    assert!(matches!(d.action, Action::Wait(Waiting::UnderReplicated { .. })), "{d:?}");
    assert_eq!(h.replicas, 4);

    h.sim.state().lagging.clear();
    let (done, _) = h.reconcile(3).await;
    assert_eq!(done, Action::Settled);
    assert_eq!(h.replicas, 3);
}

/// Reassignments that fail leave replicas on the departing broker; the drain is planned again, and the broker is
/// removed only once it is verified empty (the harness fails the test if it holds anything when removed).
#[tokio::test]
async fn a_failed_drain_is_retried_never_taken_as_done() {
    let mut h = Harness::start(4).await;
    h.sim.state().fail_reassignments = 6;
    let (done, _) = h.reconcile(3).await;
    assert_eq!(done, Action::Settled);
    assert_eq!(h.replicas, 3);
    let state = h.sim.state();
    assert_eq!(state.fail_reassignments, 0, "the failures happened");
    assert!(state.reassignments_started > 6, "failed moves were planned again: {}", state.reassignments_started);
}
