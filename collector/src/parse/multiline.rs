//! Joins lines into records by a start pattern: a line matching it begins a record, any other line continues the
//! open record of its stream (stack traces, pretty-printed JSON). A record is complete when the next one starts,
//! when it would pass the byte cap, or when no line continued it for the timeout.
//!
//! The timeout makes grouping depend on timing, so after a restart the same lines could group differently and a
//! record found delivered by its start would hide lines the previous run never sent. Groups are therefore rebuilt
//! exactly as delivered: a delivered record's start always begins a group, and its end always closes one.

use super::{Record, Stream};
use regex::bytes::Regex;
use std::time::{Duration, Instant};

struct Group {
    start: u64,
    end: u64,
    time: String,
    bytes: Vec<u8>,
    capped: bool,
    last: Instant,
    /// Where the delivered record that began here ended, if this group's start was delivered by a previous run.
    delivered_end: Option<u64>,
}

pub struct Multiline {
    start: Regex,
    timeout: Duration,
    max_bytes: usize,
    open: [Option<Group>; 2],
}

impl Multiline {
    pub fn new(start: Regex, timeout: Duration, max_bytes: usize) -> Self {
        Self { start, timeout, max_bytes, open: [None, None] }
    }

    pub fn lowest_open_start(&self) -> Option<u64> {
        self.open.iter().flatten().map(|g| g.start).min()
    }

