//! Processors: small, ordered edits of a document before it is indexed. A processor that cannot do its work on a
//! document (a message that is not JSON, a timestamp it cannot read) marks the document and goes on; only `drop`
//! removes one, and those are counted.
//!
//! The fields the agent writes are the agent's: no processor changes them (the `timestamp` processor sets
//! `@timestamp` because it was asked to), a configuration that names one as a target is refused, and keys of an
//! application's JSON that name one are kept aside in `logpipe.refused_fields`, never merged. Index names are made
//! from these fields only, so what a pod prints cannot choose where its documents go.

use super::fields;
use logpipe_config::processor::touches_agent_field;
pub use logpipe_config::processor::{within_agent_field, ProcessorConfig, AGENT_FIELDS};
use serde_json::Value;

/// Where application fields that named agent fields are kept, as the JSON text of an object keyed by their paths.
const REFUSED_FIELDS: &str = "logpipe.refused_fields";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Keep,
    Drop,
}

/// Runs `processors` over `doc` in order.
pub fn apply(processors: &[ProcessorConfig], doc: &mut Value) -> Outcome {
    for p in processors {
        if let Err(reason) = apply_one(p, doc) {
            fields::set(doc, "logpipe.processor_error", Value::String(reason));
        }
        if let ProcessorConfig::Drop { field, values } = p {
            let text = fields::get(doc, field).and_then(fields::text);
            if text.is_some_and(|t| values.contains(&t)) {
                return Outcome::Drop;
            }
        }
    }
    Outcome::Keep
}

fn apply_one(p: &ProcessorConfig, doc: &mut Value) -> Result<(), String> {
    match p {
        ProcessorConfig::ParseJson { field, target } => {
            let Some(text) = fields::get(doc, field).and_then(Value::as_str) else {
                return Ok(());
            };
            let parsed: Value = serde_json::from_str(text).map_err(|e| format!("parse_json {field}: {e}"))?;
            match (target, parsed) {
                (Some(t), v) => fields::set(doc, t, v),
                (None, Value::Object(map)) => merge_into_root(doc, map),
                (None, _) => return Err(format!("parse_json {field}: not an object; set a target")),
            }
        }
        ProcessorConfig::Timestamp { field } => {
            let Some(text) = fields::get(doc, field).and_then(Value::as_str) else {
                return Ok(());
            };
            let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| format!("timestamp {field}: {e}"))?;
            let utc = t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            fields::set(doc, "@timestamp", Value::String(utc));
        }
        ProcessorConfig::Level { field } => {
            if let Some(level) = fields::get(doc, field).and_then(fields::text) {
                fields::set(doc, "log.level", Value::String(level.to_lowercase()));
            }
        }
        ProcessorConfig::Rename { from, to } => {
            if let Some(v) = fields::remove(doc, from) {
                fields::set(doc, to, v);
            }
        }
        ProcessorConfig::Add { field, value } => fields::set(doc, field, value.clone()),
        ProcessorConfig::Remove { fields: names } => {
            for f in names {
                fields::remove(doc, f);
            }
        }
        ProcessorConfig::Drop { .. } => {}
    }
    Ok(())
}

/// Merges an application's object into the document's root. Each key is taken literally (a key with dots is not a
/// path); a key that would change an agent field is set aside in `logpipe.refused_fields`; an object under a key
/// that holds agent fields (`log`) is merged key by key, so `log.level` is merged and `log.file` refused.
fn merge_into_root(doc: &mut Value, app: serde_json::Map<String, Value>) {
    let mut refused = serde_json::Map::new();
    if let Value::Object(root) = doc {
        merge(root, "", app, &mut refused);
    }
    if !refused.is_empty() {
        fields::set(doc, REFUSED_FIELDS, Value::String(Value::Object(refused).to_string()));
    }
}

