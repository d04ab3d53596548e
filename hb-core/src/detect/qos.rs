//! Chen–Toueg–Aguilera QoS metrics ("On the quality of service of failure detectors",
//! IEEE TC 2002) of one detector over one recorded trace, for the benchmarks.
//!
//! The detector output is read at the Suspect level, as in the paper (trust vs. suspect):
//! a *mistake* is an alive→suspect transition while the peer was up, its duration T_M runs
//! until the next heartbeat (or the crash), T_MR is the time between two mistakes, and
//! P_A is the share of up-time during which the output was Alive. Mistakes that went as far
//! as Dead are counted separately in `false_dead`. Detection time T_D is crash → Dead.

use super::{Detector, DetectorKind, DetectorParams};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct QosReport {
    /// T_D: crash → Dead, one entry per crashed trace.
    pub detection_time_ns: Vec<u64>,
    /// Alive→suspect transitions while the peer was up.
    pub mistakes: u64,
    /// T_M of each mistake.
    pub mistake_duration_ns: Vec<u64>,
    /// T_MR: time between consecutive mistakes of one trace.
    pub mistake_recurrence_ns: Vec<u64>,
    /// Mistakes that reached Dead (a wrongly convicted peer).
    pub false_dead: u64,
    /// Up-time observed (registration → crash, or → last heartbeat without a crash).
    pub observed_ns: u64,
    /// Up-time during which the output was not Alive.
    pub suspected_ns: u64,
    /// P_A = 1 − suspected / observed.
    pub query_accuracy: f64,
}

impl QosReport {
    /// λ_M: mistakes per peer-hour of observed up-time.
    pub fn mistake_rate_per_hour(&self) -> f64 {
        if self.observed_ns == 0 {
            return 0.0;
        }
        self.mistakes as f64 * 3.6e12 / self.observed_ns as f64
    }

    /// Pools another trace's results into this one (e.g. over many peers).
    pub fn merge(&mut self, other: &QosReport) {
        self.detection_time_ns.extend_from_slice(&other.detection_time_ns);
        self.mistakes += other.mistakes;
        self.mistake_duration_ns.extend_from_slice(&other.mistake_duration_ns);
        self.mistake_recurrence_ns.extend_from_slice(&other.mistake_recurrence_ns);
        self.false_dead += other.false_dead;
        self.observed_ns += other.observed_ns;
        self.suspected_ns += other.suspected_ns;
        self.query_accuracy = accuracy(self.suspected_ns, self.observed_ns);
    }
}

fn accuracy(suspected_ns: u64, observed_ns: u64) -> f64 {
    if observed_ns == 0 {
        1.0
    } else {
        1.0 - suspected_ns as f64 / observed_ns as f64
    }
}