    /// Takes a record (a line, partials already joined); returns the group it completed, if any. `delivered` says
    /// where a record the previous run delivered from a given start ended.
    pub fn push(
        &mut self,
        rec: Record<'_>,
        delivered: impl Fn(u64) -> Option<u64>,
        now: Instant,
    ) -> Option<Record<'static>> {
        let slot = &mut self.open[rec.stream.index()];
        let delivered_end = delivered(rec.start);
        if let Some(g) = slot {
            let closes = delivered_end.is_some()
                || g.delivered_end.is_some_and(|end| rec.start >= end)
                || g.bytes.len() + 1 + rec.message.len() > self.max_bytes
                || self.start.is_match(&rec.message);
            if !closes {
                g.bytes.push(b'\n');
                g.bytes.extend_from_slice(&rec.message);
                (g.end, g.last, g.capped) = (rec.end, now, g.capped | rec.capped);
                return None;
            }
        }
        let next = Group {
            start: rec.start,
            end: rec.end,
            time: rec.time.into_owned(),
            bytes: rec.message.into_owned(),
            capped: rec.capped,
            last: now,
            delivered_end,
        };
        slot.replace(next).map(|g| g.into_record(rec.stream))
    }

    /// Completes the groups no line continued for the timeout, except one rebuilding a delivered record that is not
    /// complete yet: its remaining lines are in the file already.
    pub fn flush_stale(&mut self, now: Instant, out: &mut impl FnMut(Record<'static>)) {
        for (slot, stream) in self.open.iter_mut().zip([Stream::Stdout, Stream::Stderr]) {
            let stale = |g: &Group| {
                now.duration_since(g.last) >= self.timeout && g.delivered_end.is_none_or(|end| g.end >= end)
            };
            if slot.as_ref().is_some_and(stale) {
                out(slot.take().expect("checked above").into_record(stream));
            }
        }
    }

    /// Completes every open group (the file ended).
    pub fn flush(&mut self, out: &mut impl FnMut(Record<'static>)) {
        for (slot, stream) in self.open.iter_mut().zip([Stream::Stdout, Stream::Stderr]) {
            if let Some(g) = slot.take() {
                out(g.into_record(stream));
            }
        }
    }
}

impl Group {
    fn into_record(self, stream: Stream) -> Record<'static> {
        Record {
            start: self.start,
            end: self.end,
            time: self.time.into(),
            stream,
            message: self.bytes.into(),
            capped: self.capped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn line(start: u64, stream: Stream, text: &str) -> Record<'static> {
        let end = start + text.len() as u64 + 1;
        Record { start, end, time: "t".into(), stream, message: text.as_bytes().to_vec().into(), capped: false }
    }

    /// Feeds `lines` (offsets assigned in order), with a pause before the indices in `pauses`; returns each record
    /// as (start, end, message).
    fn group(lines: &[(Stream, &str)], pauses: &[usize], delivered: &HashMap<u64, u64>) -> Vec<(u64, u64, String)> {
        let mut m = Multiline::new(Regex::new(r"^\d").unwrap(), Duration::from_secs(1), 1 << 10);
        let (mut out, mut offset, mut now) = (Vec::new(), 0, Instant::now());
        let mut take =
            |r: Record<'static>| out.push((r.start, r.end, String::from_utf8(r.message.into_owned()).unwrap()));
        for (i, (stream, text)) in lines.iter().enumerate() {
            if pauses.contains(&i) {
                now += Duration::from_secs(2);
                m.flush_stale(now, &mut take);
            }
            let rec = line(offset, *stream, text);
            offset = rec.end;
            if let Some(r) = m.push(rec, |s| delivered.get(&s).copied(), now) {
                take(r);
            }
        }
        m.flush(&mut take);
        out
    }

    const TRACE: [(Stream, &str); 5] = [
        (Stream::Stdout, "1 error"),
        (Stream::Stdout, "  at a"),
        (Stream::Stderr, "2 other stream"),
        (Stream::Stdout, "  at b"),
        (Stream::Stdout, "3 next"),
    ];

    fn records(spans: &[(u64, u64, &str)]) -> Vec<(u64, u64, String)> {
        spans.iter().map(|&(s, e, m)| (s, e, m.to_owned())).collect()
    }

    #[test]
    fn lines_join_per_stream_until_the_next_start() {
        let want = [(0, 37, "1 error\n  at a\n  at b"), (37, 44, "3 next"), (15, 30, "2 other stream")];
        assert_eq!(group(&TRACE, &[], &HashMap::new()), records(&want));
    }

    #[test]
    fn a_pause_completes_the_group() {
        let want = [(0, 15, "1 error\n  at a"), (15, 30, "2 other stream"), (30, 37, "  at b"), (37, 44, "3 next")];
        assert_eq!(group(&TRACE, &[3], &HashMap::new()), records(&want));
    }

    #[test]
    fn groups_delivered_before_are_rebuilt_exactly() {
        // The previous run timed out after "  at a" and delivered 0..15 (and maybe more); now the lines come without
        // a pause, and the groups come out as they were.
        let want = [(0, 15, "1 error\n  at a"), (30, 37, "  at b"), (37, 44, "3 next"), (15, 30, "2 other stream")];
        assert_eq!(group(&TRACE, &[], &HashMap::from([(0, 15)])), records(&want));
        // It delivered "  at b" alone but not the record before it: that one ends where "  at b" begins.
        assert_eq!(group(&TRACE, &[], &HashMap::from([(30, 37)])), records(&want));
    }

    proptest::proptest! {
        /// A run that paused anywhere delivered any subset of its records, then crashed; the next run reads the same
        /// lines with other pauses. What was delivered plus what the next run sends covers every line exactly once.
        #[test]
        fn a_restart_neither_loses_nor_repeats_lines(
            lines in proptest::collection::vec((proptest::bool::ANY, proptest::bool::ANY), 1..40),
            pauses1 in proptest::collection::vec(0..40usize, 0..6),
            pauses2 in proptest::collection::vec(0..40usize, 0..6),
            delivered_mask in proptest::collection::vec(proptest::bool::ANY, 40),
        ) {
            let lines: Vec<(Stream, &str)> = lines
                .iter()
                .map(|&(err, starts)| (if err { Stream::Stderr } else { Stream::Stdout }, if starts { "1 start" } else { " cont" }))
                .collect();
            let first = group(&lines, &pauses1, &HashMap::new());
            let delivered: HashMap<u64, u64> = first
                .iter()
                .zip(&delivered_mask)
                .filter(|(_, d)| **d)
                .map(|((s, e, _), _)| (*s, *e))
                .collect();
            let second = group(&lines, &pauses2, &delivered);
            let sent = second.iter().filter(|(s, _, _)| !delivered.contains_key(s)).map(|(s, e, _)| (*s, *e));
            let mut covered = vec![0; lines.len()];
            let starts: Vec<u64> = lines.iter().scan(0u64, |o, (_, t)| { let s = *o; *o += t.len() as u64 + 1; Some(s) }).collect();
            for (s, e) in delivered.iter().map(|(s, e)| (*s, *e)).chain(sent) {
                let stream = lines[starts.iter().position(|&x| x == s).unwrap()].0;
                for (i, &start) in starts.iter().enumerate() {
                    if lines[i].0 == stream && start >= s && start < e {
                        covered[i] += 1;
                    }
                }
            }
            proptest::prop_assert!(covered.iter().all(|&c| c == 1), "{covered:?}");
        }
    }
}
