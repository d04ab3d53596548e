//! Whole-trace simulations with seeded randomness: no false Dead under jitter and loss,
//! bounded detection of a silent peer, announced interval changes. Exact, no sleeping.

use super::qos::evaluate;
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;
const KINDS: [DetectorKind; 2] = [DetectorKind::Adaptive, DetectorKind::Phi];

/// Beats sent every `interval` from time 0, each delayed by uniform [lo, hi] and lost with
/// probability `loss`. Returns arrival times in order of arrival.
fn trace(rng: &mut StdRng, interval: u64, lo: u64, hi: u64, loss: f64, duration: u64) -> Vec<u64> {
    let mut out: Vec<u64> = (1..=duration / interval)
        .filter_map(|i| {
            let delay = rng.gen_range(lo..=hi);
            (!rng.gen_bool(loss)).then_some(i * interval + delay)
        })
        .collect();
    out.sort_unstable();
    out
}

struct Outcome {
    dead_probes: u64,
    suspect_probes: u64,
    /// Largest dead_at − last heartbeat seen anywhere in the trace: the worst-case time from
    /// a crash right after a beat to its conviction.
    max_dead_span: u64,
}

/// Runs one peer's trace, probing the verdict at 8 evenly spaced times in every gap and
/// just before each arrival (not only at arrivals).
fn run(kind: DetectorKind, p: &DetectorParams, interval: u64, arrivals: &[u64]) -> Outcome {
    let mut d = Detector::new(kind, interval, 0);
    let mut o = Outcome { dead_probes: 0, suspect_probes: 0, max_dead_span: 0 };
    for &next in arrivals {
        let last = d.last_heartbeat_ns();
        o.max_dead_span = o.max_dead_span.max(d.dead_at(p) - last);
        let probes = (1..=8).map(|k| last + (next - last) * k / 9).chain([next - 1]);
        for t in probes {
            match d.verdict(t, p) {
                Verdict::Dead => o.dead_probes += 1,
                Verdict::Suspect => o.suspect_probes += 1,
                Verdict::Alive => {}
            }
        }
        d.heartbeat(next, interval, p);
    }
    o
}

fn no_false_dead(interval: u64, lo: u64, hi: u64, seed: u64, max_span: u64) {
    let p = DetectorParams::default();
    for kind in KINDS {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut dead, mut suspect, mut worst) = (0, 0, 0);
        for _peer in 0..50 {
            let arrivals = trace(&mut rng, interval, lo, hi, 0.05, 3600 * S);
            let o = run(kind, &p, interval, &arrivals);
            dead += o.dead_probes;
            suspect += o.suspect_probes;
            worst = worst.max(o.max_dead_span);
        }
        eprintln!(
            "{kind}: {interval} ns interval: dead probes {dead}, suspect probes {suspect}, worst dead span {worst} ns"
        );
        assert_eq!(dead, 0, "{kind}: false Dead verdicts");
        assert!(worst <= max_span, "{kind}: worst dead span {worst} > {max_span}");
    }
}

#[test]
fn wan_jitter_and_loss_never_convict_50_peers_for_an_hour() {
    // 1 s interval, 100–500 ms delay, 5 % loss. Bound: dead within 8.5 s of the last beat
    // (worst seen over seeds ≈ 7.9 s; floor for k = 6: η + J + 5η = 6.4 s).
    no_false_dead(S, 100 * MS, 500 * MS, 1, 8_500 * MS);
}

#[test]
fn lan_200ms_interval_never_convicts_and_detects_within_1_6_s() {
    // 200 ms interval, 0–20 ms delay, 5 % loss; dead within 1.6 s (< 2 s) of the last beat
    // (worst seen over seeds ≈ 1.50 s; floor for k = 6: 6η + J = 1.22 s).
    no_false_dead(200 * MS, 0, 20 * MS, 2, 1_600 * MS);
}

