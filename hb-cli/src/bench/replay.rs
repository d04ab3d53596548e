//! Replaying a trace through one detector setting: the Chen–Toueg–Aguilera figures
//! (into hb-core's `QosReport`) plus the modelled mistake rates.
//!
//! Why not `hb_core::detect::qos::evaluate` itself: it runs only hb-core's own detectors
//! (it takes a `DetectorKind`), with one announced interval and no STALLED beats, and it
//! drops every arrival after the crash instant, also beats that left before the crash and
//! were still in flight. This loop keeps its definitions exactly (a test checks that it
//! gives the same report on a trace where those differences do not arise) and adds:
//! any detector, the per-beat interval and STALLED flag, in-flight beats, a partition
//! (the window it cuts is down time, not a mistake), and the model of `model.rs`.

use hb_core::detect::qos::QosReport;
use hb_core::detect::{Detector, DetectorKind, DetectorParams};

use super::model::ArrivalModel;
use super::reference::{AkkaPhi, Bertier, ChenNfdE, FixedTimeout};
use super::trace::{Arrival, Trace};

/// One point of a sweep: a detector and its threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    /// heartbeater's own detector at `DetectorParams::default()`.
    Heartbeater(DetectorKind),
    /// Timeout in announced intervals.
    Timeout(f64),
    /// NFD-E safety margin α in announced intervals.
    Chen(f64),
    /// Bertier's φ (weight of the variation in the margin).
    Bertier(f64),
    /// Akka phi threshold.
    Akka(f64),
}

/// Akka's min-std-deviation and acceptable pause, relative to the interval: Akka's
/// defaults are 100 ms and 3 s at a 1 s interval; the pause is 0 here because the swept
/// threshold already moves the deadline (with std at its floor, pause and φ do the same).
pub const AKKA_MIN_STD_INTERVALS: f64 = 0.1;
pub const AKKA_PAUSE_INTERVALS: f64 = 0.0;

impl Setting {
    pub fn family(&self) -> &'static str {
        match self {
            Setting::Heartbeater(k) => k.as_str(),
            Setting::Timeout(_) => "timeout",
            Setting::Chen(_) => "chen",
            Setting::Bertier(_) => "bertier",
            Setting::Akka(_) => "akka-phi",
        }
    }

    /// The swept value and its name.
    pub fn threshold(&self) -> Option<(&'static str, f64)> {
        match *self {
            Setting::Heartbeater(_) => None,
            Setting::Timeout(t) => Some(("timeout_intervals", t)),
            Setting::Chen(a) => Some(("alpha_intervals", a)),
            Setting::Bertier(p) => Some(("phi", p)),
            Setting::Akka(p) => Some(("phi", p)),
        }
    }
}

enum Watcher {
    Heartbeater(Detector, DetectorParams),
    Timeout(FixedTimeout),
    Chen(ChenNfdE),
    Bertier(Bertier),
    Akka(AkkaPhi),
}

impl Watcher {
    fn start(s: Setting, first: &Arrival) -> Watcher {
        let eta = first.interval_ns as f64;
        match s {
            Setting::Heartbeater(k) => {
                Watcher::Heartbeater(Detector::new(k, first.interval_ns, first.t_ns), DetectorParams::default())
            }
            Setting::Timeout(t) => Watcher::Timeout(FixedTimeout::new(first, (t * eta) as u64)),
            Setting::Chen(a) => Watcher::Chen(ChenNfdE::new(first, a * eta)),
            Setting::Bertier(p) => Watcher::Bertier(Bertier::new(first, p)),
            Setting::Akka(p) => {
                Watcher::Akka(AkkaPhi::new(first, p, AKKA_PAUSE_INTERVALS * eta, AKKA_MIN_STD_INTERVALS * eta))
            }
        }
    }

    fn heartbeat(&mut self, a: &Arrival) {
        match self {
            Watcher::Heartbeater(d, p) if a.stalled => d.heartbeat_after_pause(a.t_ns, a.interval_ns, p),
            Watcher::Heartbeater(d, p) => d.heartbeat(a.t_ns, a.interval_ns, p),
            Watcher::Timeout(d) => d.heartbeat(a),
            Watcher::Chen(d) => d.heartbeat(a),
            Watcher::Bertier(d) => d.heartbeat(a),
            Watcher::Akka(d) => d.heartbeat(a),
        }
    }

