//! Which offsets may be committed: per partition, everything below the lowest record still being worked on.
//! Records finish out of order (bulk requests run concurrently, retries take time), and offsets have gaps
//! (compaction, transaction markers), so the position is the lowest *pending* offset, not a count.

use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Default)]
struct Partition {
    pending: BTreeSet<i64>,
    /// One past the highest offset consumed.
    next: i64,
    /// The position last handed out for commit.
    committed: Option<i64>,
}

#[derive(Debug, Default)]
pub struct Offsets {
    partitions: HashMap<i32, Partition>,
}

impl Offsets {
    pub fn consumed(&mut self, partition: i32, offset: i64) {
        let p = self.partitions.entry(partition).or_default();
        p.pending.insert(offset);
        p.next = p.next.max(offset + 1);
    }

    /// The record was indexed, dead-lettered or dropped.
    pub fn done(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.pending.remove(&offset);
        }
    }

    /// Positions (next offset to read) that moved since the last call, per partition.
    pub fn advanced_positions(&mut self) -> BTreeMap<i32, i64> {
        let mut out = BTreeMap::new();
        for (&id, p) in &mut self.partitions {
            let position = p.pending.first().copied().unwrap_or(p.next);
            if p.next > 0 && p.committed != Some(position) {
                p.committed = Some(position);
                out.insert(id, position);
            }
        }
        out
    }

    /// Positions of `partitions` as they stand, and forget them (they were revoked; another member resumes there).
    pub fn release(&mut self, partitions: &[i32]) -> BTreeMap<i32, i64> {
        let mut out = BTreeMap::new();
        for id in partitions {
            if let Some(p) = self.partitions.remove(id) {
                if p.next > 0 {
                    out.insert(*id, p.pending.first().copied().unwrap_or(p.next));
                }
            }
        }
        out
    }

    /// Per partition, records consumed and not done yet.
    pub fn pending_by_partition(&self) -> Vec<(i32, usize)> {
        self.partitions.iter().map(|(&id, p)| (id, p.pending.len())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Offsets with gaps finish in any order; a committed position never passes a pending record, and once all
        /// are done it reaches one past the last.
        #[test]
        fn never_commits_past_a_pending_record(
            gaps in proptest::collection::vec(1..4i64, 1..60),
            order in Just((0..60usize).collect::<Vec<_>>()).prop_shuffle(),
        ) {
            let offsets: Vec<i64> = gaps.iter().scan(0, |o, g| { *o += g; Some(*o) }).collect();
            let mut t = Offsets::default();
            for &o in &offsets { t.consumed(0, o); }
            let mut done = vec![false; offsets.len()];
            for i in order.into_iter().filter(|&i| i < offsets.len()) {
                t.done(0, offsets[i]);
                done[i] = true;
                if let Some(&position) = t.advanced_positions().get(&0) {
                    let first_pending = done.iter().position(|d| !d).map(|i| offsets[i]);
                    prop_assert_eq!(position, first_pending.unwrap_or(offsets[offsets.len() - 1] + 1));
                }
            }
            prop_assert_eq!(t.pending_by_partition(), vec![(0, 0)]);
            prop_assert_eq!(t.release(&[0]).get(&0).copied(), Some(offsets[offsets.len() - 1] + 1));
        }
    }

    #[test]
    fn released_partitions_are_forgotten() {
        let mut t = Offsets::default();
        t.consumed(1, 5);
        t.consumed(1, 6);
        t.done(1, 6);
        assert_eq!(t.release(&[1, 2]), BTreeMap::from([(1, 5)]));
        assert!(t.pending_by_partition().is_empty());
        t.done(1, 5); // a bulk that finishes after the revocation changes nothing
        assert!(t.advanced_positions().is_empty());
    }
}
