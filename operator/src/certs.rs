//! Certificate authorities the operator makes, and the certificates they sign: the admission webhook's serving
//! certificate, and a managed Kafka's. Each CA and its certificate live in one Secret, so the CA changes only when
//! that Secret is deleted, and the certificate is renewed under the same CA before its end.

use chrono::{DateTime, Datelike, Duration, Utc};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use std::collections::BTreeMap;
use std::net::IpAddr;

const CA_DAYS: i64 = 3650;
const SERVING_DAYS: i64 = 365;
/// A serving certificate this close to its end is renewed, leaving weeks for a failing renewal to be noticed.
const RENEW_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("making a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// What a CA is called and what its certificates are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub ca_name: &'static str,
    /// Also a client certificate: Kafka brokers present theirs to the controllers.
    pub client_auth: bool,
}

/// Secret keys of the material; `kubernetes.io/tls` names for the certificate and key.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const CERT: &str = "tls.crt";
pub const KEY: &str = "tls.key";
const NOT_AFTER: &str = "logpipe.dev/not-after";
const HOSTS: &str = "logpipe.dev/hosts";

/// PEM text of the CA and of the serving certificate and key, and what the serving certificate was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
    pub hosts: Vec<String>,
    pub not_after: DateTime<Utc>,
}

/// Why stored material cannot be served as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Keep,
    /// Another set of host names is asked for (a renamed Service, a changed flag).
    HostsChanged,
    Expiring,
}

impl Material {
    /// A new CA and a serving certificate it signed for `hosts` (DNS names or IP addresses).
    pub fn generate(profile: Profile, hosts: &[String], now: DateTime<Utc>) -> Result<Self, CertError> {
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params(profile, now, now + Duration::days(CA_DAYS))?.self_signed(&ca_key)?;
        Self::renewed(profile, ca_cert.pem(), ca_key.serialize_pem(), hosts, now)
    }

    /// A new serving certificate for `hosts`, signed by this material's CA.
    pub fn renew(&self, profile: Profile, hosts: &[String], now: DateTime<Utc>) -> Result<Self, CertError> {
        Self::renewed(profile, self.ca_cert.clone(), self.ca_key.clone(), hosts, now)
    }

    pub fn renewal(&self, hosts: &[String], now: DateTime<Utc>) -> Renewal {
        if self.hosts != hosts {
            Renewal::HostsChanged
        } else if self.not_after - now < Duration::days(RENEW_DAYS) {
            Renewal::Expiring
        } else {
            Renewal::Keep
        }
    }

    fn renewed(
        profile: Profile,
        ca_cert: String,
        ca_key: String,
        hosts: &[String],
        now: DateTime<Utc>,
    ) -> Result<Self, CertError> {
        // Only the issuer's name and key go into what it signs: the same name and the stored key sign as the
        // stored CA did.
        let issuer = Issuer::new(ca_params(profile, now, now)?, KeyPair::from_pem(&ca_key)?);
        let key = KeyPair::generate()?;
        let not_after = now + Duration::days(SERVING_DAYS);
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, hosts.first().map_or("logpipe-operator", String::as_str));
        params.subject_alt_names = hosts.iter().map(|h| san(h)).collect::<Result<_, _>>()?;
        params.extended_key_usages.push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        if profile.client_auth {
            params.extended_key_usages.push(rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        }
        validity(&mut params, now, not_after);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Self { ca_cert, ca_key, cert: cert.pem(), key: key.serialize_pem(), hosts: hosts.to_vec(), not_after })
    }

    /// The Secret's data and annotations holding this material.
    pub fn to_secret(&self, name: &str) -> Secret {
        let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
        let data = BTreeMap::from([
            (CA_CERT.to_owned(), bytes(&self.ca_cert)),
            (CA_KEY.to_owned(), bytes(&self.ca_key)),
            (CERT.to_owned(), bytes(&self.cert)),
            (KEY.to_owned(), bytes(&self.key)),
        ]);
        let annotations = BTreeMap::from([
            (NOT_AFTER.to_owned(), self.not_after.to_rfc3339()),
            (HOSTS.to_owned(), self.hosts.join(",")),
        ]);
        Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.to_owned()),
                annotations: Some(annotations),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(data),
            ..Secret::default()
        }
    }

    /// The material a Secret holds; none when any part is missing or unreadable.
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        let text = |key: &str| String::from_utf8(data.get(key)?.0.clone()).ok();
        let annotations = secret.metadata.annotations.as_ref()?;
        let not_after = DateTime::parse_from_rfc3339(annotations.get(NOT_AFTER)?).ok()?.with_timezone(&Utc);
        let hosts = annotations.get(HOSTS)?.split(',').filter(|h| !h.is_empty()).map(str::to_owned).collect();
        Some(Self {
            ca_cert: text(CA_CERT)?,
            ca_key: text(CA_KEY)?,
            cert: text(CERT)?,
            key: text(KEY)?,
            hosts,
            not_after,
        })
    }
}

