//! Bulk writes: `create` operations with deterministic ids, resolved per document. 2xx is indexed, 409 means an
//! earlier attempt (or a previous run) indexed it already; 429 and 5xx documents are sent again after a backoff; a
//! 413 or 400 for the whole request splits it; any other status for a document is a rejection for the dead-letter
//! topic. Nothing leaves here unresolved, so the caller may commit whatever comes back.

use super::backoff::Backoff;
use bytes::Bytes;
use elasticsearch::http::StatusCode;
use elasticsearch::{BulkParts, Elasticsearch};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Instant;

/// A document ready to write: where it came from (which also names it), where it goes, and its source.
#[derive(Debug, Clone)]
pub struct Doc {
    pub partition: i32,
    pub offset: i64,
    /// Its place in a message of record format 2 (several documents per message); `None` for format 1.
    pub item: Option<u32>,
    /// Shared by the documents of a batch that go to the same index.
    pub index: Arc<str>,
    pub source: Bytes,
    /// The Kafka record as it was, for the dead-letter topic.
    pub key: Option<Bytes>,
    pub original: Bytes,
}

impl Doc {
    /// Its share of a bulk request body, in bytes, when it was read from `topic`.
    pub fn bulk_len(&self, topic: &str) -> usize {
        self.index.len() + id_len(topic, self.partition, self.offset, self.item) + self.source.len() + LINE_OVERHEAD
    }
}

/// `<topic>-<partition>-<offset>`, and `-<item>` for a document of a format 2 message: the same record always gets
/// the same `_id`, which is what makes a replay a 409.
fn push_id(body: &mut Vec<u8>, topic: &str, partition: i32, offset: i64, item: Option<u32>) {
    let (mut p, mut o, mut i) = (itoa::Buffer::new(), itoa::Buffer::new(), itoa::Buffer::new());
    let (p, o) = (p.format(partition), o.format(offset));
    match item {
        None => crate::encode::escape_json_str_parts(&[topic, "-", p, "-", o], body),
        Some(item) => crate::encode::escape_json_str_parts(&[topic, "-", p, "-", o, "-", i.format(item)], body),
    }
}

fn id_len(topic: &str, partition: i32, offset: i64, item: Option<u32>) -> usize {
    let digits = |n: i64| n.unsigned_abs().checked_ilog10().map_or(1, |d| d as usize + 1) + usize::from(n < 0);
    topic.len() + digits(partition.into()) + digits(offset) + 2 + item.map_or(0, |i| digits(i.into()) + 1)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Indexed,
    /// 409 on create: indexed before (a replay).
    AlreadyIndexed,
    Rejected {
        status: u16,
        reason: String,
    },
}

/// What a bulk request came back as.
enum Reply {
    Items(Vec<(u16, Option<String>)>),
    /// The request as a whole was refused for what it carries (413: too large; 400: unreadable). Its halves are
    /// sent apart until the documents at fault stand alone, so one bad document does not hold up the rest.
    Refused {
        status: u16,
        reason: String,
    },
    Retry(String),
}

/// Items are kept raw and read only when `errors` says some failed: a bulk of successes needs no item parsed.
#[derive(Deserialize)]
struct BulkResponse<'a> {
    #[serde(default = "some_failed")]
    errors: bool,
    #[serde(borrow)]
    items: Vec<&'a RawValue>,
}

/// Without an `errors` flag every item is read.
fn some_failed() -> bool {
    true
}

/// An item is an object with one key, the operation; we send only `create`, the others are read alike.
#[derive(Deserialize)]
struct BulkOp {
    #[serde(rename = "create", alias = "index", alias = "update", alias = "delete")]
    op: BulkItem,
}

#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Per-document statistics of one `write`.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    pub requests: u64,
    pub retried_documents: u64,
    pub failed_requests: u64,
    pub splits: u64,
}

pub struct BulkWriter {
    pub client: Elasticsearch,
    /// The topic the documents were read from, part of their ids.
    pub topic: String,
    pub backoff: Backoff,
    /// Seconds each bulk request took; fed to the latency histogram.
    pub on_request: Box<dyn Fn(f64) + Send + Sync>,
}

