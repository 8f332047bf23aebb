//! The webhook's certificate authority and the serving certificate it signs. The API server trusts the CA (the
//! webhook configuration's `caBundle`); every replica serves the same certificate, kept in one Secret, so the CA
//! changes only when that Secret is deleted, and the serving certificate is renewed under the same CA.

use super::AdmissionError;
use chrono::{DateTime, Datelike, Duration, Utc};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use std::net::IpAddr;

const CA_NAME: &str = "logpipe-operator admission CA";
const CA_DAYS: i64 = 3650;
const SERVING_DAYS: i64 = 365;
/// A serving certificate this close to its end is renewed, leaving weeks for a failing renewal to be noticed.
const RENEW_DAYS: i64 = 30;

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
    pub fn generate(hosts: &[String], now: DateTime<Utc>) -> Result<Self, AdmissionError> {
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params(now, now + Duration::days(CA_DAYS))?.self_signed(&ca_key)?;
        Self::renewed(ca_cert.pem(), ca_key.serialize_pem(), hosts, now)
    }

    /// A new serving certificate for `hosts`, signed by this material's CA.
    pub fn renew(&self, hosts: &[String], now: DateTime<Utc>) -> Result<Self, AdmissionError> {
        Self::renewed(self.ca_cert.clone(), self.ca_key.clone(), hosts, now)
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

    fn renewed(ca_cert: String, ca_key: String, hosts: &[String], now: DateTime<Utc>) -> Result<Self, AdmissionError> {
        // Only the issuer's name and key go into what it signs: the same name and the stored key sign as the
        // stored CA did.
        let issuer = Issuer::new(ca_params(now, now)?, KeyPair::from_pem(&ca_key)?);
        let key = KeyPair::generate()?;
        let not_after = now + Duration::days(SERVING_DAYS);
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, hosts.first().map_or("logpipe-operator", String::as_str));
        params.subject_alt_names = hosts.iter().map(|h| san(h)).collect::<Result<_, _>>()?;
        params.extended_key_usages.push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        validity(&mut params, now, not_after);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Self { ca_cert, ca_key, cert: cert.pem(), key: key.serialize_pem(), hosts: hosts.to_vec(), not_after })
    }
}

fn ca_params(from: DateTime<Utc>, until: DateTime<Utc>) -> Result<CertificateParams, AdmissionError> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, CA_NAME);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut ca, from, until);
    Ok(ca)
}

fn san(host: &str) -> Result<SanType, AdmissionError> {
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

    #[test]
    fn serving_certificates_are_renewed_for_new_hosts_or_a_near_end() {
        let hosts = vec!["logpipe-webhook.logpipe-system.svc".to_owned(), "127.0.0.1".to_owned()];
        let made = Material::generate(&hosts, at("2026-01-01T00:00:00Z")).unwrap();
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
        let renewed = made.renew(&hosts, at("2026-12-15T00:00:00Z")).unwrap();
        assert_eq!((&renewed.ca_cert, &renewed.ca_key), (&made.ca_cert, &made.ca_key), "the CA stays");
        assert_ne!(renewed.key, made.key);
        assert_eq!(renewed.renewal(&hosts, at("2026-12-15T00:00:00Z")), Renewal::Keep);
    }

    #[test]
    fn a_host_that_is_no_name_is_refused() {
        let error = Material::generate(&["not a host name ü".to_owned()], Utc::now()).unwrap_err();
        assert!(matches!(error, AdmissionError::Certificate(_)), "{error}");
    }
}
