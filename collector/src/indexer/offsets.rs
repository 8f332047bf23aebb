//! Which offsets may be committed: per partition, everything below the lowest record still being worked on.
//! Records finish out of order (bulk requests run concurrently, retries take time), and offsets have gaps
//! (compaction, transaction markers), so the position is the lowest *pending* offset, not a count. A record of
//! format 2 holds several documents; it is done when each of them is.

use std::collections::{BTreeMap, HashMap, VecDeque};

#[derive(Debug, Default)]
struct Partition {
    /// Offsets consumed and not yet passed by the position, ascending, each with how many of its documents are not
    /// done yet. Records come in offset order, so consuming appends and the position only ever pops from the front.
    window: VecDeque<(i64, u32)>,
    /// How many in `window` are not done.
    pending: usize,
    /// One past the highest offset consumed.
    next: i64,
    /// The position last handed out for commit.
    committed: Option<i64>,
}

impl Partition {
    fn position(&self) -> i64 {
        self.window.front().map_or(self.next, |&(offset, _)| offset)
    }

    fn pass_done(&mut self) {
        while self.window.front().is_some_and(|&(_, left)| left == 0) {
            self.window.pop_front();
        }
    }
}

#[derive(Debug, Default)]
pub struct Offsets {
    partitions: HashMap<i32, Partition>,
}

impl Offsets {
    /// A record with `documents` documents to index (none: it is done at once).
    pub fn consumed(&mut self, partition: i32, offset: i64, documents: u32) {
        let p = self.partitions.entry(partition).or_default();
        match p.window.back() {
            Some(&(last, _)) if offset <= last => {
                // Out of order, which Kafka does not do within an assignment; kept correct, not fast.
                match p.window.binary_search_by_key(&offset, |&(o, _)| o) {
                    Ok(at) if p.window[at].1 == 0 => p.window[at].1 = documents,
                    Ok(_) => return,
                    Err(at) => p.window.insert(at, (offset, documents)),
                }
            }
            _ => p.window.push_back((offset, documents)),
        }
        p.pending += usize::from(documents > 0);
        p.next = p.next.max(offset + 1);
        p.pass_done();
    }

    /// One document of the record was indexed, dead-lettered or dropped.
    pub fn done(&mut self, partition: i32, offset: i64) {
        let Some(p) = self.partitions.get_mut(&partition) else { return };
        let Ok(at) = p.window.binary_search_by_key(&offset, |&(o, _)| o) else { return };
        let left = &mut p.window[at].1;
        if *left > 0 {
            *left -= 1;
            p.pending -= usize::from(*left == 0);
        }
        p.pass_done();
    }

