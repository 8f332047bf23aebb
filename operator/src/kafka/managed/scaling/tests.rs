use super::*;

/// A cluster of `n` ready, current, registered brokers with partitions given as (replicas, isr), min ISR 2.
fn cluster(n: u32, partitions: &[(&[BrokerId], &[BrokerId])]) -> ClusterView {
    let pod = BrokerPod { ready: true, current: true, active_controller: false };
    ClusterView {
        replicas: n,
        pods: ClusterView::ids(n).map(|b| (b, pod)).collect(),
        registered: ClusterView::ids(n).collect(),
        partitions: partitions
            .iter()
            .enumerate()
            .map(|(i, (replicas, isr))| Partition {
                topic: "logs".into(),
                index: i as i32,
                replicas: replicas.to_vec(),
                isr: isr.to_vec(),
                min_isr: 2,
                reassignment: None,
            })
            .collect(),
    }
}

fn target(brokers: u32) -> Target {
    Target { brokers, max_moves: 10 }
}

/// `n` partitions, each with these replicas, all in sync.
fn same(n: usize, replicas: &'static [BrokerId]) -> Vec<(&'static [BrokerId], &'static [BrokerId])> {
    vec![(replicas, replicas); n]
}

const FULL: &[(&[BrokerId], &[BrokerId])] = &[(&[0, 1, 2], &[0, 1, 2]), (&[1, 2, 0], &[1, 2, 0])];

#[test]
fn decisions() {
    let stale = |mut v: ClusterView, b: BrokerId, ready: bool, active: bool| {
        v.pods.insert(b, BrokerPod { ready, current: false, active_controller: active });
        v
    };
    let mut starting = cluster(4, FULL);
    starting.registered.remove(&3);
    let mut reassigning = cluster(3, FULL);
    reassigning.partitions[0].reassignment = Some(Reassignment::default());
    let cases: Vec<(&str, Target, Operation, ClusterView, Action)> = vec![
        ("as asked", target(3), Operation::Idle, cluster(3, FULL), Action::Settled),
        ("scale up adds brokers", target(5), Operation::Idle, cluster(3, FULL), Action::SetReplicas(5)),
        (
            "pod ready is not enough: registered too",
            target(4),
            Operation::ScalingUp,
            starting,
            Action::Wait(Waiting::BrokersStarting { missing: vec![3] }),
        ),
        (
            "below the replication factor",
            target(2),
            Operation::Idle,
            cluster(3, FULL),
            Action::Refuse(Refusal::BelowReplicationFactor { requested: 2, needed: 3 }),
        ),
        (
            "nothing removed while a reassignment runs",
            target(3),
            Operation::Idle,
            reassigning,
            Action::Wait(Waiting::Reassigning { partitions: 1 }),
        ),
        (
            "drain waits for a full ISR",
            target(3),
            Operation::Idle,
            cluster(4, &[(&[0, 1, 3], &[0, 3])]),
            Action::Wait(Waiting::UnderReplicated { partitions: 1 }),
        ),
        (
            "drain moves replicas off the departing broker",
            target(3),
            Operation::Idle,
            cluster(4, &[(&[0, 1, 3], &[0, 1, 3])]),
            Action::Reassign(vec![Move { topic: "logs".into(), partition: 0, replicas: vec![0, 1, 2] }]),
        ),
        (
            "an empty broker is removed, the highest first",
            target(3),
            Operation::Draining { to: 3 },
            cluster(5, FULL),
            Action::SetReplicas(4),
        ),
        (
            "unready stale broker restarts first",
            target(3),
            Operation::Idle,
            stale(stale(cluster(3, FULL), 0, true, false), 2, false, false),
            Action::Restart(2),
        ),
        (
            "active controller last",
            target(3),
            Operation::Idle,
            stale(stale(cluster(3, FULL), 0, true, true), 1, true, false),
            Action::Restart(1),
        ),
        (
            "no restart before the last restarted broker is back in the ISR",
            target(3),
            Operation::Idle,
            stale(cluster(3, &[(&[0, 1, 2], &[0, 1])]), 0, true, false),
            Action::Wait(Waiting::UnderReplicated { partitions: 1 }),
        ),
    ];
    for (name, target, operation, view, want) in cases {
        assert_eq!(decide(target, operation, &view).action, want, "{name}");
    }
}

#[test]
fn scale_up_spreads_replicas_onto_new_brokers_once_registered() {
    let d = decide(target(6), Operation::ScalingUp, &cluster(6, &same(4, &[0, 1, 2])));
    let Action::Reassign(moves) = d.action else { panic!("{d:?}") };
    let mut load = [0usize; 6];
    for m in &moves {
        assert_eq!(m.replicas.len(), 3);
        let mut distinct = m.replicas.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "{m:?}");
    }
    let view = cluster(6, &same(4, &[0, 1, 2]));
    for (i, p) in view.partitions.iter().enumerate() {
        let replicas = moves.iter().find(|m| m.partition == i as i32).map_or(&p.replicas, |m| &m.replicas);
        replicas.iter().for_each(|&b| load[b as usize] += 1);
    }
    assert_eq!(load.iter().max().unwrap() - load.iter().min().unwrap(), 0, "12 replicas over 6 brokers: {load:?}");
    assert_eq!(d.operation, Operation::ScalingUp);
}

#[test]
fn balanced_scale_up_settles_and_goes_idle() {
    let d = decide(target(3), Operation::ScalingUp, &cluster(3, FULL));
    assert_eq!((d.operation, d.action), (Operation::Idle, Action::Settled));
}

#[test]
fn drain_places_nothing_when_too_few_brokers_remain() {
    assert_eq!(drain(&cluster(3, FULL), 2, 10), None);
}

#[test]
fn moves_are_limited_per_step() {
    let view = cluster(4, &same(8, &[3, 0, 1]));
    assert_eq!(drain(&view, 3, 2).map(|m| m.len()), Some(2));
    assert!(spread(&cluster(6, &same(8, &[0, 1, 2])), 6, 3).len() <= 3);
}
