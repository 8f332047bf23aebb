//! Joins partial chunks into records, separately per stream: stdout and stderr of one container interleave in
//! one file, and joining across them corrupts both (a known Fluent Bit bug).

use super::{Chunk, Parsed, Stream};
use std::borrow::Cow;

/// A complete log record. `start..end` are the file offsets of its first and past its last byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub start: u64,
    pub end: u64,
    pub time: Cow<'a, str>,
    pub stream: Stream,
    pub message: Cow<'a, [u8]>,
    /// The joined record reached the byte cap; the rest of the line follows as its own record.
    pub capped: bool,
}

struct Open {
    start: u64,
    time: String,
    bytes: Vec<u8>,
}

/// Per-file partial-line state.
pub struct Assembler {
    open: [Option<Open>; 2],
    max_joined: usize,
}

impl Assembler {
    pub fn new(max_joined: usize) -> Self {
        Self { open: [None, None], max_joined }
    }

    /// The lowest file offset of a chunk still waiting for the rest of its line: a checkpoint must not pass it.
    pub fn lowest_open_start(&self) -> Option<u64> {
        self.open.iter().flatten().map(|o| o.start).min()
    }

    /// Feeds one parsed line found at `start..end`; returns a record when one completes. A chunk that would push
    /// the joined record over the cap first flushes what was joined so far (marked capped).
    pub fn push<'a>(&mut self, start: u64, end: u64, line: Parsed<'a>, out: &mut impl FnMut(Record<'_>)) {
        let slot = &mut self.open[line.stream.index()];
        if let Some(open) = slot {
            if open.bytes.len() + line.message.len() > self.max_joined {
                let o = slot.take().expect("checked above");
                out(Record {
                    start: o.start,
                    end: start,
                    time: o.time.into(),
                    stream: line.stream,
                    message: o.bytes.into(),
                    capped: true,
                });
            }
        }
        match (slot.take(), line.chunk) {
            (None, Chunk::Full) => out(Record {
                start,
                end,
                time: Cow::Borrowed(line.time),
                stream: line.stream,
                message: line.message,
                capped: false,
            }),
            (None, Chunk::Partial) => {
                *slot = Some(Open { start, time: line.time.to_owned(), bytes: line.message.into_owned() });
            }
            (Some(mut open), Chunk::Partial) => {
                open.bytes.extend_from_slice(&line.message);
                *slot = Some(open);
            }
            (Some(mut open), Chunk::Full) => {
                open.bytes.extend_from_slice(&line.message);
                out(Record {
                    start: open.start,
                    end,
                    time: open.time.into(),
                    stream: line.stream,
                    message: open.bytes.into(),
                    capped: false,
                });
            }
        }
    }

    /// Emits whatever is still open (the file ended, or was rotated away, mid-line).
    pub fn flush(&mut self, end: u64, out: &mut impl FnMut(Record<'_>)) {
        for (slot, stream) in self.open.iter_mut().zip([Stream::Stdout, Stream::Stderr]) {
            if let Some(o) = slot.take() {
                out(Record {
                    start: o.start,
                    end,
                    time: o.time.into(),
                    stream,
                    message: o.bytes.into(),
                    capped: false,
                });
            }
        }
    }
}
