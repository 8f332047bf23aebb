//! Records too large for one message of the sink are cut into pieces. Where a record is cut depends only on its
//! message and the sink's limit, never on the pod's metadata (which may differ after a restart), so a restarted
//! agent cuts a record exactly as its predecessor did and can tell which pieces were delivered.

use super::escape_json_str;
use std::ops::Range;

/// Room in a message for the key, the three headers and Kafka's framing of one record, beyond the document.
const KEY_HEADERS_FRAMING: usize = 4096;
/// Room in a document for everything but the prefix and the message: offset, timestamp, stream, marks.
const FIXED_FIELDS: usize = 512;
/// The smallest message limit pieces can be cut for; librdkafka's own minimum is lower, but no real cluster is.
pub const MIN_MESSAGE_BYTES: usize = 64 << 10;

/// The sizes that decide whether and where a record is cut, for a sink whose messages hold at most
/// `max_message` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceLimit {
    max_message: usize,
    /// The most bytes of escaped message text in one piece. Half of a message, so the rest of the document (the
    /// per-file prefix with the pod's labels and annotations) fits beside it.
    message_budget: usize,
}

impl PieceLimit {
    /// `None` when the limit is too small to cut records for (see [`MIN_MESSAGE_BYTES`]).
    pub fn new(max_message: usize) -> Option<Self> {
        (max_message >= MIN_MESSAGE_BYTES)
            .then(|| Self { max_message, message_budget: (max_message - KEY_HEADERS_FRAMING) / 2 })
    }

    /// The pieces of `message`, or `None` when it goes whole.
    pub fn split(&self, message: &[u8]) -> Option<Vec<Range<usize>>> {
        // Each byte escapes to at most six; most records are far below the budget and need no count.
        if message.len().saturating_mul(6) + 2 <= self.message_budget {
            return None;
        }
        let mut scratch = Vec::new();
        escape_json_str(message, &mut scratch);
        (scratch.len() > self.message_budget).then(|| cut(message, self.message_budget, &mut scratch))
    }

    /// The largest document a record of a file with this Kafka key and source header may have. A piece whose
    /// document with the pod's metadata is larger goes with the path's metadata only.
    pub fn max_document(&self, key: usize, source: usize) -> usize {
        self.max_message.saturating_sub(KEY_HEADERS_FRAMING / 2 + key + source).max(self.message_budget + FIXED_FIELDS)
    }
}

/// Consecutive ranges of `message` whose escaped text (quotes included) is at most `budget` bytes each. A cut is
/// moved back over UTF-8 continuation bytes, so no character is cut in half; each piece holds at least one
/// character (which escapes to at most 14 bytes, far below any budget used).
fn cut(message: &[u8], budget: usize, scratch: &mut Vec<u8>) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut from = 0;
    while from < message.len() {
        let least = char_end(message, from);
        let mut to = char_start(message, least, message.len().min(from + budget));
        loop {
            scratch.clear();
            escape_json_str(&message[from..to], scratch);
            if scratch.len() <= budget || to == least {
                break;
            }
            // Shrink in proportion to the excess: right at once for evenly escaped text, and always shorter.
            let len = ((to - from) as u128 * budget as u128 / scratch.len() as u128) as usize;
            to = char_start(message, least, (from + len).max(least));
        }
        pieces.push(from..to);
        from = to;
    }
    pieces
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Past the character that starts at `at`: a multi-byte lead and at most three continuation bytes, or one byte.
fn char_end(message: &[u8], at: usize) -> usize {
    let mut end = at + 1;
    while message[at] >= 0xC0 && end < message.len() && end < at + 4 && is_continuation(message[end]) {
        end += 1;
    }
    end
}

/// `to`, moved back to the start of the character it falls in, but not below `least`.
fn char_start(message: &[u8], least: usize, mut to: usize) -> usize {
    for _ in 0..3 {
        if to < message.len() && to > least && is_continuation(message[to]) {
            to -= 1;
        }
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escaped(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        escape_json_str(bytes, &mut out);
        out
    }

    #[test]
    fn small_records_go_whole_and_large_ones_are_cut_within_the_budget() {
        let limit = PieceLimit::new(1_000_000).unwrap();
        assert_eq!(limit.message_budget, 497_952);
        assert_eq!(limit.split(&[b'a'; 80_000]), None);
        assert_eq!(limit.split(&[b'a'; 497_950]), None);
        assert_eq!(limit.split(&[b'a'; 497_951]).unwrap(), vec![0..497_950, 497_950..497_951]);
        // Control bytes escape to six bytes each: 200 KB of them is 1.2 MB of text.
        let control = vec![1u8; 200_000];
        let pieces = limit.split(&control).unwrap();
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|r| escaped(&control[r.clone()]).len() <= limit.message_budget));
        assert_eq!(PieceLimit::new(1000), None);
    }

    #[test]
    fn cuts_fall_between_characters() {
        let text = "é".repeat(100);
        let pieces = cut(text.as_bytes(), 17, &mut Vec::new());
        assert!(pieces.iter().all(|r| std::str::from_utf8(&text.as_bytes()[r.clone()]).is_ok()), "{pieces:?}");
        assert_eq!(pieces.iter().map(|r| r.len()).sum::<usize>(), 200);
    }

    proptest! {
        /// Any bytes, any budget: the pieces cover the message in order, each fits, and where the message is
        /// valid UTF-8 the pieces' text joined is the message's text.
        #[test]
        fn pieces_cover_the_message_and_fit(
            bytes in proptest::collection::vec(prop_oneof![any::<u8>(), Just(b'a'), Just(0xC3), Just(0xA9)], 1..400),
            budget in 16usize..64,
        ) {
            let pieces = cut(&bytes, budget, &mut Vec::new());
            let mut at = 0;
            for r in &pieces {
                prop_assert_eq!(r.start, at);
                prop_assert!(r.end > r.start);
                prop_assert!(escaped(&bytes[r.clone()]).len() <= budget);
                at = r.end;
            }
            prop_assert_eq!(at, bytes.len());
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let joined: String = pieces.iter().map(|r| std::str::from_utf8(&bytes[r.clone()]).unwrap()).collect();
                prop_assert_eq!(joined, text);
            }
        }
    }
}
