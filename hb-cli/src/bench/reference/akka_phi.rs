//! Akka's phi accrual detector (akka.remote.PhiAccrualFailureDetector): the intervals
//! between arrivals in a sliding window of `WINDOW`, a normal distribution on their mean
//! and standard deviation (floored at `min_std`), the acceptable pause added to the mean,
//! and Akka's logistic approximation of the CDF:
//! y = (t − last − mean − pause) / std, phi = log10(1 + e^(y·(1.5976 + 0.070566·y²))).
//! The deadline inverts phi = threshold once per setting (the same `y` for every beat).
//! As in Akka the window starts with two intervals around the first estimate (here the
//! announced interval, std = a quarter of it).

use std::collections::VecDeque;

use super::WINDOW;
use crate::bench::trace::Arrival;

#[derive(Clone, Debug)]
pub struct AkkaPhi {
    intervals: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    last_ns: u64,
    /// The threshold as a number of standard deviations past mean + pause.
    y: f64,
    pause_ns: f64,
    min_std_ns: f64,
}

impl AkkaPhi {
    pub fn new(first: &Arrival, threshold: f64, pause_ns: f64, min_std_ns: f64) -> AkkaPhi {
        let mut d = AkkaPhi {
            intervals: VecDeque::with_capacity(WINDOW),
            sum: 0.0,
            sum_sq: 0.0,
            last_ns: first.t_ns,
            y: y_of_phi(threshold),
            pause_ns,
            min_std_ns,
        };
        let (mean, std) = (first.interval_ns as f64, first.interval_ns as f64 / 4.0);
        d.push(mean - std);
        d.push(mean + std);
        d
    }

    fn push(&mut self, x: f64) {
        if self.intervals.len() == WINDOW {
            let old = self.intervals.pop_front().expect("full");
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.intervals.push_back(x);
        self.sum += x;
        self.sum_sq += x * x;
    }

    pub fn heartbeat(&mut self, a: &Arrival) {
        if a.t_ns > self.last_ns {
            self.push((a.t_ns - self.last_ns) as f64);
            self.last_ns = a.t_ns;
        }
    }

    pub fn deadline(&self) -> u64 {
        let n = self.intervals.len() as f64;
        let mean = self.sum / n;
        let std = (self.sum_sq / n - mean * mean).max(0.0).sqrt().max(self.min_std_ns);
        super::at(self.last_ns as f64, mean + self.pause_ns + self.y * std).max(self.last_ns)
    }
}

/// Akka's phi as a function of y (standard deviations past the expected arrival).
pub fn phi_of_y(y: f64) -> f64 {
    let g = y * (1.5976 + 0.070566 * y * y);
    // log10(1 + e^g), without overflow for large g.
    if g > 30.0 {
        (g + (-g).exp().ln_1p()) / std::f64::consts::LN_10
    } else {
        g.exp().ln_1p() / std::f64::consts::LN_10
    }
}

/// The y at which phi reaches `threshold` (phi is increasing in y; bisection).
pub fn y_of_phi(threshold: f64) -> f64 {
    let (mut lo, mut hi) = (-100.0f64, 1.0e4f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if phi_of_y(mid) < threshold {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_inverts_and_matches_known_values() {
        // hb-core's phi (same approximation) documents y(5) = 4.119 and y(8) = 5.226.
        assert!((y_of_phi(5.0) - 4.119).abs() < 1e-3, "{}", y_of_phi(5.0));
        assert!((y_of_phi(8.0) - 5.226).abs() < 1e-3, "{}", y_of_phi(8.0));
        for phi in [0.5, 3.0, 100.0, 5_000.0] {
            assert!((phi_of_y(y_of_phi(phi)) - phi).abs() < 1e-6 * phi.max(1.0), "{phi}");
        }
    }

    #[test]
    fn steady_beats_give_mean_plus_y_min_std() {
        let beat = |t_ns| Arrival { t_ns, peer: 0, seq: 0, interval_ns: 1_000_000, stalled: false, sent_ns: 0 };
        let mut d = AkkaPhi::new(&beat(0), 8.0, 0.0, 100_000.0);
        for i in 1..=2000 {
            d.heartbeat(&beat(i * 1_000_000));
        }
        // The window now holds only exact 1 ms intervals: std 0, floored at 0.1 ms.
        let expected = 2000.0 * 1e6 + 1e6 + y_of_phi(8.0) * 1e5;
        assert!((d.deadline() as f64 - expected).abs() < 2.0, "{}", d.deadline());
    }
}
