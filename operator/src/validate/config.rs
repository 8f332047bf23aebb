//! The collector's and the indexer's config files, rendered from the spec with the collector's own types and
//! checked by the collector's own rules.

use super::kafka::KafkaSecrets;
use super::policy::Collection;
use super::Invalid;
use crate::crd::{CollectorSpec, CredentialsKind, LogFormat, LogPipelineSpec};
use crate::model::{paths, EsCredentialsSecret, KafkaClient, KafkaTarget, SecretMounts, Topic};
use crate::names::PipelineName;
use logpipe_config::FormatChoice;
use logpipe_config::ProcessorConfig;
use logpipe_config::{
    AgentConfig, BulkConfig, Compression, ElasticsearchConfig, EsAuth, FilterConfig, IndexConfig, IndexerConfig,
    KafkaSinkConfig, KafkaSourceConfig, KubernetesConfig, MetadataMode, MultilineConfig, SinkConfig, Validate,
    DEFAULT_OPT_OUT_ANNOTATION,
};
use std::path::{Path, PathBuf};

const LISTEN: &str = "0.0.0.0:2020";

pub(super) fn agent(
    spec: &LogPipelineSpec,
    collection: &Collection,
    kafka: &KafkaTarget,
    topic: &Topic,
) -> Result<AgentConfig, Invalid> {
    let c = &spec.collector;
    let mut config = AgentConfig::default();
    if !c.paths.is_empty() {
        config.tail.include = c.paths.clone();
    }
    config.tail.exclude = c.exclude_paths.clone();
    config.parse.format = match c.format {
        LogFormat::Auto => FormatChoice::Auto,
        LogFormat::Cri => FormatChoice::Cri,
        LogFormat::Docker => FormatChoice::Docker,
        LogFormat::Raw => FormatChoice::Raw,
    };
    config.parse.multiline = c
        .multiline
        .as_ref()
        .map(|m| MultilineConfig { start: m.start.clone(), timeout_ms: m.timeout_ms.unwrap_or(1000) });
    config.kubernetes = KubernetesConfig { metadata: MetadataMode::Enabled, ..KubernetesConfig::default() };
    config.filter = filter(c, collection);
    let mut sink = KafkaSinkConfig::new(&kafka.bootstrap_servers, &topic.name);
    sink.compression = match spec.kafka.compression {
        crate::crd::Compression::None => Compression::None,
        crate::crd::Compression::Lz4 => Compression::Lz4,
        crate::crd::Compression::Zstd => Compression::Zstd,
    };
    sink.properties = kafka.properties.clone();
    config.sink = SinkConfig::Kafka(sink);
    config.state_dir = PathBuf::from(paths::STATE_DIR);
    config.http_listen = Some(LISTEN.into());
    if let Some(bytes) = c.max_in_flight_bytes {
        let field = "spec.collector.maxInFlightBytes";
        config.max_in_flight_bytes =
            usize::try_from(bytes).map_err(|_| Invalid::new(field, format!("{bytes} is not a number of bytes")))?;
    }
    config.validate().map_err(|(field, reason)| Invalid::new("spec.collector", format!("{field}: {reason}")))?;
    Ok(config)
}

fn filter(c: &CollectorSpec, collection: &Collection) -> FilterConfig {
    let f = &c.filter;
    let include_namespaces = match collection {
        Collection::ClusterWide => f.include_namespaces.clone(),
        Collection::Confined(own) => vec![own.clone()],
    };
    FilterConfig {
        include_namespaces,
        exclude_namespaces: f.exclude_namespaces.clone(),
        namespace_selector: f.namespace_selector.clone(),
        pod_selector: f.pod_selector.clone(),
        include_containers: f.include_containers.clone(),
        exclude_containers: f.exclude_containers.clone(),
        opt_out_annotation: f.opt_out_annotation.clone().unwrap_or_else(|| DEFAULT_OPT_OUT_ANNOTATION.into()),
    }
}

