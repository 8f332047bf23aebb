//! Where the certificates live between replicas and restarts: one Secret in the operator's namespace, created by
//! whichever replica comes first, renewed under optimistic concurrency; and the webhook configuration whose
//! `caBundle` the operator keeps equal to that Secret's CA.

use super::certs::{Material, Renewal};
use super::AdmissionError;
use chrono::{DateTime, Utc};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeMap;

const NOT_AFTER: &str = "logpipe.dev/not-after";
const HOSTS: &str = "logpipe.dev/hosts";
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
        let (wanted, version) = match current.as_ref().map(|s| (material(s), s.metadata.resource_version.clone())) {
            None => (Material::generate(&settings.hosts, now)?, None),
            Some((None, version)) => {
                tracing::warn!(secret = %what(), "unreadable certificates: making a new CA");
                (Material::generate(&settings.hosts, now)?, version)
            }
            Some((Some(stored), version)) => match stored.renewal(&settings.hosts, now) {
                Renewal::Keep => return Ok(stored),
                why => {
                    tracing::info!(secret = %what(), ?why, "renewing the admission webhook's certificate");
                    (stored.renew(&settings.hosts, now)?, version)
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
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    let data = BTreeMap::from([
        ("ca.crt".to_owned(), bytes(&m.ca_cert)),
        ("ca.key".to_owned(), bytes(&m.ca_key)),
        ("tls.crt".to_owned(), bytes(&m.cert)),
        ("tls.key".to_owned(), bytes(&m.key)),
    ]);
    let annotations =
        BTreeMap::from([(NOT_AFTER.to_owned(), m.not_after.to_rfc3339()), (HOSTS.to_owned(), m.hosts.join(","))]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            annotations: Some(annotations),
            labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_owned(), "logpipe-operator".to_owned())])),
            resource_version,
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

fn material(secret: &Secret) -> Option<Material> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| String::from_utf8(data.get(key)?.0.clone()).ok();
    let annotations = secret.metadata.annotations.as_ref()?;
    let not_after = DateTime::parse_from_rfc3339(annotations.get(NOT_AFTER)?).ok()?.with_timezone(&Utc);
    let hosts = annotations.get(HOSTS)?.split(',').filter(|h| !h.is_empty()).map(str::to_owned).collect();
    Some(Material {
        ca_cert: text("ca.crt")?,
        ca_key: text("ca.key")?,
        cert: text("tls.crt")?,
        key: text("tls.key")?,
        hosts,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_survives_the_secret() {
        let hosts = vec!["logpipe-webhook.logpipe-system.svc".to_owned()];
        let made = Material::generate(&hosts, Utc::now()).unwrap();
        let mut secret = to_secret("logpipe-webhook-tls", &made, None);
        assert_eq!(material(&secret), Some(made));
        secret.data.as_mut().unwrap().remove("ca.key");
        assert_eq!(material(&secret), None, "a Secret without the CA key is made anew");
    }
}
