//! Which records of one file the sink has acknowledged, and so how far a checkpoint may go.

use super::Span;
use std::collections::VecDeque;

/// A record's number within its file, in the order records were sent.
pub type Seq = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Acked,
}

#[derive(Debug, Default)]
pub struct FileTracker {
    /// Records in send order; `entries[i]` has sequence number `first_seq + i`.
    entries: VecDeque<(Span, State)>,
    first_seq: Seq,
    /// End of the last line handed to the parser.
    consumed: u64,
    pending: usize,
    /// Highest start sent so far, and the starts of pending records sent below it (a partial line joined after
    /// later records): the only pending records that can start before an acknowledged one at the front.
    max_start: u64,
    late_pending: Vec<u64>,
}

impl FileTracker {
    pub fn new(from: u64) -> Self {
        Self { consumed: from, ..Self::default() }
    }

    /// A record at `span` was sent; acknowledge it later by the returned number.
    pub fn sent(&mut self, span: Span) -> Seq {
        let start = span.0;
        if start < self.max_start {
            self.late_pending.push(start);
        }
        self.max_start = self.max_start.max(start);
        self.entries.push_back((span, State::Pending));
        self.pending += 1;
        self.first_seq + self.entries.len() as u64 - 1
    }

    /// A record that needs no sending (it was found delivered by the previous run).
    pub fn already_delivered(&mut self, span: Span) {
        self.entries.push_back((span, State::Acked));
    }

    pub fn ack(&mut self, seq: Seq) {
        let Some(i) = seq.checked_sub(self.first_seq) else {
            return;
        };
        if let Some(entry) = self.entries.get_mut(i as usize) {
            if entry.1 == State::Pending {
                entry.1 = State::Acked;
                self.pending -= 1;
                let start = entry.0 .0;
                self.late_pending.retain(|&s| s != start);
            }
        }
    }

    pub fn consumed(&mut self, end: u64) {
        self.consumed = end;
    }

    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Forgets acknowledged records at the front that no checkpoint needs any more; cheap enough to call after
    /// every batch of acknowledgements, so memory follows what is in flight, not the checkpoint interval.
    pub fn compact(&mut self, open_start: Option<u64>) {
        let late = self.late_pending.iter().copied().min();
        let limit = [Some(self.consumed), open_start, late].into_iter().flatten().min().unwrap_or(self.consumed);
        self.pop_acked_below(limit);
    }

    fn pop_acked_below(&mut self, limit: u64) {
        while self.entries.front().is_some_and(|&((start, _), state)| state == State::Acked && start < limit) {
            self.entries.pop_front();
            self.first_seq += 1;
        }
    }

    /// The resume offset: nothing before it is unacknowledged, held in an open partial line (`open_start`), or
    /// unread. Also returns the acknowledged records at or after it, and forgets those before it.
    pub fn checkpoint(&mut self, open_start: Option<u64>) -> (u64, Vec<Span>) {
        let lowest_pending = self.entries.iter().filter(|e| e.1 == State::Pending).map(|e| e.0 .0).min();
        let offset =
            [Some(self.consumed), open_start, lowest_pending].into_iter().flatten().min().unwrap_or(self.consumed);
        self.pop_acked_below(offset);
        let beyond =
            self.entries.iter().filter(|&&((start, _), state)| state == State::Acked && start >= offset).map(|e| e.0);
        (offset, beyond.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn interleaved_partial_holds_the_checkpoint_back() {
        let mut t = FileTracker::new(0);
        // stdout P chunk at 0 is open; a stderr record at 50..100 is sent and acked.
        let s = t.sent((50, 100));
        t.consumed(100);
        t.ack(s);
        t.compact(Some(0));
        assert_eq!(t.checkpoint(Some(0)), (0, vec![(50, 100)]));
        // stdout F at 100..150 completes the record that started at 0.
        let r = t.sent((0, 150));
        t.consumed(150);
        t.compact(None);
        assert_eq!(t.checkpoint(None), (0, vec![(50, 100)]));
        t.ack(r);
        assert_eq!(t.checkpoint(None), (150, vec![]));
    }

    proptest! {
        /// Model: records are contiguous ranges acked in any order; the checkpoint never passes an unacked record,
        /// and once everything is acked it reaches the end.
        #[test]
        fn never_passes_an_unacked_record(order in Just((0..40u64).collect::<Vec<_>>()).prop_shuffle()) {
            let mut t = FileTracker::new(0);
            let seqs: Vec<Seq> = (0..40u64).map(|i| { let s = t.sent((i * 10, i * 10 + 10)); t.consumed(i * 10 + 10); s }).collect();
            let mut acked = [false; 40];
            for i in order {
                t.ack(seqs[i as usize]);
                t.compact(None);
                acked[i as usize] = true;
                let (offset, beyond) = t.checkpoint(None);
                let first_unacked = acked.iter().position(|a| !a).map_or(400, |p| p as u64 * 10);
                prop_assert_eq!(offset, first_unacked);
                for (b, _) in beyond { prop_assert!(acked[(b / 10) as usize] && b >= offset); }
            }
            prop_assert_eq!(t.pending(), 0);
        }
    }
}
