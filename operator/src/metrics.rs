//! The operator's own metrics, served on /metrics with /healthz and /readyz.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Applied,
    Invalid,
    CleanedUp,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerdictLabel {
    verdict: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FailureLabel {
    step: &'static str,
    category: &'static str,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabel, Counter>,
    failures: Family<FailureLabel, Counter>,
    leader: Gauge,
    admission_reviews: Family<VerdictLabel, Counter>,
    certificate_expiry: Gauge,
    started: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("logpipe_operator");
        let reconciles = Family::<OutcomeLabel, Counter>::default();
        registry.register("reconciles", "Reconciles by outcome", reconciles.clone());
        let failures = Family::<FailureLabel, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Failed reconciles by the step that failed and its category",
            failures.clone(),
        );
        let leader = Gauge::default();
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        let admission_reviews = Family::<VerdictLabel, Counter>::default();
        registry.register(
            "admission_reviews",
            "LogPipeline admission requests this replica answered, by verdict",
            admission_reviews.clone(),
        );
        let certificate_expiry = Gauge::default();
        registry.register(
            "admission_certificate_expiry_timestamp_seconds",
            "When the admission webhook's serving certificate ends (Unix time); renewed 30 days before",
            certificate_expiry.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            leader,
            admission_reviews,
            certificate_expiry,
            started: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Applied => "applied",
            Outcome::Invalid => "invalid",
            Outcome::CleanedUp => "cleaned_up",
        };
        self.reconciles.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// A reconcile failed in `step`; `category` says whether a retry can fix it.
    pub fn failed(&self, step: &'static str, category: &'static str) {
        self.reconciles.get_or_create(&OutcomeLabel { outcome: "error" }).inc();
        self.failures.get_or_create(&FailureLabel { step, category }).inc();
    }

    /// An admission request answered; `verdict` is one of a small fixed set (valid, refused, ...).
    pub fn admission_review(&self, verdict: &'static str) {
        self.admission_reviews.get_or_create(&VerdictLabel { verdict }).inc();
    }

    pub fn set_certificate_expiry(&self, unix_seconds: i64) {
        self.certificate_expiry.set(unix_seconds);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Ready once connected to the API server, leader or standby.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Relaxed);
    }
}

impl logpipe_http::Health for Metrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn alive(&self) -> bool {
        true
    }

    fn ready(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }
}
