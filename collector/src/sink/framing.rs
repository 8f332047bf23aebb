//! Consecutive records of one file gathered into one Kafka message (record format 2, see `crate::frame`).

use super::{Outgoing, Token};
use crate::checkpoint::Span;
use crate::frame::push_span;

/// Room in a message for its key, its headers but the spans, and Kafka's framing of one record.
const OVERHEAD: usize = 2048;
/// The longest one span is written: two 20-digit numbers, a dash and a comma.
const SPAN_MAX: usize = 42;

/// The records gathered so far; all have the same key and source.
#[derive(Debug, Default)]
pub struct Frame {
    pub key: Vec<u8>,
    pub source: String,
    pub payload: Vec<u8>,
    pub spans: String,
    last_end: Option<u64>,
    pub tokens: Vec<Token>,
}

impl Frame {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether `record` may join: same file, the documents within `frame_bytes`, and the whole message within
    /// `max_message`. An empty frame takes any record (the agent cut it to fit one message).
    pub fn takes(&self, record: &Outgoing<'_>, frame_bytes: usize, max_message: usize) -> bool {
        if self.is_empty() {
            return true;
        }
        let payload = self.payload.len() + 1 + record.payload.len();
        let message = payload + self.spans.len() + SPAN_MAX + self.key.len() + self.source.len() + OVERHEAD;
        self.key == record.key && self.source == record.source && payload <= frame_bytes && message <= max_message
    }

    pub fn push(&mut self, record: &Outgoing<'_>) {
        if self.is_empty() {
            self.key.extend_from_slice(record.key);
            self.source.push_str(record.source);
        } else {
            self.payload.push(b'\n');
        }
        self.payload.extend_from_slice(record.payload);
        self.push_span(record.span);
        self.tokens.push(record.token);
    }

    fn push_span(&mut self, span: Span) {
        push_span(&mut self.spans, self.last_end, span);
        self.last_end = Some(span.1);
    }

    /// Empties the frame for the next records, keeping its buffers; returns the tokens it still held.
    pub fn clear(&mut self) -> Vec<Token> {
        self.key.clear();
        self.source.clear();
        self.payload.clear();
        self.spans.clear();
        self.last_end = None;
        std::mem::take(&mut self.tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{documents, parse_spans};

    fn record<'a>(key: &'a [u8], payload: &'a [u8], span: Span, seq: u64) -> Outgoing<'a> {
        Outgoing { key, payload, source: "node/1-2", span, token: Token { file: 1, seq, bytes: payload.len() as u32 } }
    }

    #[test]
    fn a_frame_holds_one_files_records_within_its_bounds() {
        // (what, frame_bytes, max_message, records (key, payload), records per frame)
        type Case<'a> = (&'a str, usize, usize, &'a [(&'a [u8], &'a [u8])], &'a [usize]);
        let cases: &[Case] = &[
            ("all fit", 1000, 1 << 20, &[(b"k", b"{}"), (b"k", b"{\"a\":1}"), (b"k", b"{}")], &[3]),
            ("another key starts a frame", 1000, 1 << 20, &[(b"k", b"{}"), (b"j", b"{}"), (b"j", b"{}")], &[1, 2]),
            ("frame_bytes reached", 10, 1 << 20, &[(b"k", b"{\"a\":1}"), (b"k", b"{\"a\":2}")], &[1, 1]),
            ("a record alone may pass frame_bytes", 4, 1 << 20, &[(b"k", b"{\"long\":1}"), (b"k", b"{}")], &[1, 1]),
            ("the message limit counts headers", 1 << 20, OVERHEAD + 80, &[(b"k", b"{}"), (b"k", b"{}")], &[2]),
            ("the message limit reached", 1 << 20, OVERHEAD + 59, &[(b"k", b"{}"), (b"k", b"{}")], &[1, 1]),
        ];
        for &(what, frame_bytes, max_message, records, want) in cases {
            let (mut frame, mut sizes, mut frames) = (Frame::default(), Vec::new(), Vec::new());
            for (n, &(key, payload)) in records.iter().enumerate() {
                let r = record(key, payload, (n as u64 * 10, n as u64 * 10 + 10), n as u64);
                if !frame.takes(&r, frame_bytes, max_message) {
                    frames.push(frame.payload.clone());
                    sizes.push(frame.clear().len());
                }
                frame.push(&r);
            }
            frames.push(frame.payload.clone());
            sizes.push(frame.clear().len());
            assert_eq!(sizes, want, "{what}");
            let docs: Vec<Vec<u8>> =
                frames.iter().flat_map(|f| documents(f).map(|r| f[r].to_vec()).collect::<Vec<_>>()).collect();
            let sent: Vec<Vec<u8>> = records.iter().map(|(_, p)| p.to_vec()).collect();
            assert_eq!(docs, sent, "{what}: the documents are the records, in order");
        }
    }

    #[test]
    fn spans_and_tokens_follow_the_records() {
        let mut frame = Frame::default();
        for (n, span) in [(0, 5), (5, 9), (20, 30)].into_iter().enumerate() {
            frame.push(&record(b"k", b"{}", span, n as u64));
        }
        assert_eq!(parse_spans(&frame.spans), Some(vec![(0, 5), (5, 9), (20, 30)]));
        let tokens = frame.clear();
        assert_eq!(tokens.iter().map(|t| t.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(frame.is_empty() && frame.spans.is_empty() && frame.payload.is_empty());
        frame.push(&record(b"k", b"{}", (40, 50), 3));
        assert_eq!(frame.spans, "40-50", "a new frame starts its spans afresh");
    }
}
