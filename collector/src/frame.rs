//! How records travel in Kafka messages. Format 1 (no `logpipe.format` header): one record per message, its span in
//! the headers `logpipe.offset` and `logpipe.end`. Format 2 (`logpipe.format: 2`): consecutive records of one file
//! as newline-separated documents (a document never holds a raw newline: the encoder escapes them), their spans in
//! the header `logpipe.spans`. A message costs the producer, the broker and the consumer about as much whatever its
//! size, so format 2 is what makes the Kafka path cheap; the spans keep each record's identity for the read-back.

use crate::checkpoint::Span;

pub const SOURCE_HEADER: &str = "logpipe.source";
pub const OFFSET_HEADER: &str = "logpipe.offset";
/// Where the record ends in its file (see `checkpoint::Span`).
pub const END_HEADER: &str = "logpipe.end";
pub const FORMAT_HEADER: &str = "logpipe.format";
pub const FRAMED: &str = "2";
/// Format 2: the records' spans, in order, comma-separated; `start-end`, or only `end` when the record starts where
/// the one before it ended (the common case: consecutive lines).
pub const SPANS_HEADER: &str = "logpipe.spans";

/// Appends `span` to a spans header value that already holds the spans up to `previous_end`.
pub fn push_span(spans: &mut String, previous_end: Option<u64>, span: Span) {
    let mut number = itoa::Buffer::new();
    if previous_end.is_some() {
        spans.push(',');
    }
    if previous_end != Some(span.0) {
        spans.push_str(number.format(span.0));
        spans.push('-');
    }
    spans.push_str(number.format(span.1));
}

/// The spans of a `logpipe.spans` value; `None` when it is malformed (the read-back then ignores the message, as it
/// ignores a format 1 message without headers).
pub fn parse_spans(value: &str) -> Option<Vec<Span>> {
    let mut spans = Vec::new();
    let mut previous_end = None;
    for item in value.split(',') {
        let span = match item.split_once('-') {
            Some((start, end)) => (start.parse().ok()?, end.parse().ok()?),
            None => (previous_end?, item.parse().ok()?),
        };
        previous_end = Some(span.1);
        spans.push(span);
    }
    Some(spans)
}

/// The documents of a format 2 payload.
pub fn documents(payload: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut from = 0;
    let ends = memchr::memchr_iter(b'\n', payload).chain((!payload.is_empty()).then_some(payload.len()));
    ends.filter_map(move |end| {
        let range = from..end;
        from = end + 1;
        (!range.is_empty()).then_some(range)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spans_are_written_short_when_consecutive() {
        let mut s = String::new();
        let mut previous = None;
        for span in [(0, 10), (10, 25), (30, 31), (31, 31)] {
            push_span(&mut s, previous, span);
            previous = Some(span.1);
        }
        assert_eq!(s, "0-10,25,30-31,31");
        assert_eq!(parse_spans(&s), Some(vec![(0, 10), (10, 25), (30, 31), (31, 31)]));
    }

    #[test]
    fn malformed_spans_are_refused() {
        for bad in ["", "5", "a-1", "1-2,x", "1-2,,3", "-1", "1-"] {
            assert_eq!(parse_spans(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn documents_are_the_lines() {
        let docs = |p: &[u8]| documents(p).map(|r| p[r].to_vec()).collect::<Vec<_>>();
        assert_eq!(docs(b"{\"a\":1}\n{\"b\":2}"), vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert_eq!(docs(b"{}\n"), vec![b"{}".to_vec()]);
        assert!(docs(b"").is_empty());
    }

    proptest! {
        #[test]
        fn spans_round_trip(raw in proptest::collection::vec((0u64..1 << 40, 0u64..1000, any::<bool>()), 1..50)) {
            let mut spans = Vec::new();
            let mut at = 0;
            for (gap, len, jump) in raw {
                let start = if jump { at + gap } else { at };
                spans.push((start, start + len));
                at = start + len;
            }
            let mut s = String::new();
            let mut previous = None;
            for &span in &spans {
                push_span(&mut s, previous, span);
                previous = Some(span.1);
            }
            prop_assert_eq!(parse_spans(&s), Some(spans));
        }
    }
}
