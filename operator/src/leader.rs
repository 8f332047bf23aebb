//! Leader election with a coordination.k8s.io Lease, so two operator replicas never reconcile at once.
//! The holder renews the lease; another replica takes it over only after it expired. Every write carries the
//! resourceVersion it read, so two replicas racing for an expired lease cannot both win.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's name in the lease (its pod name).
    pub identity: String,
    /// How long a lease holds without renewal.
    pub duration: Duration,
}

impl LeaseConfig {
    fn renew_every(&self) -> Duration {
        self.duration / 3
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lease {namespace}/{name}: {source}")]
    Api { namespace: String, name: String, source: kube::Error },
    #[error("lost the lease {0}: not renewed within its duration")]
    Lost(String),
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Held,
    HeldByOther,
}

pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
}

impl Elector {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self { api: Api::namespaced(client, &config.namespace), config }
    }

    /// Returns once this replica holds the lease.
    pub async fn acquire(&self) -> Result<(), LeaderError> {
        loop {
            if self.attempt().await? == Attempt::Held {
                return Ok(());
            }
            tokio::time::sleep(self.config.renew_every()).await;
        }
    }

    /// Renews the lease until a renewal has not succeeded for the lease's duration; then another replica may hold
    /// it, and this one must stop reconciling.
    pub async fn hold(&self) -> LeaderError {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.config.renew_every()).await;
            match self.attempt().await {
                Ok(Attempt::Held) => last_renewal = tokio::time::Instant::now(),
                Ok(Attempt::HeldByOther) => return LeaderError::Lost(self.config.name.clone()),
                Err(error) => tracing::warn!(%error, "renewing the lease"),
            }
            if last_renewal.elapsed() >= self.config.duration {
                return LeaderError::Lost(self.config.name.clone());
            }
        }
    }

    /// Gives the lease up on shutdown, so a standby takes over without waiting for it to expire.
    pub async fn release(&self) {
        let Ok(mut lease) = self.api.get(&self.config.name).await else { return };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(&self.config.identity) {
            return;
        }
        spec.holder_identity = None;
        if let Err(error) = self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
            tracing::warn!(%error, "releasing the lease");
        }
    }

    async fn attempt(&self) -> Result<Attempt, LeaderError> {
        let now = Timestamp::now();
        let existing = self.api.get_opt(&self.config.name).await.map_err(|e| self.error(e))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.config.name.clone()), ..Default::default() },
                spec: Some(self.spec(now, None)),
            };
            return self.write(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let ours = spec.holder_identity.as_deref() == Some(&self.config.identity);
        if !ours && !expired(&spec, now) {
            return Ok(Attempt::HeldByOther);
        }
        let mut next = self.spec(now, Some(&spec));
        if ours {
            next.acquire_time = spec.acquire_time.clone();
        }
        lease.spec = Some(next);
        self.write(self.api.replace(&self.config.name, &PostParams::default(), &lease).await)
    }

    fn spec(&self, now: Timestamp, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        let taken_over = previous.is_some_and(|p| p.holder_identity.as_deref() != Some(&self.config.identity));
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.duration.as_secs().max(1) as i32),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions + i32::from(taken_over)),
            ..Default::default()
        }
    }

    /// A conflict means another replica wrote first: it holds the lease.
    fn write(&self, result: Result<Lease, kube::Error>) -> Result<Attempt, LeaderError> {
        match result {
            Ok(_) => Ok(Attempt::Held),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::HeldByOther),
            Err(e) => Err(self.error(e)),
        }
    }

    fn error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api { namespace: self.config.namespace.clone(), name: self.config.name.clone(), source }
    }
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    spec.holder_identity.is_none() || renewed.0 + SignedDuration::from_secs(i64::from(seconds)) < now
}