/// Runs a fresh detector, registered at `start_ns`, over heartbeat arrival times (ascending;
/// each announcing `announced_interval_ns`) and reports the metrics. Arrivals at or after
/// `crash_ns` are ignored: a crashed peer sends nothing.
pub fn evaluate(
    kind: DetectorKind,
    params: &DetectorParams,
    announced_interval_ns: u64,
    start_ns: u64,
    arrivals_ns: &[u64],
    crash_ns: Option<u64>,
) -> QosReport {
    let mut d = Detector::new(kind, announced_interval_ns, start_ns);
    let mut r = QosReport::default();
    let mut last_mistake: Option<u64> = None;
    let up_until = |t: u64| crash_ns.map_or(true, |c| t < c);

    // Each window [last beat, end) where `end` is the next beat, or the crash.
    let ends = arrivals_ns.iter().copied().filter(|&t| up_until(t)).map(Some);
    let ends = ends.chain(std::iter::once(None));
    let mut up_end = start_ns;
    for next in ends {
        let end = match (next, crash_ns) {
            (Some(t), _) => t,
            (None, Some(c)) => c,
            (None, None) => break,
        };
        if end < d.last_heartbeat_ns() {
            continue; // out of order: the detector ignores it too
        }
        let suspect = d.suspect_at(params);
        if suspect < end {
            r.mistakes += 1;
            r.mistake_duration_ns.push(end - suspect);
            r.suspected_ns += end - suspect;
            if let Some(prev) = last_mistake {
                r.mistake_recurrence_ns.push(suspect - prev);
            }
            last_mistake = Some(suspect);
            if d.dead_at(params) < end {
                r.false_dead += 1;
            }
        }
        up_end = end;
        match next {
            Some(t) => d.heartbeat(t, announced_interval_ns, params),
            None => {
                let c = end;
                r.detection_time_ns.push(d.dead_at(params).saturating_sub(c));
            }
        }
    }
    r.observed_ns = up_end.saturating_sub(start_ns);
    r.query_accuracy = accuracy(r.suspected_ns, r.observed_ns);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    #[test]
    fn perfect_trace_with_crash() {
        let p = DetectorParams::default();
        let arrivals: Vec<u64> = (1..=100).map(|i| i * S).collect();
        // Crash at 100.5 s, just after the 100th beat; later "arrivals" are ignored.
        let mut trace = arrivals.clone();
        trace.push(101 * S);
        let r = evaluate(DetectorKind::Adaptive, &p, S, 0, &trace, Some(100 * S + 500 * MS));
        assert_eq!((r.mistakes, r.false_dead), (0, 0));
        assert_eq!(r.query_accuracy, 1.0);
        assert_eq!(r.observed_ns, 100 * S + 500 * MS);
        // Steady 1 s peer, 100 gaps without loss: L̂ = 1/120 and the warm-up burst prior
        // ĉ = 0.07·(1 − 100/1024) = 0.063, budget 6 lost beats (L̂·ĉ^5 = 8.4e-9 < ε), so dead
        // at last + 6 s + the learned tail, i.e. ≈ 5.5 s after the crash.
        let mut d = Detector::new(DetectorKind::Adaptive, S, 0);
        for &t in &arrivals {
            d.heartbeat(t, S, &p);
        }
        assert_eq!(r.detection_time_ns, vec![d.dead_at(&p) - (100 * S + 500 * MS)]);
        assert!(
            r.detection_time_ns[0] > 5_400 * MS && r.detection_time_ns[0] < 5_700 * MS,
            "{:?}",
            r.detection_time_ns
        );
    }

    #[test]
    fn gaps_are_mistakes_with_duration_and_recurrence() {
        // Phi with a 1-interval pause: it does not learn from lost beats, so both silences
        // are judged alike (suspect at 2 s + z(5)·50 ms = 2.206 s, dead at 2.261 s).
        let p = DetectorParams { phi_pause_intervals: 1.0, ..DetectorParams::default() };
        // Beats every second, except two silences of 4 s (3 lost beats each).
        let arrivals: Vec<u64> =
            (1..=60u64).filter(|i| !(21..=23).contains(i) && !(41..=43).contains(i)).map(|i| i * S).collect();
        let r = evaluate(DetectorKind::Phi, &p, S, 0, &arrivals, None);
        assert_eq!((r.mistakes, r.false_dead), (2, 2));
        // suspect at 20 s + 2.206 s, heard at 24 s: T_M = 1.794 s (same for the second).
        for &tm in &r.mistake_duration_ns {
            assert!(tm.abs_diff(1_794 * MS) < MS, "{tm}");
        }
        assert_eq!(r.mistake_recurrence_ns.len(), 1);
        assert!(r.mistake_recurrence_ns[0].abs_diff(20 * S) < MS);
        assert!(r.detection_time_ns.is_empty());
        let expected = 1.0 - 2.0 * 1.794 / 60.0;
        assert!((r.query_accuracy - expected).abs() < 1e-4, "{}", r.query_accuracy);
        assert!((r.mistake_rate_per_hour() - 120.0).abs() < 1e-9);

        let mut pooled = r.clone();
        pooled.merge(&r);
        assert_eq!(pooled.mistakes, 4);
        assert!((pooled.query_accuracy - r.query_accuracy).abs() < 1e-12);
    }
}
