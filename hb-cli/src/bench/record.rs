//! Recording one arrival trace with real sockets: in-process clients beat through the
//! impairing relay to a tap, a UDP socket that timestamps each datagram on the monotonic
//! clock and decodes it. Kills crash a client and cut it off at the relay (as trial.rs
//! does); a partition switches the relay's blackout on for its length.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_core::clock::monotonic_ns;
use hb_core::proto::{decode, Flags, Kind};
use hb_core::{Client, Options};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::trace::{Arrival, Trace};
use crate::fail::{runtime, set, usage, CmdResult};
use crate::impair::Impairment;
use crate::relay::{Relay, RelaySpec};

/// A network profile of the detection frontier.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: &'static str,
    pub interval: Duration,
    pub delay: Duration,
    pub jitter: (Duration, Duration),
    pub loss: f64,
    pub burst: f64,
    pub peers: usize,
    pub kills: usize,
    pub duration: Duration,
    pub partition: Option<Duration>,
}

const MS: u64 = 1_000_000;

pub fn profiles() -> Vec<Profile> {
    let us = Duration::from_micros;
    let ms = Duration::from_millis;
    let wan = Profile {
        name: "wan",
        interval: ms(1000),
        delay: ms(300),
        jitter: (ms(0), ms(200)),
        loss: 0.05,
        burst: 1.0,
        peers: 30,
        kills: 10,
        duration: Duration::from_secs(600),
        partition: None,
    };
    vec![
        Profile {
            name: "lan",
            interval: ms(50),
            delay: us(500),
            jitter: (ms(0), us(100)),
            loss: 0.001,
            burst: 1.0,
            peers: 50,
            kills: 10,
            duration: Duration::from_secs(120),
            partition: None,
        },
        wan.clone(),
        Profile { name: "burst", burst: 4.0, duration: Duration::from_secs(300), ..wan.clone() },
        Profile {
            name: "partition",
            kills: 0,
            duration: Duration::from_secs(90),
            partition: Some(Duration::from_secs(30)),
            ..wan
        },
    ]
}

impl Profile {
    pub fn impairment(&self) -> Impairment {
        Impairment {
            delay: self.delay,
            jitter_min: self.jitter.0,
            jitter_max: self.jitter.1,
            loss: self.loss,
            burst: self.burst,
            ..Impairment::none()
        }
    }
}