    /// (suspect_at, dead_at); the references have one level.
    fn deadlines(&self) -> (u64, u64) {
        let one = |t| (t, t);
        match self {
            Watcher::Heartbeater(d, p) => (d.suspect_at(p), d.dead_at(p)),
            Watcher::Timeout(d) => one(d.deadline()),
            Watcher::Chen(d) => one(d.deadline()),
            Watcher::Bertier(d) => one(d.deadline()),
            Watcher::Akka(d) => one(d.deadline()),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Suspect-level mistakes, `false_dead`, T_D (kill → dead) as in hb-core's qos.
    pub qos: QosReport,
    /// Kill → suspect.
    pub suspect_after_kill_ns: Vec<u64>,
    /// Partition start → dead / suspect, one per peer the partition caught.
    pub partition_dead_ns: Vec<u64>,
    pub partition_suspect_ns: Vec<u64>,
    /// Modelled number of false suspicions / false deads over the observed up-time.
    pub model_suspicions: f64,
    pub model_false_dead: f64,
}

impl Outcome {
    pub fn observed_hours(&self) -> f64 {
        self.qos.observed_ns as f64 / 3.6e12
    }
}

/// Replays every peer of `trace` through a fresh detector of `setting`.
pub fn replay(trace: &Trace, setting: Setting, model: &ArrivalModel) -> Outcome {
    let mut out = Outcome::default();
    for (p, beats) in trace.by_peer().iter().enumerate() {
        let peer = replay_peer(beats, trace.kill_of(p as u32), trace.partition, setting, model);
        out.qos.merge(&peer.qos);
        out.suspect_after_kill_ns.extend(peer.suspect_after_kill_ns);
        out.partition_dead_ns.extend(peer.partition_dead_ns);
        out.partition_suspect_ns.extend(peer.partition_suspect_ns);
        out.model_suspicions += peer.model_suspicions;
        out.model_false_dead += peer.model_false_dead;
    }
    out.qos.detection_time_ns.sort_unstable();
    out.suspect_after_kill_ns.sort_unstable();
    out.partition_dead_ns.sort_unstable();
    out.partition_suspect_ns.sort_unstable();
    out
}

fn replay_peer(
    beats: &[Arrival],
    kill: Option<u64>,
    partition: Option<(u64, u64)>,
    setting: Setting,
    model: &ArrivalModel,
) -> Outcome {
    let mut out = Outcome::default();
    // A crashed peer sends nothing after the crash; what it sent before still arrives.
    let beats: Vec<&Arrival> = beats.iter().filter(|a| kill.map_or(true, |k| a.sent_ns < k)).collect();
    let Some(first) = beats.first() else { return out };
    let mut w = Watcher::start(setting, first);
    let mut last = first.t_ns;
    let mut last_mistake: Option<u64> = None;
    let r = &mut out.qos;
    for next in beats[1..].iter().map(|a| Some(*a)).chain(std::iter::once(None)) {
        let (suspect, dead) = w.deadlines();
        let end = match (next, kill) {
            (Some(a), _) => a.t_ns,
            (None, Some(k)) => k.max(last),
            (None, None) => break,
        };
        if end < last {
            w.heartbeat(next.expect("only arrivals can be out of order"));
            continue;
        }
        // The part of [last, end) during which the peer was up and reachable.
        let mut up_end = end;
        if let Some(k) = kill {
            up_end = up_end.min(k.max(last));
        }
        if let Some((p0, p1)) = partition {
            if last < p1 && end > p0 {
                up_end = up_end.min(p0.max(last));
                if end >= p1 && next.is_some() {
                    // The window the heal ends: how long the partition took to convict.
                    out.partition_dead_ns.push(dead.saturating_sub(p0));
                    out.partition_suspect_ns.push(suspect.saturating_sub(p0));
                }
            }
        }
        if suspect < up_end {
            r.mistakes += 1;
            r.mistake_duration_ns.push(up_end - suspect);
            r.suspected_ns += up_end - suspect;
            if let Some(prev) = last_mistake {
                r.mistake_recurrence_ns.push(suspect - prev);
            }
            last_mistake = Some(suspect);
            if dead < up_end {
                r.false_dead += 1;
            }
        }
        r.observed_ns += up_end - last;
        if up_end == end && next.is_some() {
            out.model_suspicions += model.p_exceed(suspect.saturating_sub(last) as f64);
            out.model_false_dead += model.p_exceed(dead.saturating_sub(last) as f64);
        }
        match next {
            Some(a) => {
                w.heartbeat(a);
                last = a.t_ns;
            }
            None => {
                let k = kill.expect("the crash window");
                r.detection_time_ns.push(dead.saturating_sub(k));
                out.suspect_after_kill_ns.push(suspect.saturating_sub(k));
            }
        }
    }
    r.query_accuracy = if r.observed_ns == 0 { 1.0 } else { 1.0 - r.suspected_ns as f64 / r.observed_ns as f64 };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_core::detect::qos;

    const S: u64 = 1_000_000_000;

    fn beat(t_ns: u64, seq: u32) -> Arrival {
        Arrival { t_ns, peer: 0, seq, interval_ns: S, stalled: false, sent_ns: t_ns }
    }

    fn one_peer(arrivals: Vec<Arrival>, kills: Vec<(u32, u64)>, partition: Option<(u64, u64)>) -> Trace {
        Trace {
            profile: "t".into(),
            network: String::new(),
            interval_ns: S,
            peer_ids: vec!["p".into()],
            kills,
            partition,
            ready_ns: 0,
            end_ns: 0,
            arrivals,
        }
    }

    /// Same definitions as hb-core's qos::evaluate: identical reports on a trace with
    /// silences, lost beats and a crash (no in-flight beats, no STALLED, one interval).
    #[test]
    fn agrees_with_hb_core_qos_evaluate() {
        let times: Vec<u64> = (1..=200u64)
            .filter(|i| !(50..=53).contains(i) && !(100..=140).contains(i) && i % 17 != 0)
            .map(|i| i * S + (i * 7919 % 300) * 1_000_000)
            .collect();
        let crash = 180 * S + S / 3;
        let arrivals: Vec<Arrival> = times.iter().enumerate().map(|(i, &t)| beat(t, i as u32 + 1)).collect();
        let trace = one_peer(arrivals, vec![(0, crash)], None);
        let model = ArrivalModel::fit(&trace);
        for kind in [DetectorKind::Adaptive, DetectorKind::Phi] {
            let p = DetectorParams::default();
            let expected = qos::evaluate(kind, &p, S, times[0], &times[1..], Some(crash));
            let got = replay(&trace, Setting::Heartbeater(kind), &model).qos;
            assert_eq!(got, expected, "{kind}");
            // A 41 s silence of a 1 s peer: whatever the detector's tuning, a mistake.
            assert!(got.mistakes > 0, "the trace exercises mistakes: {got:?}");
        }
    }

    #[test]
    fn partition_is_down_time_and_in_flight_beats_count() {
        // Beats every second; a partition from 20.5 s to 40.5 s; a beat sent at 60.9 s
        // arrives after the crash at 61 s (in flight) and still restarts the timeout.
        let mut arrivals: Vec<Arrival> =
            (1..=60u64).filter(|i| !(21..=40).contains(i)).map(|i| beat(i * S, i as u32)).collect();
        arrivals.push(Arrival {
            t_ns: 61 * S + S / 5,
            peer: 0,
            seq: 61,
            interval_ns: S,
            stalled: false,
            sent_ns: 61 * S - S / 10,
        });
        let trace = one_peer(arrivals, vec![(0, 61 * S)], Some((20 * S + S / 2, 40 * S + S / 2)));
        let model = ArrivalModel::fit(&trace);
        let out = replay(&trace, Setting::Timeout(3.0), &model);
        // The partition is no mistake; it convicts 2.5 s after it began.
        assert_eq!((out.qos.mistakes, out.qos.false_dead), (0, 0));
        assert_eq!(out.partition_dead_ns, vec![2 * S + S / 2]);
        // Up: 1 s → 20.5 s and 41 s → 61 s.
        assert_eq!(out.qos.observed_ns, 19 * S + S / 2 + 20 * S);
        // Dead at 61.2 s + 3 s, 3.2 s after the crash.
        assert_eq!(out.qos.detection_time_ns, vec![3 * S + S / 5]);
    }
}
