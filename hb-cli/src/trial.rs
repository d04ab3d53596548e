//! One detection trial, shared by `demo` and `bench detection`: monitors (one per
//! detector) fed the same impaired traffic through one teeing relay, N in-process clients,
//! some killed mid-run, and the Chen-Toueg-Aguilera quality-of-service figures per
//! detector: detection time T_D, false `dead`, mistakes (false suspicions) per peer-hour,
//! mistake duration T_M and query accuracy P_A.
//!
//! A kill crashes the client (`Client::crash_for_test`: it stops beating without a goodbye)
//! and cuts it off at the relay too, so not even a late packet of it reaches a monitor
//! after the kill instant (beats already in flight in the relay still arrive, as they would).

use hb_core::config::format_duration;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_core::{Client, Event, Monitor, Options, State};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::fail::{runtime, set, usage, CmdResult};
use crate::impair::Impairment;
use crate::relay::{Relay, RelaySpec};

pub struct TrialSpec {
    pub peers: usize,
    pub kill: usize,
    pub duration: Duration,
    pub impairment: Impairment,
    pub interval: String,
    pub seed: u64,
    pub detectors: Vec<String>,
    /// Print the first detector's transitions as they happen.
    pub live: bool,
}

#[derive(Debug)]
pub struct DetectorReport {
    pub detector: String,
    pub killed: usize,
    pub detected: usize,
    /// Sorted detection times in ms.
    pub detection_ms: Vec<u64>,
    pub false_dead: usize,
    pub false_suspicions: usize,
    pub mistake_rate_per_peer_hour: f64,
    pub mean_mistake_ms: f64,
    pub query_accuracy: f64,
}

impl DetectorReport {
    pub fn percentile(&self, p: f64) -> Option<u64> {
        percentile(&self.detection_ms, p)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "detector": self.detector,
            "killed": self.killed,
            "detected": self.detected,
            "detection_ms": self.detection_ms,
            "detection_p50_ms": self.percentile(0.50),
            "detection_p99_ms": self.percentile(0.99),
            "false_dead": self.false_dead,
            "false_suspicions": self.false_suspicions,
            "mistake_rate_per_peer_hour": self.mistake_rate_per_peer_hour,
            "mean_mistake_ms": self.mean_mistake_ms,
            "query_accuracy": self.query_accuracy,
        })
    }
}

pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The physical floor of DESIGN.md: T_D ≈ η + J + (k−1)·η with k = ⌈ln ε / ln p⌉.
pub fn physical_floor(interval: Duration, jitter: Duration, loss: f64, epsilon: f64) -> Duration {
    let k = if loss <= 0.0 { 1.0 } else { (epsilon.ln() / loss.ln()).ceil().max(1.0) };
    interval + jitter + interval.mul_f64(k - 1.0)
}

pub struct TrialReport {
    pub detectors: Vec<DetectorReport>,
    pub floor: Duration,
    pub epsilon: f64,
    pub relay_lost: u64,
    pub relay_forwarded: u64,
}

type Log = Arc<Mutex<Vec<(usize, Event)>>>;

