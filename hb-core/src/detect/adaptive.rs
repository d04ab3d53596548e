//! Adaptive detector: learns, per peer, how late beats arrive ([`Tail`]) and how they are
//! lost ([`Loss`], bursty), and places each deadline where that model says a silence that
//! long happens at the target rate (false Dead or false Suspect per second).
//!
//! A silence of t after the last arrival means every beat that would have ended it was lost
//! or late. With period I, first received beat N (N − 1 lost before it) and excess e:
//!
//! ```text
//! P(silence > t) ≤ P_k + Σ_{N=1..k} p_N · Q(t − N·I)          for any k ≥ 1
//!   p_1 = 1 − L,  p_N = L·(1 − c)·c^(N−2)   (first received beat is the N-th)
//!   P_k = L·c^(k−1)                          (the next k beats all lost)
//!   Q(y) = P(e > y) = 1 below q, 0.1·exp(−(y − q)/β) above      (see tail.rs)
//! rate(t) = (1 − π)/I · P(silence > t),   π = L/(L + 1 − c) the long-run loss
//! ```
//!
//! Setting `rate(t) = target` gives ε = target·I/(1 − π) per gap and, in closed form,
//! `t_k = max(k·I + q, q + β·(ln 0.1 + ln S_k − ln(ε − P_k)))`, `S_k = Σ p_N·e^(N·I/β)`,
//! for k the smallest loss budget with P_k < ε; we take the better of k and k + 1.

use super::loss::{Loss, MAX_CONTINUATION};
use super::tail::{Tail, TAU};
use super::{deadline, DetectorParams};

/// The tail prior of a new peer: scale β = a quarter of its announced interval.
const PRIOR_TAIL_FRACTION: f64 = 0.25;
/// EWMA weight of the learned period (a sender's clock rate changes slowly).
const PERIOD_WEIGHT: f64 = 1.0 / 64.0;
/// Loss budgets are capped (in beats); past it the deadline is "never" and the monitor's
/// TTL decides. Unreachable with the validated targets and ĉ <= 0.999.
const MAX_BUDGET: u64 = 1 << 20;

/// 32 bytes.
#[derive(Clone, Copy, Debug)]
pub struct Adaptive {
    last_ns: u64,
    announced_us: u32,
    /// Learned sender period, ns (EWMA of gap / k).
    period_ns: f32,
    tail: Tail,
    /// Gaps learned since registration or the last re-base, saturating.
    samples: u16,
    loss: Loss,
}

impl Adaptive {
    pub fn new(announced_interval_ns: u64, now_ns: u64) -> Self {
        let announced_us = to_us(announced_interval_ns);
        let announced_ns = f64::from(announced_us) * 1e3;
        Adaptive {
            last_ns: now_ns,
            announced_us,
            period_ns: announced_ns as f32,
            tail: Tail::new(PRIOR_TAIL_FRACTION * announced_ns),
            samples: 0,
            loss: Loss::default(),
        }
    }

    pub fn heartbeat(&mut self, now_ns: u64, announced_interval_ns: u64, params: &DetectorParams) {
        let base = self.base_ns();
        if let Some(gap) = self.heard(now_ns, announced_interval_ns) {
            self.learn(gap, base, params);
        }
    }

    /// Records an arrival; returns the gap to learn from, if it is one. Not a sample:
    /// duplicates / reordered arrivals (`last` never moves back) and the first gap after the
    /// announced interval changed (it was spaced by the old one). Also the whole of
    /// `heartbeat_after_pause`.
    pub(super) fn heard(&mut self, now_ns: u64, announced_interval_ns: u64) -> Option<f64> {
        if now_ns <= self.last_ns {
            return None;
        }
        let gap = (now_ns - self.last_ns) as f64;
        self.last_ns = now_ns;
        let announced_us = to_us(announced_interval_ns);
        if announced_us != self.announced_us {
            // Re-base on the new promise; the tail and the loss are the network's, kept.
            self.announced_us = announced_us;
            self.period_ns = self.announced_ns() as f32;
            self.samples = 0;
            return None;
        }
        Some(gap)
    }

    fn learn(&mut self, gap_ns: f64, base_ns: f64, params: &DetectorParams) {
        // A gap of ≈ k periods is k − 1 lost beats and the excess of the k-th.
        let k = (gap_ns / base_ns).round().max(1.0);
        let lost = k - 1.0;
        // A silence past the dead budget was an outage (the peer was convicted); it counts
        // as one burst just longer than tolerated, so a partition does not teach "bursts of
        // 30 beats" for hours, while a bursty link still raises the budget step by step.
        let budget = self.model(params.target_false_dead_per_s, params).budget() as f64;
        self.loss.push(lost.min(budget + 1.0) as u64);
        if lost > budget {
            return;
        }
        let excess = gap_ns - k * base_ns;
        self.tail.push(excess, params.min_tail_fraction * base_ns);
        let period = f64::from(self.period_ns);
        self.period_ns = (period + PERIOD_WEIGHT * (gap_ns / k - period)) as f32;
        self.samples = self.samples.saturating_add(1);
    }

