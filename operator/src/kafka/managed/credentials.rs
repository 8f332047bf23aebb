//! A `SASL_SSL` managed Kafka's secrets, made by the operator before any node starts: a CA and the one
//! certificate every node serves (renewed under the same CA before its end), and a SCRAM password for each user.
//! They are state, not desired objects: a password made anew would no longer match the credentials the
//! controllers stored when they formatted their storage, so a Secret is created once and never rewritten, only
//! completed (a user missing) or renewed (the certificate). Both carry the pipeline as owner, so they go with it.

use super::admin::Access;
use crate::build::{labels, Component};
use crate::certs::{CertError, Material, Profile, Renewal};
use crate::crd::ListenerSecurity;
use crate::model::Pipeline;
use crate::names::PipelineName;
use crate::validate::ManagedUser;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::ByteString;
use kube::api::PostParams;
use kube::Api;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;

const PROFILE: Profile = Profile { ca_name: "logpipe managed Kafka CA", client_auth: true };
const ATTEMPTS: usize = 3;
/// Random bytes of a password, written as hex: nothing in it needs quoting in a shell, sed or JAAS line.
const PASSWORD_BYTES: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error(transparent)]
    Certificate(#[from] CertError),
    #[error("no random bytes for a password")]
    Random,
    #[error("the Secret {0} exists and is not this pipeline's: remove it or rename the pipeline")]
    Taken(String),
    #[error("the Secret {0} changed under every attempt to write it")]
    Contended(String),
}

impl CredentialsError {
    pub fn kube_error(&self) -> Option<&kube::Error> {
        match self {
            CredentialsError::Kube { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What the operator itself needs to reach the cluster, and the digest that rolls the nodes on a renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub ca_pem: String,
    pub operator_password: String,
    /// Digest of the certificate the nodes serve.
    pub certificate: String,
}

/// The names every node's certificate is for: each node by its headless Service, and the bootstrap Service.
pub fn hosts(name: &PipelineName) -> Vec<String> {
    let ns = name.namespace();
    vec![
        format!("{}.{ns}.svc", name.kafka_bootstrap()),
        format!("*.{}.{ns}.svc", name.kafka_brokers()),
        format!("*.{}.{ns}.svc", name.kafka_controllers()),
    ]
}

/// For a `SASL_SSL` cluster: its secrets made or renewed, the certificate's digest put on the model (so a renewal
/// rolls the nodes), and how the operator's admin client connects. Plaintext for any other pipeline.
pub async fn prepare(
    client: &kube::Client,
    p: &mut Pipeline,
    owner: &OwnerReference,
) -> Result<Access, CredentialsError> {
    let Some(cluster) = p.managed.as_mut().filter(|m| m.security == ListenerSecurity::SaslSsl) else {
        return Ok(Access::Plaintext);
    };
    let made = ensure(client, &p.name, owner, Utc::now()).await?;
    cluster.certificate = Some(made.certificate);
    let server_name = p.kafka.bootstrap_servers.rsplit_once(':').map_or("", |(host, _)| host).to_owned();
    Ok(Access::SaslSsl {
        ca_pem: made.ca_pem,
        server_name,
        username: ManagedUser::Operator.name().to_owned(),
        password: made.operator_password,
    })
}

/// Makes what is missing, renews a certificate near its end, and returns what the operator connects with.
pub async fn ensure(
    client: &kube::Client,
    name: &PipelineName,
    owner: &OwnerReference,
    now: DateTime<Utc>,
) -> Result<Credentials, CredentialsError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), name.namespace());
    let stored = Stored { api: &api, name, owner };
    let tls = stored.write(&name.kafka_tls(), |current| certificate(current, name, now)).await?;
    let users = stored.write(&name.kafka_users(), users).await?;
    let material = Material::from_secret(&tls).ok_or_else(|| CredentialsError::Contended(name.kafka_tls()))?;
    let password_key = ManagedUser::Operator.password_key();
    let operator_password =
        text(&users, &password_key).ok_or_else(|| CredentialsError::Contended(name.kafka_users()))?;
    Ok(Credentials {
        certificate: crate::build::digest([material.cert.as_str()]),
        ca_pem: material.ca_cert,
        operator_password,
    })
}

struct Stored<'a> {
    api: &'a Api<Secret>,
    name: &'a PipelineName,
    owner: &'a OwnerReference,
}