impl BulkWriter {
    /// Writes `docs` until each is resolved; retries go on (with backoff) as long as Elasticsearch fails.
    pub async fn write(&self, docs: Vec<Doc>) -> (Vec<(Doc, Resolution)>, WriteStats) {
        let mut stats = WriteStats::default();
        let mut out = Vec::with_capacity(docs.len());
        let mut todo = vec![docs];
        let mut failures = 0u32;
        while let Some(chunk) = todo.pop() {
            if chunk.is_empty() {
                continue;
            }
            stats.requests += 1;
            match self.send(&chunk).await {
                Reply::Items(items) => {
                    let mut retry = Vec::new();
                    for (doc, (status, reason)) in chunk.into_iter().zip(items) {
                        match status {
                            200..=299 => out.push((doc, Resolution::Indexed)),
                            409 => out.push((doc, Resolution::AlreadyIndexed)),
                            429 | 500..=599 => retry.push(doc),
                            _ => out.push((doc, Resolution::Rejected { status, reason: reason.unwrap_or_default() })),
                        }
                    }
                    if retry.is_empty() {
                        failures = 0;
                    } else {
                        stats.retried_documents += retry.len() as u64;
                        tokio::time::sleep(self.backoff.delay(failures)).await;
                        failures += 1;
                        todo.push(retry);
                    }
                }
                Reply::Refused { status, reason } if chunk.len() == 1 => {
                    out.extend(chunk.into_iter().map(|d| (d, Resolution::Rejected { status, reason: reason.clone() })));
                }
                Reply::Refused { .. } => {
                    stats.splits += 1;
                    let mut first = chunk;
                    let second = first.split_off(first.len() / 2);
                    todo.push(second);
                    todo.push(first);
                }
                Reply::Retry(reason) => {
                    stats.failed_requests += 1;
                    tracing::warn!(%reason, documents = chunk.len(), "bulk request failed; retrying");
                    tokio::time::sleep(self.backoff.delay(failures)).await;
                    failures += 1;
                    todo.push(chunk);
                }
            }
        }
        (out, stats)
    }

    async fn send(&self, docs: &[Doc]) -> Reply {
        let started = Instant::now();
        let response = self.client.bulk(BulkParts::None).body(vec![bulk_body(&self.topic, docs)]).send().await;
        (self.on_request)(started.elapsed().as_secs_f64());
        let response = match response {
            Ok(r) => r,
            Err(e) => return Reply::Retry(super::elastic::describe(&e)),
        };
        let status = response.status_code();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            let reason = "the document alone is larger than Elasticsearch accepts".to_owned();
            return Reply::Refused { status: 413, reason };
        }
        if !status.is_success() {
            let text: String = response.text().await.unwrap_or_default().chars().take(300).collect();
            // Other refusals (401, 403, 404) are about the cluster or our access, not the documents: retried.
            return if status == StatusCode::BAD_REQUEST {
                Reply::Refused { status: 400, reason: format!("the request holding it alone was refused: {text}") }
            } else {
                Reply::Retry(format!("HTTP {status}: {text}"))
            };
        }
        match response.bytes().await {
            Ok(body) => read_items(&body, docs.len()).map_or_else(Reply::Retry, Reply::Items),
            Err(e) => Reply::Retry(format!("bulk response cut off: {e}")),
        }
    }
}

/// Each document's status, and the error Elasticsearch gave for it.
fn read_items(body: &[u8], documents: usize) -> Result<Vec<(u16, Option<String>)>, String> {
    let response: BulkResponse = serde_json::from_slice(body).map_err(|e| format!("unreadable bulk response: {e}"))?;
    if response.items.len() != documents {
        return Err(format!("bulk response has {} items for {documents} documents", response.items.len()));
    }
    if !response.errors {
        return Ok(vec![(201, None); documents]);
    }
    let item = |raw: &RawValue| match serde_json::from_str::<BulkOp>(raw.get()) {
        Ok(BulkOp { op }) => (op.status, op.error.map(|e| e.to_string())),
        // An item we cannot read is retried, never taken as indexed.
        Err(e) => (500, Some(format!("unreadable bulk item: {e}"))),
    };
    Ok(response.items.into_iter().map(item).collect())
}

