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
//! cont = lost − runs, e = lost·L̂ (continuations independence explains)
//! data = cont / (lost + w)  if cont > e + 3·√e + free,  else L̂       (free = 1 after 1024 gaps)
//! ĉ = max(L̂, data, c0 · w/(w + lost) · max(0, 1 − gaps/1024))     (warm-up burst prior)
//! P(n lost in a row after a received beat) = L̂ · ĉ^(n−1)
//! ```
//!
//! The priors say what a few samples cannot: 1e-4 loss is not learnable from 1000 gaps, so
//! L̂ never drops below 1/(gaps + N0). Loss is independent unless the continuations beat what
//! independence explains by 3σ: taking max(L̂, cont/lost) instead would pick the upper half of
//! the noise and hold the budget one beat too high. Once the window holds 1024 gaps, one
//! continuation is allowed as chance: a lone double loss on a LAN would otherwise hold the
//! budget at 6 beats for 16k–32k gaps (the cost: bursts of 2 rarer than one per window go
//! unseen). While evidence is thin (first 1024 gaps, few lost beats) ĉ is at least the
//! warm-up prior c0, bounded so a new 1 s peer is still Dead within 8 s.

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
    ///
    /// Independent (ĉ = L̂) unless the continuations seen exceed what independence explains:
    /// cont > e + 3·√e + free, e = lost·L̂, free = 1 once the window holds
    /// [`FLUKE_AFTER_GAPS`] gaps (one double loss by chance must not hold the budget up for
    /// the whole window). Then the data, cont / (lost + w), with the warm-up prior
    /// c0·w / (w + lost) · max(0, 1 − gaps / G) as a floor: bursty only while evidence is thin.
    pub fn continue_prob(&self, params: &DetectorParams) -> f64 {
        let l = self.start_prob(params);
        let w = params.burst_prior_weight;
        let lost = f64::from(self.lost);
        let gaps = f64::from(self.gaps);
        let cont = f64::from(self.lost.saturating_sub(self.runs));
        let expected = lost * l;
        let free = if self.gaps >= FLUKE_AFTER_GAPS { 1.0 } else { 0.0 };
        let data = if cont > expected + 3.0 * expected.sqrt() + free { cont / (lost + w) } else { l };
        let prior = params.burst_prior_continuation * w / (w + lost) * (1.0 - gaps / PRIOR_GAPS).max(0.0);
        // Never 1: an endless burst would make every deadline infinite.
        data.max(prior).max(l).min(MAX_CONTINUATION)
    }
}

/// Gaps after which one continuation in the window is taken as chance, not as a burst.
pub(crate) const FLUKE_AFTER_GAPS: u16 = 1_024;
/// Gaps over which the warm-up continuation prior fades linearly to nothing.
pub(crate) const PRIOR_GAPS: f64 = 1_024.0;

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
        let want = 2.0 / (3.0 + w);
        assert!((l.continue_prob(&p) - want).abs() < 1e-12);
    }

    #[test]
    fn isolated_losses_bring_continuation_down_to_the_loss_rate() {
        let p = DetectorParams { burst_prior_continuation: 0.5, ..DetectorParams::default() };
        let mut l = Loss::default();
        for i in 0..20_000u32 {
            l.push(u64::from(i % 1000 == 0));
        }
        // 20 isolated losses, the warm-up prior faded: independent, ĉ = L̂.
        let (lhat, chat) = (l.start_prob(&p), l.continue_prob(&p));
        assert_eq!(chat, lhat);
        // One double loss among them is chance (p ≈ gaps·L̂²), not a burst ...
        l.push(2);
        assert_eq!(l.continue_prob(&p), l.start_prob(&p));
        // ... two are not.
        l.push(2);
        assert!((l.continue_prob(&p) - 2.0 / (24.0 + p.burst_prior_weight)).abs() < 1e-12);
        // Much more loss than that: ĉ is floored at L̂ (independent loss).
        let mut l = Loss::default();
        for i in 0..20_000u32 {
            l.push(u64::from(i % 10 == 0));
        }
        assert_eq!(l.continue_prob(&p), l.start_prob(&p));
    }

    #[test]
    fn bursts_are_learned_and_the_warm_up_prior_fades() {
        let p = DetectorParams::default();
        // A new peer: the prior c0 alone; it fades linearly with loss-free gaps.
        let mut l = Loss::default();
        assert_eq!(l.continue_prob(&p), p.burst_prior_continuation);
        for _ in 0..512 {
            l.push(0);
        }
        assert!((l.continue_prob(&p) - p.burst_prior_continuation * 0.5).abs() < 1e-12);
        // Early, a single run of 2 is taken as burst evidence (no fluke allowance yet).
        let mut e = Loss::default();
        for _ in 0..100 {
            e.push(0);
        }
        e.push(2);
        assert!((e.continue_prob(&p) - 1.0 / (2.0 + p.burst_prior_weight)).abs() < 1e-12);
        // Bursts of mean 4 every 80 gaps: ĉ ≈ 0.75.
        let mut b = Loss::default();
        for i in 0..20_000u32 {
            b.push(if i % 80 == 0 { 4 } else { 0 });
        }
        assert!((b.continue_prob(&p) - 0.75).abs() < 0.01, "{}", b.continue_prob(&p));
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
