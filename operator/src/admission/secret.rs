//! Where the certificates live between replicas and restarts: one Secret in the operator's namespace, created by
//! whichever replica comes first, renewed under optimistic concurrency; and the webhook configuration whose
//! `caBundle` the operator keeps equal to that Secret's CA.

use super::{AdmissionError, PROFILE};
use crate::build::MANAGED_BY;
use crate::certs::{Material, Renewal};
use chrono::{DateTime, Utc};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeMap;

const ATTEMPTS: usize = 3;

/// Where the webhook's certificates are kept, what they are for, and which configuration trusts them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub namespace: String,
    pub secret: String,
    /// The ValidatingWebhookConfiguration whose `caBundle` the operator fills in; none when another tool does.
    pub configuration: Option<String>,
    /// The names the API server reaches the webhook by: `<service>.<namespace>.svc` in a cluster.
    pub hosts: Vec<String>,
}

/// The Secret's certificates, made or renewed first if they are missing, expiring, or for other hosts.
pub async fn ensure(client: &Client, settings: &Settings, now: DateTime<Utc>) -> Result<Material, AdmissionError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
    let what = || format!("the Secret {}/{}", settings.namespace, settings.secret);
    for _ in 0..ATTEMPTS {
        let current = secrets.get_opt(&settings.secret).await.map_err(|e| AdmissionError::kube(what(), e))?;
        let (wanted, version) =
            match current.as_ref().map(|s| (Material::from_secret(s), s.metadata.resource_version.clone())) {
                None => (Material::generate(PROFILE, &settings.hosts, now)?, None),
                Some((None, version)) => {
                    tracing::warn!(secret = %what(), "unreadable certificates: making a new CA");
                    (Material::generate(PROFILE, &settings.hosts, now)?, version)
                }
                Some((Some(stored), version)) => match stored.renewal(&settings.hosts, now) {
                    Renewal::Keep => return Ok(stored),
                    why => {
                        tracing::info!(secret = %what(), ?why, "renewing the admission webhook's certificate");
                        (stored.renew(PROFILE, &settings.hosts, now)?, version)
                    }
                },
            };
        let secret = to_secret(&settings.secret, &wanted, version.clone());
        let written = match version {
            None => secrets.create(&PostParams::default(), &secret).await,
            Some(_) => secrets.replace(&settings.secret, &PostParams::default(), &secret).await,
        };
        match written {
            Ok(_) => return Ok(wanted),
            // Another replica wrote first: read what it wrote.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(AdmissionError::kube(what(), e)),
        }
    }
    Err(AdmissionError::Contended(what()))
}

/// Puts the CA into every webhook of the configuration that does not carry it yet; true when it changed any.
pub async fn publish_ca(client: &Client, configuration: &str, ca_pem: &str) -> Result<bool, AdmissionError> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let what = || format!("the ValidatingWebhookConfiguration {configuration}");
    let current = api.get(configuration).await.map_err(|e| AdmissionError::kube(what(), e))?;
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let stale: Vec<_> = current
        .webhooks
        .iter()
        .flatten()
        .filter(|w| w.client_config.ca_bundle.as_ref() != Some(&bundle))
        .map(|w| json!({"name": w.name, "clientConfig": {"caBundle": bundle}}))
        .collect();
    if stale.is_empty() {
        return Ok(false);
    }
    // A strategic merge on the list's key, `name`, touches only these webhooks' caBundle.
    let patch = Patch::Strategic(json!({"webhooks": stale}));
    api.patch(configuration, &PatchParams::default(), &patch).await.map_err(|e| AdmissionError::kube(what(), e))?;
    Ok(true)
}

fn to_secret(name: &str, m: &Material, resource_version: Option<String>) -> Secret {
    let mut secret = m.to_secret(name);
    secret.metadata.labels = Some(BTreeMap::from([(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned())]));
    secret.metadata.resource_version = resource_version;
    secret
}