impl Stored<'_> {
    /// Reads the Secret `secret`; `wanted` says what it must become (`None`: it is fine as it is). Creates or
    /// replaces it under optimistic concurrency, and reads again when another writer came first.
    async fn write(
        &self,
        secret: &str,
        wanted: impl Fn(Option<&Secret>) -> Result<Option<Secret>, CredentialsError>,
    ) -> Result<Secret, CredentialsError> {
        let what = || format!("the Secret {}/{secret}", self.name.namespace());
        for _ in 0..ATTEMPTS {
            let current =
                self.api.get_opt(secret).await.map_err(|source| CredentialsError::Kube { what: what(), source })?;
            if let Some(found) = &current {
                let ours = found.metadata.owner_references.iter().flatten().any(|o| o.uid == self.owner.uid);
                if !ours {
                    return Err(CredentialsError::Taken(what()));
                }
            }
            let Some(mut next) = wanted(current.as_ref())? else {
                return current.ok_or_else(|| CredentialsError::Contended(what()));
            };
            next.metadata.name = Some(secret.to_owned());
            next.metadata.labels = Some(labels(self.name, Component::KafkaBroker));
            next.metadata.owner_references = Some(vec![self.owner.clone()]);
            let written = match &current {
                None => self.api.create(&PostParams::default(), &next).await,
                Some(found) => {
                    next.metadata.resource_version = found.metadata.resource_version.clone();
                    self.api.replace(secret, &PostParams::default(), &next).await
                }
            };
            match written {
                Ok(done) => return Ok(done),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(source) => return Err(CredentialsError::Kube { what: what(), source }),
            }
        }
        Err(CredentialsError::Contended(what()))
    }
}

fn certificate(
    current: Option<&Secret>,
    name: &PipelineName,
    now: DateTime<Utc>,
) -> Result<Option<Secret>, CredentialsError> {
    let hosts = hosts(name);
    let material = match current.map(Material::from_secret) {
        None | Some(None) => Material::generate(PROFILE, &hosts, now)?,
        Some(Some(stored)) => match stored.renewal(&hosts, now) {
            Renewal::Keep => return Ok(None),
            why => {
                tracing::info!(pipeline = %name, ?why, "renewing the managed Kafka's certificate");
                stored.renew(PROFILE, &hosts, now)?
            }
        },
    };
    Ok(Some(material.to_secret(&name.kafka_tls())))
}

/// Every user's name and password; a password once made is kept.
fn users(current: Option<&Secret>) -> Result<Option<Secret>, CredentialsError> {
    let mut data = current.and_then(|s| s.data.clone()).unwrap_or_default();
    let before = data.len();
    for user in ManagedUser::ALL {
        data.entry(user.username_key()).or_insert_with(|| ByteString(user.name().as_bytes().to_vec()));
        if let std::collections::btree_map::Entry::Vacant(slot) = data.entry(user.password_key()) {
            slot.insert(ByteString(password()?.into_bytes()));
        }
    }
    if current.is_some() && data.len() == before {
        return Ok(None);
    }
    Ok(Some(Secret { data: Some(data), type_: Some("Opaque".into()), ..Secret::default() }))
}

fn password() -> Result<String, CredentialsError> {
    let mut bytes = [0u8; PASSWORD_BYTES];
    SystemRandom::new().fill(&mut bytes).map_err(|_| CredentialsError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    let data: &BTreeMap<String, ByteString> = secret.data.as_ref()?;
    String::from_utf8(data.get(key)?.0.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_completed_and_never_changed() {
        let made = users(None).unwrap().unwrap();
        let data = made.data.as_ref().unwrap();
        assert_eq!(data.len(), 8);
        for user in ManagedUser::ALL {
            assert_eq!(text(&made, &user.username_key()).unwrap(), user.name());
            let password = text(&made, &user.password_key()).unwrap();
            assert_eq!(password.len(), 2 * PASSWORD_BYTES);
            assert!(password.bytes().all(|b| b.is_ascii_hexdigit()), "{password}");
        }
        assert_eq!(users(Some(&made)).unwrap(), None, "a complete Secret is left alone");
        let mut partial = made.clone();
        partial.data.as_mut().unwrap().remove(&ManagedUser::Indexer.password_key());
        let completed = users(Some(&partial)).unwrap().unwrap();
        let key = ManagedUser::Collector.password_key();
        assert_eq!(text(&completed, &key), text(&made, &key), "existing passwords stay");
        assert_ne!(
            text(&completed, &ManagedUser::Indexer.password_key()),
            text(&made, &ManagedUser::Indexer.password_key())
        );
    }

    #[test]
    fn the_certificate_names_every_node_and_the_bootstrap_service() {
        let name = PipelineName::new("team-a", "logs").unwrap();
        assert_eq!(
            hosts(&name),
            ["logs-kafka-bootstrap.team-a.svc", "*.logs-kafka.team-a.svc", "*.logs-kraft.team-a.svc"]
        );
        let now = Utc::now();
        let made = certificate(None, &name, now).unwrap().unwrap();
        assert_eq!(certificate(Some(&made), &name, now).unwrap(), None, "a fresh certificate is kept");
        let late = now + chrono::Duration::days(340);
        let renewed = certificate(Some(&made), &name, late).unwrap().unwrap();
        let (before, after) = (Material::from_secret(&made).unwrap(), Material::from_secret(&renewed).unwrap());
        assert_eq!(before.ca_cert, after.ca_cert, "renewed under the same CA");
        assert_ne!(before.cert, after.cert);
    }
}