#[test]
fn silent_peer_is_convicted_within_the_bound() {
    let p = DetectorParams::default();
    let cases = [(S, 100 * MS, 500 * MS, 8_500 * MS), (200 * MS, 0, 20 * MS, 1_600 * MS)];
    for kind in KINDS {
        for (i, &(interval, lo, hi, bound)) in cases.iter().enumerate() {
            let mut rng = StdRng::seed_from_u64(10 + i as u64);
            let arrivals = trace(&mut rng, interval, lo, hi, 0.05, 600 * S);
            let mut d = Detector::new(kind, interval, 0);
            for &t in &arrivals {
                d.heartbeat(t, interval, &p);
            }
            // The peer crashes right after its last beat.
            let last = d.last_heartbeat_ns();
            let dead_at = d.dead_at(&p);
            assert!(dead_at - last <= bound, "{kind}: {} > {bound}", dead_at - last);
            assert!(d.suspect_at(&p) < dead_at);
            assert_eq!(d.verdict(last + bound, &p), Verdict::Dead);
            assert_eq!(d.verdict(dead_at - 1, &p), Verdict::Suspect);

            // The same through the QoS helper: T_D ≤ bound.
            let crash = last + 1;
            let r = evaluate(kind, &p, interval, 0, &arrivals, Some(crash));
            assert_eq!(r.false_dead, 0);
            assert!(r.detection_time_ns[0] <= bound, "{kind}: T_D {:?}", r.detection_time_ns);
        }
    }
}

#[test]
fn peer_that_announces_a_longer_interval_is_not_suspected() {
    let p = DetectorParams::default();
    for kind in KINDS {
        let mut rng = StdRng::seed_from_u64(3);
        let mut d = Detector::new(kind, S, 0);
        let mut t = 0;
        let beat = |d: &mut Detector, t: u64, announced: u64| {
            let last = d.last_heartbeat_ns();
            for k in 1..=20 {
                let probe = last + (t - last) * k / 21;
                assert_eq!(d.verdict(probe, &p), Verdict::Alive, "{kind} at {probe}");
            }
            d.heartbeat(t, announced, &p);
        };
        // 30 beats at 1 s; then the beat at which the client announces 10 s; then 30 beats
        // at 10 s. Jitter 0–20 ms. The announcement travels in the beat *before* the longer
        // wait (it promises the gap until the next beat).
        for _ in 0..30 {
            t += S;
            let jit = rng.gen_range(0..=20 * MS);
            beat(&mut d, t + jit, S);
        }
        t += S;
        beat(&mut d, t, 10 * S);
        for _ in 0..30 {
            t += 10 * S;
            let jit = rng.gen_range(0..=20 * MS);
            beat(&mut d, t + jit, 10 * S);
        }
        assert_eq!(d.announced_interval_ns(), 10 * S);
        // And back to 1 s: detection is fast again at once.
        t += 10 * S;
        beat(&mut d, t, S);
        assert!(d.dead_at(&p) - t <= 8 * S, "{kind}: {}", d.dead_at(&p) - t);
    }
}

#[test]
fn gradual_growth_by_the_interval_policy_is_not_suspected() {
    // The client grows its interval 1 s → 30 s by 1.25× steps (IntervalPolicy), announcing
    // each new value; every change re-bases the detector.
    let p = DetectorParams::default();
    for kind in KINDS {
        // TTL 150 s: 4 beats per TTL at the loss floor leave the 30 s cap in reach.
        let mut policy = IntervalPolicy::new(S, 30 * S, 150 * S);
        let mut rtt = RttEstimator::new();
        let mut d = Detector::new(kind, policy.current_ns(), 0);
        let mut sent = 0;
        for _ in 0..200 {
            let interval = policy.current_ns();
            sent += interval;
            let at = sent + 5 * MS;
            for k in 1..=10 {
                let probe = d.last_heartbeat_ns() + (at - d.last_heartbeat_ns()) * k / 11;
                assert_eq!(d.verdict(probe, &p), Verdict::Alive, "{kind}");
            }
            policy.on_ack(10 * MS, &rtt);
            rtt.sample(10 * MS);
            // The beat announces the interval until the *next* beat.
            d.heartbeat(at, policy.current_ns(), &p);
        }
        assert_eq!(policy.current_ns(), 30 * S);
    }
}

#[test]
fn crash_detected_at_a_few_intervals_even_during_warm_up() {
    // A peer that crashes right after registering: judged on the announced interval alone.
    let p = DetectorParams::default();
    for kind in KINDS {
        let d = Detector::new(kind, S, 0);
        let span = d.dead_at(&p);
        assert!(span > 6 * S && span <= 8 * S, "{kind}: {span}");
    }
}
