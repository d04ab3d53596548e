//! Phi accrual (Hayashibara et al., Akka's variant): phi(t) = -log10(1 - F(t - last)),
//! F the logistic approximation of the normal CDF that Akka uses, with
//!
//! ```text
//! base  = max(announced, mean)
//! mu    = base · (1 + phi_pause_intervals)     (Akka's acceptable pause, in intervals)
//! sigma = max(sqrt(var), min_sigma, warm-up: warmup_sigma_fraction · announced)
//! y     = (t - last - mu) / sigma
//! F(y)  = 1 / (1 + exp(-g)),  g = y · (1.5976 + 0.070566 · y²)
//! ```
//!
//! so phi = log10(1 + e^g). The deadlines invert that in closed form: g = ln(10^phi − 1),
//! then y from the cubic 0.070566·y³ + 1.5976·y − g = 0 (Cardano; one real root because the
//! cubic is increasing), and t = last + mu + y·sigma.

use super::arrivals::Arrivals;
use super::{deadline, DetectorParams};

const C1: f64 = 1.5976;
const C3: f64 = 0.070566;

#[derive(Clone, Copy, Debug)]
pub struct Phi {
    /// `spread` is the EWMA variance of the gaps, ns².
    pub(super) a: Arrivals,
}

impl Phi {
    pub fn new(announced_interval_ns: u64, now_ns: u64) -> Self {
        Phi { a: Arrivals::new(announced_interval_ns, now_ns) }
    }

    pub fn heartbeat(&mut self, now_ns: u64, announced_interval_ns: u64, params: &DetectorParams) {
        if let Some(gap) = self.a.accept(now_ns, announced_interval_ns, params) {
            let diff = self.a.push_mean(gap, params);
            // Exponentially weighted variance (West 1979): var ← α·(var + (1−α)·diff²).
            let var = params.alpha * (self.a.spread as f64 + (1.0 - params.alpha) * diff * diff);
            self.a.spread = var as f32;
        }
    }

    pub fn mean_ns(&self) -> f64 {
        self.a.mean_ns as f64
    }

    /// The spread used for phi (learned standard deviation, floored), ns.
    pub fn sigma_ns(&self, params: &DetectorParams) -> f64 {
        (self.a.spread as f64).sqrt().max(self.a.sigma_floor_ns(params))
    }

    /// Where phi is centred: the expected gap plus the tolerated pause, ns.
    fn mu_ns(&self, params: &DetectorParams) -> f64 {
        self.a.base_ns() * (1.0 + params.phi_pause_intervals)
    }

    /// The suspicion level at `now_ns` (0 right after a beat, 8 = "1e-8 chance it is alive").
    pub fn phi(&self, now_ns: u64, params: &DetectorParams) -> f64 {
        let elapsed = now_ns.saturating_sub(self.a.last_ns) as f64;
        let y = (elapsed - self.mu_ns(params)) / self.sigma_ns(params);
        let g = y * (C1 + C3 * y * y);
        // log10(1 + e^g) without overflow for large g.
        let softplus = if g > 30.0 { g + (-g).exp().ln_1p() } else { g.exp().ln_1p() };
        softplus / std::f64::consts::LN_10
    }

    /// Absolute time at which phi reaches `threshold`.
    pub fn time_of_phi(&self, threshold: f64, params: &DetectorParams) -> u64 {
        let span = self.mu_ns(params) + standard_score(threshold) * self.sigma_ns(params);
        deadline(self.a.last_ns, span)
    }

    pub fn suspect_at(&self, params: &DetectorParams) -> u64 {
        self.time_of_phi(params.phi_suspect, params)
    }

    pub fn dead_at(&self, params: &DetectorParams) -> u64 {
        self.time_of_phi(params.phi_dead, params)
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

/// The y at which phi(y) = `phi`: inverse of log10(1 + e^g(y)).
fn standard_score(phi: f64) -> f64 {
    if phi <= 0.0 {
        return f64::NEG_INFINITY;
    }
    // g = ln(10^phi − 1), written so it neither overflows nor loses digits.
    let g = phi * std::f64::consts::LN_10 + (-(10f64.powf(-phi))).ln_1p();
    // y³ + p·y − q = 0 with p, q > 0.
    let (p, q) = (C1 / C3, g / C3);
    let r = (q * q / 4.0 + p * p * p / 27.0).sqrt();
    (q / 2.0 + r).cbrt() + (q / 2.0 - r).cbrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    #[test]
    fn inverse_matches_phi() {
        let p = DetectorParams::default();
        let mut d = Phi::new(S, 0);
        for i in 1..=30 {
            d.heartbeat(i * S + (i % 3) * 40 * MS, S, &p);
        }
        for threshold in [0.5, 1.0, 3.0, 5.0, 8.0, 12.0, 20.0] {
            let t = d.time_of_phi(threshold, &p);
            let got = d.phi(t, &p);
            assert!((got - threshold).abs() < 1e-3, "phi({t}) = {got}, wanted {threshold}");
        }
        assert!(d.phi(d.last_heartbeat_ns(), &p) < 1e-3);
    }

    #[test]
    fn standard_scores_of_the_default_thresholds() {
        // Hand-checked against the cubic: z(5) ≈ 4.119, z(8) ≈ 5.226.
        assert!((standard_score(5.0) - 4.119).abs() < 0.001, "{}", standard_score(5.0));
        assert!((standard_score(8.0) - 5.226).abs() < 0.001, "{}", standard_score(8.0));
        assert!(standard_score(0.0).is_infinite());
    }

    #[test]
    fn steady_peer_deadlines() {
        let p = DetectorParams::default();
        let mut d = Phi::new(S, 0);
        for i in 1..=20 {
            d.heartbeat(i * S, S, &p);
        }
        // sigma = min_sigma 50 ms, mu = 6 s: dead = last + 6 s + z(8)·50 ms ≈ last + 6.26 s.
        let span = d.dead_at(&p) - d.last_heartbeat_ns();
        assert!(span.abs_diff(6_260 * MS) < 5 * MS, "{span}");
        let s_span = d.suspect_at(&p) - d.last_heartbeat_ns();
        assert!(s_span.abs_diff(6_207 * MS) < 5 * MS, "{s_span}");
    }
}
