//! How long the moves under way have run, so that a reassignment that never finishes (a target broker that
//! stays down, a stuck fetcher) is noticed rather than waited on forever. Pure: the caller brings the clock.

use k8s_openapi::jiff::Timestamp;
use std::time::Duration;

/// The clock of the moves under way after this look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moves {
    /// Nothing moves.
    Idle,
    /// Moves have run since then.
    Since(Timestamp),
    /// Moves have run longer than allowed: cancel them; the next plan starts a fresh clock.
    TimedOut,
}

/// `since` is the clock kept in status; `reassigning` whether any partition is being reassigned now; `starting`
/// whether this step starts moves.
pub fn moves(since: Option<Timestamp>, reassigning: bool, starting: bool, now: Timestamp, timeout: Duration) -> Moves {
    match (reassigning, since) {
        (true, Some(since)) if elapsed(since, now) >= timeout => Moves::TimedOut,
        (true, Some(since)) => Moves::Since(since),
        // Moves found running with no clock (an operator that lost its status): they are timed from now.
        (true, None) => Moves::Since(now),
        (false, _) if starting => Moves::Since(now),
        (false, _) => Moves::Idle,
    }
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    let ms = now.as_millisecond().saturating_sub(since.as_millisecond());
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_of_the_moves() {
        let t = |s: i64| Timestamp::from_second(1_700_000_000 + s).unwrap();
        let timeout = Duration::from_secs(60);
        let cases = [
            ("nothing moves", None, false, false, 0, Moves::Idle),
            ("moves start", None, false, true, 5, Moves::Since(t(5))),
            ("moves run", Some(t(5)), true, false, 30, Moves::Since(t(5))),
            ("just under the timeout", Some(t(5)), true, false, 64, Moves::Since(t(5))),
            ("at the timeout", Some(t(5)), true, false, 65, Moves::TimedOut),
            ("found running without a clock", None, true, false, 100, Moves::Since(t(100))),
            ("finished: the clock stops", Some(t(5)), false, false, 500, Moves::Idle),
            ("finished and the next batch starts", Some(t(5)), false, true, 500, Moves::Since(t(500))),
            ("a clock in the future (skew)", Some(t(90)), true, false, 30, Moves::Since(t(90))),
        ];
        for (what, since, reassigning, starting, now, want) in cases {
            assert_eq!(moves(since, reassigning, starting, t(now), timeout), want, "{what}");
        }
    }
}
