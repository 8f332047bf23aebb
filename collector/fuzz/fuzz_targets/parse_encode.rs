//! Arbitrary file content through the agent's line path: parse (CRI, docker or raw, as the first byte picks),
//! join partial chunks per stream, encode. Every document must be valid JSON whose `message` is the record's bytes
//! read as UTF-8 (invalid bytes as U+FFFD), and whose `@timestamp` is the line's own (or the read time).
#![no_main]

use libfuzzer_sys::fuzz_target;
use logpipe_collector::encode::{encode, file_prefix, Marks, PathMeta};
use logpipe_collector::parse::{self, Assembler, FormatChoice, Record, Stream};
use std::path::Path;

const READ_TIME: &str = "2026-01-01T00:00:00Z";

fn check(prefix: &[u8], rec: Record<'_>, marks: Marks) {
    let time = if rec.time.is_empty() { READ_TIME } else { &rec.time };
    let mut out = Vec::new();
    encode(prefix, rec.start, time, rec.stream.as_str(), &rec.message, marks, &mut out);
    let doc: serde_json::Value = match serde_json::from_slice(&out) {
        Ok(doc) => doc,
        Err(e) => panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out)),
    };
    assert_eq!(doc["message"].as_str(), Some(&*String::from_utf8_lossy(&rec.message)));
    assert_eq!(doc["@timestamp"].as_str(), Some(time));
    assert_eq!(doc["log"]["offset"].as_u64(), Some(rec.start));
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else { return };
    let choice = [FormatChoice::Auto, FormatChoice::Cri, FormatChoice::Docker, FormatChoice::Raw][pick as usize % 4];
    let path = Path::new("/var/log/pods/ns_pod-0_uid/app/0.log");
    let prefix = file_prefix("node-a", path, PathMeta::from_path(path).as_ref(), None);
    // A small cap, so joining past it is exercised.
    let mut assembler = Assembler::new(48);
    let mut format = None;
    let mut offset = 0u64;
    for line in content.split(|&b| b == b'\n') {
        let end = offset + line.len() as u64 + 1;
        let format = *format.get_or_insert_with(|| parse::resolve(choice, line));
        match parse::parse(format, line) {
            Ok(parsed) => assembler.push(offset, end, parsed, &mut |rec| check(&prefix, rec, Marks::default())),
            Err(e) => {
                let rec = Record {
                    start: offset,
                    end,
                    time: "".into(),
                    stream: Stream::Stdout,
                    message: line.into(),
                    capped: false,
                };
                check(&prefix, rec, Marks { parse_error: Some(e.reason()), ..Marks::default() });
            }
        }
        offset = end;
    }
    assembler.flush(offset, &mut |rec| check(&prefix, rec, Marks::default()));
});
