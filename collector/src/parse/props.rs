//! Property tests of the parsers: arbitrary bytes never panic, generated lines parse back, and messages cut into
//! partial chunks with the two streams interleaved are reassembled per stream.

use super::{parse, Assembler, Format, Stream};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        for format in [Format::Cri, Format::Docker, Format::Raw] {
            let _ = parse(format, &bytes);
        }
    }

    #[test]
    fn generated_cri_lines_parse_back(
        stderr in any::<bool>(),
        partial in any::<bool>(),
        nanos in 0u32..1_000_000_000,
        message in "[^\n]{0,200}",
    ) {
        let stream = if stderr { "stderr" } else { "stdout" };
        let time = format!("2026-11-22T08:00:00.{nanos:09}Z");
        let line = format!("{time} {stream} {} {message}", if partial { 'P' } else { 'F' });
        let p = parse(Format::Cri, line.as_bytes()).unwrap();
        prop_assert_eq!(p.time, time.as_str());
        prop_assert_eq!(p.stream.as_str(), stream);
        prop_assert_eq!(&*p.message, message.as_bytes());
    }

    /// Two streams' messages, each cut into chunks, interleaved in any order, come out whole and per stream.
    #[test]
    fn partial_chunks_reassemble_per_stream(
        out_msgs in proptest::collection::vec("[a-z ]{1,40}", 1..6),
        err_msgs in proptest::collection::vec("[A-Z ]{1,40}", 1..6),
        cuts in proptest::collection::vec(1usize..5, 12),
        order in proptest::collection::vec(any::<bool>(), 200),
    ) {
        let chunked = |msgs: &[String], stream: &str| -> Vec<String> {
            let mut lines = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                let n = cuts[i % cuts.len()].min(m.len());
                let size = m.len().div_ceil(n);
                let pieces: Vec<&str> = m.as_bytes().chunks(size).map(|c| std::str::from_utf8(c).unwrap()).collect();
                for (k, piece) in pieces.iter().enumerate() {
                    let tag = if k + 1 == pieces.len() { 'F' } else { 'P' };
                    lines.push(format!("2026-11-22T08:00:00Z {stream} {tag} {piece}"));
                }
            }
            lines
        };
        let (mut out, mut err) = (chunked(&out_msgs, "stdout").into_iter(), chunked(&err_msgs, "stderr").into_iter());
        let mut assembler = Assembler::new(1 << 20);
        let (mut got_out, mut got_err) = (Vec::new(), Vec::new());
        let mut offset = 0u64;
        let mut pick = order.iter().cycle();
        loop {
            let line = match pick.next() {
                Some(true) => out.next().or_else(|| err.next()),
                _ => err.next().or_else(|| out.next()),
            };
            let Some(line) = line else { break };
            let end = offset + line.len() as u64 + 1;
            let parsed = parse(Format::Cri, line.as_bytes()).unwrap();
            assembler.push(offset, end, parsed, &mut |rec| {
                let text = String::from_utf8(rec.message.to_vec()).unwrap();
                match rec.stream {
                    Stream::Stdout => got_out.push(text),
                    Stream::Stderr => got_err.push(text),
                }
            });
            offset = end;
        }
        prop_assert_eq!(assembler.lowest_open_start(), None);
        prop_assert_eq!(got_out, out_msgs);
        prop_assert_eq!(got_err, err_msgs);
    }
}
