//! A Kafka admin client over the Kafka protocol itself (the `kafka-protocol` crate on tokio), for what librdkafka
//! does not offer: partition reassignments and the replica and ISR view that broker scaling is decided from.

pub mod scram;
mod throttle;
mod wire;

pub use throttle::{Throttle, RATES as THROTTLE_RATES, REPLICAS as THROTTLED_REPLICAS};
pub use wire::Wire;

use crate::kafka::managed::scaling::{BrokerId, Move, Partition, Reassignment};
use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, CreateTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    ListPartitionReassignmentsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const TOPIC_RESOURCE: i8 = 2;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const MIN_ISR: &str = "min.insync.replicas";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("Kafka at {address}: {source}")]
    Io { address: String, source: std::io::Error },
    #[error("Kafka at {address}: no answer to {what} in time")]
    Timeout { address: String, what: &'static str },
    #[error("the broker does not support a version of {api} this client speaks")]
    Unsupported { api: &'static str },
    #[error("encoding {api}: {reason}")]
    Encode { api: &'static str, reason: String },
    #[error("decoding the answer to {api}: {reason}")]
    Decode { api: &'static str, reason: String },
    #[error("Kafka at {address} answered {api} with error code {code} {message}")]
    Broker { address: String, api: &'static str, code: i16, message: String },
    #[error("no bootstrap address of {bootstrap:?} answered: {last}")]
    Unreachable { bootstrap: String, last: Box<AdminError> },
    #[error("no bootstrap address given")]
    NoBootstrap,
    #[error("TLS to Kafka at {address}: {reason}")]
    Tls { address: String, reason: String },
    #[error("SASL with Kafka at {address}: {source}")]
    Sasl { address: String, source: scram::ScramError },
}

/// How the admin client reaches the brokers.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Access {
    #[default]
    Plaintext,
    /// TLS verified under `ca_pem` for `server_name` (whatever address is dialled), then SCRAM-SHA-512.
    SaslSsl { ca_pem: String, server_name: String, username: String, password: String },
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Plaintext => f.write_str("Plaintext"),
            Access::SaslSsl { server_name, username, .. } => {
                write!(f, "SaslSsl {{ server_name: {server_name:?}, username: {username:?} }}")
            }
        }
    }
}

/// The brokers registered in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub controller: BrokerId,
    /// Registered and not fenced.
    pub brokers: BTreeSet<BrokerId>,
}

/// Whether `create_topic` made the topic or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Existed,
}

pub struct Admin {
    conn: Wire,
    /// How long the broker may take over a request that waits on the controller.
    operation_timeout: Duration,
}