fn merge(
    into: &mut serde_json::Map<String, Value>,
    at: &str,
    app: serde_json::Map<String, Value>,
    refused: &mut serde_json::Map<String, Value>,
) {
    for (key, value) in app {
        let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
        if within_agent_field(&path) || key.contains('.') && touches_agent_field(&path) {
            refused.insert(path, value);
        } else if touches_agent_field(&path) {
            match (into.get_mut(&key), value) {
                (Some(Value::Object(inner)), Value::Object(value)) => merge(inner, &path, value, refused),
                (None, Value::Object(value)) => {
                    let mut inner = serde_json::Map::new();
                    merge(&mut inner, &path, value, refused);
                    into.insert(key, Value::Object(inner));
                }
                (_, value) => {
                    refused.insert(path, value);
                }
            }
        } else {
            into.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(processors: serde_json::Value, doc: Value) -> (Outcome, Value) {
        let processors: Vec<ProcessorConfig> = serde_json::from_value(processors).unwrap();
        let mut doc = doc;
        (apply(&processors, &mut doc), doc)
    }

    #[test]
    fn table() {
        let msg = json!({"message": "{\"level\":\"WARN\",\"ts\":\"2026-11-22T09:00:00+01:00\",\"user\":{\"id\":7}}"});
        let cases = [
            (
                json!([{"type": "parse_json", "field": "message"}, {"type": "level", "field": "level"}, {"type": "timestamp", "field": "ts"}]),
                msg.clone(),
                Outcome::Keep,
                json!({"message": msg["message"], "level": "WARN", "ts": "2026-11-22T09:00:00+01:00", "user": {"id": 7},
                       "log": {"level": "warn"}, "@timestamp": "2026-11-22T08:00:00Z"}),
            ),
            (
                json!([{"type": "parse_json", "field": "message", "target": "app"}, {"type": "remove", "fields": ["message", "app.ts"]}]),
                msg.clone(),
                Outcome::Keep,
                json!({"app": {"level": "WARN", "user": {"id": 7}}}),
            ),
            (
                json!([{"type": "parse_json", "field": "message"}]),
                json!({"message": "not json"}),
                Outcome::Keep,
                json!({"message": "not json", "logpipe": {"processor_error": "parse_json message: expected ident at line 1 column 2"}}),
            ),
            (
                json!([{"type": "rename", "from": "a.b", "to": "c"}, {"type": "add", "field": "env.name", "value": "prod"}]),
                json!({"a": {"b": 1}}),
                Outcome::Keep,
                json!({"a": {}, "c": 1, "env": {"name": "prod"}}),
            ),
            (
                json!([{"type": "drop", "field": "log.level", "values": ["debug", "trace"]}]),
                json!({"log": {"level": "debug"}}),
                Outcome::Drop,
                json!({"log": {"level": "debug"}}),
            ),
            (
                json!([{"type": "drop", "field": "log.level", "values": ["debug"]}]),
                json!({"log": {"level": "info"}}),
                Outcome::Keep,
                json!({"log": {"level": "info"}}),
            ),
        ];
        for (processors, doc, outcome, want) in cases {
            assert_eq!(run(processors.clone(), doc), (outcome, want), "{processors}");
        }
    }

    #[test]
    fn an_application_cannot_change_agent_fields() {
        let agent = json!({
            "kubernetes": {"namespace": "shop", "pod": {"name": "web"}},
            "host": {"name": "node-a"},
            "log": {"file": {"path": "/var/log/pods/x/0.log"}, "offset": 7},
            "@timestamp": "2026-11-22T08:00:00Z",
            "stream": "stdout",
        });
        let forged = r#"{"kubernetes":{"namespace":"victim"},"host.name":"evil","log":{"level":"warn","offset":1},
            "@timestamp":"2000-01-01T00:00:00Z","logpipe":{"piece":3},"a.b":1,"msg":"forged"}"#;
        let mut doc = agent.clone();
        doc["message"] = json!(forged);
        let (outcome, out) = run(json!([{"type": "parse_json", "field": "message"}]), doc);
        assert_eq!(outcome, Outcome::Keep);
        for path in ["kubernetes", "host", "log.file", "log.offset", "@timestamp", "stream"] {
            assert_eq!(fields::get(&out, path), fields::get(&agent, path), "{path}");
        }
        assert_eq!(out["log"]["level"], json!("warn"));
        assert_eq!(out["a.b"], json!(1), "a key with dots is taken literally");
        assert_eq!(out["msg"], json!("forged"));
        let refused: Value = serde_json::from_str(out["logpipe"]["refused_fields"].as_str().unwrap()).unwrap();
        assert_eq!(
            refused,
            json!({"kubernetes": {"namespace": "victim"}, "host.name": "evil", "log.offset": 1,
                   "@timestamp": "2000-01-01T00:00:00Z", "logpipe": {"piece": 3}})
        );
    }
}
