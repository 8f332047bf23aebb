//! The indexer's processors as configured: small, ordered edits of a document before it is indexed (the indexer
//! runs them). The fields the agent writes are the agent's: a processor that would write one is refused here.

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

/// The fields the agent writes into every document (docs/record-format.md).
pub const AGENT_FIELDS: [&str; 7] = ["kubernetes", "host", "log.file", "log.offset", "stream", "@timestamp", "logpipe"];

/// Every processor's `type`, as written in a config.
pub const TYPES: [&str; 7] = ["parse_json", "timestamp", "level", "rename", "add", "remove", "drop"];

/// `path` is an agent field or lies inside one.
pub fn within_agent_field(path: &str) -> bool {
    AGENT_FIELDS.iter().any(|f| path == *f || path.strip_prefix(f).is_some_and(|rest| rest.starts_with('.')))
}

/// Writing `path` would change an agent field: it is one, lies inside one, or holds one (`log` holds `log.file`).
pub fn touches_agent_field(path: &str) -> bool {
    within_agent_field(path) || AGENT_FIELDS.iter().any(|f| f.strip_prefix(path).is_some_and(|r| r.starts_with('.')))
}

impl ProcessorConfig {
    /// The `type` this processor is written with.
    pub fn kind(&self) -> &'static str {
        match self {
            ProcessorConfig::ParseJson { .. } => TYPES[0],
            ProcessorConfig::Timestamp { .. } => TYPES[1],
            ProcessorConfig::Level { .. } => TYPES[2],
            ProcessorConfig::Rename { .. } => TYPES[3],
            ProcessorConfig::Add { .. } => TYPES[4],
            ProcessorConfig::Remove { .. } => TYPES[5],
            ProcessorConfig::Drop { .. } => TYPES[6],
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let written: Vec<&str> = match self {
            ProcessorConfig::ParseJson { target, .. } => target.iter().map(String::as_str).collect(),
            ProcessorConfig::Rename { from, to } => vec![from, to],
            ProcessorConfig::Add { field, .. } => vec![field],
            ProcessorConfig::Remove { fields } => fields.iter().map(String::as_str).collect(),
            ProcessorConfig::Timestamp { .. } | ProcessorConfig::Level { .. } | ProcessorConfig::Drop { .. } => vec![],
        };
        if let Some(field) = written.iter().find(|f| touches_agent_field(f)) {
            return Err(format!(
                "{self:?}: {field:?} is written by the agent ({}); processors may read it, not change it",
                AGENT_FIELDS.join(", ")
            ));
        }
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

/// A Kubernetes structural schema: one object with the union of the processors' fields (a structural schema cannot
/// say which fields go with which `type`; the operator checks that with the types above and reports the field).
/// Unknown fields are kept, not pruned by the API server, so a misspelt one is refused by name rather than lost.
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for ProcessorConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProcessorConfig".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let text = |description: &str| serde_json::json!({"type": "string", "description": description});
        let texts = |description: &str| serde_json::json!({"type": "array", "items": {"type": "string"}, "description": description});
        schemars::json_schema!({
            "type": "object",
            "description": "One processor (docs/indexer-config.md): a `type` and that type's fields.",
            "required": ["type"],
            "properties": {
                "type": {"type": "string", "enum": TYPES},
                "field": text("The field read (parse_json, timestamp, level, drop) or set (add)."),
                "target": text("parse_json: where the parsed object goes; default: merged into the document's root."),
                "from": text("rename: the field renamed."),
                "to": text("rename: its new name."),
                "value": {"description": "add: the value set, any JSON.", "x-kubernetes-preserve-unknown-fields": true},
                "fields": texts("remove: the fields removed."),
                "values": texts("drop: the texts of `field` that drop a document."),
            },
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One of each: their serialized form has the `type` that `kind` says, and only fields the schema lists.
    #[test]
    fn every_type_is_listed_with_its_fields() {
        let samples = [
            json!({"type": "parse_json", "field": "message", "target": "app"}),
            json!({"type": "timestamp", "field": "ts"}),
            json!({"type": "level", "field": "lvl"}),
            json!({"type": "rename", "from": "a", "to": "b"}),
            json!({"type": "add", "field": "env", "value": {"any": [1]}}),
            json!({"type": "remove", "fields": ["a"]}),
            json!({"type": "drop", "field": "a", "values": ["x"]}),
        ];
        let listed = listed_fields();
        let mut kinds = Vec::new();
        for sample in samples {
            let p: ProcessorConfig = serde_json::from_value(sample.clone()).unwrap();
            assert_eq!(serde_json::to_value(&p).unwrap(), sample);
            assert_eq!(sample["type"], p.kind());
            assert!(sample.as_object().unwrap().keys().all(|k| listed.contains(k)), "{sample}");
            kinds.push(p.kind());
        }
        assert_eq!(kinds, TYPES);
    }

    #[cfg(feature = "schemars")]
    fn listed_fields() -> Vec<String> {
        let schema = schemars::schema_for!(ProcessorConfig);
        let properties = schema.get("properties").and_then(|p| p.as_object()).unwrap();
        assert_eq!(properties["type"]["enum"], json!(TYPES));
        properties.keys().cloned().collect()
    }

    #[cfg(not(feature = "schemars"))]
    fn listed_fields() -> Vec<String> {
        ["type", "field", "target", "from", "to", "value", "fields", "values"].map(String::from).to_vec()
    }

    #[test]
    fn processors_that_would_write_agent_fields_are_refused() {
        let refused = [
            json!({"type": "rename", "from": "msg", "to": "kubernetes.namespace"}),
            json!({"type": "rename", "from": "host.name", "to": "x"}),
            json!({"type": "add", "field": "log", "value": 1}),
            json!({"type": "add", "field": "@timestamp", "value": "2000-01-01T00:00:00Z"}),
            json!({"type": "remove", "fields": ["msg", "stream"]}),
            json!({"type": "parse_json", "field": "message", "target": "logpipe.app"}),
        ];
        for p in refused {
            let p: ProcessorConfig = serde_json::from_value(p.clone()).unwrap();
            assert!(p.validate().is_err(), "{p:?}");
        }
        let allowed = [
            json!({"type": "add", "field": "log.level", "value": "info"}),
            json!({"type": "rename", "from": "msg", "to": "hostname"}),
            json!({"type": "timestamp", "field": "ts"}),
            json!({"type": "drop", "field": "kubernetes.namespace", "values": ["noisy"]}),
        ];
        for p in allowed {
            let p: ProcessorConfig = serde_json::from_value(p.clone()).unwrap();
            assert_eq!(p.validate(), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn empty_field_names_are_rejected() {
        let p: ProcessorConfig = serde_json::from_value(json!({"type": "rename", "from": "", "to": "x"})).unwrap();
        assert!(p.validate().is_err());
    }
}
