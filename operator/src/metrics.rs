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
struct FailureLabel {
    step: &'static str,
    category: &'static str,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabel, Counter>,
    failures: Family<FailureLabel, Counter>,
    leader: Gauge,
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
        Self { registry, reconciles, failures, leader, started: AtomicBool::new(false) }
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
