//! The Elasticsearch side at start: the client (URL, credentials from files or the environment, CA), the index
//! template with mappings for the record fields, and the retention policy.

use super::IndexName;
use crate::config::{resolve_secret, ElasticsearchConfig, EsAuth, IndexConfig};
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::ilm::IlmPutLifecycleParts;
use elasticsearch::indices::IndicesPutIndexTemplateParts;
use elasticsearch::Elasticsearch;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ElasticError {
    #[error("elasticsearch.url: {0}")]
    Url(String),
    #[error("elasticsearch.auth: {0}")]
    Secret(String),
    #[error("elasticsearch.ca_file {path}: {reason}")]
    Ca { path: String, reason: String },
    #[error("building the Elasticsearch client: {0}")]
    Build(#[from] elasticsearch::http::transport::BuildError),
    #[error("Elasticsearch: {}", describe(.0))]
    Request(#[from] elasticsearch::Error),
    #[error("installing {what}: HTTP {status}: {body}")]
    Install { what: String, status: u16, body: String },
}

impl ElasticError {
    /// Worth retrying: the server was unreachable or overloaded, not the request wrong.
    pub fn is_transient(&self) -> bool {
        match self {
            ElasticError::Request(_) => true,
            ElasticError::Install { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// A request error with its causes: the client's own message names only the URL, and what went wrong (refused
/// connection, untrusted certificate, timeout) is in the chain below it.
pub fn describe(error: &elasticsearch::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub fn client(config: &ElasticsearchConfig) -> Result<Elasticsearch, ElasticError> {
    let url = elasticsearch::http::Url::parse(&config.url).map_err(|e| ElasticError::Url(e.to_string()))?;
    let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
        .timeout(Duration::from_millis(config.request_timeout_ms));
    let secret = |v: &str| resolve_secret(v).map_err(ElasticError::Secret);
    builder = match &config.auth {
        None => builder,
        Some(EsAuth::Basic { username, password }) => {
            builder.auth(Credentials::Basic(secret(username)?, secret(password)?))
        }
        Some(EsAuth::ApiKey { id, key }) => builder.auth(Credentials::ApiKey(secret(id)?, secret(key)?)),
    };
    if let Some(path) = &config.ca_file {
        let ca_err = |reason: String| ElasticError::Ca { path: path.display().to_string(), reason };
        let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| ca_err(e.to_string()))?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    Ok(Elasticsearch::new(builder.build()?))
}

/// The name of what `install` creates, from the index pattern.
fn object_name(index: &IndexConfig, name: &IndexName) -> String {
    let base =
        index.data_stream.clone().unwrap_or_else(|| name.pattern().trim_end_matches(['*', '-', '.', '_']).to_owned());
    format!("logpipe-{}", if base.is_empty() { "logs" } else { &base })
}

/// Installs the retention policy (when configured) and the index template.
pub async fn install(client: &Elasticsearch, index: &IndexConfig, name: &IndexName) -> Result<(), ElasticError> {
    let object = object_name(index, name);
    let mut settings = json!({"number_of_shards": index.shards, "number_of_replicas": index.replicas});
    if let Some(days) = index.retention_days {
        let policy = json!({"policy": {"phases": {
            "hot": {"min_age": "0ms", "actions": {}},
            "delete": {"min_age": format!("{days}d"), "actions": {"delete": {}}}
        }}});
        let response = client.ilm().put_lifecycle(IlmPutLifecycleParts::Policy(&object)).body(policy).send().await?;
        check(response, format!("retention policy {object}")).await?;
        settings["index.lifecycle.name"] = Value::String(object.clone());
    }
    let patterns = match &index.data_stream {
        Some(ds) => vec![ds.clone()],
        None => vec![name.pattern()],
    };
    let mut template = json!({
        "index_patterns": patterns,
        "priority": 200,
        "template": {"settings": settings, "mappings": mappings()},
        "_meta": {"managed_by": "logpipe"}
    });
    if index.data_stream.is_some() {
        template["data_stream"] = json!({});
    }
    let response =
        client.indices().put_index_template(IndicesPutIndexTemplateParts::Name(&object)).body(template).send().await?;
    check(response, format!("index template {object}")).await
}

async fn check(response: elasticsearch::http::response::Response, what: String) -> Result<(), ElasticError> {
    let status = response.status_code();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(ElasticError::Install { what, status: status.as_u16(), body: body.chars().take(500).collect() })
}

/// Keyword mappings for the fields every record has (exact-match filters in Kibana), text for the message, and
/// keywords for labels and annotations whatever their keys.
fn mappings() -> Value {
    let keyword = json!({"type": "keyword", "ignore_above": 1024});
    json!({
        "dynamic_templates": [
            {"kubernetes_maps": {"path_match": "kubernetes.*labels.*", "match_mapping_type": "string", "mapping": keyword}},
            {"kubernetes_annotations": {"path_match": "kubernetes.annotations.*", "match_mapping_type": "string", "mapping": keyword}}
        ],
        "properties": {
            "@timestamp": {"type": "date_nanos"},
            "message": {"type": "text"},
            "stream": keyword,
            "host": {"properties": {"name": keyword}},
            "log": {"properties": {"file": {"properties": {"path": keyword}}, "offset": {"type": "long"}, "level": keyword}},
            "kubernetes": {"properties": {
                "namespace": keyword,
                "pod": {"properties": {"name": keyword, "uid": keyword}},
                "container": {"properties": {"name": keyword, "image": keyword, "restart_count": {"type": "integer"}}},
                "node": {"properties": {"name": keyword}},
                "owner": {"properties": {"kind": keyword, "name": keyword}}
            }},
            "logpipe": {"properties": {"parse_error": keyword, "processor_error": keyword, "truncated": {"type": "boolean"}, "capped": {"type": "boolean"}}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        let name = IndexName::parse("logs-{kubernetes.namespace}-%Y.%m.%d").unwrap();
        assert_eq!(object_name(&IndexConfig::default(), &name), "logpipe-logs");
        let ds = IndexConfig { data_stream: Some("logs-k8s-default".into()), ..IndexConfig::default() };
        assert_eq!(object_name(&ds, &name), "logpipe-logs-k8s-default");
        assert_eq!(object_name(&IndexConfig::default(), &IndexName::parse("{ns}").unwrap()), "logpipe-logs");
    }
}