    fn announced_ns(&self) -> f64 {
        f64::from(self.announced_us) * 1e3
    }

    /// The period we expect: what the peer promised, or longer if it is systematically late.
    pub fn base_ns(&self) -> f64 {
        self.announced_ns().max(f64::from(self.period_ns))
    }

    /// The learned model, with the floors applied, for a target rate per second.
    pub fn model(&self, target_per_s: f64, params: &DetectorParams) -> Model {
        let period_ns = self.base_ns();
        let loss_start = self.loss.start_prob(params);
        let loss_continue = self.loss.continue_prob(params);
        let long_run_loss = loss_start / (loss_start + 1.0 - loss_continue);
        let eps = target_per_s * period_ns * 1e-9 / (1.0 - long_run_loss);
        Model {
            period_ns,
            q_ns: self.tail.q_ns(),
            beta_ns: self.tail.beta_ns().max(params.min_tail_fraction * period_ns),
            loss_start,
            loss_continue,
            eps: if eps.is_finite() { eps.clamp(f64::MIN_POSITIVE, 0.5) } else { 0.5 },
        }
    }

    pub fn suspect_at(&self, params: &DetectorParams) -> u64 {
        deadline(self.last_ns, self.model(params.target_false_suspect_per_s, params).silence_ns())
    }

    pub fn dead_at(&self, params: &DetectorParams) -> u64 {
        deadline(self.last_ns, self.model(params.target_false_dead_per_s, params).silence_ns())
    }

    pub fn last_heartbeat_ns(&self) -> u64 {
        self.last_ns
    }

    pub fn announced_interval_ns(&self) -> u64 {
        u64::from(self.announced_us) * 1_000
    }

    pub fn samples(&self) -> u32 {
        u32::from(self.samples)
    }
}

/// One peer's learned arrival model, ready to place a deadline (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Model {
    pub period_ns: f64,
    /// ≈ 90th percentile of the excess over the slot, ns.
    pub q_ns: f64,
    /// Scale of the exponential tail above `q_ns`, ns (floored).
    pub beta_ns: f64,
    /// L: P(lost | previous received).
    pub loss_start: f64,
    /// c: P(lost | previous lost).
    pub loss_continue: f64,
    /// Allowed probability that one gap outlasts the deadline.
    pub eps: f64,
}

/// The logarithms of a model's probabilities, taken once per deadline: they are most of
/// its cost (it runs on every beat), and every use below takes them from here.
struct Logs {
    loss: LossLogs,
    /// ln(1 − L), ln(1 − c), ln(1 − τ): what the silence needs besides.
    not_l: f64,
    not_c: f64,
    not_tau: f64,
}

/// ln L, ln c, ln ε: what the loss budget needs.
struct LossLogs {
    l: f64,
    c: f64,
    eps: f64,
}

impl Model {
    fn logs(&self) -> Logs {
        Logs {
            loss: self.loss_logs(),
            not_l: (1.0 - self.loss_start).ln(),
            not_c: (1.0 - self.loss_continue).ln(),
            not_tau: (1.0 - TAU).ln(),
        }
    }

    fn loss_logs(&self) -> LossLogs {
        LossLogs { l: self.loss_start.ln(), c: self.loss_continue.ln(), eps: self.eps.ln() }
    }

    /// ln P_k: the next k beats all lost.
    fn ln_all_lost(&self, k: u64, ln: &LossLogs) -> f64 {
        if k == 0 {
            return 0.0;
        }
        ln.l + (k - 1) as f64 * ln.c
    }

    /// The smallest k with P_k < ε: how many lost beats in a row the deadline tolerates.
    pub fn budget(&self) -> u64 {
        self.budget_with(&self.loss_logs())
    }

    fn budget_with(&self, ln: &LossLogs) -> u64 {
        let (l, c, eps) = (self.loss_start, self.loss_continue.min(MAX_CONTINUATION), self.eps);
        if l < eps {
            return 1;
        }
        let r = (eps / l).ln() / c.ln(); // > 0
        let mut k = if r.is_finite() { (r.floor() + 2.0).clamp(1.0, MAX_BUDGET as f64) as u64 } else { MAX_BUDGET };
        // Settle float edges exactly on the definition.
        while k > 1 && self.ln_all_lost(k - 1, ln) < ln.eps {
            k -= 1;
        }
        while k < MAX_BUDGET && self.ln_all_lost(k, ln) >= ln.eps {
            k += 1;
        }
        k
    }

