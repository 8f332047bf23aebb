//! Index names from a template: `logs-{kubernetes.namespace}-%Y.%m.%d`. The date is the document's `@timestamp`
//! (or the Kafka record's timestamp when it has none), never the clock, so a record replayed after a crash goes to
//! the index it went to before, where its `_id` already exists.

use super::fields;
use super::lookup::{Found, Lookup};
use chrono::{DateTime, Datelike, Utc};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

pub use logpipe_config::index_name::{IndexName, IndexNameError, Part};

/// Where an index name's fields come from: a parsed document, or what a [`Lookup`] read of a raw one.
pub trait FieldSource {
    fn text(&self, path: &str) -> Option<Cow<'_, str>>;
}

impl FieldSource for Value {
    fn text(&self, path: &str) -> Option<Cow<'_, str>> {
        match fields::get(self, path)? {
            Value::String(s) => Some(Cow::Borrowed(s)),
            other => fields::text(other).map(Cow::Owned),
        }
    }
}

impl FieldSource for Found<'_, '_> {
    fn text(&self, path: &str) -> Option<Cow<'_, str>> {
        self.get(path).map(Cow::Borrowed)
    }
}

const TIMESTAMP: &str = "@timestamp";

/// What a field that is missing from a document becomes in its index name.
const MISSING: &str = "_none";

/// The index of `doc` into `out`, which is cleared first; `fallback_ms` is the Kafka record's timestamp.
pub fn render(name: &IndexName, doc: &impl FieldSource, fallback_ms: i64, out: &mut String) {
    out.clear();
    let date = doc
        .text(TIMESTAMP)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| DateTime::from_timestamp_millis(fallback_ms))
        .unwrap_or_default();
    for part in name.parts() {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Field(f) => match doc.text(f) {
                Some(v) => out.extend(v.chars().map(safe_char)),
                None => out.push_str(MISSING),
            },
            Part::Year => push_digits(out, date.year().unsigned_abs(), 4),
            Part::Month => push_digits(out, date.month(), 2),
            Part::Day => push_digits(out, date.day(), 2),
        }
    }
}

/// What `render` reads of a document, for reading raw documents in one pass.
pub fn lookup(name: &IndexName) -> Lookup {
    Lookup::new(std::iter::once(TIMESTAMP).chain(name.fields()))
}

/// Where documents go: one data stream, or an index named from each document.
#[derive(Debug, Clone)]
pub struct Destination {
    data_stream: Option<Arc<str>>,
    index: IndexName,
    /// What the index name reads of a raw document (nothing for a data stream).
    lookup: Lookup,
}

impl Destination {
    pub fn new(index: IndexName, data_stream: Option<String>) -> Self {
        let lookup = if data_stream.is_some() { Lookup::new([]) } else { lookup(&index) };
        Self { data_stream: data_stream.map(Arc::from), index, lookup }
    }

    /// The index of a document shipped as it came; `None` when the bytes are not one JSON object.
    pub fn of_raw(&self, raw: &[u8], fallback_ms: i64, names: &mut Names) -> Option<Arc<str>> {
        let found = self.lookup.read(raw)?;
        Some(self.name(&found, fallback_ms, names))
    }

    pub fn of_parsed(&self, doc: &Value, fallback_ms: i64, names: &mut Names) -> Arc<str> {
        self.name(doc, fallback_ms, names)
    }

    fn name(&self, doc: &impl FieldSource, fallback_ms: i64, names: &mut Names) -> Arc<str> {
        if let Some(ds) = &self.data_stream {
            return Arc::clone(ds);
        }
        render(&self.index, doc, fallback_ms, &mut names.scratch);
        names.intern()
    }
}

/// Index names given out lately. Documents arriving together mostly go to a few indices, so they share each name
/// rather than allocating one apiece.
#[derive(Debug, Default)]
pub struct Names {
    scratch: String,
    recent: Vec<Arc<str>>,
}

impl Names {
    /// How many names are remembered; a lookup is a scan, so few.
    const KEEP: usize = 16;

    fn intern(&mut self) -> Arc<str> {
        if let Some(name) = self.recent.iter().find(|n| ***n == *self.scratch) {
            return Arc::clone(name);
        }
        let name: Arc<str> = Arc::from(self.scratch.as_str());
        if self.recent.len() == Self::KEEP {
            self.recent.remove(0);
        }
        self.recent.push(Arc::clone(&name));
        name
    }
}

/// `n` zero-padded to `width` digits; `format!` here cost more than the rest of naming an index.
fn push_digits(out: &mut String, n: u32, width: usize) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    out.extend(std::iter::repeat_n('0', width.saturating_sub(digits.len())));
    out.push_str(digits);
}

/// Elasticsearch index names are lower case, without `\ / * ? " < > | , #`, spaces or `:`.
fn safe_char(c: char) -> char {
    match c {
        '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ' ' | ':' => '_',
        c => c.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rendered(name: &IndexName, doc: &impl FieldSource, fallback_ms: i64) -> String {
        let mut out = String::new();
        render(name, doc, fallback_ms, &mut out);
        out
    }

    #[test]
    fn render_table() {
        let doc = json!({"@timestamp": "2026-11-22T23:30:00-02:00", "kubernetes": {"namespace": "Shop/Web"}, "n": 3});
        let cases = [
            ("logs-{kubernetes.namespace}-%Y.%m.%d", "logs-shop_web-2026.11.23"),
            ("logs-%Y.%m", "logs-2026.11"),
            ("App-{n}-{missing}", "app-3-_none"),
            ("plain", "plain"),
        ];
        for (template, want) in cases {
            assert_eq!(rendered(&IndexName::parse(template).unwrap(), &doc, 0), want, "{template}");
        }
        let no_time = json!({});
        let name = IndexName::parse("l-%Y.%m.%d").unwrap();
        assert_eq!(rendered(&name, &no_time, 1_700_000_000_000), "l-2023.11.14");
    }

    #[test]
    fn raw_documents_route_like_parsed_ones() {
        let text =
            r#"{"@timestamp":"2026-11-22T23:30:00-02:00","kubernetes":{"namespace":"Shop/Web","pod":{"n":3}},"m":"x"}"#;
        let parsed = serde_json::from_str::<Value>(text).unwrap();
        for template in ["logs-{kubernetes.namespace}-%Y.%m.%d", "{kubernetes.pod.n}-{m}-{missing.x}", "{m.x}"] {
            let name = IndexName::parse(template).unwrap();
            let lookup = lookup(&name);
            let raw = lookup.read(text.as_bytes()).unwrap();
            assert_eq!(rendered(&name, &raw, 0), rendered(&name, &parsed, 0), "{template}");
        }
    }
}
