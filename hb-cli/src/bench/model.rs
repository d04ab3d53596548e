//! The modelled mistake rate: how often a detector's deadline would be overrun by a
//! live peer, under a distribution fitted to the trace, for rates far too small to
//! observe in minutes of trace.
//!
//! Model of the gap after a received beat: the next beat to arrive is the K-th one sent
//! after it (K − 1 lost in between) and comes K periods later plus a residual R:
//! gap = K·η + R. K follows a Gilbert-Elliott chain fitted to the loss runs seen in the
//! sequence numbers (P(K=1) = 1 − e, P(K=k) = e·s^(k−2)·(1 − s); Bernoulli loss is the case
//! s = e). R is the measured `gap − K·η` (jitter of both beats and the sender's timer),
//! empirical up to its 99th percentile and with an exponential tail fitted above it (the
//! mean excess), so that the model does not say "never" past the largest sample.
//! A detector whose deadline is D after the last beat is wrong in that gap with
//! probability P(K·η + R > D) = Σ_k P(K=k)·P(R > D − k·η).

use super::trace::Trace;

#[derive(Clone, Debug)]
pub struct ArrivalModel {
    pub period_ns: f64,
    /// P(the beat after a received one is lost).
    pub enter_loss: f64,
    /// P(a lost beat is followed by another lost one).
    pub stay_loss: f64,
    /// Long-run loss fraction and mean burst length measured in the trace.
    pub loss: f64,
    pub mean_burst: f64,
    residuals: Vec<f64>,
    tail_from: f64,
    tail_fraction: f64,
    tail_mean_ns: f64,
}

impl ArrivalModel {
    pub fn fit(trace: &Trace) -> ArrivalModel {
        let (mut pairs, mut bursts, mut lost, mut received) = (0u64, 0u64, 0u64, 0u64);
        let mut residuals = Vec::new();
        let mut periods = Vec::new();
        for (p, beats) in trace.by_peer().iter().enumerate() {
            let kill = trace.kill_of(p as u32);
            let beats: Vec<_> = beats.iter().filter(|a| kill.map_or(true, |k| a.sent_ns < k)).collect();
            let (Some(first), Some(last)) = (beats.first(), beats.last()) else { continue };
            if last.seq <= first.seq {
                continue;
            }
            let period = (last.t_ns - first.t_ns) as f64 / f64::from(last.seq - first.seq);
            periods.push(period);
            received += beats.len() as u64;
            for w in beats.windows(2) {
                let (a, b) = (w[0], w[1]);
                if b.seq <= a.seq {
                    continue;
                }
                // Gaps the partition cut short or stretched say nothing about the network.
                if trace.partition.is_some_and(|(p0, p1)| a.t_ns < p1 && b.t_ns > p0) {
                    continue;
                }
                let k = b.seq - a.seq;
                pairs += 1;
                if k > 1 {
                    bursts += 1;
                    lost += u64::from(k - 1);
                }
                residuals.push((b.t_ns - a.t_ns) as f64 - f64::from(k) * period);
            }
        }
        residuals.sort_by(f64::total_cmp);
        periods.sort_by(f64::total_cmp);
        let period_ns = periods.get(periods.len() / 2).copied().unwrap_or(trace.interval_ns as f64);
        let loss = if received + lost > 0 { lost as f64 / (received + lost) as f64 } else { 0.0 };
        let n = residuals.len();
        let q_idx = (n as f64 * 0.99) as usize;
        let tail_from = residuals.get(q_idx).copied().unwrap_or(0.0);
        let tail = &residuals[q_idx.min(n)..];
        let excess = tail.iter().map(|r| r - tail_from).sum::<f64>() / tail.len().max(1) as f64;
        ArrivalModel {
            period_ns,
            enter_loss: if pairs > 0 { bursts as f64 / pairs as f64 } else { 0.0 },
            // Never less bursty than independent loss: a short trace with no run of two
            // lost beats would otherwise say that two in a row never happen.
            stay_loss: if lost > 0 { (1.0 - bursts as f64 / lost as f64).max(loss) } else { 0.0 },
            loss,
            mean_burst: if bursts > 0 { lost as f64 / bursts as f64 } else { 0.0 },
            tail_fraction: if n > 0 { (n - q_idx.min(n)) as f64 / n as f64 } else { 0.0 },
            residuals,
            tail_from,
            // A floor of 1 µs keeps a degenerate (constant) sample from a zero-width tail.
            tail_mean_ns: excess.max(1_000.0),
        }
    }

