//! Hidden `bench flood`: hostile traffic for the flood system test. Random datagrams,
//! well-formed beats tagged with a wrong key, and correctly tagged beats whose seq was
//! already used (replays), paced so the test measures the monitor, not the socket buffer.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use hb_core::proto::{encode, AuthKey, Flags, Frame};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use crate::cli::FloodArgs;
use crate::fail::{runtime, usage, CmdResult};
use crate::relay::udp_addr;

/// Datagrams per second; the flood test runs a few seconds this way.
const RATE: u64 = 50_000;

pub fn run(a: FloodArgs) -> CmdResult {
    let target = udp_addr("target", &a.target).map_err(usage)?;
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| runtime(format!("bind: {e}")))?;
    sock.connect(target).map_err(|e| runtime(format!("connect {target}: {e}")))?;
    let mut rng = StdRng::seed_from_u64(a.seed);
    let mut pacer = Pacer::new(RATE);

    for _ in 0..a.random {
        let len = rng.gen_range(0..600);
        let mut buf = vec![0u8; len];
        rng.fill_bytes(&mut buf);
        // Half of them look like our frames up to the version byte, to reach deeper code.
        if len >= 3 && rng.gen_bool(0.5) {
            buf[..3].copy_from_slice(&[0x48, 0x42, 1]);
        }
        send(&sock, &buf, &mut pacer);
    }

    let mut wrong = [0u8; 32];
    rng.fill_bytes(&mut wrong);
    let wrong_key = AuthKey::new(&wrong).map_err(|e| runtime(e.to_string()))?;
    for i in 0..a.bad_tag {
        let f = beat(&format!("intruder-{}", i % 1000), i as u32 + 1, 1);
        send(&sock, &encoded(&f, Some(&wrong_key))?, &mut pacer);
    }

    if a.replay > 0 {
        let path = a
            .auth_key_file
            .as_deref()
            .ok_or_else(|| usage("--replay needs --auth-key-file (replays carry a valid tag)"))?;
        let key = read_key(path)?;
        // A fresh beat with a high seq, then earlier seqs of the same incarnation: a replay.
        let incarnation = rng.gen_range(1..u32::MAX);
        let top = u32::try_from(a.replay).unwrap_or(u32::MAX - 1) + 1;
        send(&sock, &encoded(&beat(&a.replay_id, top, incarnation), Some(&key))?, &mut pacer);
        std::thread::sleep(Duration::from_millis(50));
        for seq in 1..top {
            send(&sock, &encoded(&beat(&a.replay_id, seq, incarnation), Some(&key))?, &mut pacer);
        }
    }
    eprintln!(
        "bench flood: sent {} random, {} bad-tag, {} replayed datagrams to {target}",
        a.random, a.bad_tag, a.replay
    );
    Ok(0)
}

fn beat(id: &str, seq: u32, incarnation: u32) -> Frame {
    let mut f = Frame::beat(id);
    f.seq = seq;
    f.incarnation = incarnation;
    f.interval_ms = 1000;
    f.flags = Flags(0);
    f.service = Some("flood".into());
    f
}

fn encoded(f: &Frame, key: Option<&AuthKey>) -> CmdResult<Vec<u8>> {
    let mut out = Vec::new();
    encode(f, key, &mut out).map_err(|e| runtime(format!("encode: {e:?}")))?;
    Ok(out)
}

fn read_key(path: &str) -> CmdResult<AuthKey> {
    // The same validation and trimming as the library's own key-file option.
    let mut o = hb_core::Options::new();
    crate::fail::set(&mut o, "listen", "udp://127.0.0.1:1")?;
    crate::fail::set(&mut o, "auth_key_file", path)?;
    let cfg = hb_core::Config::resolve(&o, hb_core::Role::Monitor)?;
    let secret = cfg.auth_key.ok_or_else(|| usage(format!("auth_key_file {path:?}: no key read")))?;
    AuthKey::new(&secret.0).map_err(|e| runtime(format!("{e:?}")))
}

fn send(sock: &UdpSocket, buf: &[u8], pacer: &mut Pacer) {
    // ECONNREFUSED from an earlier ICMP is not our concern here.
    let _ = sock.send(buf);
    pacer.tick();
}

/// Keeps an average rate without a syscall per datagram.
pub struct Pacer {
    start: Instant,
    rate: u64,
    sent: u64,
}

impl Pacer {
    pub fn new(rate: u64) -> Pacer {
        Pacer { start: Instant::now(), rate, sent: 0 }
    }

    pub fn tick(&mut self) {
        self.advance(1);
    }

    /// Counts `n` more sent and sleeps while ahead of schedule by more than a millisecond.
    pub fn advance(&mut self, n: u64) {
        self.sent += n;
        let due = Duration::from_secs_f64(self.sent as f64 / self.rate as f64);
        let elapsed = self.start.elapsed();
        if due > elapsed + Duration::from_millis(1) {
            std::thread::sleep(due - elapsed);
        }
    }
}
