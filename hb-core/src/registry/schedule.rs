//! When keepalives are sent: on slots of a process-wide grid, so that keepalives due
//! close together leave together.
//!
//! A lease with keepalive interval I (TTL/3) is renewed on slots `K` apart, where the grid
//! for I has `K = max(10, ceil(I / 100 ms))` slots per interval: a tick of I/K, at most
//! 100 ms and at most TTL/30. Every lease with the same interval uses the same grid (one
//! anchor for the process), so the keepalives of N leases fall on at most K instants per
//! interval and the keepalive stream sends each instant's requests in one write. Slot j
//! is at `anchor + floor(j·I/K)` ns, so slot j + K is exactly I after slot j: the period
//! stays exactly I (the rate exactly N/I) and is never stretched; only the first
//! keepalive after a grant comes up to one tick early.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// The longest tick; also at most a tenth of the interval.
const MAX_TICK: Duration = Duration::from_millis(100);

static ANCHOR: OnceLock<Instant> = OnceLock::new();

/// The keepalive slots of one interval.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slots {
    anchor: Instant,
    interval_ns: u128,
    per_interval: u64,
}

impl Slots {
    pub fn new(interval: Duration) -> Slots {
        let anchor = *ANCHOR.get_or_init(Instant::now);
        Slots::with_anchor(anchor, interval)
    }

    fn with_anchor(anchor: Instant, interval: Duration) -> Slots {
        let interval_ns = interval.as_nanos().max(1);
        let per_interval = interval_ns.div_ceil(MAX_TICK.as_nanos()).max(10) as u64;
        Slots { anchor, interval_ns, per_interval }
    }

    /// Slots per interval: the slot one interval after slot j is j + this.
    pub fn per_interval(&self) -> u64 {
        self.per_interval
    }

    /// The time between two slots.
    #[cfg(test)]
    pub fn tick(&self) -> Duration {
        Duration::from_nanos((self.interval_ns / u128::from(self.per_interval)) as u64)
    }

    /// When slot `slot` is.
    pub fn at(&self, slot: u64) -> Instant {
        self.anchor + Duration::from_nanos((u128::from(slot) * self.interval_ns / u128::from(self.per_interval)) as u64)
    }

    /// The last slot at or before `t`.
    pub fn at_or_before(&self, t: Instant) -> u64 {
        // The largest j with floor(j·I/K) <= offset, i.e. j·I/K < offset + 1.
        (((self.offset_ns(t) + 1) * u128::from(self.per_interval) - 1) / self.interval_ns) as u64
    }

    /// The first slot at or after `t`.
    pub fn at_or_after(&self, t: Instant) -> u64 {
        (self.offset_ns(t) * u128::from(self.per_interval)).div_ceil(self.interval_ns) as u64
    }

    fn offset_ns(&self, t: Instant) -> u128 {
        t.saturating_duration_since(self.anchor).as_nanos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_is_at_most_100ms_and_a_tenth_of_the_interval() {
        let anchor = Instant::now();
        let ttl10 = Slots::with_anchor(anchor, Duration::from_secs(10) / 3);
        assert_eq!(ttl10.per_interval(), 34);
        assert!(ttl10.tick() <= MAX_TICK && ttl10.tick() > Duration::from_millis(95), "{:?}", ttl10.tick());
        let ttl1 = Slots::with_anchor(anchor, Duration::from_secs(1) / 3);
        assert_eq!(ttl1.per_interval(), 10);
        assert!(ttl1.tick() <= Duration::from_secs(1) / 30);
    }

    #[test]
    fn one_interval_later_is_exactly_one_interval_later() {
        let anchor = Instant::now();
        let interval = Duration::from_secs(10) / 3; // 3_333_333_333 ns: not a multiple of the tick
        let slots = Slots::with_anchor(anchor, interval);
        for j in [0, 1, 7, 33, 34, 1_000, 123_457] {
            assert_eq!(slots.at(j + slots.per_interval()) - slots.at(j), interval, "slot {j}");
        }
    }

    #[test]
    fn rounding_finds_the_neighbouring_slots() {
        let anchor = Instant::now();
        let slots = Slots::with_anchor(anchor, Duration::from_millis(3_333));
        for offset_ms in [0u64, 1, 97, 98, 99, 3_333, 10_001, 86_400_000] {
            let t = anchor + Duration::from_millis(offset_ms);
            let before = slots.at_or_before(t);
            assert!(slots.at(before) <= t && slots.at(before + 1) > t, "at_or_before {offset_ms} ms");
            let after = slots.at_or_after(t);
            assert!(slots.at(after) >= t && (after == 0 || slots.at(after - 1) < t), "at_or_after {offset_ms} ms");
        }
        // A slot's own instant rounds to itself both ways.
        assert_eq!(slots.at_or_before(slots.at(41)), 41);
        assert_eq!(slots.at_or_after(slots.at(41)), 41);
    }
}
