//! Bulk writes: `create` operations with deterministic ids, resolved per document. 2xx is indexed, 409 means an
//! earlier attempt (or a previous run) indexed it already; 429 and 5xx documents are sent again after a backoff; a
//! 413 splits the request; any other status is a rejection for the dead-letter topic. Nothing leaves here
//! unresolved, so the caller may commit whatever comes back.

use super::backoff::Backoff;
use bytes::Bytes;
use elasticsearch::http::StatusCode;
use elasticsearch::{BulkParts, Elasticsearch};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Instant;

/// A document ready to write: where it came from, where it goes, and its source.
#[derive(Debug, Clone)]
pub struct Doc {
    pub partition: i32,
    pub offset: i64,
    pub index: String,
    pub id: String,
    pub source: Bytes,
    /// The Kafka record as it was, for the dead-letter topic.
    pub key: Option<Bytes>,
    pub original: Bytes,
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
    TooLarge,
    Retry(String),
}

#[derive(Deserialize)]
struct BulkResponse {
    items: Vec<HashMap<String, BulkItem>>,
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
                Reply::TooLarge if chunk.len() == 1 => {
                    let reason = "the document alone is larger than Elasticsearch accepts (413)".to_owned();
                    out.extend(
                        chunk.into_iter().map(|d| (d, Resolution::Rejected { status: 413, reason: reason.clone() })),
                    );
                }
                Reply::TooLarge => {
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
        let mut body: Vec<Bytes> = Vec::with_capacity(docs.len() * 2);
        for d in docs {
            body.push(action_line(d));
            body.push(d.source.clone());
        }
        let started = Instant::now();
        let response = self.client.bulk(BulkParts::None).body(body).send().await;
        (self.on_request)(started.elapsed().as_secs_f64());
        let response = match response {
            Ok(r) => r,
            Err(e) => return Reply::Retry(e.to_string()),
        };
        let status = response.status_code();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Reply::TooLarge;
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Reply::Retry(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()));
        }
        match response.json::<BulkResponse>().await {
            Ok(r) if r.items.len() == docs.len() => Reply::Items(
                r.items
                    .into_iter()
                    .map(|item| {
                        let item = item.into_values().next();
                        let status = item.as_ref().map_or(500, |i| i.status);
                        (status, item.and_then(|i| i.error).map(|e| e.to_string()))
                    })
                    .collect(),
            ),
            Ok(r) => Reply::Retry(format!("bulk response has {} items for {} documents", r.items.len(), docs.len())),
            Err(e) => Reply::Retry(format!("unreadable bulk response: {e}")),
        }
    }
}

/// `{"create":{"_index":...,"_id":...}}`, written directly: it is built once per document.
fn action_line(d: &Doc) -> Bytes {
    let mut line = Vec::with_capacity(d.index.len() + d.id.len() + 40);
    line.extend_from_slice(b"{\"create\":{\"_index\":");
    crate::encode::escape_json_str(d.index.as_bytes(), &mut line);
    line.extend_from_slice(b",\"_id\":");
    crate::encode::escape_json_str(d.id.as_bytes(), &mut line);
    line.extend_from_slice(b"}}");
    Bytes::from(line)
}
