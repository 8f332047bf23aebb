//! A Kafka cluster the pipeline points at but does not run: the operator reads how many brokers it has and creates
//! the pipeline's topics, with librdkafka's admin client and the connection's own credentials.

use crate::model::{KafkaTarget, Topic};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("cannot create a Kafka client for {servers}: {source}")]
    Client { servers: String, source: RdKafkaError },
    #[error("cannot read the metadata of the Kafka cluster at {servers}: {source}")]
    Unreachable { servers: String, source: RdKafkaError },
    #[error("the Kafka metadata request did not finish: {0}")]
    Task(String),
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
}

/// What the operator needs to connect: the target's properties with the Secrets' contents in place of the pods'
/// file references.
#[derive(Clone)]
pub struct External {
    servers: String,
    properties: BTreeMap<String, String>,
}

/// Contents of the Secrets the Kafka connection uses, read by the fetch step.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    pub ca_pem: Option<String>,
    pub sasl: Option<(String, String)>,
}

impl External {
    pub fn new(target: &KafkaTarget, credentials: Credentials) -> Self {
        let mut properties = target.properties.clone();
        for key in ["ssl.ca.location", "sasl.username", "sasl.password"] {
            properties.remove(key);
        }
        if let Some(pem) = credentials.ca_pem {
            properties.insert("ssl.ca.pem".into(), pem);
        }
        if let Some((user, password)) = credentials.sasl {
            properties.insert("sasl.username".into(), user);
            properties.insert("sasl.password".into(), password);
        }
        Self { servers: target.bootstrap_servers.clone(), properties }
    }

    fn admin(&self) -> Result<AdminClient<DefaultClientContext>, ExternalError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.servers);
        // Describing the topic must not create it with the broker's defaults before the operator creates it right.
        config.set("allow.auto.create.topics", "false");
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config.create().map_err(|source| ExternalError::Client { servers: self.servers.clone(), source })
    }

    /// Brokers in the cluster metadata, and the partitions of `topic` (0 when it does not exist).
    pub async fn describe(&self, topic: &str) -> Result<(usize, usize), ExternalError> {
        let admin = self.admin()?;
        let topic = topic.to_owned();
        let servers = self.servers.clone();
        let metadata = tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(Some(&topic), TIMEOUT))
            .await
            .map_err(|e| ExternalError::Task(e.to_string()))?
            .map_err(|source| ExternalError::Unreachable { servers, source })?;
        let partitions =
            metadata.topics().iter().filter(|t| t.error().is_none()).map(|t| t.partitions().len()).next().unwrap_or(0);
        Ok((metadata.brokers().len(), partitions))
    }

    /// Creates the topic and its dead-letter topic when missing. An existing topic is left as it is: changing
    /// partitions would move keys between partitions, so that is a decision for its owner.
    pub async fn ensure_topics(&self, topic: &Topic) -> Result<Vec<String>, ExternalError> {
        let admin = self.admin()?;
        let retention = topic.retention_ms.to_string();
        let rf = topic.replication_factor;
        let new = [
            NewTopic::new(&topic.name, topic.partitions, TopicReplication::Fixed(rf)).set("retention.ms", &retention),
            NewTopic::new(&topic.dead_letter, 1, TopicReplication::Fixed(rf)).set("retention.ms", &retention),
        ];
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let results = admin
            .create_topics(&new, &options)
            .await
            .map_err(|source| ExternalError::Unreachable { servers: self.servers.clone(), source })?;
        let mut created = Vec::new();
        for result in results {
            match result {
                Ok(name) => created.push(name),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(ExternalError::Topic { topic: name, reason: code.to_string() }),
            }
        }
        Ok(created)
    }

    pub async fn delete_topics(&self, topic: &Topic) -> Result<(), ExternalError> {
        let admin = self.admin()?;
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let names = [topic.name.as_str(), topic.dead_letter.as_str()];
        let results = admin
            .delete_topics(&names, &options)
            .await
            .map_err(|source| ExternalError::Unreachable { servers: self.servers.clone(), source })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((name, code)) => return Err(ExternalError::Topic { topic: name, reason: code.to_string() }),
            }
        }
        Ok(())
    }
}
