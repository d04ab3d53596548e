//! Adaptive timeout (Jacobson/Karels applied to heartbeats): EWMA of the inter-arrival mean
//! and mean absolute deviation, expected gap taken from the announced interval.
//!
//! ```text
//! base    = max(announced, mean)
//! sigma   = max(dev, min_sigma, warm-up: warmup_sigma_fraction · announced)
//! m       = 2 + 0.5 · sigma / base                       (always >= 2)
//! suspect = last + base · m + margin_sigmas · sigma
//! dead    = suspect + dead_after_suspect · base
//! ```

use super::arrivals::Arrivals;
use super::{deadline, DetectorParams};

#[derive(Clone, Copy, Debug)]
pub struct Adaptive {
    /// `spread` is the EWMA mean absolute deviation of the gaps, ns.
    pub(super) a: Arrivals,
}

impl Adaptive {
    pub fn new(announced_interval_ns: u64, now_ns: u64) -> Self {
        Adaptive { a: Arrivals::new(announced_interval_ns, now_ns) }
    }

    pub fn heartbeat(&mut self, now_ns: u64, announced_interval_ns: u64, params: &DetectorParams) {
        if let Some(gap) = self.a.accept(now_ns, announced_interval_ns, params) {
            let diff = self.a.push_mean(gap, params);
            let dev = params.alpha * self.a.spread as f64 + (1.0 - params.alpha) * diff.abs();
            self.a.spread = dev as f32;
        }
    }

    /// Learned mean gap, ns.
    pub fn mean_ns(&self) -> f64 {
        self.a.mean_ns as f64
    }

    /// The spread used in the deadlines (learned deviation, floored), ns.
    pub fn sigma_ns(&self, params: &DetectorParams) -> f64 {
        (self.a.spread as f64).max(self.a.sigma_floor_ns(params))
    }

    /// The suspect multiplier m = 2 + 0.5·sigma/base.
    pub fn multiplier(&self, params: &DetectorParams) -> f64 {
        2.0 + 0.5 * self.sigma_ns(params) / self.a.base_ns()
    }

    fn suspect_span_ns(&self, params: &DetectorParams) -> f64 {
        self.a.base_ns() * self.multiplier(params) + params.margin_sigmas * self.sigma_ns(params)
    }

    pub fn suspect_at(&self, params: &DetectorParams) -> u64 {
        deadline(self.a.last_ns, self.suspect_span_ns(params))
    }

    pub fn dead_at(&self, params: &DetectorParams) -> u64 {
        let span = self.suspect_span_ns(params) + params.dead_after_suspect * self.a.base_ns();
        deadline(self.a.last_ns, span)
    }

    pub fn last_heartbeat_ns(&self) -> u64 {
        self.a.last_ns
    }

    pub fn announced_interval_ns(&self) -> u64 {
        u64::from(self.a.announced_us) * 1_000
    }

    pub fn samples(&self) -> u32 {
        u32::from(self.a.samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    fn close(a: u64, b: u64) -> bool {
        a.abs_diff(b) <= 2_000 // f32 state: within 2 µs
    }

    #[test]
    fn warm_up_uses_announced_interval_generously() {
        let p = DetectorParams::default();
        let d = Adaptive::new(S, 0);
        // sigma = 0.25 s: suspect = 1 s·(2 + 0.125) + 4·0.25 s = 3.125 s, dead = +4 s
        assert!(close(d.suspect_at(&p), 3_125 * MS), "{}", d.suspect_at(&p));
        assert!(close(d.dead_at(&p), 7_125 * MS), "{}", d.dead_at(&p));
    }

    #[test]
    fn steady_peer_after_warm_up_hits_the_exact_formula() {
        let p = DetectorParams::default();
        let mut d = Adaptive::new(S, 0);
        for i in 1..=20 {
            d.heartbeat(i * S, S, &p);
        }
        assert_eq!(d.samples(), 20);
        // No jitter: sigma = min_sigma = 50 ms, m = 2.025,
        // suspect = 20 s + 2.025 s + 0.2 s, dead = suspect + 4 s.
        assert!(close(d.suspect_at(&p), 22_225 * MS), "{}", d.suspect_at(&p));
        assert!(close(d.dead_at(&p), 26_225 * MS), "{}", d.dead_at(&p));
    }

    #[test]
    fn jitter_widens_the_deadline() {
        let p = DetectorParams::default();
        let mut calm = Adaptive::new(S, 0);
        let mut jumpy = Adaptive::new(S, 0);
        let mut t = 0;
        for i in 0..40u64 {
            t += S;
            calm.heartbeat(t, S, &p);
            // alternating ±300 ms around the interval
            let off = if i % 2 == 0 { 300 * MS } else { 0 };
            jumpy.heartbeat(t + off, S, &p);
        }
        let calm_span = calm.dead_at(&p) - calm.last_heartbeat_ns();
        let jumpy_span = jumpy.dead_at(&p) - jumpy.last_heartbeat_ns();
        assert!(jumpy.sigma_ns(&p) > 200e6, "{}", jumpy.sigma_ns(&p));
        assert!(jumpy_span > calm_span + 800 * MS, "{jumpy_span} vs {calm_span}");
    }
}
