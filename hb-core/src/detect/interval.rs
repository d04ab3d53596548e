//! The client's adaptive beat interval: lengthen while ACKs come back steadily, fall back
//! to the minimum on any sign of trouble. Growth is multiplicative and small (×1.25) so
//! that if the beat announcing a longer interval is lost, the monitor sees at most what
//! looks like one lost beat, which its deadlines already tolerate.

use super::rtt::RttEstimator;

/// Multiplier per growth step.
pub const INTERVAL_GROWTH: f64 = 1.25;
/// Consecutive steady ACKs needed per growth step.
pub const INTERVAL_GROW_STREAK: u32 = 3;
/// RTT excursions below this are scheduling noise, not network trouble.
pub const JITTER_SPIKE_FLOOR_NS: u64 = 10_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalPolicy {
    min_ns: u64,
    cap_ns: u64,
    current_ns: u64,
    streak: u32,
}

impl IntervalPolicy {
    /// Starts at `min_ns`; never above min(`max_ns`, `ttl_ns`/3), so at least three beats
    /// fit in a lease. If `min_ns` exceeds that cap, the cap wins.
    pub fn new(min_ns: u64, max_ns: u64, ttl_ns: u64) -> Self {
        let cap_ns = max_ns.min(ttl_ns / 3).max(1);
        let min_ns = min_ns.clamp(1, cap_ns);
        IntervalPolicy { min_ns, cap_ns, current_ns: min_ns, streak: 0 }
    }

    /// The interval to wait before the next beat (and to announce in it).
    pub fn current_ns(&self) -> u64 {
        self.current_ns
    }

    pub fn min_ns(&self) -> u64 {
        self.min_ns
    }

    pub fn cap_ns(&self) -> u64 {
        self.cap_ns
    }

    /// An ACK came back after `rtt_ns`. Call this *before* feeding the sample to `rtt`, so
    /// the estimator still describes the past: a spike is an RTT beyond
    /// SRTT + 4·RTTVAR + 10 ms. A spike drops to the minimum like a loss; otherwise
    /// every third steady ACK in a row lengthens the interval by 1.25×. Without an
    /// estimate yet there is nothing to call steady, so nothing changes.
    pub fn on_ack(&mut self, rtt_ns: u64, rtt: &RttEstimator) {
        let (Some(srtt), Some(var)) = (rtt.srtt_ns(), rtt.rttvar_ns()) else {
            return;
        };
        let limit = srtt.saturating_add(var.saturating_mul(4)).saturating_add(JITTER_SPIKE_FLOOR_NS);
        if rtt_ns > limit {
            self.on_loss();
            return;
        }
        self.streak += 1;
        if self.streak >= INTERVAL_GROW_STREAK {
            self.streak = 0;
            let grown = (self.current_ns as f64 * INTERVAL_GROWTH).ceil() as u64;
            self.current_ns = grown.min(self.cap_ns);
        }
    }

    /// A beat went unacknowledged: back to the minimum, and start earning growth again.
    pub fn on_loss(&mut self) {
        self.current_ns = self.min_ns;
        self.streak = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    fn steady_acks(p: &mut IntervalPolicy, rtt: &mut RttEstimator, n: usize) {
        for _ in 0..n {
            p.on_ack(20 * MS, rtt);
            rtt.sample(20 * MS);
        }
    }

    #[test]
    fn grows_while_steady_and_caps_at_max() {
        let mut p = IntervalPolicy::new(S, 30 * S, 600 * S);
        let mut rtt = RttEstimator::new();
        assert_eq!(p.current_ns(), S);
        steady_acks(&mut p, &mut rtt, 1); // first ACK only seeds the estimator
        assert_eq!(p.current_ns(), S);
        steady_acks(&mut p, &mut rtt, 3);
        assert_eq!(p.current_ns(), 1_250 * MS);
        steady_acks(&mut p, &mut rtt, 3);
        assert_eq!(p.current_ns(), 1_562_500 * MS / 1_000);
        steady_acks(&mut p, &mut rtt, 300);
        assert_eq!(p.current_ns(), 30 * S);
        assert_eq!(p.cap_ns(), 30 * S);
    }

    #[test]
    fn cap_is_a_third_of_the_ttl() {
        let mut p = IntervalPolicy::new(S, 30 * S, 15 * S);
        let mut rtt = RttEstimator::new();
        steady_acks(&mut p, &mut rtt, 300);
        assert_eq!(p.current_ns(), 5 * S);
        // min above the cap: the cap wins.
        let p = IntervalPolicy::new(10 * S, 30 * S, 15 * S);
        assert_eq!((p.min_ns(), p.current_ns()), (5 * S, 5 * S));
    }

    #[test]
    fn loss_and_jitter_spike_drop_to_min() {
        let mut p = IntervalPolicy::new(S, 30 * S, 600 * S);
        let mut rtt = RttEstimator::new();
        steady_acks(&mut p, &mut rtt, 100);
        assert!(p.current_ns() > 10 * S);
        p.on_loss();
        assert_eq!(p.current_ns(), S);

        steady_acks(&mut p, &mut rtt, 100);
        assert!(p.current_ns() > 10 * S);
        // srtt 20 ms, rttvar ~0: 29 ms is within the noise floor, 31 ms is a spike.
        let before = p.current_ns();
        p.on_ack(29 * MS, &rtt);
        assert!(p.current_ns() >= before);
        p.on_ack(31 * MS, &rtt);
        assert_eq!(p.current_ns(), S);
        // The streak restarts: two steady ACKs do not grow yet.
        steady_acks(&mut p, &mut rtt, 2);
        assert_eq!(p.current_ns(), S);
    }
}
