//! Where replicas go: off brokers about to be removed, and onto brokers just added. Each move keeps the
//! partition's replication factor and never puts two replicas of a partition on one broker.

use super::view::{BrokerId, ClusterView, Partition};
use std::collections::BTreeMap;

/// A partition's new replica list, for AlterPartitionReassignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<BrokerId>,
}

/// Replicas per broker of `0..brokers`.
fn load(view: &ClusterView, brokers: u32) -> BTreeMap<BrokerId, usize> {
    let mut load: BTreeMap<BrokerId, usize> = ClusterView::ids(brokers).map(|b| (b, 0)).collect();
    for r in view.partitions.iter().flat_map(|p| &p.replicas) {
        if let Some(n) = load.get_mut(r) {
            *n += 1;
        }
    }
    load
}

/// The least loaded broker of `load` that `partition` does not use yet.
fn least_loaded(load: &BTreeMap<BrokerId, usize>, replicas: &[BrokerId]) -> Option<BrokerId> {
    load.iter().filter(|(b, _)| !replicas.contains(b)).min_by_key(|(b, n)| (**n, **b)).map(|(b, _)| *b)
}

fn moved(p: &Partition, replicas: Vec<BrokerId>) -> Move {
    Move { topic: p.topic.clone(), partition: p.index, replicas }
}

/// Moves every replica on brokers `keep..` onto brokers `0..keep`, at most `limit` partitions. `None` when some
/// partition cannot be placed: fewer brokers would remain than its replication factor.
pub fn drain(view: &ClusterView, keep: u32, limit: usize) -> Option<Vec<Move>> {
    let mut load = load(view, keep);
    let departing = |b: &BrokerId| *b >= keep as BrokerId;
    let mut moves = Vec::new();
    for p in view.partitions.iter().filter(|p| p.replicas.iter().any(departing)) {
        if moves.len() == limit {
            break;
        }
        let mut replicas = p.replicas.clone();
        for slot in 0..replicas.len() {
            if departing(&replicas[slot]) {
                let to = least_loaded(&load, &replicas)?;
                *load.entry(to).or_default() += 1;
                replicas[slot] = to;
            }
        }
        moves.push(moved(p, replicas));
    }
    Some(moves)
}

/// The busiest broker and its load, while some broker carries two or more replicas fewer.
fn uneven(load: &BTreeMap<BrokerId, usize>) -> Option<(BrokerId, usize)> {
    let (&hi, &hi_n) = load.iter().max_by_key(|(b, n)| (**n, -**b))?;
    let lo_n = load.values().min().copied()?;
    (hi_n > lo_n + 1).then_some((hi, hi_n))
}

/// Moves replicas from the most to the least loaded of brokers `0..brokers` until no two differ by more than one,
/// changing at most `limit` partitions (a partition may move several of its replicas in one plan).
pub fn spread(view: &ClusterView, brokers: u32, limit: usize) -> Vec<Move> {
    let mut load = load(view, brokers);
    let mut planned: BTreeMap<usize, Vec<BrokerId>> = BTreeMap::new();
    while let Some((hi, hi_n)) = uneven(&load) {
        // A partition on the busiest broker that a less loaded one can take; ones already planned first.
        let room = planned.len() < limit;
        let candidate = view.partitions.iter().enumerate().filter_map(|(i, p)| {
            let replicas = planned.get(&i).unwrap_or(&p.replicas);
            if !replicas.contains(&hi) || (!room && !planned.contains_key(&i)) {
                return None;
            }
            let to = least_loaded(&load, replicas).filter(|to| load.get(to).is_some_and(|n| n + 1 < hi_n))?;
            Some((!planned.contains_key(&i), i, to))
        });
        let Some((_, i, to)) = candidate.min() else {
            break;
        };
        let replicas = planned.get(&i).unwrap_or(&view.partitions[i].replicas);
        let replicas = replicas.iter().map(|&r| if r == hi { to } else { r }).collect();
        planned.insert(i, replicas);
        *load.entry(hi).or_default() -= 1;
        *load.entry(to).or_default() += 1;
    }
    planned.into_iter().map(|(i, replicas)| moved(&view.partitions[i], replicas)).collect()
}