/// Records `p` (its peers, kills, duration as given) and returns the trace.
pub fn record(p: &Profile, seed: u64) -> CmdResult<Trace> {
    if p.peers == 0 || p.kills > p.peers {
        return Err(usage(format!(
            "peers {}: expected at least one peer and at least {} (the kills)",
            p.peers, p.kills
        )));
    }
    let origin = monotonic_ns();
    let tap = Tap::start(origin)?;
    let impairment = p.impairment();
    let blackout = impairment.blackout.clone();
    let relay = Relay::start(RelaySpec {
        listen: "127.0.0.1:0".parse().expect("literal"),
        upstreams: vec![tap.addr],
        impairment: impairment.clone(),
        seed,
    })
    .map_err(|e| runtime(format!("start relay: {e}")))?;

    let ids: Vec<String> = (0..p.peers).map(|i| format!("peer-{i:03}")).collect();
    tap.set_ids(&ids);
    let mut clients = Vec::new();
    for id in &ids {
        let mut o = Options::new();
        set(&mut o, "endpoint", &format!("udp://{}", relay.local_addr()))?;
        set(&mut o, "service", "bench")?;
        set(&mut o, "instance_id", id)?;
        set(&mut o, "interval", &format!("{}ms", p.interval.as_millis()))?;
        // The tap does not answer; without ACK requests the clients do not wait for one.
        set(&mut o, "ack", "false")?;
        let c = Client::new(&o)?;
        c.start()?;
        clients.push(Some(c));
    }

    // Warm-up: every peer heard at the tap at least twice.
    let deadline = Instant::now() + Duration::from_secs(10) + p.interval * 20;
    while tap.peers_heard(2) < p.peers {
        if Instant::now() > deadline {
            return Err(runtime("warm-up: not every peer reached the tap within the deadline"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let t0 = Instant::now();
    let ready_ns = monotonic_ns() - origin;

    // Kills at seeded times between 20% and 60% of the run, so that the slowest setting of
    // a sweep still has the rest of the trace to be measured on the others.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6b69_6c6c);
    let mut victims: Vec<usize> = (0..p.peers).collect();
    victims.shuffle(&mut rng);
    victims.truncate(p.kills);
    let mut events: Vec<(Duration, Event)> =
        victims.iter().map(|&v| (p.duration.mul_f64(rng.gen_range(0.2..0.6)), Event::Kill(v))).collect();
    let mut partition = None;
    if let Some(len) = p.partition {
        if len >= p.duration {
            return Err(usage(format!("duration: expected more than the {}s partition", len.as_secs())));
        }
        // The partition starts a third of the way into what is left around it.
        let start = (p.duration - len) / 3;
        events.push((start, Event::Partition(true)));
        events.push((start + len, Event::Partition(false)));
    }
    events.sort_by_key(|e| e.0);
    let mut kills = Vec::new();
    for (at, ev) in events {
        sleep_until(t0 + at);
        match ev {
            Event::Kill(v) => {
                relay.cut(&ids[v]);
                kills.push((v as u32, monotonic_ns() - origin));
                if let Some(c) = clients[v].take() {
                    c.crash_for_test();
                }
            }
            Event::Partition(on) => {
                blackout.set(on);
                let now = monotonic_ns() - origin;
                partition = match partition {
                    None => Some((now, now)),
                    Some((s, _)) => Some((s, now)),
                };
            }
        }
    }
    sleep_until(t0 + p.duration);
    let end_ns = monotonic_ns() - origin;
    let arrivals = tap.stop();
    for c in clients.iter().flatten() {
        let _ = c.stop(Duration::from_secs(1));
    }
    Ok(Trace {
        profile: p.name.to_string(),
        network: describe(p),
        interval_ns: p.interval.as_nanos() as u64,
        peer_ids: ids,
        kills,
        partition,
        ready_ns,
        end_ns,
        arrivals,
    })
}

fn describe(p: &Profile) -> String {
    let mut s = format!("interval {}ms, {}", p.interval.as_millis(), p.impairment().describe());
    if let Some(len) = p.partition {
        s.push_str(&format!(", {}s partition of every peer", len.as_secs()));
    }
    s
}

enum Event {
    Kill(usize),
    Partition(bool),
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// The receiving end: one thread, blocking reads, a monotonic timestamp per datagram.
struct Tap {
    addr: std::net::SocketAddr,
    ids: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<Vec<Arrival>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tap {
    fn start(origin: u64) -> CmdResult<Tap> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| runtime(format!("tap: bind: {e}")))?;
        sock.set_read_timeout(Some(Duration::from_millis(50))).map_err(|e| runtime(format!("tap: {e}")))?;
        let addr = sock.local_addr().map_err(|e| runtime(format!("tap: {e}")))?;
        let ids: Arc<Mutex<Vec<String>>> = Arc::default();
        let log: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (ids2, log2, stop2) = (Arc::clone(&ids), Arc::clone(&log), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("tap".into())
            .spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop2.load(Ordering::Relaxed) {
                    let Ok(n) = sock.recv(&mut buf) else { continue };
                    let t = monotonic_ns();
                    let Ok(f) = decode(&buf[..n], None) else { continue };
                    if f.kind != Kind::Beat {
                        continue;
                    }
                    let Some(peer) = ids2.lock().iter().position(|i| i == f.id) else { continue };
                    log2.lock().push(Arrival {
                        t_ns: t.saturating_sub(origin),
                        peer: peer as u32,
                        seq: f.seq,
                        interval_ns: u64::from(f.interval_ms) * MS,
                        stalled: f.flags.contains(Flags::STALLED),
                        sent_ns: f.ts_ns.saturating_sub(origin),
                    });
                }
            })
            .map_err(|e| runtime(format!("tap: {e}")))?;
        Ok(Tap { addr, ids, log, stop, thread: Some(thread) })
    }

    fn set_ids(&self, ids: &[String]) {
        *self.ids.lock() = ids.to_vec();
    }

    /// How many peers have been heard at least `n` times.
    fn peers_heard(&self, n: usize) -> usize {
        let mut count = vec![0usize; self.ids.lock().len()];
        for a in self.log.lock().iter() {
            count[a.peer as usize] += 1;
        }
        count.iter().filter(|&&c| c >= n).count()
    }

    fn stop(mut self) -> Vec<Arrival> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut v = std::mem::take(&mut *self.log.lock());
        v.sort_by_key(|a| a.t_ns);
        v
    }
}
