//! A pipeline after validation: every default resolved, the collector's and the indexer's configs rendered.
//! The builders turn it into Kubernetes objects without further checks.

use crate::names::PipelineName;
use crate::validate::Collection;
use k8s_openapi::api::core::v1::{ResourceRequirements, SecretKeySelector, Toleration};
use logpipe_config::{AgentConfig, IndexerConfig};
use std::collections::BTreeMap;

/// Where the pods find what the operator mounts; the rendered configs refer to these paths.
pub mod paths {
    pub const CONFIG_DIR: &str = "/etc/logpipe/config";
    pub const AGENT_CONFIG: &str = "agent.yaml";
    pub const INDEXER_CONFIG: &str = "indexer.yaml";
    pub const STATE_DIR: &str = "/var/lib/logpipe";
    /// The state directory an earlier release used, read-only, for its checkpoint.
    pub const EARLIER_STATE_DIR: &str = "/var/lib/logpipe-earlier";
    /// The collector's volume of its state directory.
    pub const STATE_VOLUME: &str = "state";
    pub const KAFKA_CA_DIR: &str = "/etc/logpipe/kafka-ca";
    pub const KAFKA_SASL_DIR: &str = "/etc/logpipe/kafka-sasl";
    pub const ES_CREDENTIALS_DIR: &str = "/etc/logpipe/es-credentials";
    pub const ES_CA_DIR: &str = "/etc/logpipe/es-ca";
    pub const CA_FILE: &str = "ca.crt";
    pub const METRICS_PORT: i32 = 2020;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub name: PipelineName,
    pub kafka: KafkaTarget,
    /// The Kafka cluster the operator runs, when the spec asks for one; `kafka` then points at its bootstrap
    /// Service.
    pub managed: Option<ManagedCluster>,
    pub topic: Topic,
    pub collector: Workload,
    pub indexer: Workload,
    pub agent_config: AgentConfig,
    pub indexer_config: IndexerConfig,
    /// Whose logs the collectors ship, which decides what they may read of the API.
    pub collection: Collection,
    /// Node directories mounted read-only into the collector.
    pub host_paths: Vec<String>,
    /// Node directory of the collector's checkpoints.
    pub state_dir: String,
    /// Node directory of the checkpoints of an earlier release, which the collectors carry over.
    pub earlier_state_dir: Option<String>,
    pub secrets: SecretMounts,
}

impl Pipeline {
    /// The collectors carry the checkpoints of `dir` (a node directory an earlier release used) over.
    pub fn carry_state_from(&mut self, dir: String) {
        self.agent_config.earlier_state_dir = Some(paths::EARLIER_STATE_DIR.into());
        self.earlier_state_dir = Some(dir);
    }
}

/// The Kafka cluster the pipeline uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTarget {
    pub bootstrap_servers: String,
    /// librdkafka properties for TLS and SASL; credentials as `${file:}` references to the mounted Secret.
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: String,
    pub dead_letter: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub retention_ms: i64,
    pub delete_on_removal: bool,
}

/// What the pods of one component run with.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub image: String,
    pub replicas: i32,
    pub resources: ResourceRequirements,
    pub tolerations: Vec<Toleration>,
    pub node_selector: BTreeMap<String, String>,
    pub priority_class_name: Option<String>,
}

/// Secrets the pods mount; the configs hold only paths into them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretMounts {
    pub kafka_ca: Option<SecretKeySelector>,
    pub kafka_sasl: KafkaSasl,
    pub es_credentials: Option<EsCredentialsSecret>,
    pub es_ca: Option<SecretKeySelector>,
}

/// Whose SASL credentials the Kafka clients mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KafkaSasl {
    #[default]
    None,
    /// One user for collectors and indexers: an external cluster's, named by the spec.
    Shared(SaslSecret),
    /// A user each: a managed cluster's, made by the operator, so neither can act as the other.
    PerClient { collector: SaslSecret, indexer: SaslSecret },
}

/// The pipeline's two Kafka clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaClient {
    Collector,
    Indexer,
}

impl KafkaSasl {
    pub fn of(&self, client: KafkaClient) -> Option<&SaslSecret> {
        match (self, client) {
            (KafkaSasl::None, _) => None,
            (KafkaSasl::Shared(s), _) => Some(s),
            (KafkaSasl::PerClient { collector, .. }, KafkaClient::Collector) => Some(collector),
            (KafkaSasl::PerClient { indexer, .. }, KafkaClient::Indexer) => Some(indexer),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSecret {
    pub secret_name: String,
    pub username_key: String,
    pub password_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsCredentialsSecret {
    pub secret_name: String,
    pub kind: crate::crd::CredentialsKind,
}

impl EsCredentialsSecret {
    /// The Secret's keys, each mounted as a file of the same name.
    pub fn keys(&self) -> [&'static str; 2] {
        match self.kind {
            crate::crd::CredentialsKind::Basic => ["username", "password"],
            crate::crd::CredentialsKind::ApiKey => ["id", "api_key"],
        }
    }
}

/// A Kafka cluster the operator runs: KRaft controllers and brokers, every default resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedCluster {
    pub brokers: u32,
    pub controllers: u32,
    pub image: String,
    pub storage: BrokerStorage,
    pub resources: ResourceRequirements,
    /// server.properties keys of the brokers from the spec, over the operator's safe defaults.
    pub broker_config: BTreeMap<String, String>,
    /// How clients and brokers talk; fixed when the cluster is made.
    pub security: crate::crd::ListenerSecurity,
    /// Digest of the certificate the nodes serve (with `SASL_SSL`), once the operator has made it: on the pod
    /// templates, so a renewed certificate rolls the nodes one at a time.
    pub certificate: Option<String>,
    /// The KRaft cluster id every node's storage is formatted with.
    pub cluster_id: String,
    /// Bytes per second per broker for replicas being built while partitions move.
    pub reassignment_throttle: u64,
    /// How long moves may run before they are cancelled as stuck.
    pub reassignment_timeout: std::time::Duration,
    /// The operator's pods, which alone besides the pipeline's own reach the cluster.
    pub operator: OperatorPods,
}

/// Where the operator runs, for the NetworkPolicy of a managed Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorPods {
    pub namespace: String,
    pub pod_labels: BTreeMap<String, String>,
}

impl Default for OperatorPods {
    /// The chart's defaults: release namespace `logpipe-system`, its operator pods' labels.
    fn default() -> Self {
        Self {
            namespace: "logpipe-system".into(),
            pod_labels: BTreeMap::from([
                ("app.kubernetes.io/name".into(), "logpipe".into()),
                ("app.kubernetes.io/component".into(), "operator".into()),
            ]),
        }
    }
}

/// The volume claim of each broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerStorage {
    pub size: String,
    pub class: Option<String>,
    pub delete_claim_on_scale_down: bool,
}
