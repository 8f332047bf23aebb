use super::Invalid;
use crate::build::kafka::properties::BROKER_PORT;
use crate::certs::CA_CERT;
use crate::crd::{KafkaSpec, ListenerSecurity, SaslMechanism, TopicSpec};
use crate::model::{paths, KafkaSasl, KafkaTarget, ManagedCluster, OperatorPods, SaslSecret, Topic};
use crate::names::PipelineName;
use k8s_openapi::api::core::v1::SecretKeySelector;
use logpipe_config::check_topic;
use std::collections::BTreeMap;

/// Secrets the Kafka connection needs mounted.
#[derive(Default)]
pub(super) struct KafkaSecrets {
    pub ca: Option<SecretKeySelector>,
    pub sasl: KafkaSasl,
}

/// The SCRAM mechanism of a managed Kafka's users.
pub const MANAGED_MECHANISM: SaslMechanism = SaslMechanism::ScramSha512;

/// What the operator knows of the cluster from the LogPipeline's status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The listener security a managed Kafka was made with; none when the operator has made none.
    pub listeners: Option<ListenerSecurity>,
}

/// The cluster to use, the librdkafka properties to reach it, and the cluster to run when it is managed.
/// `uid` is the LogPipeline's, for a managed cluster's id.
pub(super) fn target(
    name: &PipelineName,
    spec: &KafkaSpec,
    uid: &str,
    operator: &OperatorPods,
    recorded: Recorded,
) -> Result<(KafkaTarget, KafkaSecrets, Option<ManagedCluster>), Invalid> {
    let external = match (&spec.external, &spec.managed) {
        (Some(external), None) => external,
        (None, Some(managed)) => {
            let cluster = super::managed::cluster(managed, uid, operator, recorded.listeners)?;
            let bootstrap = format!("{}.{}.svc:{BROKER_PORT}", name.kafka_bootstrap(), name.namespace());
            let (properties, secrets) = match cluster.security {
                ListenerSecurity::Plaintext => (BTreeMap::new(), KafkaSecrets::default()),
                ListenerSecurity::SaslSsl => managed_client(name),
            };
            let target = KafkaTarget { bootstrap_servers: bootstrap, properties };
            return Ok((target, secrets, Some(cluster)));
        }
        _ => return Err(Invalid::new("spec.kafka", "set exactly one of external and managed")),
    };
    let servers: Vec<&str> = external.bootstrap_servers.split(',').map(str::trim).collect();
    if let Some(bad) = servers.iter().find(|s| !valid_host_port(s)) {
        return Err(Invalid::new("spec.kafka.external.bootstrapServers", format!("{bad:?} is not host:port")));
    }
    let mut properties = BTreeMap::new();
    let tls = external.tls.is_some();
    let protocol = match (tls, external.sasl.is_some()) {
        (false, false) => None,
        (true, false) => Some("SSL"),
        (false, true) => Some("SASL_PLAINTEXT"),
        (true, true) => Some("SASL_SSL"),
    };
    if let Some(protocol) = protocol {
        properties.insert("security.protocol".into(), protocol.into());
    }
    let ca = external.tls.as_ref().and_then(|t| t.ca_secret.clone());
    if ca.is_some() {
        properties.insert("ssl.ca.location".into(), format!("{}/{}", paths::KAFKA_CA_DIR, paths::CA_FILE));
    }
    let sasl = match &external.sasl {
        None => KafkaSasl::None,
        Some(s) => {
            sasl_properties(&mut properties, s.mechanism);
            KafkaSasl::Shared(SaslSecret {
                secret_name: s.secret_name.clone(),
                username_key: s.username_key.clone().unwrap_or_else(|| "username".into()),
                password_key: s.password_key.clone().unwrap_or_else(|| "password".into()),
            })
        }
    };
    let target = KafkaTarget { bootstrap_servers: servers.join(","), properties };
    Ok((target, KafkaSecrets { ca, sasl }, None))
}

