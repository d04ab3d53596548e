//! Per-peer arrival tail: how late a beat can be relative to its slot, 8 bytes.
//!
//! The sample is the excess `e = gap − k · period` of each received beat (k = the number of
//! intervals the gap spans, so lost beats do not count as lateness). We keep a
//! peaks-over-threshold summary rather than a normal fit, because what the deadlines need is
//! the far upper tail and delay distributions are skewed:
//!
//! ```text
//! q  ≈ 90th percentile of e       (stochastic quantile tracker, step ∝ current scale)
//! x  = EWMA of (e − q)+           (weight 1/64 per sample)
//! β  = x / (1 − 0.9)              (mean excess over q, given an exceedance)
//! P(e > y) ≈ 1                    for y < q
//!          ≈ 0.1 · exp(−(y − q)/β) for y ≥ q   (exponential tail = GPD with shape 0)
//! ```
//!
//! An exponential tail is exact for exponential-like delays and conservative for bounded
//! ones (uniform jitter); it underestimates a truly heavy (Pareto) tail, which is why β has a
//! floor proportional to the interval. `x` starts at the warm-up prior (β = a quarter of the
//! interval) and decays towards the data, so a new peer is judged generously.

/// The tracked quantile.
pub(crate) const TAU: f64 = 0.9;
/// EWMA weight of a new exceedance sample: memory ≈ 128 samples ≈ 13 exceedances.
const WEIGHT: f64 = 1.0 / 64.0;
/// Quantile step as a share of the current scale β.
const STEP: f64 = 0.25;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Tail {
    /// ≈ 90th percentile of the excess, ns.
    pub q: f32,
    /// EWMA of the excess over q, ns (β · (1 − τ)).
    pub x: f32,
}

impl Tail {
    /// The prior: no lateness known, scale `prior_beta_ns`.
    pub fn new(prior_beta_ns: f64) -> Self {
        Tail { q: 0.0, x: (prior_beta_ns * (1.0 - TAU)) as f32 }
    }

    /// Learned scale of the tail, ns.
    pub fn beta_ns(&self) -> f64 {
        f64::from(self.x) / (1.0 - TAU)
    }

    pub fn q_ns(&self) -> f64 {
        f64::from(self.q)
    }

    /// Folds one excess sample (ns); `floor_ns` is the smallest scale we believe in.
    pub fn push(&mut self, excess_ns: f64, floor_ns: f64) {
        if !excess_ns.is_finite() {
            return;
        }
        let q = self.q_ns();
        let over = (excess_ns - q).max(0.0);
        // E[(e − q)+] = P(e > q) · E[e − q | e > q] = (1 − τ) · β.
        let x = f64::from(self.x) + WEIGHT * (over - f64::from(self.x));
        // Move q by τ·η up or (1−τ)·η down: at equilibrium P(e > q) = 1 − τ.
        let eta = STEP * self.beta_ns().max(floor_ns);
        let q = if excess_ns > q { q + TAU * eta } else { q - (1.0 - TAU) * eta };
        self.q = q as f32;
        self.x = x as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn learns_an_exponential_tail() {
        // e ~ Exp(mean 10 ms): q90 = 23.0 ms, mean excess over it = 10 ms.
        let mut rng = StdRng::seed_from_u64(7);
        let mut t = Tail::new(250e6);
        let (mut qs, mut bs) = (0.0, 0.0);
        for i in 0..40_000 {
            let u: f64 = rng.gen_range(1e-12..1.0);
            t.push(-10e6 * u.ln(), 1e6);
            if i >= 20_000 {
                qs += t.q_ns() / 20_000.0;
                bs += t.beta_ns() / 20_000.0;
            }
        }
        assert!((qs - 23.0e6).abs() < 2.5e6, "q90 {qs}");
        assert!((bs - 10e6).abs() < 2.0e6, "beta {bs}");
    }

    #[test]
    fn prior_decays_to_a_quiet_peer_and_ignores_nan() {
        let mut t = Tail::new(250e6);
        assert_eq!(t.beta_ns().round(), 250e6);
        t.push(f64::NAN, 1e6);
        assert_eq!(t.beta_ns().round(), 250e6);
        for _ in 0..2_000 {
            t.push(0.0, 1e6);
        }
        // Only the quantile's own dithering (a share of the floor) is left.
        assert!(t.beta_ns() < 1e6 && t.q_ns().abs() < 1e6, "{t:?}");
    }
}
