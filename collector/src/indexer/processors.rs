//! Processors: small, ordered edits of a document before it is indexed. A processor that cannot do its work on a
//! document (a message that is not JSON, a timestamp it cannot read) marks the document and goes on; only `drop`
//! removes one, and those are counted.

use super::fields;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields, rename_all = "snake_case")]
pub enum ProcessorConfig {
    /// Parses the JSON text in `field` into `target` (default: merged into the document's root).
    ParseJson {
        field: String,
        #[serde(default)]
        target: Option<String>,
    },
    /// Sets `@timestamp` from an RFC 3339 text field.
    Timestamp {
        field: String,
    },
    /// Sets `log.level` (lower case) from a field.
    Level {
        field: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Add {
        field: String,
        value: Value,
    },
    Remove {
        fields: Vec<String>,
    },
    /// Drops the document when the field's text equals one of `values`.
    Drop {
        field: String,
        values: Vec<String>,
    },
}

impl ProcessorConfig {
    pub fn validate(&self) -> Result<(), String> {
        let empty = match self {
            ProcessorConfig::ParseJson { field, .. }
            | ProcessorConfig::Timestamp { field }
            | ProcessorConfig::Level { field }
            | ProcessorConfig::Add { field, .. }
            | ProcessorConfig::Drop { field, .. } => field.is_empty(),
            ProcessorConfig::Rename { from, to } => from.is_empty() || to.is_empty(),
            ProcessorConfig::Remove { fields } => fields.iter().any(String::is_empty),
        };
        if empty {
            return Err(format!("{self:?}: field names must not be empty"));
        }
        Ok(())
    }
}

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
                (None, Value::Object(map)) => {
                    for (k, v) in map {
                        fields::set(doc, &k, v);
                    }
                }
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
    fn empty_field_names_are_rejected() {
        let p: ProcessorConfig = serde_json::from_value(json!({"type": "rename", "from": "", "to": "x"})).unwrap();
        assert!(p.validate().is_err());
    }
}
