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

/// One record sent. `resume` is where reading must start again to produce it: its span's start, except for the
/// later pieces of a record split for the sink, whose spans start just after the record's start (`start + n`)
/// so that each piece has an identity of its own while a checkpoint never lands inside the record.
#[derive(Debug, Clone, Copy)]
struct Entry {
    span: Span,
    resume: u64,
    state: State,
    /// Its resume offset is in `late_pending` while it is pending.
    late: bool,
}

#[derive(Debug, Default)]
pub struct FileTracker {
    /// Records in send order; `entries[i]` has sequence number `first_seq + i`.
    entries: VecDeque<Entry>,
    first_seq: Seq,
    /// End of the last line handed to the parser.
    consumed: u64,
    pending: usize,
    /// Highest resume offset sent so far, and the resume offsets of pending records sent below it (a partial line
    /// joined after later records): the only pending records that can start before an acknowledged one at the
    /// front.
    max_start: u64,
    late_pending: Vec<u64>,
}

impl FileTracker {
    pub fn new(from: u64) -> Self {
        Self { consumed: from, ..Self::default() }
    }

    /// A record at `span` was sent; acknowledge it later by the returned number.
    pub fn sent(&mut self, span: Span) -> Seq {
        self.sent_piece(span, span.0)
    }

    /// A record (or a piece of one) that reading again from `resume` produces was sent.
    pub fn sent_piece(&mut self, span: Span, resume: u64) -> Seq {
        // A later piece resumes below its own start, so it holds back the records before it like a late one.
        let late = resume < self.max_start || resume < span.0;
        if late {
            self.late_pending.push(resume);
        }
        self.max_start = self.max_start.max(resume);
        self.entries.push_back(Entry { span, resume, state: State::Pending, late });
        self.pending += 1;
        self.first_seq + self.entries.len() as u64 - 1
    }

    /// A record (or piece) that needs no sending: it was found delivered by the previous run.
    pub fn already_delivered(&mut self, span: Span, resume: u64) {
        self.entries.push_back(Entry { span, resume, state: State::Acked, late: false });
    }

    pub fn ack(&mut self, seq: Seq) {
        let Some(i) = seq.checked_sub(self.first_seq) else {
            return;
        };
        if let Some(entry) = self.entries.get_mut(i as usize) {
            if entry.state == State::Pending {
                entry.state = State::Acked;
                self.pending -= 1;
                // The pieces of one record share a resume offset: forget one of them, not all.
                if let Some(late) = self.late_pending.iter().position(|&r| entry.late && r == entry.resume) {
                    self.late_pending.swap_remove(late);
                }
            }
        }
    }

    pub fn consumed(&mut self, end: u64) {
        self.consumed = end;
    }

    pub fn pending(&self) -> usize {
        self.pending
    }

    /// The number the next record sent will get.
    pub fn next_seq(&self) -> Seq {
        self.first_seq + self.entries.len() as u64
    }

    /// Whether a record numbered below `seq` still waits for its acknowledgement.
    pub fn pending_before(&self, seq: Seq) -> bool {
        let below = seq.saturating_sub(self.first_seq) as usize;
        self.entries.iter().take(below).any(|e| e.state == State::Pending)
    }

    /// Forgets acknowledged records at the front that no checkpoint needs any more; cheap enough to call after
    /// every batch of acknowledgements, so memory follows what is in flight, not the checkpoint interval.
    pub fn compact(&mut self, open_start: Option<u64>) {
        let late = self.late_pending.iter().copied().min();
        let limit = [Some(self.consumed), open_start, late].into_iter().flatten().min().unwrap_or(self.consumed);
        self.pop_acked_below(limit);
    }

    fn pop_acked_below(&mut self, limit: u64) {
        while self.entries.front().is_some_and(|e| e.state == State::Acked && e.span.0 < limit) {
            self.entries.pop_front();
            self.first_seq += 1;
        }
    }

    /// The resume offset: nothing before it is unacknowledged, held in an open partial line (`open_start`), or
    /// unread. Also returns the acknowledged records at or after it, and forgets those before it.
    pub fn checkpoint(&mut self, open_start: Option<u64>) -> (u64, Vec<Span>) {
        let lowest_pending = self.entries.iter().filter(|e| e.state == State::Pending).map(|e| e.resume).min();
        let offset =
            [Some(self.consumed), open_start, lowest_pending].into_iter().flatten().min().unwrap_or(self.consumed);
        self.pop_acked_below(offset);
        let beyond = self.entries.iter().filter(|e| e.state == State::Acked && e.span.0 >= offset).map(|e| e.span);
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

    #[test]
    fn a_checkpoint_never_lands_inside_a_split_record() {
        let mut t = FileTracker::new(0);
        // A record at 0..900 sent in three pieces, then a record at 900..950.
        let pieces: Vec<Seq> = (0..3).map(|n| t.sent_piece((n, 900), 0)).collect();
        let next = t.sent((900, 950));
        t.consumed(950);
        t.ack(pieces[0]);
        t.ack(pieces[2]);
        t.ack(next);
        t.compact(None);
        assert_eq!(t.checkpoint(None), (0, vec![(0, 900), (2, 900), (900, 950)]));
        t.ack(pieces[1]);
        t.compact(None);
        assert_eq!(t.checkpoint(None), (950, vec![]));
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

        /// Model with split records: 20 records of 100 bytes, each sent in 1 to 3 pieces, pieces acked in any
        /// order. The checkpoint is the start of the first record with an unacknowledged piece, and the pieces
        /// listed beyond it are exactly the acknowledged pieces from there on, so a restart skips each once.
        #[test]
        fn split_records_checkpoint_at_record_starts(
            (counts, order) in proptest::collection::vec(1u64..4, 20).prop_flat_map(|counts| {
                let total = counts.iter().sum::<u64>() as usize;
                (Just(counts), Just((0..total).collect::<Vec<_>>()).prop_shuffle())
            })
        ) {
            let mut t = FileTracker::new(0);
            let mut pieces = Vec::new();
            for (r, &n) in counts.iter().enumerate() {
                let start = r as u64 * 100;
                for p in 0..n {
                    pieces.push((r, (start + p, start + 100), t.sent_piece((start + p, start + 100), start)));
                }
                t.consumed(start + 100);
            }
            let mut acked = vec![false; pieces.len()];
            for i in order {
                t.ack(pieces[i].2);
                acked[i] = true;
                t.compact(None);
                let (offset, beyond) = t.checkpoint(None);
                let first_open = pieces.iter().zip(&acked).find(|(_, a)| !**a).map_or(2000, |(p, _)| p.0 as u64 * 100);
                prop_assert_eq!(offset, first_open);
                let want: Vec<Span> =
                    pieces.iter().zip(&acked).filter(|(p, a)| **a && p.1 .0 >= offset).map(|(p, _)| p.1).collect();
                prop_assert_eq!(beyond, want);
            }
        }
    }
}
