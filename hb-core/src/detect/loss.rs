//! Per-peer loss model: Gilbert–Elliott (bursty) loss learned from the gaps, 6 bytes.
//!
//! A gap of ≈ k intervals is k − 1 lost beats in a row. Three counts, halved together when
//! they grow large (a decayed window of 16k–32k gaps):
//!
//! ```text
//! gaps  = gaps seen (each starts at a received beat)
//! runs  = gaps with at least one lost beat        → L = P(lost | previous received)
//! lost  = lost beats                              → c = P(lost | previous lost)
//! L̂ = (runs + 1) / (gaps + loss_prior_beats)                      (Laplace/Beta prior)
//! ĉ = max(L̂, (lost − runs + w·c0) / (lost + w))   (prior: bursts of continuation c0, weight w)
//! P(n lost in a row after a received beat) = L̂ · ĉ^(n−1)
//! ```
//!
//! The priors say what a few samples cannot: 1e-4 loss is not learnable from 1000 gaps, so
//! L̂ never drops below 1/(gaps + N0); a burst structure is not learnable from three isolated
//! losses, so ĉ starts at c0 and only many isolated losses bring it down. ĉ is never below
//! L̂ (losses are assumed at least as likely after a loss as after a delivery).

use super::DetectorParams;

/// Halve the counts when `gaps` reaches this (or `lost` nears the u16 range): a window of
/// 16k–32k gaps, long enough to see tens of losses at 0.1 %.
const HALVE_AT_GAPS: u16 = 32_768;
const HALVE_AT_LOST: u16 = 60_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Loss {
    pub gaps: u16,
    pub runs: u16,
    pub lost: u16,
}

impl Loss {
    /// Records one gap that ended with a received beat after `lost` lost ones.
    pub fn push(&mut self, lost: u64) {
        if self.gaps >= HALVE_AT_GAPS || self.lost >= HALVE_AT_LOST {
            // Floors keep runs <= lost <= ... consistent: lost/2 >= runs/2.
            self.gaps /= 2;
            self.runs /= 2;
            self.lost /= 2;
        }
        self.gaps = self.gaps.saturating_add(1);
        if lost > 0 {
            self.runs = self.runs.saturating_add(1);
            self.lost = self.lost.saturating_add(lost.min(u16::MAX as u64) as u16);
        }
    }

    /// L̂: probability that the beat after a received one is lost.
    pub fn start_prob(&self, params: &DetectorParams) -> f64 {
        let l = (f64::from(self.runs) + 1.0) / (f64::from(self.gaps) + params.loss_prior_beats);
        l.min(0.5)
    }

    /// ĉ: probability that the beat after a lost one is lost too.
    pub fn continue_prob(&self, params: &DetectorParams) -> f64 {
        let w = params.burst_prior_weight;
        let cont = f64::from(self.lost.saturating_sub(self.runs));
        let c = (cont + w * params.burst_prior_continuation) / (f64::from(self.lost) + w);
        // Never 1: an endless burst would make every deadline infinite.
        c.max(self.start_prob(params)).min(MAX_CONTINUATION)
    }
}

/// ĉ is capped here so a peer that was silent for long keeps a finite loss budget.
pub(crate) const MAX_CONTINUATION: f64 = 0.999;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_estimates() {
        let p = DetectorParams { burst_prior_continuation: 0.5, ..DetectorParams::default() };
        let mut l = Loss::default();
        // Nothing seen: the priors alone.
        assert_eq!(l.start_prob(&p), 1.0 / p.loss_prior_beats);
        assert!((l.continue_prob(&p) - p.burst_prior_continuation).abs() < 1e-12);
        for _ in 0..980 {
            l.push(0);
        }
        l.push(3); // one burst of 3
        assert_eq!(l, Loss { gaps: 981, runs: 1, lost: 3 });
        assert!((l.start_prob(&p) - 2.0 / (981.0 + p.loss_prior_beats)).abs() < 1e-12);
        let w = p.burst_prior_weight;
        let want = (2.0 + w * p.burst_prior_continuation) / (3.0 + w);
        assert!((l.continue_prob(&p) - want).abs() < 1e-12);
    }

    #[test]
    fn isolated_losses_bring_continuation_down_to_the_loss_rate() {
        let p = DetectorParams { burst_prior_continuation: 0.5, ..DetectorParams::default() };
        let mut l = Loss::default();
        for i in 0..20_000u32 {
            l.push(u64::from(i % 1000 == 0));
        }
        // 20 isolated losses: ĉ = w·c0 / (20 + w), far under the prior, never under L̂.
        let (lhat, chat) = (l.start_prob(&p), l.continue_prob(&p));
        let w = p.burst_prior_weight;
        assert!((chat - w * p.burst_prior_continuation / (20.0 + w)).abs() < 1e-12, "{chat}");
        assert!(chat < 0.01 && chat >= lhat, "{lhat} {chat}");
        // Much more loss than that: ĉ is floored at L̂ (independent loss).
        let mut l = Loss::default();
        for i in 0..20_000u32 {
            l.push(u64::from(i % 10 == 0));
        }
        assert_eq!(l.continue_prob(&p), l.start_prob(&p));
    }

    #[test]
    fn halving_keeps_a_window() {
        let p = DetectorParams::default();
        let mut l = Loss::default();
        for _ in 0..100_000 {
            l.push(1);
        }
        assert!(l.gaps <= HALVE_AT_GAPS && l.runs <= l.gaps && l.lost >= l.runs, "{l:?}");
        assert!(l.start_prob(&p) > 0.4);
        // A huge run saturates instead of wrapping.
        l.push(u64::MAX);
        assert_eq!(l.lost, u16::MAX);
        assert!(l.continue_prob(&p) <= MAX_CONTINUATION);
    }
}