    /// ln S_k = ln Σ_{N=1..k} p_N · e^(N·I/β), in closed form (a geometric series).
    fn ln_s(&self, k: u64, ln: &Logs) -> f64 {
        let z = self.period_ns / self.beta_ns;
        let first = ln.not_l + z;
        if k < 2 {
            return first;
        }
        let rest = ln.loss.l + ln.not_c + 2.0 * z + ln_geometric((k - 1) as f64, ln.loss.c + z);
        log_add_exp(first, rest)
    }

    /// Smallest silence meeting ε when k lost beats are covered by the loss term.
    fn silence_with_budget(&self, k: u64, ln: &Logs) -> f64 {
        let room = self.eps - self.ln_all_lost(k, &ln.loss).exp();
        if room <= 0.0 || k >= MAX_BUDGET {
            return f64::INFINITY;
        }
        let ln_tail = ln.not_tau + self.ln_s(k, ln) - room.ln();
        let t = self.q_ns + self.beta_ns * ln_tail;
        t.max(k as f64 * self.period_ns + self.q_ns)
    }

    /// Silence after the last arrival at which the model's mistake rate equals the target, ns.
    pub fn silence_ns(&self) -> f64 {
        let ln = self.logs();
        let k = self.budget_with(&ln.loss);
        let t = self.silence_with_budget(k, &ln).min(self.silence_with_budget(k + 1, &ln));
        if t.is_nan() {
            f64::INFINITY
        } else {
            t
        }
    }
}

/// ln Σ_{j=0..m−1} e^(j·lr), m >= 1, without overflow.
fn ln_geometric(m: f64, lr: f64) -> f64 {
    if m <= 1.0 {
        0.0
    } else if lr.abs() < 1e-12 {
        m.ln()
    } else if lr > 0.0 {
        (m - 1.0) * lr + (-(-m * lr).exp_m1()).ln() - (-(-lr).exp_m1()).ln()
    } else {
        (-(m * lr).exp_m1()).ln() - (-lr.exp_m1()).ln()
    }
}