pub(super) fn indexer(
    name: &PipelineName,
    spec: &LogPipelineSpec,
    kafka: &KafkaTarget,
    topic: &Topic,
    secrets: &SecretMounts,
) -> Result<IndexerConfig, Invalid> {
    let i = &spec.indexer;
    let mut source = KafkaSourceConfig::new(&kafka.bootstrap_servers, &topic.name, name.default_topic());
    source.properties = kafka.properties.clone();
    let mut elasticsearch = ElasticsearchConfig::new(&i.elasticsearch.url);
    elasticsearch.auth = secrets.es_credentials.as_ref().map(es_auth);
    if secrets.es_ca.is_some() {
        elasticsearch.ca_file = Some(Path::new(paths::ES_CA_DIR).join(paths::CA_FILE));
    }
    let defaults = IndexConfig::default();
    let index = IndexConfig {
        name: i.index.name_template.clone().unwrap_or(defaults.name),
        data_stream: i.index.data_stream.clone(),
        install_template: true,
        retention_days: i.index.retention_days,
        shards: i.index.shards.unwrap_or(defaults.shards),
        replicas: i.index.replicas.unwrap_or(defaults.replicas),
    };
    let b = BulkConfig::default();
    let bulk = BulkConfig {
        max_documents: i.bulk.max_documents.map_or(b.max_documents, |v| v as usize),
        max_bytes: i.bulk.max_bytes.map_or(b.max_bytes, |v| v as usize),
        max_wait_ms: i.bulk.max_wait_ms.map_or(b.max_wait_ms, u64::from),
        concurrency: i.bulk.concurrency.map_or(b.concurrency, |v| v as usize),
        ..b
    };
    let config = IndexerConfig {
        kafka: source,
        elasticsearch,
        index,
        bulk,
        processors: processors(&i.processors)?,
        dead_letter_topic: topic.dead_letter.clone(),
        http_listen: Some(LISTEN.into()),
    };
    config.validate().map_err(|(field, reason)| Invalid::new("spec.indexer", format!("{field}: {reason}")))?;
    Ok(config)
}

fn es_auth(secret: &EsCredentialsSecret) -> EsAuth {
    let file = |key: &str| format!("${{file:{}/{key}}}", paths::ES_CREDENTIALS_DIR);
    let [first, second] = secret.keys();
    match secret.kind {
        CredentialsKind::ApiKey => EsAuth::ApiKey { id: file(first), key: file(second) },
        CredentialsKind::Basic => EsAuth::Basic { username: file(first), password: file(second) },
    }
}

/// Each processor is parsed with the indexer's own definition, so an unknown type or a missing field is caught here.
fn processors(values: &[serde_json::Value]) -> Result<Vec<ProcessorConfig>, Invalid> {
    values
        .iter()
        .enumerate()
        .map(|(n, value)| {
            serde_json::from_value(value.clone())
                .map_err(|e| Invalid::new(format!("spec.indexer.processors[{n}]"), e.to_string()))
        })
        .collect()
}

pub(super) fn secret_mounts(spec: &LogPipelineSpec, kafka: KafkaSecrets) -> Result<SecretMounts, Invalid> {
    let es = &spec.indexer.elasticsearch;
    let es_credentials =
        es.credentials.as_ref().map(|c| EsCredentialsSecret { secret_name: c.secret_name.clone(), kind: c.kind });
    let named = [
        ("spec.kafka.external.tls.caSecret.name", kafka.ca.as_ref().map(|s| s.name.as_str())),
        ("spec.kafka.external.sasl.secretName", kafka.sasl.of(KafkaClient::Collector).map(|s| s.secret_name.as_str())),
        ("spec.indexer.elasticsearch.credentials.secretName", es_credentials.as_ref().map(|s| s.secret_name.as_str())),
        ("spec.indexer.elasticsearch.caSecret.name", es.ca_secret.as_ref().map(|s| s.name.as_str())),
    ];
    if let Some((field, _)) = named.iter().find(|(_, name)| name.is_some_and(str::is_empty)) {
        return Err(Invalid::new(*field, "must name a Secret"));
    }
    Ok(SecretMounts { kafka_ca: kafka.ca, kafka_sasl: kafka.sasl, es_credentials, es_ca: es.ca_secret.clone() })
}

/// The node directories the collector reads: where each glob starts, and the extra paths; none inside another.
pub(super) fn host_paths(spec: &CollectorSpec, config: &AgentConfig) -> Result<Vec<String>, Invalid> {
    let mut dirs: Vec<PathBuf> =
        config.tail.include.iter().map(|p| logpipe_config::glob_base_dir(Path::new(p))).collect();
    dirs.extend(spec.extra_host_paths.iter().map(PathBuf::from));
    if let Some(bad) = dirs.iter().find(|d| !d.is_absolute() || d == &Path::new("/")) {
        return Err(Invalid::new(
            "spec.collector.paths",
            format!("{} is not an absolute directory below /; the collector mounts it from the node", bad.display()),
        ));
    }
    dirs.sort();
    dirs.dedup();
    let all = dirs.clone();
    dirs.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
    Ok(dirs.into_iter().map(|d| d.display().to_string()).collect())
}