    pub fn samples(&self) -> usize {
        self.residuals.len()
    }

    /// P(R > x).
    fn survival(&self, x: f64) -> f64 {
        let n = self.residuals.len();
        if n == 0 || x < self.residuals[0] {
            return 1.0;
        }
        if x >= self.tail_from {
            return self.tail_fraction * (-(x - self.tail_from) / self.tail_mean_ns).exp();
        }
        let above = n - self.residuals.partition_point(|&r| r <= x);
        above as f64 / n as f64
    }

    /// P(the next arrival comes later than `d_ns` after the last one).
    pub fn p_exceed(&self, d_ns: f64) -> f64 {
        let min_r = self.residuals.first().copied().unwrap_or(0.0);
        let mut total = 0.0;
        for k in 1..=100_000u32 {
            // P(K >= k): the tail of the loss chain.
            let at_least = if k == 1 { 1.0 } else { self.enter_loss * self.stay_loss.powi(k as i32 - 2) };
            let x = d_ns - f64::from(k) * self.period_ns;
            if x < min_r {
                // Every longer run is certainly late: add the whole remaining tail.
                return total + at_least;
            }
            let p_k = if k == 1 { 1.0 - self.enter_loss } else { at_least * (1.0 - self.stay_loss) };
            total += p_k * self.survival(x);
            if at_least < 1e-300 {
                break;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::trace::Arrival;

    /// 1 s beats, a fixed 100 ms delay, every 20th beat lost (5 %, runs of one).
    fn trace() -> Trace {
        let s = 1_000_000_000u64;
        let arrivals = (1..=2000u32)
            .filter(|i| i % 20 != 0)
            .map(|i| Arrival {
                t_ns: u64::from(i) * s + s / 10,
                peer: 0,
                seq: i,
                interval_ns: s,
                stalled: false,
                sent_ns: u64::from(i) * s,
            })
            .collect();
        Trace {
            profile: "t".into(),
            network: String::new(),
            interval_ns: s,
            peer_ids: vec!["p".into()],
            kills: vec![],
            partition: None,
            ready_ns: 0,
            end_ns: 2001 * s,
            arrivals,
        }
    }

    #[test]
    fn fits_loss_runs_and_gives_the_chain_probabilities() {
        let m = ArrivalModel::fit(&trace());
        assert!((m.loss - 0.05).abs() < 1e-3, "{}", m.loss);
        assert_eq!(m.mean_burst, 1.0);
        // 99 runs inside the trace (the 100th loss, seq 2000, is its end) after 1899 pairs.
        assert!((m.enter_loss - 99.0 / 1899.0).abs() < 1e-9, "{}", m.enter_loss);
        assert_eq!(m.stay_loss, m.loss, "no run of two: floored at independent loss");
        let s = 1e9;
        // Deadline 0.5 s: every gap overruns it. 1.5 s: only gaps with a lost beat.
        assert!((m.p_exceed(0.5 * s) - 1.0).abs() < 1e-9);
        assert!((m.p_exceed(1.5 * s) - m.enter_loss).abs() < 1e-9, "{}", m.p_exceed(1.5 * s));
        // 2.5 s: two lost in a row, P = e·s; the residual is constant, its tail negligible.
        assert!((m.p_exceed(2.5 * s) - m.enter_loss * m.stay_loss).abs() < 1e-12);
    }
}
