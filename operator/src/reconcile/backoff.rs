//! How soon a LogPipeline whose reconcile failed is tried again: doubling with each failure in a row, per object,
//! so one broken pipeline neither hammers the API server or Kafka nor waits long once the fault is gone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const FIRST: Duration = Duration::from_secs(2);
const MOST: Duration = Duration::from_secs(300);

/// Failures in a row, by `namespace/name`.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Counts one more failure of `key` and says how long to wait before the next try.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = failures.entry(key.to_owned()).or_default();
        *n = n.saturating_add(1);
        delay(*n)
    }

    /// A reconcile of `key` succeeded: the next failure starts from the first delay again.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
    }
}

/// The wait after the `n`th failure in a row (n >= 1).
pub fn delay(n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(MOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let cases = [(1, 2), (2, 4), (3, 8), (5, 32), (8, 256), (9, 300), (40, 300), (u32::MAX, 300)];
        for (n, secs) in cases {
            assert_eq!(delay(n), Duration::from_secs(secs), "failure {n}");
        }
    }

    #[test]
    fn per_object_and_reset_by_a_success() {
        let b = Backoff::default();
        assert_eq!(b.failed("ns/a"), Duration::from_secs(2));
        assert_eq!(b.failed("ns/a"), Duration::from_secs(4));
        assert_eq!(b.failed("ns/b"), Duration::from_secs(2), "another pipeline has its own count");
        b.succeeded("ns/a");
        assert_eq!(b.failed("ns/a"), Duration::from_secs(2));
    }
}
