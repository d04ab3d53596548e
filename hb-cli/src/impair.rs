//! Network impairment: one-way delay, uniform jitter, and loss (independent, or bursty
//! with a Gilbert-Elliott two-state chain per flow), and a blackout switch that drops
//! everything (a partition). Seeded, so a run can be repeated.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cli::ImpairArgs;
use crate::fail::{usage, CmdResult};
use hb_core::config::format_duration;

#[derive(Clone, Debug, PartialEq)]
pub struct Impairment {
    /// Every packet waits `delay + uniform(jitter_min..=jitter_max)`.
    pub delay: Duration,
    pub jitter_min: Duration,
    pub jitter_max: Duration,
    /// Long-run fraction of packets dropped, 0..1.
    pub loss: f64,
    /// Mean length of a loss burst in packets; 1 means independent (Bernoulli) losses.
    pub burst: f64,
    /// While on, every packet is dropped (a partition); off by default.
    pub blackout: Blackout,
}

/// A switch shared between whoever schedules a partition and the relay that drops.
#[derive(Clone, Debug, Default)]
pub struct Blackout(Arc<AtomicBool>);

impl Blackout {
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::SeqCst);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl PartialEq for Blackout {
    /// The same switch, not the same position.
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.0, &o.0)
    }
}

/// Which stream a packet belongs to: a loss burst hits one flow's consecutive packets,
/// not whichever packets of other clients happen to pass the relay at the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub client: SocketAddr,
    pub up: bool,
}

impl Impairment {
    pub fn none() -> Impairment {
        Impairment {
            delay: Duration::ZERO,
            jitter_min: Duration::ZERO,
            jitter_max: Duration::ZERO,
            loss: 0.0,
            burst: 1.0,
            blackout: Blackout::default(),
        }
    }

    pub fn from_args(a: &ImpairArgs) -> CmdResult<Impairment> {
        let delay = duration("delay", &a.delay)?;
        let (jitter_min, jitter_max) = jitter(&a.jitter)?;
        let loss = percent("loss", &a.loss)?;
        let burst = a.burst.unwrap_or(1.0);
        if !(1.0..=1000.0).contains(&burst) {
            return Err(usage(format!("burst {burst:?}: expected a mean burst length from 1 to 1000 packets")));
        }
        if burst > 1.0 && loss >= 1.0 {
            return Err(usage("loss \"100%\": expected less than 100% with --burst"));
        }
        Ok(Impairment { delay, jitter_min, jitter_max, loss, burst, blackout: Blackout::default() })
    }

    /// The spread of the one-way delay (what the physical floor calls J).
    pub fn jitter_spread(&self) -> Duration {
        self.jitter_max - self.jitter_min
    }

    pub fn describe(&self) -> String {
        let mut s = format!(
            "delay {} + jitter {}..{}, loss {:.2}%",
            format_duration(self.delay),
            format_duration(self.jitter_min),
            format_duration(self.jitter_max),
            self.loss * 100.0
        );
        if self.burst > 1.0 {
            s.push_str(&format!(" in bursts of {} (Gilbert-Elliott)", self.burst));
        }
        s
    }
}

pub fn duration(field: &str, text: &str) -> CmdResult<Duration> {
    hb_core::config::parse_duration(field, text).map_err(Into::into)
}

/// `J` (0..J) or `A..B`.
pub fn jitter(text: &str) -> CmdResult<(Duration, Duration)> {
    let (lo, hi) = match text.split_once("..") {
        Some((a, b)) => (duration("jitter", a)?, duration("jitter", b)?),
        None => (Duration::ZERO, duration("jitter", text)?),
    };
    if lo > hi {
        return Err(usage(format!("jitter {text:?}: expected J or A..B with A <= B, e.g. 100ms..500ms")));
    }
    Ok((lo, hi))
}

/// `5%`, `0.5%` or a fraction `0.05`.
pub fn percent(field: &str, text: &str) -> CmdResult<f64> {
    let bad = || usage(format!("{field} {text:?}: expected a percentage from 0% to 100%, e.g. 5% or 0.1%"));
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => t.parse::<f64>().map_err(|_| bad())?,
    };
    if !(0.0..=1.0).contains(&value) {
        return Err(bad());
    }
    Ok(value)
}

/// Decides each packet's fate. One per relay, so that a seed gives one sequence.
pub struct Impairer {
    spec: Impairment,
    rng: StdRng,
    /// Gilbert-Elliott, one chain per flow: in the bad state every packet is lost.
    bad: HashMap<Flow, bool>,
    enter_bad: f64,
    leave_bad: f64,
}

