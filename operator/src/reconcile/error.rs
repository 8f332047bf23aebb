//! A failed reconcile: the step that failed, with its cause, and a category that says whether trying again can
//! help by itself. The step names the Warning Event (`<Step>Failed`) and, with the category, labels the metric.

use crate::apply::ApplyError;
use crate::fetch::FetchError;
use crate::kafka::managed::credentials::CredentialsError;
use crate::kafka::{ExternalError, ManagedError};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("fetch: {0}")]
    Fetch(#[from] FetchError),
    #[error("apply: {0}")]
    Apply(#[from] ApplyError),
    #[error("scaling the managed Kafka: {0}")]
    Scale(#[from] ManagedError),
    #[error("the managed Kafka's certificates and users: {0}")]
    Credentials(#[from] CredentialsError),
    #[error("writing the status of {name}: {source}")]
    Status { name: String, source: kube::Error },
    #[error("cleanup: {0}")]
    Cleanup(ApplyError),
    #[error("cleanup: deleting the topics: {0}")]
    CleanupTopics(#[from] ExternalError),
    #[error("{0} has no namespace or uid yet")]
    Incomplete(String),
    #[error("finalizer: {0}")]
    Finalizer(Box<kube::runtime::finalizer::Error<ReconcileError>>),
}

/// Whether waiting and trying again can fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// The API server or Kafka is busy, away, or changed under us (5xx, 429, 409, timeouts, I/O).
    Transient,
    /// The operator may not do it (401, 403): its RBAC needs fixing.
    Forbidden,
    /// Something the spec names does not exist (a Secret or one of its keys).
    Missing,
    /// The API server refused what the operator sent (400, 422): a bug, or a policy in the cluster.
    Rejected,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Transient => "transient",
            Category::Forbidden => "forbidden",
            Category::Missing => "missing",
            Category::Rejected => "rejected",
        }
    }
}

impl ReconcileError {
    /// The step that failed, as the reason prefix of its Event.
    pub fn step(&self) -> &'static str {
        match self {
            ReconcileError::Fetch(_) => "Fetch",
            ReconcileError::Apply(_) => "Apply",
            ReconcileError::Scale(_) => "Scale",
            ReconcileError::Credentials(_) => "Credentials",
            ReconcileError::Status { .. } => "Status",
            ReconcileError::Cleanup(_) | ReconcileError::CleanupTopics(_) => "Cleanup",
            ReconcileError::Incomplete(_) => "Read",
            ReconcileError::Finalizer(f) => match f.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => {
                    e.step()
                }
                _ => "Finalizer",
            },
        }
    }

    pub fn category(&self) -> Category {
        use kube::runtime::finalizer::Error as F;
        match self {
            ReconcileError::Fetch(FetchError::MissingKey { .. }) => Category::Missing,
            ReconcileError::Fetch(FetchError::Secret { source, .. }) if code(source) == Some(404) => Category::Missing,
            ReconcileError::Fetch(e) => e.kube_error().map_or(Category::Transient, of_kube),
            ReconcileError::Apply(e) | ReconcileError::Cleanup(e) => of_kube(e.source_error()),
            ReconcileError::Scale(ManagedError::Apply(e)) => of_kube(e.source_error()),
            ReconcileError::Scale(ManagedError::Kube { source, .. }) | ReconcileError::Status { source, .. } => {
                of_kube(source)
            }
            ReconcileError::Credentials(CredentialsError::Taken(_)) => Category::Rejected,
            ReconcileError::Credentials(e) => e.kube_error().map_or(Category::Transient, of_kube),
            ReconcileError::CleanupTopics(_) | ReconcileError::Incomplete(_) => Category::Transient,
            ReconcileError::Finalizer(f) => match f.as_ref() {
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.category(),
                F::AddFinalizer(source) | F::RemoveFinalizer(source) => of_kube(source),
                F::UnnamedObject | F::InvalidFinalizer => Category::Rejected,
            },
        }
    }
}

fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn of_kube(e: &kube::Error) -> Category {
    match code(e) {
        Some(401 | 403) => Category::Forbidden,
        Some(400 | 422) => Category::Rejected,
        Some(404) => Category::Missing,
        _ => Category::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(kube::core::Status::failure("test", "Test").with_code(code).boxed())
    }

    #[test]
    fn steps_and_categories() {
        let apply = |code| ApplyError::Patch { kind: "DaemonSet".into(), name: "x".into(), source: api(code) };
        let cases: Vec<(ReconcileError, &str, Category)> = vec![
            (apply(409).into(), "Apply", Category::Transient),
            (apply(503).into(), "Apply", Category::Transient),
            (apply(403).into(), "Apply", Category::Forbidden),
            (apply(422).into(), "Apply", Category::Rejected),
            (
                FetchError::MissingKey { namespace: "n".into(), name: "s".into(), key: "k".into() }.into(),
                "Fetch",
                Category::Missing,
            ),
            (
                FetchError::Secret { namespace: "n".into(), name: "s".into(), source: api(404) }.into(),
                "Fetch",
                Category::Missing,
            ),
            (ReconcileError::Status { name: "p".into(), source: api(500) }, "Status", Category::Transient),
            (
                ReconcileError::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(apply(403).into()))),
                "Apply",
                Category::Forbidden,
            ),
            (ManagedError::Kube { what: "x".into(), source: api(429) }.into(), "Scale", Category::Transient),
        ];
        for (error, step, category) in cases {
            assert_eq!((error.step(), error.category()), (step, category), "{error}");
        }
    }
}