fn log_add_exp(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

fn to_us(ns: u64) -> u32 {
    // At least 1 µs so an announced 0 cannot collapse every deadline onto the last beat.
    (ns / 1_000).clamp(1, u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    fn model(l: f64, c: f64, eps: f64, q_ns: f64, beta_ns: f64) -> Model {
        Model { period_ns: 1e9, q_ns, beta_ns, loss_start: l, loss_continue: c, eps }
    }

    /// The bound, summed term by term: what the closed form must equal.
    fn bound(m: &Model, k: u64, t: f64) -> f64 {
        let q = |y: f64| if y < m.q_ns { 1.0 } else { 0.1 * (-(y - m.q_ns) / m.beta_ns).exp() };
        let (l, c) = (m.loss_start, m.loss_continue);
        let mut sum = m.ln_all_lost(k, &m.loss_logs()).exp() + (1.0 - l) * q(t - m.period_ns);
        for n in 2..=k {
            sum += l * (1.0 - c) * c.powi(n as i32 - 2) * q(t - n as f64 * m.period_ns);
        }
        sum
    }

    #[test]
    fn budget_is_the_smallest_k_with_all_lost_below_eps() {
        // 5 % independent loss: 0.05^6 = 1.56e-8 < 1.6e-8 <= 0.05^5.
        assert_eq!(model(0.05, 0.05, 1.6e-8, 0.0, 1e6).budget(), 6);
        assert_eq!(model(0.05, 0.05, 1.5e-8, 0.0, 1e6).budget(), 7);
        assert_eq!(model(1e-3, 1e-3, 1e-2, 0.0, 1e6).budget(), 1);
        // Bursts of mean 4 (c = 0.75) after a 1.3 % start: 1 + ceil(ln(1.2e-6)/ln 0.75) = 49.
        assert_eq!(model(0.0132, 0.75, 1.585e-8, 0.0, 1e6).budget(), 49);
    }

    #[test]
    fn closed_form_meets_the_bound_exactly() {
        for m in [
            model(0.05, 0.05, 1.6e-8, 110e6, 30e6),   // WAN-like
            model(0.0132, 0.75, 1.6e-8, 110e6, 30e6), // bursty
            model(0.01, 0.01, 1e-5, 100e6, 600e6),    // jitter wider than the interval
            model(0.2, 0.3, 1e-3, -5e6, 2e6),         // q below the slot
        ] {
            let k = m.budget();
            for kk in [k, k + 1] {
                let t = m.silence_with_budget(kk, &m.logs());
                let b = bound(&m, kk, t);
                assert!(b <= m.eps * (1.0 + 1e-9), "{m:?} k={kk}: bound {b} at {t}");
                // Tight unless clamped at k·I + q.
                if t > kk as f64 * m.period_ns + m.q_ns + 1.0 {
                    assert!((b / m.eps - 1.0).abs() < 1e-6, "{m:?} k={kk}: {b} vs {}", m.eps);
                }
            }
            let t = m.silence_ns();
            assert!(t > m.period_ns && t.is_finite(), "{m:?}: {t}");
        }
    }

    #[test]
    fn geometric_sum_matches_a_loop() {
        for (m, lr) in [(1.0, 3.0), (5.0, 2.0), (5.0, -2.0), (7.0, 0.0), (40.0, 0.5)] {
            let direct: f64 = (0..m as i32).map(|j| (j as f64 * lr).exp()).sum();
            assert!((ln_geometric(m, lr) - direct.ln()).abs() < 1e-9, "{m} {lr}");
        }
        // No overflow where the terms themselves would: e^(1000·1000).
        assert!(ln_geometric(1000.0, 1000.0).is_finite());
    }

    #[test]
    fn new_peer_is_judged_on_the_priors() {
        // 1 s: 5 % loss prior (1/20), the warm-up burst prior ĉ = c0 = 0.07, β = 250 ms, q = 0.
        let p = DetectorParams::default();
        let d = Adaptive::new(S, 0);
        let m = d.model(p.target_false_dead_per_s, &p);
        assert_eq!((m.loss_start, m.loss_continue, m.q_ns), (0.05, 0.07, 0.0));
        assert!((m.beta_ns - 250e6).abs() < 1.0);
        assert!(m.eps > 1.585e-8 && m.eps < 1.75e-8, "{}", m.eps);
        // 0.05·0.07^6 = 5.9e-9 < ε = 1.67e-8 <= 0.05·0.07^5: 7 beats, dead within 8 s.
        assert_eq!(m.budget(), 7);
        let (s, x) = (d.suspect_at(&p), d.dead_at(&p));
        assert!(s < x, "{s} {x}");
        assert!((6 * S..=8 * S).contains(&x), "{x}");
    }

    #[test]
    fn steady_lossless_peer_converges_on_a_few_intervals() {
        let p = DetectorParams::default();
        let mut d = Adaptive::new(S, 0);
        for i in 1..=5_000 {
            d.heartbeat(i * S, S, &p);
        }
        assert_eq!(d.samples(), 5_000);
        let m = d.model(p.target_false_dead_per_s, &p);
        // L̂ = 1/5020, ĉ = L̂ (no loss seen, the warm-up prior faded after 1024 gaps):
        // L̂^3 = 7.9e-12 < ε, L̂^2 > ε: budget 3.
        assert!((m.loss_start - 1.0 / 5020.0).abs() < 1e-12);
        assert_eq!(m.beta_ns, 2e6, "floored at 0.2 % of the interval");
        let span = d.dead_at(&p) - d.last_heartbeat_ns();
        let k = m.budget();
        assert_eq!(k, 3);
        assert!(span >= k * S && span < k * S + 50 * MS, "{span} k={k}");
    }

    #[test]
    fn lateness_widens_the_deadline() {
        let p = DetectorParams::default();
        let mut calm = Adaptive::new(S, 0);
        let mut jumpy = Adaptive::new(S, 0);
        let mut t = 0;
        for i in 0..400u64 {
            t += S;
            calm.heartbeat(t, S, &p);
            let off = if i % 2 == 0 { 300 * MS } else { 0 };
            jumpy.heartbeat(t + off, S, &p);
        }
        let calm_span = calm.suspect_at(&p) - calm.last_heartbeat_ns();
        let jumpy_span = jumpy.suspect_at(&p) - jumpy.last_heartbeat_ns();
        assert!(jumpy_span > calm_span + 250 * MS, "{jumpy_span} vs {calm_span}");
    }

    #[test]
    fn an_outage_counts_as_one_burst_just_past_the_budget() {
        let p = DetectorParams::default();
        let mut d = Adaptive::new(50 * MS, 0);
        let mut t = 0;
        for _ in 0..2_000 {
            t += 50 * MS;
            d.heartbeat(t, 50 * MS, &p);
        }
        let budget = d.model(p.target_false_dead_per_s, &p).budget();
        let before = d.loss;
        t += 3_600 * S; // an hour-long partition
        d.heartbeat(t, 50 * MS, &p);
        assert_eq!(d.loss.runs, before.runs + 1);
        assert_eq!(u64::from(d.loss.lost), u64::from(before.lost) + budget + 1);
        // The burst seen raises the budget, but stays finite and small.
        assert!(d.dead_at(&p) - t < 60 * S, "{}", d.dead_at(&p) - t);
    }
}