fn ca_params(profile: Profile, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<CertificateParams, CertError> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, profile.ca_name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut ca, from, until);
    Ok(ca)
}

fn san(host: &str) -> Result<SanType, CertError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => Ok(SanType::DnsName(host.try_into()?)),
    }
}

/// Whole days in UTC, starting the day before `from` so that a clock a little behind accepts the certificate.
fn validity(params: &mut CertificateParams, from: DateTime<Utc>, until: DateTime<Utc>) {
    let day = |t: DateTime<Utc>| rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8);
    (params.not_before, params.not_after) = (day(from - Duration::days(1)), day(until));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    const PROFILE: Profile = Profile { ca_name: "test CA", client_auth: false };

    #[test]
    fn serving_certificates_are_renewed_for_new_hosts_or_a_near_end() {
        let hosts = vec!["logpipe-webhook.logpipe-system.svc".to_owned(), "127.0.0.1".to_owned()];
        let made = Material::generate(PROFILE, &hosts, at("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(made.not_after, at("2027-01-01T00:00:00Z"));
        let cases = [
            (&hosts[..], "2026-06-01T00:00:00Z", Renewal::Keep),
            (&hosts[..], "2026-12-02T00:00:00Z", Renewal::Keep),
            (&hosts[..], "2026-12-02T00:00:01Z", Renewal::Expiring),
            (&hosts[..1], "2026-06-01T00:00:00Z", Renewal::HostsChanged),
        ];
        for (asked, now, want) in cases {
            assert_eq!(made.renewal(asked, at(now)), want, "{asked:?} at {now}");
        }
        let renewed = made.renew(PROFILE, &hosts, at("2026-12-15T00:00:00Z")).unwrap();
        assert_eq!((&renewed.ca_cert, &renewed.ca_key), (&made.ca_cert, &made.ca_key), "the CA stays");
        assert_ne!(renewed.key, made.key);
        assert_eq!(renewed.renewal(&hosts, at("2026-12-15T00:00:00Z")), Renewal::Keep);
    }

    #[test]
    fn a_host_that_is_no_name_is_refused() {
        let error = Material::generate(PROFILE, &["not a host name ü".to_owned()], Utc::now()).unwrap_err();
        assert!(matches!(error, CertError::Certificate(_)), "{error}");
    }

    #[test]
    fn material_survives_the_secret() {
        let hosts = vec!["logpipe-webhook.logpipe-system.svc".to_owned()];
        let made = Material::generate(PROFILE, &hosts, Utc::now()).unwrap();
        let mut secret = made.to_secret("logpipe-webhook-tls");
        assert_eq!(Material::from_secret(&secret), Some(made));
        secret.data.as_mut().unwrap().remove(CA_KEY);
        assert_eq!(Material::from_secret(&secret), None, "a Secret without the CA key is made anew");
    }
}
