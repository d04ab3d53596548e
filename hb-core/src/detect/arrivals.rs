//! Inter-arrival bookkeeping shared by both detectors: last beat, announced interval, EWMA
//! mean of the gaps, warm-up count, and which gaps count as samples at all.

use super::DetectorParams;

/// 24 bytes: f32/u32 are plenty for intervals (f32 keeps ~7 digits of a gap in ns; the
/// announced interval is kept in microseconds, up to 71 minutes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrivals {
    pub last_ns: u64,
    /// EWMA of accepted gaps, ns.
    pub mean_ns: f32,
    /// The detector's own spread statistic (mean absolute deviation or variance).
    pub spread: f32,
    pub announced_us: u32,
    /// Accepted samples since the last re-base, saturating.
    pub samples: u16,
}

impl Arrivals {
    pub fn new(announced_interval_ns: u64, now_ns: u64) -> Self {
        let announced_us = to_us(announced_interval_ns);
        Arrivals { last_ns: now_ns, mean_ns: announced_us as f32 * 1e3, spread: 0.0, announced_us, samples: 0 }
    }

    pub fn announced_ns(&self) -> f64 {
        self.announced_us as f64 * 1e3
    }

    /// The gap we expect: what the peer promised, or longer if it is systematically late.
    pub fn base_ns(&self) -> f64 {
        self.announced_ns().max(self.mean_ns as f64)
    }

    pub fn warming_up(&self, params: &DetectorParams) -> bool {
        u32::from(self.samples) < params.window
    }

    /// Floor for a spread in ns: `min_sigma`, and while warming up a generous share of the
    /// announced interval, because a few samples say little about the tail.
    pub fn sigma_floor_ns(&self, params: &DetectorParams) -> f64 {
        let floor = params.min_sigma_ns as f64;
        if self.warming_up(params) {
            floor.max(params.warmup_sigma_fraction * self.announced_ns())
        } else {
            floor
        }
    }

    /// Records a heartbeat and returns the gap to learn from, if it is one. Not a sample:
    /// out-of-order or duplicate arrivals, the first gap after the announced interval
    /// changed (it was spaced by the old one), and gaps long enough to be lost beats (loss
    /// is budgeted in the dead deadline; learning it would count it twice and slow down
    /// the next detection, and one outage would inflate the estimate for minutes).
    pub fn accept(&mut self, now_ns: u64, announced_interval_ns: u64, params: &DetectorParams) -> Option<f64> {
        if now_ns <= self.last_ns {
            return None;
        }
        let gap = (now_ns - self.last_ns) as f64;
        let expected = self.base_ns();
        self.last_ns = now_ns;

        let announced_us = to_us(announced_interval_ns);
        if announced_us != self.announced_us {
            // Re-base on the new promise instead of stale history; keep the spread, which is
            // mostly the network's and does not change with the interval.
            self.announced_us = announced_us;
            self.mean_ns = announced_us as f32 * 1e3;
            self.samples = 0;
            return None;
        }
        if gap > params.loss_gap_factor * expected {
            return None;
        }
        Some(gap)
    }

    /// Folds an accepted gap into the mean; returns the deviation from the old mean.
    pub fn push_mean(&mut self, gap_ns: f64, params: &DetectorParams) -> f64 {
        let diff = gap_ns - self.mean_ns as f64;
        self.mean_ns = (self.mean_ns as f64 + (1.0 - params.alpha) * diff) as f32;
        self.samples = self.samples.saturating_add(1);
        diff
    }
}

fn to_us(ns: u64) -> u32 {
    // At least 1 µs so an announced 0 cannot collapse every deadline onto the last beat.
    (ns / 1_000).clamp(1, u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn filters_duplicates_lost_beats_and_rebase_gaps() {
        let p = DetectorParams::default();
        let mut a = Arrivals::new(S, 0);
        assert_eq!(a.accept(S, S, &p), Some(S as f64));
        assert_eq!(a.accept(S, S, &p), None, "duplicate");
        assert_eq!(a.accept(S / 2, S, &p), None, "reordered");
        assert_eq!(a.last_ns, S, "last never moves backwards");
        assert_eq!(a.accept(3 * S, S, &p), None, "2 s gap = one lost beat");
        assert_eq!(a.accept(4 * S, 10 * S, &p), None, "re-base gap");
        assert_eq!(a.base_ns(), 10.0 * S as f64);
        assert_eq!(a.samples, 0);
        assert_eq!(a.accept(14 * S, 10 * S, &p), Some(10.0 * S as f64));
    }

    #[test]
    fn ewma_weights_history_by_alpha() {
        let p = DetectorParams::default();
        let mut a = Arrivals::new(S, 0);
        let diff = a.push_mean(1.2 * S as f64, &p);
        assert!((diff - 0.2e9).abs() < 1.0);
        // 0.85 * 1.0 s + 0.15 * 1.2 s = 1.03 s
        assert!((a.mean_ns as f64 - 1.03e9).abs() < 100.0, "{}", a.mean_ns);
        assert_eq!(a.samples, 1);
    }
}