/// Bytes of a bulk line around a document's index, id and source.
const LINE_OVERHEAD: usize = 40;

/// The request body in one buffer sized up front: `{"create":{"_index":...,"_id":...}}` and the source, per
/// document, each line ending in a newline.
fn bulk_body(topic: &str, docs: &[Doc]) -> Bytes {
    let size = docs.iter().map(|d| d.bulk_len(topic)).sum();
    let mut body = Vec::with_capacity(size);
    for d in docs {
        body.extend_from_slice(b"{\"create\":{\"_index\":");
        crate::encode::escape_json_str(d.index.as_bytes(), &mut body);
        body.extend_from_slice(b",\"_id\":");
        push_id(&mut body, topic, d.partition, d.offset, d.item);
        body.extend_from_slice(b"}}\n");
        body.extend_from_slice(&d.source);
        body.push(b'\n');
    }
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(index: &str, partition: i32, offset: i64, source: &str) -> Doc {
        let source = Bytes::copy_from_slice(source.as_bytes());
        Doc { partition, offset, item: None, index: index.into(), source: source.clone(), key: None, original: source }
    }

    #[test]
    fn bodies_are_action_and_source_lines_sized_up_front() {
        let framed = Doc { item: Some(17), ..doc("b", 3, 9, "{}") };
        let docs =
            [doc("logs-a", 0, 1, r#"{"m":1}"#), doc("we\"ird", 12, 1 << 40, "{}"), doc("b", -1, 0, "{}"), framed];
        let body = bulk_body("t.x_y", &docs);
        let want = concat!(
            "{\"create\":{\"_index\":\"logs-a\",\"_id\":\"t.x_y-0-1\"}}\n{\"m\":1}\n",
            "{\"create\":{\"_index\":\"we\\\"ird\",\"_id\":\"t.x_y-12-1099511627776\"}}\n{}\n",
            "{\"create\":{\"_index\":\"b\",\"_id\":\"t.x_y--1-0\"}}\n{}\n",
            "{\"create\":{\"_index\":\"b\",\"_id\":\"t.x_y-3-9-17\"}}\n{}\n"
        );
        assert_eq!(std::str::from_utf8(&body).unwrap(), want);
        assert!(body.len() <= docs.iter().map(|d| d.bulk_len("t.x_y")).sum::<usize>());
    }

    #[test]
    fn id_lengths_are_exact() {
        let origins = [(0, 0), (9, 10), (10, 99), (-1, -10), (i32::MAX, i64::MAX), (i32::MIN, i64::MIN)];
        for (partition, offset) in origins {
            for item in [None, Some(0), Some(9), Some(10), Some(u32::MAX)] {
                let mut id = Vec::new();
                push_id(&mut id, "topic", partition, offset, item);
                let len = id_len("topic", partition, offset, item);
                assert_eq!(len, id.len() - 2, "{}", String::from_utf8_lossy(&id));
            }
        }
    }

    /// (body, documents sent) -> each item's status and whether it carries an error, or the start of the error.
    #[test]
    fn items_table() {
        let ok = r#"{"took":3,"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}"#;
        let mixed = r#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"v"}}},
            {"index":{"status":429}},{"create":{"status":400,"error":"bad"}},{"create":{}}]}"#;
        let no_flag = r#"{"items":[{"create":{"status":500}}]}"#;
        type Want = Result<&'static [(u16, bool)], &'static str>;
        let cases: [(&str, usize, Want); 5] = [
            (ok, 2, Ok(&[(201, false), (201, false)])),
            (mixed, 5, Ok(&[(201, false), (409, true), (429, false), (400, true), (500, true)])),
            (no_flag, 1, Ok(&[(500, false)])),
            (ok, 3, Err("bulk response has 2 items for 3 documents")),
            ("<html>", 1, Err("unreadable bulk response")),
        ];
        for (body, documents, want) in cases {
            let got = read_items(body.as_bytes(), documents);
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    let got: Vec<(u16, bool)> = got.iter().map(|(s, e)| (*s, e.is_some())).collect();
                    assert_eq!(got, want, "{body}");
                }
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{got}"),
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
    }
}