impl Impairer {
    pub fn new(spec: Impairment, seed: u64) -> Impairer {
        // Stationary P(bad) = enter / (enter + leave) = loss, mean stay in bad = 1/leave = burst.
        let leave_bad = 1.0 / spec.burst;
        let enter_bad = if spec.loss >= 1.0 { 1.0 } else { spec.loss * leave_bad / (1.0 - spec.loss) };
        Impairer {
            spec,
            rng: StdRng::seed_from_u64(seed),
            bad: HashMap::new(),
            enter_bad: enter_bad.min(1.0),
            leave_bad,
        }
    }

    /// The fate of the next packet of `flow`. `None`: drop it; `Some(d)`: deliver it after `d`.
    pub fn fate(&mut self, flow: Flow) -> Option<Duration> {
        if self.spec.blackout.is_on() {
            return None;
        }
        let lost = if self.spec.burst <= 1.0 {
            self.spec.loss > 0.0 && self.rng.gen::<f64>() < self.spec.loss
        } else {
            let bad = self.bad.entry(flow).or_insert(false);
            let flip = if *bad { self.leave_bad } else { self.enter_bad };
            if self.rng.gen::<f64>() < flip {
                *bad = !*bad;
            }
            *bad
        };
        if lost {
            return None;
        }
        let (lo, hi) = (self.spec.jitter_min.as_nanos() as u64, self.spec.jitter_max.as_nanos() as u64);
        let extra = if hi > lo { self.rng.gen_range(lo..=hi) } else { lo };
        Some(self.spec.delay + Duration::from_nanos(extra))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(loss: f64, burst: f64) -> Impairment {
        Impairment {
            jitter_min: Duration::from_millis(100),
            jitter_max: Duration::from_millis(500),
            loss,
            burst,
            ..Impairment::none()
        }
    }

    #[test]
    fn parses_flags_with_precise_errors() {
        assert_eq!(percent("loss", "5%").unwrap(), 0.05);
        assert_eq!(percent("loss", "0.1").unwrap(), 0.1);
        assert!(percent("loss", "120%").is_err_and(|e| e.message.starts_with("loss \"120%\": expected a percentage")));
        assert_eq!(jitter("100ms..500ms").unwrap(), (Duration::from_millis(100), Duration::from_millis(500)));
        assert_eq!(jitter("50ms").unwrap(), (Duration::ZERO, Duration::from_millis(50)));
        assert!(jitter("500ms..100ms").is_err());
    }

    fn flow(port: u16) -> Flow {
        Flow { client: SocketAddr::from(([127, 0, 0, 1], port)), up: true }
    }

    #[test]
    fn bernoulli_loss_rate_and_delay_bounds() {
        let mut imp = Impairer::new(spec(0.05, 1.0), 42);
        let n = 200_000;
        let mut lost = 0;
        for _ in 0..n {
            match imp.fate(flow(1)) {
                None => lost += 1,
                Some(d) => assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(500)),
            }
        }
        let rate = lost as f64 / n as f64;
        assert!((rate - 0.05).abs() < 0.003, "{rate}");
    }

    /// Long-run loss fraction and mean burst length, measured per flow while 30 flows
    /// interleave (as 30 clients do through one relay): the bursts must be each flow's.
    #[test]
    fn gilbert_elliott_keeps_the_rate_and_makes_bursts_per_flow() {
        let mut imp = Impairer::new(spec(0.05, 4.0), 7);
        let flows = 30;
        let rounds = 20_000;
        let (mut lost, mut bursts) = (0u64, 0u64);
        let mut prev_lost = vec![false; flows];
        for _ in 0..rounds {
            for (f, prev) in prev_lost.iter_mut().enumerate() {
                let l = imp.fate(flow(f as u16)).is_none();
                if l {
                    lost += 1;
                    if !*prev {
                        bursts += 1;
                    }
                }
                *prev = l;
            }
        }
        let rate = lost as f64 / (rounds * flows) as f64;
        let mean_burst = lost as f64 / bursts as f64;
        assert!((rate - 0.05).abs() < 0.005, "{rate}");
        assert!((mean_burst - 4.0).abs() < 0.3, "{mean_burst}");
    }

    #[test]
    fn blackout_drops_everything_while_on() {
        let s = spec(0.0, 1.0);
        let switch = s.blackout.clone();
        let mut imp = Impairer::new(s, 3);
        assert!(imp.fate(flow(1)).is_some());
        switch.set(true);
        assert!((0..100).all(|_| imp.fate(flow(1)).is_none()));
        switch.set(false);
        assert!(imp.fate(flow(1)).is_some());
    }

    #[test]
    fn same_seed_same_fates() {
        let a: Vec<_> = {
            let mut i = Impairer::new(spec(0.3, 1.0), 9);
            (0..100).map(|_| i.fate(flow(1))).collect()
        };
        let b: Vec<_> = {
            let mut i = Impairer::new(spec(0.3, 1.0), 9);
            (0..100).map(|_| i.fate(flow(1))).collect()
        };
        assert_eq!(a, b);
    }
}
