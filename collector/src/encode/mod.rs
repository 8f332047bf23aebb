//! The JSON document of a record. Fields (stable, documented in docs/record-format.md):
//! `@timestamp`, `message`, `stream`, `host.name`, `log.file.path`, `log.offset`, `kubernetes.*`, and
//! `logpipe.parse_error` / `logpipe.truncated` / `logpipe.capped` / `logpipe.piece` /
//! `logpipe.metadata_omitted` marks when the line was not clean or too large for one message.
//!
//! Everything that is the same for every record of a file is rendered once into a prefix; a record then costs a
//! copy of the prefix, an integer, the timestamp and the escaped message.

mod escape;
mod kubernetes;
mod path_meta;
mod pieces;

pub use escape::{escape_json_str, escape_json_str_parts};
pub use kubernetes::{MetaFields, PodContext};
pub use path_meta::PathMeta;
pub use pieces::{PieceLimit, MIN_MESSAGE_BYTES};

use kubernetes::kubernetes_object;

use std::path::Path;

/// What was not clean about a record; shipped with it, never a reason to drop it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// The line did not parse in the file's format; the message is the raw line.
    pub parse_error: Option<&'static str>,
    /// The physical line was longer than `max_line_bytes`; this is one piece of it.
    pub truncated: bool,
    /// Partial chunks joined past `max_joined_bytes`; the rest of the line is the next record.
    pub capped: bool,
    /// The record was too large for one message of the sink; this is its piece number `n`, from 0.
    pub piece: Option<u32>,
    /// The pod's labels, annotations and owner were left out: with them the piece would not fit one message.
    pub metadata_omitted: bool,
}

/// The per-file part of every document, up to and including `"offset":`.
pub fn file_prefix(host: &str, path: &Path, meta: Option<&PathMeta>, pod: Option<&PodContext<'_>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"host\":{\"name\":");
    escape_json_str(host.as_bytes(), &mut out);
    out.extend_from_slice(b"}");
    if let Some(m) = meta {
        out.extend_from_slice(b",\"kubernetes\":");
        kubernetes_object(m, pod, &mut out);
    }
    out.extend_from_slice(b",\"log\":{\"file\":{\"path\":");
    escape_json_str(path.as_os_str().as_encoded_bytes(), &mut out);
    out.extend_from_slice(b"},\"offset\":");
    out
}

/// One record's document, appended to `out`. `time` is the runtime's timestamp, or the read time when the line had
/// none.
pub fn encode(prefix: &[u8], offset: u64, time: &str, stream: &str, message: &[u8], marks: Marks, out: &mut Vec<u8>) {
    out.reserve(prefix.len() + message.len() + 96);
    out.extend_from_slice(prefix);
    out.extend_from_slice(itoa::Buffer::new().format(offset).as_bytes());
    out.extend_from_slice(b"},\"@timestamp\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"message\":");
    escape_json_str(message, out);
    if marks != Marks::default() {
        out.extend_from_slice(b",\"logpipe\":{");
        let mut sep = "";
        if let Some(reason) = marks.parse_error {
            out.extend_from_slice(b"\"parse_error\":");
            escape_json_str(reason.as_bytes(), out);
            sep = ",";
        }
        let flags =
            [(marks.truncated, "truncated"), (marks.capped, "capped"), (marks.metadata_omitted, "metadata_omitted")];
        for (set, name) in flags {
            if set {
                out.extend_from_slice(format!("{sep}\"{name}\":true").as_bytes());
                sep = ",";
            }
        }
        if let Some(n) = marks.piece {
            out.extend_from_slice(format!("{sep}\"piece\":{n}").as_bytes());
        }
        out.push(b'}');
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn documents_are_json_with_the_documented_fields() {
        let meta = PathMeta::from_path(Path::new("/var/log/pods/ns1_web-0_1234-ab/app/2.log"));
        let prefix = file_prefix("node-a", Path::new("/var/log/pods/ns1_web-0_1234-ab/app/2.log"), meta.as_ref(), None);
        let mut out = Vec::new();
        encode(&prefix, 42, "2024-01-02T03:04:05Z", "stderr", b"say \"hi\"\n\x01", Marks::default(), &mut out);
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            doc,
            json!({
                "host": {"name": "node-a"},
                "kubernetes": {"namespace": "ns1", "pod": {"name": "web-0", "uid": "1234-ab"},
                               "container": {"name": "app", "restart_count": 2}},
                "log": {"file": {"path": "/var/log/pods/ns1_web-0_1234-ab/app/2.log"}, "offset": 42},
                "@timestamp": "2024-01-02T03:04:05Z",
                "stream": "stderr",
                "message": "say \"hi\"\n\u{1}"
            })
        );
    }

    #[test]
    fn marks_are_shipped() {
        let prefix = file_prefix("h", Path::new("/tmp/x.log"), None, None);
        let mut out = Vec::new();
        let marks = Marks {
            parse_error: Some("cri: bad"),
            truncated: true,
            capped: true,
            piece: Some(2),
            metadata_omitted: true,
        };
        encode(&prefix, 0, "t", "stdout", b"\xff raw", marks, &mut out);
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            doc["logpipe"],
            json!({"parse_error": "cri: bad", "truncated": true, "capped": true, "metadata_omitted": true, "piece": 2})
        );
        assert_eq!(doc["message"], json!("\u{fffd} raw"));
    }
}