    /// Positions (next offset to read) that moved since the last call, per partition.
    pub fn advanced_positions(&mut self) -> BTreeMap<i32, i64> {
        let mut out = BTreeMap::new();
        for (&id, p) in &mut self.partitions {
            let position = p.position();
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
                    out.insert(*id, p.position());
                }
            }
        }
        out
    }

    /// Per partition, records consumed and not done yet.
    pub fn pending_by_partition(&self) -> Vec<(i32, usize)> {
        self.partitions.iter().map(|(&id, p)| (id, p.pending)).collect()
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
            for &o in &offsets { t.consumed(0, o, 1); }
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

    #[derive(Debug, Clone)]
    enum Op {
        /// Consume the partition's next offset, this far past the last one.
        Consume {
            partition: i32,
            gap: i64,
        },
        /// Consume an offset again, or one below the last (never within an assignment, still handled).
        Again {
            partition: i32,
            back: i64,
        },
        /// Finish the n-th pending record (modulo how many are pending).
        Done {
            partition: i32,
            nth: usize,
        },
        Release {
            partition: i32,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let partition = 0..3i32;
        prop_oneof![
            6 => (partition.clone(), 1..4i64).prop_map(|(partition, gap)| Op::Consume { partition, gap }),
            1 => (partition.clone(), 0..6i64).prop_map(|(partition, back)| Op::Again { partition, back }),
            5 => (partition.clone(), any::<usize>()).prop_map(|(partition, nth)| Op::Done { partition, nth }),
            1 => partition.prop_map(|partition| Op::Release { partition }),
        ]
    }

    /// The obvious model: a set of pending offsets per partition, the position being the lowest or one past the last.
    #[derive(Default)]
    struct Model {
        pending: BTreeMap<i32, std::collections::BTreeSet<i64>>,
        next: BTreeMap<i32, i64>,
    }

    impl Model {
        fn position(&self, partition: i32) -> Option<i64> {
            let next = *self.next.get(&partition)?;
            Some(self.pending.get(&partition).and_then(|s| s.first().copied()).unwrap_or(next))
        }
    }

    proptest! {
        /// Any sequence of consuming (in order, or not), finishing and releasing gives the model's positions.
        #[test]
        fn positions_follow_the_model(ops in proptest::collection::vec(op(), 1..200)) {
            let (mut t, mut m) = (Offsets::default(), Model::default());
            let mut last: BTreeMap<i32, i64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Consume { partition, gap } => {
                        let offset = last.get(&partition).map_or(gap - 1, |l| l + gap);
                        last.insert(partition, offset);
                        t.consumed(partition, offset, 1);
                        m.pending.entry(partition).or_default().insert(offset);
                        let next = m.next.entry(partition).or_default();
                        *next = (*next).max(offset + 1);
                    }
                    Op::Again { partition, back } => {
                        let Some(&l) = last.get(&partition) else { continue };
                        let offset = (l - back).max(0);
                        t.consumed(partition, offset, 1);
                        m.pending.entry(partition).or_default().insert(offset);
                        let next = m.next.entry(partition).or_default();
                        *next = (*next).max(offset + 1);
                    }
                    Op::Done { partition, nth } => {
                        let Some(set) = m.pending.get_mut(&partition).filter(|s| !s.is_empty()) else { continue };
                        let offset = *set.iter().nth(nth % set.len()).unwrap();
                        set.remove(&offset);
                        t.done(partition, offset);
                    }
                    Op::Release { partition } => {
                        let want = m.position(partition);
                        m.pending.remove(&partition);
                        m.next.remove(&partition);
                        last.remove(&partition);
                        prop_assert_eq!(t.release(&[partition]).get(&partition).copied(), want);
                    }
                }
                for (&partition, set) in &m.pending {
                    let got = t.pending_by_partition().into_iter().find(|&(p, _)| p == partition).map(|(_, n)| n);
                    prop_assert_eq!(got, Some(set.len()));
                }
                let moved = t.advanced_positions();
                for (partition, position) in moved {
                    prop_assert_eq!(Some(position), m.position(partition));
                }
            }
        }
    }

    #[test]
    fn released_partitions_are_forgotten() {
        let mut t = Offsets::default();
        t.consumed(1, 5, 1);
        t.consumed(1, 6, 1);
        t.done(1, 6);
        assert_eq!(t.release(&[1, 2]), BTreeMap::from([(1, 5)]));
        assert!(t.pending_by_partition().is_empty());
        t.done(1, 5); // a bulk that finishes after the revocation changes nothing
        assert!(t.advanced_positions().is_empty());
    }

    #[test]
    fn a_record_of_several_documents_is_done_with_its_last() {
        let mut t = Offsets::default();
        t.consumed(0, 10, 3);
        t.consumed(0, 11, 0);
        t.consumed(0, 12, 1);
        assert_eq!(t.pending_by_partition(), vec![(0, 2)], "a record without documents is not pending");
        t.done(0, 12);
        t.done(0, 10);
        t.done(0, 10);
        assert_eq!(t.advanced_positions(), BTreeMap::from([(0, 10)]), "one document of offset 10 is left");
        t.done(0, 10);
        assert_eq!(t.advanced_positions(), BTreeMap::from([(0, 13)]));
        t.done(0, 10);
        assert_eq!(t.pending_by_partition(), vec![(0, 0)], "a done record stays done");
        t.consumed(0, 13, 0);
        assert_eq!(t.advanced_positions(), BTreeMap::from([(0, 14)]), "an empty record is passed at once");
    }
}