impl Admin {
    /// Connects to the first bootstrap address (comma-separated `host:port`) that answers.
    pub async fn connect(bootstrap: &str, timeout: Duration, access: &Access) -> Result<Self, AdminError> {
        let mut last = None;
        for address in bootstrap.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match Wire::connect(address, timeout, access).await {
                Ok(conn) => return Ok(Self { conn, operation_timeout: timeout }),
                Err(e) => last = Some(e),
            }
        }
        let last = last.ok_or(AdminError::NoBootstrap)?;
        Err(AdminError::Unreachable { bootstrap: bootstrap.into(), last: Box::new(last) })
    }

    pub async fn cluster(&mut self) -> Result<Cluster, AdminError> {
        let response = self.conn.call(&DescribeClusterRequest::default()).await?;
        self.check("DescribeCluster", response.error_code, response.error_message.as_ref())?;
        let brokers = response.brokers.iter().filter(|b| !b.is_fenced).map(|b| b.broker_id.0).collect();
        Ok(Cluster { controller: response.controller_id.0, brokers })
    }

    /// Every partition of every topic with its replicas, ISR, topic min ISR and any reassignment in progress.
    pub async fn partitions(&mut self) -> Result<Vec<Partition>, AdminError> {
        let mut partitions = self.replicas().await?;
        let ongoing = self.reassignments().await?;
        for p in &mut partitions {
            p.reassignment = ongoing.get(&(p.topic.clone(), p.index)).cloned();
        }
        Ok(partitions)
    }

    /// Every partition of every topic with its replicas, ISR and topic min ISR, as Metadata reports them (during a
    /// reassignment, old and new replicas together); `reassignment` is left empty.
    pub async fn replicas(&mut self) -> Result<Vec<Partition>, AdminError> {
        let mut request = MetadataRequest::default();
        request.topics = None;
        let metadata = self.conn.call(&request).await?;
        let mut topics = Vec::new();
        for t in &metadata.topics {
            self.check("Metadata", t.error_code, None)?;
            if let Some(name) = &t.name {
                topics.push((name.0.to_string(), t));
            }
        }
        let min_isr = self.min_isr(topics.iter().map(|(n, _)| n.as_str())).await?;
        let mut partitions = Vec::new();
        for (name, t) in topics {
            for p in &t.partitions {
                partitions.push(Partition {
                    topic: name.clone(),
                    index: p.partition_index,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    min_isr: min_isr.get(&name).copied().unwrap_or(1),
                    reassignment: None,
                });
            }
        }
        Ok(partitions)
    }

    /// `min.insync.replicas` per topic.
    async fn min_isr<'a>(
        &mut self,
        topics: impl Iterator<Item = &'a str>,
    ) -> Result<BTreeMap<String, usize>, AdminError> {
        let mut request = DescribeConfigsRequest::default();
        for topic in topics {
            let mut resource = DescribeConfigsResource::default();
            resource.resource_type = TOPIC_RESOURCE;
            resource.resource_name = StrBytes::from_string(topic.to_owned());
            resource.configuration_keys = Some(vec![StrBytes::from_static_str(MIN_ISR)]);
            request.resources.push(resource);
        }
        if request.resources.is_empty() {
            return Ok(BTreeMap::new());
        }
        let response = self.conn.call(&request).await?;
        let mut min_isr = BTreeMap::new();
        for result in &response.results {
            self.check("DescribeConfigs", result.error_code, result.error_message.as_ref())?;
            let value = result.configs.iter().find(|c| c.name.as_str() == MIN_ISR).and_then(|c| c.value.as_ref());
            if let Some(n) = value.and_then(|v| v.parse().ok()) {
                min_isr.insert(result.resource_name.to_string(), n);
            }
        }
        Ok(min_isr)
    }

    /// Reassignments in progress, by topic and partition.
    pub async fn reassignments(&mut self) -> Result<BTreeMap<(String, i32), Reassignment>, AdminError> {
        let mut request = ListPartitionReassignmentsRequest::default();
        request.timeout_ms = self.timeout_ms();
        let response = self.conn.call(&request).await?;
        self.check("ListPartitionReassignments", response.error_code, response.error_message.as_ref())?;
        let mut ongoing = BTreeMap::new();
        for t in &response.topics {
            for p in &t.partitions {
                let reassignment = Reassignment {
                    adding: p.adding_replicas.iter().map(|b| b.0).collect(),
                    removing: p.removing_replicas.iter().map(|b| b.0).collect(),
                };
                ongoing.insert((t.name.0.to_string(), p.partition_index), reassignment);
            }
        }
        Ok(ongoing)
    }

    /// Starts these reassignments; every partition must be accepted.
    pub async fn reassign(&mut self, moves: &[Move]) -> Result<(), AdminError> {
        let targets = moves.iter().map(|m| (m.topic.as_str(), m.partition, Some(m.replicas.as_slice())));
        let request = self.reassignments_request(targets);
        self.alter_reassignments(request).await
    }

    /// Cancels the reassignments of these partitions: each keeps the replicas it had before.
    pub async fn cancel(&mut self, partitions: &[(&str, i32)]) -> Result<(), AdminError> {
        let request = self.reassignments_request(partitions.iter().map(|&(t, p)| (t, p, None)));
        self.alter_reassignments(request).await
    }

    /// `None` replicas cancel.
    fn reassignments_request<'a>(
        &self,
        targets: impl IntoIterator<Item = (&'a str, i32, Option<&'a [BrokerId]>)>,
    ) -> AlterPartitionReassignmentsRequest {
        let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for (topic, partition, replicas) in targets {
            let mut p = ReassignablePartition::default();
            p.partition_index = partition;
            p.replicas = replicas.map(|r| r.iter().map(|&b| kafka_protocol::messages::BrokerId(b)).collect());
            by_topic.entry(topic).or_default().push(p);
        }
        let mut request = AlterPartitionReassignmentsRequest::default();
        request.timeout_ms = self.timeout_ms();
        for (name, partitions) in by_topic {
            let mut topic = ReassignableTopic::default();
            topic.name = TopicName(StrBytes::from_string(name.to_owned()));
            topic.partitions = partitions;
            request.topics.push(topic);
        }
        request
    }

    async fn alter_reassignments(&mut self, request: AlterPartitionReassignmentsRequest) -> Result<(), AdminError> {
        let response = self.conn.call(&request).await?;
        self.check("AlterPartitionReassignments", response.error_code, response.error_message.as_ref())?;
        for p in response.responses.iter().flat_map(|t| &t.partitions) {
            self.check("AlterPartitionReassignments", p.error_code, p.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Creates a topic with these settings, or finds it already there.
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(&str, String)],
    ) -> Result<Created, AdminError> {
        let mut topic = CreatableTopic::default();
        topic.name = TopicName(StrBytes::from_string(name.to_owned()));
        topic.num_partitions = partitions;
        topic.replication_factor = replication_factor;
        for (key, value) in configs {
            let mut c = CreatableTopicConfig::default();
            c.name = StrBytes::from_string((*key).to_owned());
            c.value = Some(StrBytes::from_string(value.clone()));
            topic.configs.push(c);
        }
        let mut request = CreateTopicsRequest::default();
        request.timeout_ms = self.timeout_ms();
        request.topics.push(topic);
        let response = self.conn.call(&request).await?;
        match response.topics.first() {
            Some(t) if t.error_code == TOPIC_ALREADY_EXISTS => Ok(Created::Existed),
            Some(t) => self.check("CreateTopics", t.error_code, t.error_message.as_ref()).map(|()| Created::New),
            None => Err(AdminError::Decode { api: "CreateTopics", reason: "no topic result".into() }),
        }
    }

    fn check(&self, api: &'static str, code: i16, message: Option<&StrBytes>) -> Result<(), AdminError> {
        if code == 0 {
            return Ok(());
        }
        Err(self.conn.broker_error(api, code, message))
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.operation_timeout.as_millis()).unwrap_or(i32::MAX)
    }
}
