//! The client's adaptive beat interval: lengthen while ACKs come back steadily, fall back
//! to the minimum on any sign of trouble. Growth is multiplicative and small (×1.25) so
//! that if the beat announcing a longer interval is lost, the monitor sees at most what
//! looks like one lost beat, which its deadlines already tolerate.
//!
//! The interval never exceeds what the TTL can carry: a monitor reports us dead at most a
//! TTL after our last beat arrived, so `k` beats in a row must be lost first, and `k` is
//! chosen for the loss this client measures (ACK timeouts, never taken below
//! [`LOSS_FLOOR`]) to keep false `dead` under [`FALSE_DEAD_TARGET_PER_S`]: the beats of
//! a window are all lost at a rate of about (1/interval)·loss^k, and the interval is at
//! most TTL/(k+1), one interval being left for delay and jitter.

use super::rtt::RttEstimator;

/// Multiplier per growth step.
pub const INTERVAL_GROWTH: f64 = 1.25;
/// Consecutive steady ACKs needed per growth step.
pub const INTERVAL_GROW_STREAK: u32 = 3;
/// RTT excursions below this are scheduling noise, not network trouble.
pub const JITTER_SPIKE_FLOOR_NS: u64 = 10_000_000;
/// The false-`dead` rate the interval is chosen for: one per two peer-years, the
/// detector's default target (docs/detection.md).
pub const FALSE_DEAD_TARGET_PER_S: f64 = 1.0 / (2.0 * 365.25 * 86_400.0);
/// Loss assumed however clean the path has looked: a few hundred ACKs cannot show less,
/// and the interval must not stretch on luck.
pub const LOSS_FLOOR: f64 = 0.01;
/// Weight of one beat in the loss estimate (memory of ~32 beats, so a burst of loss
/// shortens the interval within a few beats and a clean stretch lets it grow back).
const LOSS_WEIGHT: f64 = 1.0 / 32.0;
/// At least this many beats fit in a TTL, however clean the path.
const MIN_BEATS_PER_TTL: u32 = 3;
const MAX_BEATS_PER_TTL: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntervalPolicy {
    /// The configured minimum (the cap may be below it, then the cap wins).
    min_ns: u64,
    max_ns: u64,
    ttl_ns: u64,
    cap_ns: u64,
    current_ns: u64,
    streak: u32,
    /// EWMA of beats that went unacknowledged, 0..1.
    loss: f64,
}

impl IntervalPolicy {
    /// Starts at `min_ns`; never above min(`max_ns`, the TTL's cap, see the module
    /// docs). If `min_ns` exceeds that cap, the cap wins.
    pub fn new(min_ns: u64, max_ns: u64, ttl_ns: u64) -> Self {
        let mut p = IntervalPolicy { min_ns, max_ns, ttl_ns, cap_ns: 0, current_ns: 0, streak: 0, loss: 0.0 };
        p.cap_ns = p.cap_for_loss();
        p.current_ns = p.min_ns();
        p
    }

    /// The interval to wait before the next beat (and to announce in it).
    pub fn current_ns(&self) -> u64 {
        self.current_ns
    }

    pub fn min_ns(&self) -> u64 {
        self.min_ns.clamp(1, self.cap_ns)
    }

    pub fn cap_ns(&self) -> u64 {
        self.cap_ns
    }

    /// The loss this policy plans for: the measured rate, never below [`LOSS_FLOOR`].
    pub fn planned_loss(&self) -> f64 {
        self.loss.max(LOSS_FLOOR)
    }

    /// Beats that must all be lost for a false `dead` at the planned loss.
    pub fn beats_per_ttl(&self) -> u32 {
        beats_needed(self.planned_loss(), self.ttl_ns)
    }

    fn cap_for_loss(&self) -> u64 {
        let k = u64::from(self.beats_per_ttl());
        self.max_ns.min(self.ttl_ns / (k + 1)).max(1)
    }

    fn observe(&mut self, lost: bool) {
        self.loss += LOSS_WEIGHT * (f64::from(u8::from(lost)) - self.loss);
        self.cap_ns = self.cap_for_loss();
        self.current_ns = self.current_ns.min(self.cap_ns);
    }

