//! Retry delays: capped exponential backoff with *decorrelated jitter* (the AWS Architecture
//! Blog's "Exponential Backoff And Jitter"). Each delay is drawn uniformly from
//! `[min, 3 × previous delay]`, capped at `max`:
//! - never shorter than `min`, so a failing peer is not hammered in a tight loop;
//! - grows about ×2 per failure on average, up to `max`;
//! - consecutive delays are random, so many processes retrying after the same outage
//!   spread out instead of arriving in waves.
//!
//! `reset()` after a success starts again from `min`.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    previous: Duration,
}

impl Backoff {
    /// Delays from `min` up to `max`. A zero `min` is raised to 1 ms (it would never grow),
    /// and a `max` below `min` is raised to `min`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff { min, max: max.max(min), previous: min }
    }

    /// The next delay to wait before retrying. (Not an `Iterator`: it never ends, so an
    /// `Option` would only add unwraps at every call.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Duration {
        let high = self.previous.saturating_mul(3).min(self.max);
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let delay = Duration::from_nanos(rand::thread_rng().gen_range(nanos(self.min)..=nanos(high)));
        self.previous = delay;
        delay
    }

    /// After a success: the next delay is short again.
    pub fn reset(&mut self) {
        self.previous = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_stay_within_bounds_and_grow_to_the_cap() {
        let mut b = Backoff::new(100 * MS, 2000 * MS);
        let first = b.next();
        assert!((100 * MS..=300 * MS).contains(&first), "{first:?}");
        let delays: Vec<Duration> = (0..200).map(|_| b.next()).collect();
        assert!(delays.iter().all(|d| (100 * MS..=2000 * MS).contains(d)), "{delays:?}");
        // Growth: staying under 1 s for 200 draws would need ~200 coin flips to go one way.
        assert!(delays.iter().any(|d| *d > 1000 * MS), "never grew: {delays:?}");
        // Jitter: not one fixed sequence.
        assert!(delays.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn reset_starts_again_from_min() {
        let mut b = Backoff::new(100 * MS, 5000 * MS);
        for _ in 0..50 {
            b.next();
        }
        b.reset();
        let d = b.next();
        assert!((100 * MS..=300 * MS).contains(&d), "{d:?}");
    }

    #[test]
    fn degenerate_bounds_are_repaired() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(b.next(), MS);
        let mut b = Backoff::new(500 * MS, 100 * MS);
        assert_eq!(b.next(), 500 * MS);
        let mut b = Backoff::new(MS, Duration::MAX);
        for _ in 0..200 {
            b.next();
        }
    }
}
