//! Exponential backoff with jitter, capped: the one schedule of every retry
//! loop in Ferry (the engine's flows, topic tasks and stalled partitions,
//! and [`retry`](crate::retry::retry) for commands).
//!
//! The delay doubles per attempt up to the cap, and each wait is drawn from
//! its upper half: many partitions or topics refused at the same moment
//! (a target broker restarting) then come back spread out rather than all
//! in the same instant, and no wait is ever longer than the cap.

use std::hash::BuildHasher;
use std::time::Duration;

/// The longest any retry waits.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The waits between attempts of one retry loop: create one per loop, ask
/// [`next_wait`](Backoff::next_wait) before each retry, and
/// [`reset`](Backoff::reset) after an attempt that made progress.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    /// The ceiling of the next wait.
    ceiling: Duration,
}

impl Backoff {
    /// Waits start around `first` and never exceed `cap`.
    pub fn new(first: Duration, cap: Duration) -> Self {
        let first = first.min(cap);
        Self {
            first,
            cap,
            ceiling: first,
        }
    }

    /// The engine's usual schedule: from 1 s up to [`MAX_BACKOFF`].
    pub fn standard() -> Self {
        Self::new(Duration::from_secs(1), MAX_BACKOFF)
    }

    /// The wait before the next attempt: a random point in the upper half
    /// of the current ceiling, which then doubles (up to the cap).
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = (ceiling * 2).min(self.cap);
        let half = ceiling / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            random() % (spread + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// Starts the schedule over, after an attempt that made progress.
    pub fn reset(&mut self) {
        self.ceiling = self.first;
    }
}

/// A random number from the standard library's per-process hash keys (the
/// engine needs no cryptographic quality, only spread).
fn random() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    std::collections::hash_map::RandomState::new().hash_one(CALLS.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_stay_in_the_upper_half_and_never_pass_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut ceiling = Duration::from_secs(1);
        for _ in 0..20 {
            let wait = b.next_wait();
            assert!(wait <= ceiling, "{wait:?} above {ceiling:?}");
            assert!(wait >= ceiling / 2, "{wait:?} below half of {ceiling:?}");
            ceiling = (ceiling * 2).min(Duration::from_secs(60));
        }
        assert_eq!(ceiling, Duration::from_secs(60));
        b.reset();
        assert!(b.next_wait() <= Duration::from_secs(1));
    }

    #[test]
    fn waits_are_spread() {
        let mut waits = std::collections::BTreeSet::new();
        for _ in 0..16 {
            waits.insert(Backoff::standard().next_wait());
        }
        assert!(waits.len() > 1, "every first wait was {waits:?}");
    }
}