    /// An ACK came back after `rtt_ns`. Call this *before* feeding the sample to `rtt`, so
    /// the estimator still describes the past: a spike is an RTT beyond
    /// SRTT + 4·RTTVAR + 10 ms. A spike drops to the minimum like a loss; otherwise
    /// every third steady ACK in a row lengthens the interval by 1.25×. Without an
    /// estimate yet there is nothing to call steady, so nothing changes.
    pub fn on_ack(&mut self, rtt_ns: u64, rtt: &RttEstimator) {
        self.observe(false);
        let (Some(srtt), Some(var)) = (rtt.srtt_ns(), rtt.rttvar_ns()) else {
            return;
        };
        let limit = srtt.saturating_add(var.saturating_mul(4)).saturating_add(JITTER_SPIKE_FLOOR_NS);
        if rtt_ns > limit {
            self.back_to_min();
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
        self.observe(true);
        self.back_to_min();
    }

    /// The path failed without a beat being lost in flight (connect refused, a NACK):
    /// back to the minimum, the loss estimate unchanged.
    pub fn on_trouble(&mut self) {
        self.back_to_min();
    }

    fn back_to_min(&mut self) {
        self.current_ns = self.min_ns();
        self.streak = 0;
    }
}

/// The fewest beats per TTL (each at most TTL/(k+1) apart) whose all being lost, at
/// `loss` per beat, happens less often than [`FALSE_DEAD_TARGET_PER_S`].
pub fn beats_needed(loss: f64, ttl_ns: u64) -> u32 {
    let ttl_s = ttl_ns as f64 / 1e9;
    (MIN_BEATS_PER_TTL..MAX_BEATS_PER_TTL)
        .find(|&k| {
            let interval_s = ttl_s / f64::from(k + 1);
            loss.powi(k as i32) <= FALSE_DEAD_TARGET_PER_S * interval_s
        })
        .unwrap_or(MAX_BEATS_PER_TTL)
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
    fn beats_per_ttl_follow_the_loss_and_the_target() {
        // TTL 15 s at the 1 % floor: 3 beats lost in a row (1e-6) happen every ~43 days at
        // 3.75 s, too often for one false dead per two years; 4 (1e-8 at 3 s) do not.
        assert_eq!(beats_needed(LOSS_FLOOR, 15 * S), 4);
        // 5 % loss (a lossy WAN) needs 6 beats: interval 15/7 s.
        assert_eq!(beats_needed(0.05, 15 * S), 6);
        // Short TTLs beat more often, so each window must survive more losses.
        assert_eq!(beats_needed(LOSS_FLOOR, S), 5);
        assert_eq!(beats_needed(0.0, 15 * S), 3, "never fewer than three");
        assert_eq!(beats_needed(1.0, 15 * S), 64, "total loss: as many as allowed");
        for k in 3..10 {
            // The found k meets the target, k - 1 does not (unless at the minimum).
            let loss = 10f64.powf(-(k as f64) / 3.0);
            let n = beats_needed(loss, 15 * S);
            let rate = |n: u32| loss.powi(n as i32) / (15.0 / f64::from(n + 1));
            assert!(rate(n) <= FALSE_DEAD_TARGET_PER_S, "{loss}: {n}");
            assert!(n == 3 || rate(n - 1) > FALSE_DEAD_TARGET_PER_S, "{loss}: {n}");
        }
    }

    #[test]
    fn cap_leaves_enough_beats_in_a_ttl() {
        let mut p = IntervalPolicy::new(S, 30 * S, 15 * S);
        let mut rtt = RttEstimator::new();
        steady_acks(&mut p, &mut rtt, 300);
        // 4 beats per TTL at the loss floor: 15 s / 5 = 3 s (the default 1s..30s, TTL 15 s).
        assert_eq!((p.beats_per_ttl(), p.current_ns()), (4, 3 * S));
        // min above the cap: the cap wins.
        let p = IntervalPolicy::new(10 * S, 30 * S, 15 * S);
        assert_eq!((p.min_ns(), p.current_ns()), (3 * S, 3 * S));
    }

    #[test]
    fn measured_loss_shortens_the_cap_and_a_clean_stretch_lets_it_grow_back() {
        let mut p = IntervalPolicy::new(S, 30 * S, 15 * S);
        let mut rtt = RttEstimator::new();
        steady_acks(&mut p, &mut rtt, 300);
        assert_eq!(p.cap_ns(), 3 * S);
        // One beat in four lost for a while: ~25 % loss needs many more beats per TTL.
        for _ in 0..40 {
            p.on_loss();
            steady_acks(&mut p, &mut rtt, 3);
        }
        assert!(p.planned_loss() > 0.15, "{}", p.planned_loss());
        assert!(p.beats_per_ttl() >= 12 && p.cap_ns() <= 15 * S / 13, "{} {}", p.beats_per_ttl(), p.cap_ns());
        assert!(p.current_ns() <= p.cap_ns());
        steady_acks(&mut p, &mut rtt, 600);
        assert_eq!((p.planned_loss(), p.cap_ns(), p.current_ns()), (LOSS_FLOOR, 3 * S, 3 * S));
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
