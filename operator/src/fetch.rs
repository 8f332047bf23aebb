//! Reads what a reconcile needs beyond the LogPipeline itself: the Secrets of the Kafka connection, and the Kafka
//! cluster's brokers.

use crate::kafka::{Connection, Credentials, KafkaError};
use crate::model::Pipeline;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("Secret {namespace}/{name}: {source}")]
    Secret { namespace: String, name: String, source: kube::Error },
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    MissingKey { namespace: String, name: String, key: String },
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// The Kafka cluster as the operator sees it.
pub struct KafkaView {
    pub connection: Connection,
    pub brokers: usize,
    /// Partitions of the pipeline's topic; 0 when it does not exist yet.
    pub partitions: usize,
}

pub async fn kafka(client: &Client, p: &Pipeline) -> Result<KafkaView, FetchError> {
    let connection = Connection::new(&p.kafka, credentials(client, p).await?);
    let (brokers, partitions) = connection.describe(&p.topic.name).await?;
    Ok(KafkaView { connection, brokers, partitions })
}

/// The Kafka connection for cleanup, when the topics are to be deleted.
pub async fn connection(client: &Client, p: &Pipeline) -> Result<Connection, FetchError> {
    Ok(Connection::new(&p.kafka, credentials(client, p).await?))
}

async fn credentials(client: &Client, p: &Pipeline) -> Result<Credentials, FetchError> {
    let secrets = SecretReader { api: Api::namespaced(client.clone(), p.name.namespace()), ns: p.name.namespace() };
    let ca_pem = match &p.secrets.kafka_ca {
        Some(ca) => Some(secrets.read(&ca.name, &ca.key).await?),
        None => None,
    };
    let sasl = match &p.secrets.kafka_sasl {
        Some(s) => Some((
            secrets.read(&s.secret_name, &s.username_key).await?,
            secrets.read(&s.secret_name, &s.password_key).await?,
        )),
        None => None,
    };
    Ok(Credentials { ca_pem, sasl })
}

struct SecretReader<'a> {
    api: Api<Secret>,
    ns: &'a str,
}

impl SecretReader<'_> {
    async fn read(&self, name: &str, key: &str) -> Result<String, FetchError> {
        let secret = self.api.get(name).await.map_err(|source| FetchError::Secret {
            namespace: self.ns.into(),
            name: name.into(),
            source,
        })?;
        let value = secret.data.as_ref().and_then(|d| d.get(key)).ok_or_else(|| FetchError::MissingKey {
            namespace: self.ns.into(),
            name: name.into(),
            key: key.into(),
        })?;
        Ok(String::from_utf8_lossy(&value.0).trim_end_matches(['\n', '\r']).to_owned())
    }
}
