//! Exponential backoff with jitter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct Backoff {
    initial: Duration,
    max: Duration,
    seed: AtomicU64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Self { initial, max, seed: AtomicU64::new(seed | 1) }
    }

    /// The wait before retry number `attempt` (0-based): between half and all of `initial * 2^attempt`, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let full = self.initial.saturating_mul(1u32 << attempt.min(20)).min(self.max);
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed.store(x, Ordering::Relaxed);
        let fraction = 0.5 + (x % 1000) as f64 / 2000.0;
        full.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_cap_and_jitter() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for (attempt, full) in [(0, 100), (1, 200), (3, 800), (4, 1000), (30, 1000)] {
            let d = b.delay(attempt).as_millis() as u64;
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d} ms not in [{}, {full}]", full / 2);
        }
    }
}