/// The SASL properties of either kind of cluster: the credentials are files the pods mount.
fn sasl_properties(properties: &mut BTreeMap<String, String>, mechanism: SaslMechanism) {
    properties.insert("sasl.mechanism".into(), mechanism.as_str().into());
    properties.insert("sasl.username".into(), format!("${{file:{}/username}}", paths::KAFKA_SASL_DIR));
    properties.insert("sasl.password".into(), format!("${{file:{}/password}}", paths::KAFKA_SASL_DIR));
}

/// A managed `SASL_SSL` cluster's clients: its CA, and the collectors' and the indexers' own users.
fn managed_client(name: &PipelineName) -> (BTreeMap<String, String>, KafkaSecrets) {
    let mut properties = BTreeMap::from([
        ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
        ("ssl.ca.location".to_owned(), format!("{}/{}", paths::KAFKA_CA_DIR, paths::CA_FILE)),
    ]);
    sasl_properties(&mut properties, MANAGED_MECHANISM);
    let user = |user: ManagedUser| SaslSecret {
        secret_name: name.kafka_users(),
        username_key: user.username_key(),
        password_key: user.password_key(),
    };
    let secrets = KafkaSecrets {
        ca: Some(SecretKeySelector { name: name.kafka_tls(), key: CA_CERT.into(), optional: None }),
        sasl: KafkaSasl::PerClient { collector: user(ManagedUser::Collector), indexer: user(ManagedUser::Indexer) },
    };
    (properties, secrets)
}

/// The SCRAM users of a managed `SASL_SSL` Kafka, each with keys `<user>.username` and `<user>.password` in the
/// users Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedUser {
    /// Inter-broker replication.
    Broker,
    Operator,
    Collector,
    Indexer,
}

impl ManagedUser {
    pub const ALL: [ManagedUser; 4] =
        [ManagedUser::Broker, ManagedUser::Operator, ManagedUser::Collector, ManagedUser::Indexer];

    pub fn name(self) -> &'static str {
        match self {
            ManagedUser::Broker => "broker",
            ManagedUser::Operator => "operator",
            ManagedUser::Collector => "collector",
            ManagedUser::Indexer => "indexer",
        }
    }

    pub fn username_key(self) -> String {
        format!("{}.username", self.name())
    }

    pub fn password_key(self) -> String {
        format!("{}.password", self.name())
    }
}

fn valid_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

pub(super) fn topic(name: &PipelineName, spec: &TopicSpec) -> Result<Topic, Invalid> {
    let topic = spec.name.clone().unwrap_or_else(|| name.default_topic());
    let partitions = spec.partitions.unwrap_or(6);
    let replication_factor = spec.replication_factor.unwrap_or(3);
    let retention_hours = spec.retention_hours.unwrap_or(72);
    if partitions < 1 {
        return Err(Invalid::new("spec.kafka.topic.partitions", "must be at least 1"));
    }
    if replication_factor < 1 {
        return Err(Invalid::new("spec.kafka.topic.replicationFactor", "must be at least 1"));
    }
    let dead_letter = spec.dead_letter_name.clone().unwrap_or_else(|| format!("{topic}.dead-letter"));
    for (field, name) in [("spec.kafka.topic.name", &topic), ("spec.kafka.topic.deadLetterName", &dead_letter)] {
        check_topic(field, name).map_err(|(field, reason)| Invalid::new(field, reason))?;
    }
    if dead_letter == topic {
        return Err(Invalid::new("spec.kafka.topic.deadLetterName", "must differ from the topic"));
    }
    if retention_hours < 1 {
        return Err(Invalid::new("spec.kafka.topic.retentionHours", "must be at least 1"));
    }
    Ok(Topic {
        dead_letter,
        name: topic,
        partitions,
        replication_factor,
        retention_ms: retention_hours * 3_600_000,
        delete_on_removal: spec.delete_on_removal,
    })
}