pub fn run(spec: &TrialSpec) -> CmdResult<TrialReport> {
    if spec.peers == 0 || spec.kill > spec.peers {
        return Err(usage(format!(
            "kill {}: expected at most --peers ({}), and at least one peer",
            spec.kill, spec.peers
        )));
    }
    // Checked once up front so a bad --interval is a usage error, not a failure per client.
    let interval = hb_core::config::IntervalRange::parse(&spec.interval)?.min;

    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let mut monitors = Vec::new();
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for (idx, detector) in spec.detectors.iter().enumerate() {
        let mut o = Options::new();
        set(&mut o, "listen", "udp://127.0.0.1:0")?;
        set(&mut o, "detector", detector)?;
        let m = Monitor::new(&o)?;
        let (log, live) = (Arc::clone(&log), spec.live && idx == 0);
        m.events().set_callback(Box::new(move |ev| {
            if live {
                crate::event_line::print_event(ev, false);
            }
            log.lock().push((idx, ev.clone()));
        }))?;
        m.start()?;
        let addr =
            m.local_addrs()?.into_iter().map(|(_, a)| a).next().ok_or_else(|| runtime("monitor bound no address"))?;
        addrs.push(addr);
        monitors.push(m);
    }

    let relay = Relay::start(RelaySpec {
        listen: "127.0.0.1:0".parse().expect("literal"),
        upstreams: addrs,
        impairment: spec.impairment.clone(),
        seed: spec.seed,
    })
    .map_err(|e| runtime(format!("start relay: {e}")))?;

    let ids: Vec<String> = (0..spec.peers).map(|i| format!("peer-{i:03}")).collect();
    let mut clients = Vec::new();
    for id in &ids {
        let mut o = Options::new();
        set(&mut o, "endpoint", &format!("udp://{}", relay.local_addr()))?;
        set(&mut o, "service", "demo")?;
        set(&mut o, "instance_id", id)?;
        set(&mut o, "interval", &spec.interval)?;
        let c = Client::new(&o)?;
        c.start()?;
        clients.push(Some(c));
    }

    // Warm-up: every peer alive on every monitor (a beat or two through the relay).
    let deadline = Instant::now() + Duration::from_secs(10) + spec.impairment.jitter_max * 4 + interval * 4;
    loop {
        let ready = monitors
            .iter()
            .all(|m| m.peers().unwrap_or_default().iter().filter(|p| p.state == State::Alive).count() == spec.peers);
        if ready {
            break;
        }
        if Instant::now() > deadline {
            return Err(runtime("warm-up: not every peer became alive on every monitor within the deadline"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ready_ms = hb_core::events::unix_ms_now();
    let t0 = Instant::now();

    // Kills at seeded random times between 20% and 50% of the run, so that even the
    // slowest detector has half the run to notice.
    let mut rng = StdRng::seed_from_u64(spec.seed ^ 0x6b69_6c6c);
    let mut victims: Vec<usize> = (0..spec.peers).collect();
    victims.shuffle(&mut rng);
    victims.truncate(spec.kill);
    let mut schedule: Vec<(Duration, usize)> =
        victims.iter().map(|&v| (spec.duration.mul_f64(rng.gen_range(0.2..0.5)), v)).collect();
    schedule.sort();
    let mut killed: BTreeMap<String, u64> = BTreeMap::new();
    for (at, v) in schedule {
        sleep_until(t0 + at);
        relay.cut(&ids[v]);
        killed.insert(ids[v].clone(), hb_core::events::unix_ms_now());
        if spec.live {
            println!("*** killed {} (no goodbye)", ids[v]);
        }
        if let Some(c) = clients[v].take() {
            c.crash_for_test();
        }
    }
    sleep_until(t0 + spec.duration);
    let end_ms = hb_core::events::unix_ms_now();

    for m in &monitors {
        let _ = m.stop();
    }
    for c in clients.iter().flatten() {
        let _ = c.stop(Duration::from_secs(1));
    }
    let events = std::mem::take(&mut *log.lock());
    let stats = relay.stats();
    let report = TrialReport {
        detectors: spec
            .detectors
            .iter()
            .enumerate()
            .map(|(idx, name)| analyse(name, idx, &events, &ids, &killed, ready_ms, end_ms))
            .collect(),
        epsilon: 1e-4,
        floor: physical_floor(interval, spec.impairment.jitter_spread(), spec.impairment.loss, 1e-4),
        relay_lost: stats.lost.load(std::sync::atomic::Ordering::Relaxed),
        relay_forwarded: stats.up_forwarded.load(std::sync::atomic::Ordering::Relaxed),
    };
    Ok(report)
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn analyse(
    name: &str,
    idx: usize,
    events: &[(usize, Event)],
    ids: &[String],
    killed: &BTreeMap<String, u64>,
    ready_ms: u64,
    end_ms: u64,
) -> DetectorReport {
    let mut detection_ms = Vec::new();
    let (mut false_dead, mut false_suspicions) = (0, 0);
    let (mut mistake_ms_total, mut observed_ms_total) = (0u64, 0u64);
    for id in ids {
        let kill_at = killed.get(id).copied();
        // The window in which this peer was up: mistakes count only there.
        let up_until = kill_at.unwrap_or(end_ms);
        observed_ms_total += up_until.saturating_sub(ready_ms);
        let mine: Vec<&Event> = events
            .iter()
            .filter(|(i, e)| *i == idx && e.peer == *id && e.at_unix_ms >= ready_ms && e.at_unix_ms <= end_ms)
            .map(|(_, e)| e)
            .collect();
        let mut suspected_at: Option<u64> = None;
        for e in &mine {
            let wrongly = e.at_unix_ms < up_until;
            match e.to {
                State::Suspect if wrongly => {
                    false_suspicions += 1;
                    suspected_at = Some(e.at_unix_ms);
                }
                State::Dead if wrongly => {
                    false_dead += 1;
                    suspected_at.get_or_insert(e.at_unix_ms);
                }
                State::Alive => {
                    if let Some(s) = suspected_at.take() {
                        mistake_ms_total += e.at_unix_ms.min(up_until).saturating_sub(s);
                    }
                }
                _ => {}
            }
        }
        if let Some(s) = suspected_at {
            mistake_ms_total += up_until.saturating_sub(s);
        }
        if let Some(k) = kill_at {
            if let Some(dead) = mine.iter().find(|e| e.to == State::Dead && e.at_unix_ms >= k) {
                detection_ms.push(dead.at_unix_ms - k);
            }
        }
    }
    detection_ms.sort_unstable();
    let peer_hours = observed_ms_total as f64 / 3_600_000.0;
    let mistakes = false_suspicions.max(false_dead);
    DetectorReport {
        detector: name.to_string(),
        killed: killed.len(),
        detected: detection_ms.len(),
        detection_ms,
        false_dead,
        false_suspicions,
        mistake_rate_per_peer_hour: if peer_hours > 0.0 { mistakes as f64 / peer_hours } else { 0.0 },
        mean_mistake_ms: if mistakes > 0 { mistake_ms_total as f64 / mistakes as f64 } else { 0.0 },
        query_accuracy: if observed_ms_total > 0 {
            1.0 - mistake_ms_total as f64 / observed_ms_total as f64
        } else {
            1.0
        },
    }
}

/// The summary table printed by `demo` and `bench detection`.
pub fn print_summary(spec: &TrialSpec, r: &TrialReport) {
    println!();
    println!(
        "{} peers, {} killed, {} run, interval {}, {}",
        spec.peers,
        spec.kill,
        format_duration(spec.duration),
        spec.interval,
        spec.impairment.describe()
    );
    println!(
        "relay: {} beats forwarded, {} lost; physical floor T_D ≈ {:.2}s (ε = {})",
        r.relay_forwarded,
        r.relay_lost,
        r.floor.as_secs_f64(),
        r.epsilon
    );
    println!(
        "{:<10} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>13} {:>9} {:>8}",
        "detector",
        "detected",
        "T_D p50",
        "T_D p99",
        "T_D max",
        "false dead",
        "suspicions",
        "λ_M /peer-h",
        "T_M",
        "P_A"
    );
    for d in &r.detectors {
        let ms = |v: Option<u64>| v.map(|x| format!("{:.2}s", x as f64 / 1000.0)).unwrap_or_else(|| "-".into());
        println!(
            "{:<10} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>13.2} {:>8.2}s {:>8.5}",
            d.detector,
            format!("{}/{}", d.detected, d.killed),
            ms(d.percentile(0.5)),
            ms(d.percentile(0.99)),
            ms(d.detection_ms.last().copied()),
            d.false_dead,
            d.false_suspicions,
            d.mistake_rate_per_peer_hour,
            d.mean_mistake_ms / 1000.0,
            d.query_accuracy
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_matches_the_design_formula() {
        // η = 1s, J = 0.4s, p = 5%, ε = 1e-4: k = ⌈9.21 / 3.0⌉ = 4 → 1 + 0.4 + 3 = 4.4s.
        let f = physical_floor(Duration::from_secs(1), Duration::from_millis(400), 0.05, 1e-4);
        assert_eq!(f, Duration::from_millis(4400));
        assert_eq!(physical_floor(Duration::from_secs(1), Duration::ZERO, 0.0, 1e-4), Duration::from_secs(1));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(100));
        assert_eq!(percentile(&[], 0.5), None);
    }

    fn ev(peer: &str, to: State, at: u64) -> (usize, Event) {
        let mut e = Event::new(peer, "demo", State::Alive, to, hb_core::Reason::Timeout);
        e.at_unix_ms = at;
        (0, e)
    }

    #[test]
    fn analysis_separates_detections_from_mistakes() {
        let ids = vec!["a".to_string(), "b".to_string()];
        let killed: BTreeMap<String, u64> = [("a".to_string(), 5_000)].into();
        let events = vec![
            ev("b", State::Suspect, 2_000),
            ev("b", State::Alive, 2_500),
            ev("a", State::Suspect, 7_000),
            ev("a", State::Dead, 8_000),
        ];
        let r = analyse("adaptive", 0, &events, &ids, &killed, 1_000, 11_000);
        assert_eq!((r.detected, r.detection_ms.clone(), r.false_dead, r.false_suspicions), (1, vec![3_000], 0, 1));
        assert_eq!(r.mean_mistake_ms, 500.0);
        // Observed: a 4s up, b 10s up; 0.5s wrong out of 14s.
        assert!((r.query_accuracy - (1.0 - 500.0 / 14_000.0)).abs() < 1e-9);
    }
}
