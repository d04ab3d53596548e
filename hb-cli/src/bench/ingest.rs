//! `bench ingest`: N distinct peers beating over loopback into an in-process Monitor at
//! rising offered rates, and, in the same run and at the same rates, a minimal raw
//! recvmmsg loop that only counts datagrams: the physical floor.
//!
//! The load generator is `--senders` threads, each with its own socket (its own source
//! port, so that SO_REUSEPORT listeners all get traffic) and its own share of the peers
//! (so a peer's beats keep one source address and their order). Frames are pre-encoded
//! (`hb_core::proto::encode` once per peer); per round only the seq field is patched in
//! place, so it stays a valid, strictly increasing seq.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_core::proto::{encode, Flags, Frame};
use hb_core::{Monitor, Options};

use crate::cli::{IngestArgs, IngestChildArgs};
use crate::fail::{runtime, set, usage, CmdResult};
use crate::procstat;

const BATCH: usize = 64;
/// Byte offsets in the v1 header (docs/protocol.md).
const SEQ_AT: usize = 5;
const INTERVAL_AT: usize = 17;
const MAX_LOSS: f64 = 0.001;
/// Every peer's frame, all the same length, back to back.
struct Frames {
    bytes: Vec<u8>,
    len: usize,
    count: usize,
}

impl Frames {
    /// Frames for the peers with ids `<prefix>-<first>` … `<prefix>-<first + count - 1>`.
    fn named(prefix: &str, first: usize, count: usize, ack: bool) -> CmdResult<Frames> {
        let mut bytes = Vec::new();
        let mut len = 0;
        for i in first..first + count {
            let mut f = Frame::beat(format!("{prefix}-{i:07}"));
            f.seq = 1;
            f.incarnation = 1;
            f.interval_ms = 1000;
            f.service = Some("bench".into());
            if ack {
                f.flags = Flags(Flags::ACK_REQ);
            }
            let before = bytes.len();
            encode(&f, None, &mut bytes).map_err(|e| runtime(format!("encode: {e:?}")))?;
            len = bytes.len() - before;
        }
        Ok(Frames { bytes, len, count })
    }

    fn set_seq(&mut self, i: usize, seq: u32) {
        let at = i * self.len + SEQ_AT;
        self.bytes[at..at + 4].copy_from_slice(&seq.to_be_bytes());
    }

    /// Announce the interval each peer really beats at in this step, so no detector suspects it.
    fn set_interval(&mut self, interval_ms: u32) {
        for i in 0..self.count {
            let at = i * self.len + INTERVAL_AT;
            self.bytes[at..at + 4].copy_from_slice(&interval_ms.to_be_bytes());
        }
    }
}

/// One sender thread's share: its peers' frames, its socket, and where it is in its
/// round-robin over them (next peer, that round's seq).
struct Lane {
    frames: Frames,
    sock: UdpSocket,
    cursor: (usize, u32),
}

/// The load generator: one lane per sender thread, all aimed at one receiver.
struct Generator {
    lanes: Vec<Lane>,
}

/// What a generator did in one step.
struct Sent {
    datagrams: u64,
    seconds: f64,
    /// CPU of all sender threads together (cores = cpu / seconds).
    cpu: Duration,
}

impl Generator {
    /// `peers` peers with ids `<prefix>-…`, split over `senders` sockets connected to `target`.
    fn new(prefix: &str, peers: usize, senders: usize, ack: bool, target: SocketAddr) -> CmdResult<Generator> {
        let senders = senders.clamp(1, peers.max(1));
        let mut lanes = Vec::with_capacity(senders);
        for k in 0..senders {
            let (first, last) = (peers * k / senders, peers * (k + 1) / senders);
            let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| runtime(format!("bind sender: {e}")))?;
            sock.connect(target).map_err(|e| runtime(format!("connect sender to {target}: {e}")))?;
            lanes.push(Lane { frames: Frames::named(prefix, first, last - first, ack)?, sock, cursor: (0, 1) });
        }
        Ok(Generator { lanes })
    }

    fn peers(&self) -> usize {
        self.lanes.iter().map(|l| l.frames.count).sum()
    }

    fn set_interval(&mut self, interval_ms: u32) {
        self.lanes.iter_mut().for_each(|l| l.frames.set_interval(interval_ms));
    }

    /// The lowest round any lane is in: every peer has beaten `round - 1` times.
    fn round(&self) -> u32 {
        self.lanes.iter().map(|l| l.cursor.1).min().unwrap_or(0)
    }

    /// Sends `rate` frames/s in all for `duration`, each lane its share on its own thread.
    fn send(&mut self, rate: u64, duration: Duration) -> Sent {
        let n = self.lanes.len() as u64;
        let t0 = Instant::now();
        let (datagrams, cpu) = std::thread::scope(|s| {
            let threads: Vec<_> = self
                .lanes
                .iter_mut()
                .enumerate()
                .map(|(k, lane)| {
                    let share = rate / n + u64::from((k as u64) < rate % n);
                    std::thread::Builder::new()
                        .name(format!("gen-{k}"))
                        .spawn_scoped(s, move || {
                            let c0 = procstat::this_thread_cpu();
                            let sent = generate(&lane.sock, &mut lane.frames, share, duration, &mut lane.cursor);
                            (sent, procstat::this_thread_cpu().saturating_sub(c0))
                        })
                        .expect("spawn a sender thread")
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("sender thread"))
                .fold((0, Duration::ZERO), |a, b| (a.0 + b.0, a.1 + b.1))
        });
        Sent { datagrams, seconds: t0.elapsed().as_secs_f64(), cpu }
    }
}

/// Sends `rate` frames/s for `duration` round-robin over all peers; returns frames sent.
/// `cursor` carries on between calls so every peer's seq keeps increasing.
fn generate(sock: &UdpSocket, frames: &mut Frames, rate: u64, duration: Duration, cursor: &mut (usize, u32)) -> u64 {
    let fd = sock.as_raw_fd();
    let start = Instant::now();
    let mut sent: u64 = 0;
    let mut iovecs: Vec<libc::iovec> = Vec::with_capacity(BATCH);
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(BATCH);
    let mut idx = Vec::with_capacity(BATCH);
    while start.elapsed() < duration {
        let due = (rate as f64 * start.elapsed().as_secs_f64()) as u64;
        if sent >= due + BATCH as u64 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        iovecs.clear();
        msgs.clear();
        idx.clear();
        for _ in 0..BATCH {
            let (i, seq) = *cursor;
            frames.set_seq(i, seq);
            idx.push(i);
            *cursor = if i + 1 == frames.count { (0, seq + 1) } else { (i + 1, seq) };
        }
        for &i in &idx {
            // SAFETY (of the pointer use below): `frames.bytes` outlives the sendmmsg call
            // and is not touched while the kernel reads from it.
            iovecs.push(libc::iovec {
                iov_base: frames.bytes[i * frames.len..].as_ptr() as *mut libc::c_void,
                iov_len: frames.len,
            });
        }
        for iov in iovecs.iter_mut() {
            // SAFETY: a zeroed msghdr is valid (no name: the socket is connected).
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = 1;
            msgs.push(m);
        }
        // SAFETY: `msgs` holds BATCH initialised headers pointing at live iovecs.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), msgs.len() as libc::c_uint, 0) };
        if n > 0 {
            sent += n as u64;
        }
    }
    sent
}

/// The physical floor: `threads` recvmmsg loops (one per socket, the sockets made like a
/// monitor's listeners by `hb_core::monitor::bind_udp_group`) that only count datagrams.
struct RawReceiver {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    /// Each loop's own CPU time so far (CLOCK_THREAD_CPUTIME_ID), in ns.
    cpu_ns: Vec<Arc<AtomicU64>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl RawReceiver {
    fn start(threads: usize) -> CmdResult<RawReceiver> {
        let socks = hb_core::monitor::bind_udp_group("127.0.0.1:0".parse().expect("an address"), threads)
            .map_err(|e| runtime(format!("bind raw receiver: {e}")))?;
        let addr = socks[0].local_addr().map_err(|e| runtime(e.to_string()))?;
        let (received, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let mut raw = RawReceiver { addr, received, cpu_ns: Vec::new(), stop, threads: Vec::new() };
        for (k, sock) in socks.into_iter().enumerate() {
            sock.set_nonblocking(false).map_err(|e| runtime(e.to_string()))?;
            sock.set_read_timeout(Some(Duration::from_millis(50))).map_err(|e| runtime(e.to_string()))?;
            let cpu = Arc::new(AtomicU64::new(0));
            let (r, c, s) = (Arc::clone(&raw.received), Arc::clone(&cpu), Arc::clone(&raw.stop));
            raw.cpu_ns.push(cpu);
            let thread = std::thread::Builder::new()
                .name(format!("raw-recv-{k}"))
                .spawn(move || raw_loop(&sock, &r, &c, &s))
                .map_err(|e| runtime(e.to_string()))?;
            raw.threads.push(thread);
        }
        Ok(raw)
    }

    fn cpu(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns.iter().map(|c| c.load(Ordering::Relaxed)).sum())
    }
}

/// Blocking recvmmsg (MSG_WAITFORONE, BATCH slots) until `stop`, counting datagrams.
fn raw_loop(sock: &UdpSocket, received: &AtomicU64, cpu_ns: &AtomicU64, stop: &AtomicBool) {
    let fd = sock.as_raw_fd();
    let mut bufs = vec![[0u8; 512]; BATCH];
    let mut iovecs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec { iov_base: b.as_mut_ptr() as *mut libc::c_void, iov_len: b.len() })
        .collect();
    // SAFETY: zeroed headers are valid; each points at its own live iovec.
    let mut msgs: Vec<libc::mmsghdr> = iovecs
        .iter_mut()
        .map(|iov| {
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: the buffers and headers live for the whole loop.
        let n = unsafe {
            libc::recvmmsg(fd, msgs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_WAITFORONE, std::ptr::null_mut())
        };
        if n > 0 {
            received.fetch_add(n as u64, Ordering::Relaxed);
        }
        cpu_ns.store(procstat::this_thread_cpu().as_nanos() as u64, Ordering::Relaxed);
    }
}

impl Drop for RawReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[derive(Clone, Debug)]
struct Step {
    offered: u64,
    sent: u64,
    received: u64,
    seconds: f64,
    /// The receiver's CPU over the step.
    cpu: Duration,
    /// The sender threads' CPU over the step.
    gen_cpu: Duration,
}

impl Step {
    fn new(offered: u64, sent: &Sent, received: u64, cpu: Duration) -> Step {
        Step { offered, sent: sent.datagrams, received, seconds: sent.seconds, cpu, gen_cpu: sent.cpu }
    }
    fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            1.0 - (self.received.min(self.sent) as f64 / self.sent as f64)
        }
    }
    fn rate(&self) -> f64 {
        self.received as f64 / self.seconds
    }
    fn sent_rate(&self) -> f64 {
        self.sent as f64 / self.seconds
    }
    fn gen_cores(&self) -> f64 {
        self.gen_cpu.as_secs_f64() / self.seconds
    }
    /// µs of receiver CPU per datagram taken in.
    fn cpu_us(&self) -> f64 {
        if self.received == 0 {
            0.0
        } else {
            self.cpu.as_secs_f64() * 1e6 / self.received as f64
        }
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "offered_per_s": self.offered, "sent": self.sent, "sent_per_s": self.sent_rate(),
            "sender_cores": self.gen_cores(), "received": self.received, "received_per_s": self.rate(),
            "loss": self.loss(), "cpu_us_per_datagram": self.cpu_us(),
        })
    }
}

fn monitor_received() -> u64 {
    hb_core::metrics::get().beats_received.get()
}

/// Waits until the counter stops moving (the socket buffer drained), at most 2 s.
fn settle(read: &dyn Fn() -> u64) -> u64 {
    let mut last = read();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = read();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// What one run (a peer count, a listener count) is set up with.
struct Setup {
    peers: usize,
    listeners: usize,
    senders: usize,
    ack: bool,
    poll: Option<Duration>,
}

pub fn run(a: IngestArgs) -> CmdResult {
    let peer_counts = super::list("peers", &a.peers)?;
    let listener_counts = super::list("listeners", &a.listeners)?;
    if listener_counts.iter().any(|&l| !(1..=16).contains(&l)) {
        return Err(usage(format!("--listeners {:?}: each a whole number from 1 to 16", a.listeners)));
    }
    if !(1..=64).contains(&a.senders) {
        return Err(usage(format!("--senders {}: a whole number from 1 to 64", a.senders)));
    }
    let rates = super::list("rates", &a.rates)?;
    let step_len = crate::impair::duration("duration", &a.duration)?;
    let poll = a.poll_http.as_deref().map(|p| crate::impair::duration("poll_http", p)).transpose()?;
    let (udp, tls) = super::ingest_tls::transports(&a.transport)?;
    let mut results = Vec::new();
    for &peers in peer_counts.iter().filter(|_| udp) {
        let memory = bytes_per_peer_in_child(peers as usize, a.ack)?;
        for &listeners in &listener_counts {
            let setup =
                Setup { peers: peers as usize, listeners: listeners as usize, senders: a.senders, ack: a.ack, poll };
            results.push(run_one(&setup, memory, &rates, step_len)?);
        }
    }
    let tls_results = if tls { super::ingest_tls::run(&peer_counts, &rates, step_len)? } else { Vec::new() };
    if !udp {
        super::ingest_tls::report(&tls_results);
        return super::write_json(a.json.as_deref(), &super::ingest_tls::json(&tls_results)).map(|()| 0);
    }
    print_steps(&results, a.senders);
    let json = print_summary(&results);
    super::ingest_tls::report(&tls_results);
    super::write_json(
        a.json.as_deref(),
        &serde_json::json!({
            "step_s": step_len.as_secs_f64(), "ack": a.ack, "senders": a.senders, "results": json,
            "tls": super::ingest_tls::json(&tls_results),
        }),
    )?;
    Ok(0)
}

/// The table of every step: generator, monitor and raw loop side by side.
fn print_steps(results: &[PeerResult], senders: usize) {
    println!();
    println!(
        "{:>7} {:>2} {:>9} {:>9} {:>5} | {:>9} {:>7} {:>6} | {:>9} {:>7} {:>6} | {:>5}",
        "peers", "L", "offered/s", "sent/s", "gen", "monitor/s", "loss", "µs/hb", "raw/s", "loss", "µs/dg", "CPU×"
    );
    for r in results {
        for (m, raw) in r.monitor.iter().zip(&r.raw) {
            println!(
                "{:>7} {:>2} {:>9} {:>9.0} {:>5.2} | {:>9.0} {:>6.3}% {:>6.2} | {:>9.0} {:>6.3}% {:>6.2} | {:>5.2}",
                r.peers,
                r.listeners,
                m.offered,
                m.sent_rate(),
                m.gen_cores(),
                m.rate(),
                m.loss() * 100.0,
                m.cpu_us(),
                raw.rate(),
                raw.loss() * 100.0,
                raw.cpu_us(),
                m.cpu_us() / raw.cpu_us().max(1e-9),
            );
        }
    }
    println!("(L: listener threads, monitor and raw loop alike; gen: cores used by the {senders} sender threads,");
    println!(" sent/s below offered/s = the generator is the limit; µs/hb, µs/dg: receiver CPU per datagram;");
    println!(" CPU×: monitor µs/hb ÷ raw µs/dg at the same offered rate)");
}

/// One line per (peers, listeners): sustained rates and the CPU ratio at the monitor's
/// sustained step. Returns the JSON of every result.
fn print_summary(results: &[PeerResult]) -> Vec<serde_json::Value> {
    println!();
    println!(
        "{:>7} {:>2} {:>18} {:>18} {:>10} {:>10} {:>5} {:>10} {:>13}",
        "peers", "L", "monitor sustained", "raw sustained", "µs/hb", "raw µs/dg", "CPU×", "bytes/peer", "all-in B/peer"
    );
    let mut json = Vec::new();
    for r in results {
        let (m, raw) = (sustained(&r.monitor), sustained(&r.raw));
        // The CPU figures at the monitor's best loss-free step (the raw loop's at that rate).
        let at = r.monitor.iter().position(|s| s.loss() <= MAX_LOSS && s.rate() == m);
        let (m_us, raw_us) = at.map_or((f64::NAN, f64::NAN), |i| (r.monitor[i].cpu_us(), r.raw[i].cpu_us()));
        let (per_peer, all_in) = r.memory;
        println!(
            "{:>7} {:>2} {:>16.0}/s {:>16.0}/s {:>10.2} {:>10.2} {:>5.2} {:>10.0} {:>13.0}",
            r.peers,
            r.listeners,
            m,
            raw,
            m_us,
            raw_us,
            m_us / raw_us,
            per_peer,
            all_in
        );
        json.push(serde_json::json!({
            "peers": r.peers,
            "listeners": r.listeners,
            "monitor_sustained_per_s": m,
            "raw_sustained_per_s": raw,
            "monitor_cpu_us_per_beat": m_us,
            "raw_cpu_us_per_datagram": raw_us,
            "cpu_ratio": m_us / raw_us,
            "bytes_per_peer": per_peer,
            "all_in_bytes_per_peer": all_in,
            "monitor_steps": r.monitor.iter().map(Step::json).collect::<Vec<_>>(),
            "raw_steps": r.raw.iter().map(Step::json).collect::<Vec<_>>(),
        }));
    }
    println!("(sustained = highest received rate among steps with loss <= {}%; µs/hb, raw µs/dg", MAX_LOSS * 100.0);
    println!(" and CPU× at that step; bytes/peer: RSS growth per tracked peer after a warm-up population");
    println!(" of N/10 peers; all-in: from the empty monitor, fixed costs such as its full event queue included)");
    json
}

fn sustained(steps: &[Step]) -> f64 {
    steps.iter().filter(|s| s.loss() <= MAX_LOSS).map(Step::rate).fold(0.0, f64::max)
}

struct PeerResult {
    peers: usize,
    listeners: usize,
    /// (bytes per tracked peer, all-in bytes per peer), from `bytes_per_peer_in_child`.
    memory: (f64, f64),
    monitor: Vec<Step>,
    raw: Vec<Step>,
}

/// A started Monitor with room for `peers` and `listeners` receive threads; its UDP address.
fn start_monitor(peers: usize, listeners: usize, http: bool) -> CmdResult<(Monitor, SocketAddr)> {
    let mut o = Options::new();
    set(&mut o, "listen", "udp://127.0.0.1:0")?;
    set(&mut o, "max_peers", &(peers * 2).to_string())?;
    set(&mut o, "listen_threads", &listeners.to_string())?;
    if http {
        set(&mut o, "http_addr", "127.0.0.1:0")?;
    }
    let monitor = Monitor::new(&o)?;
    monitor.start()?;
    let target = monitor.local_addr("udp").ok_or_else(|| runtime("monitor bound no address"))?;
    Ok((monitor, target))
}

/// Every peer beats twice, slowly enough not to lose any (one beat from a host that sends
/// thousands of new ids only puts an id on probation: docs/states.md, "A full table"); then
/// waits (at most 30 s, beating again) until the monitor tracks them all (on top of `already` tracked).
fn populate(monitor: &Monitor, gen: &mut Generator, already: usize) -> CmdResult<()> {
    let peers = already + gen.peers();
    let populate_rate = 100_000u64;
    let populate_for = Duration::from_secs_f64(gen.peers() as f64 / populate_rate as f64);
    gen.send(populate_rate, 2 * populate_for);
    while gen.round() <= 2 {
        gen.send(populate_rate, Duration::from_millis(10));
    }
    let tracked = || {
        let s = monitor.stats();
        s.alive + s.suspect + s.dead + s.left
    };
    // On a busy machine some of those beats are lost (the receive buffer overflows while
    // the monitor waits for a CPU): more rounds, at half the rate, until every peer is in.
    let deadline = Instant::now() + Duration::from_secs(30);
    while tracked() < peers {
        if Instant::now() > deadline {
            return Err(runtime(format!("monitor tracks {} of {peers} peers after populating", tracked())));
        }
        std::thread::sleep(Duration::from_millis(200));
        if tracked() < peers {
            gen.send(populate_rate / 2, 2 * populate_for);
        }
    }
    // The last batch ran into the third round: let those beats land before any step counts.
    settle(&monitor_received);
    Ok(())
}

/// Bytes per tracked peer, measured in a fresh process (`bench ingest-child`): in this
/// process the allocator would reuse memory freed by an earlier, smaller step's monitor.
/// Returns (bytes per tracked peer, all-in bytes per peer from the empty monitor).
fn bytes_per_peer_in_child(peers: usize, ack: bool) -> CmdResult<(f64, f64)> {
    let exe = std::env::current_exe().map_err(|e| runtime(format!("own executable: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "ingest-child", "--peers", &peers.to_string()]);
    if ack {
        cmd.arg("--ack");
    }
    let out = cmd.stderr(Stdio::inherit()).output().map_err(|e| runtime(format!("spawn ingest child: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = serde_json::from_str::<serde_json::Value>(text.trim())
        .ok()
        .and_then(|v| Some((v["bytes_per_peer"].as_f64()?, v["all_in_bytes_per_peer"].as_f64()?)));
    match parsed {
        Some(b) if out.status.success() => Ok(b),
        _ => Err(runtime(format!("ingest child with {peers} peers failed ({}): {text}", out.status))),
    }
}

/// `bench ingest-child --peers N`: in this fresh process, the RSS a Monitor grows by while
/// it takes in the first beat of N peers, divided by N; one JSON line on stdout.
///
/// A warm-up population (N/10 other peers) goes first, so that what every monitor holds
/// whatever its peer count (a full event queue nobody reads, receive buffers, the
/// allocator's arena for the worker thread) is in place before the first reading and the
/// figure is the cost of a tracked peer. The all-in growth from the empty monitor, fixed
/// costs included, is printed beside it.
pub fn child(a: IngestChildArgs) -> CmdResult {
    let peers = a.peers;
    if peers == 0 {
        return Err(usage("--peers must be at least 1"));
    }
    let warm_count = (peers / 10).max(1);
    // Frames and the monitor exist before the first reading: only the monitor grows.
    let (monitor, target) = start_monitor(peers + warm_count, 1, false)?;
    let mut warm = Generator::new("warm", warm_count, 1, a.ack, target)?;
    let mut gen = Generator::new("bench", peers, 1, a.ack, target)?;
    let rss = || procstat::rss_bytes(None).ok_or_else(|| runtime("cannot read own RSS"));
    let rss_empty = rss()?;
    populate(&monitor, &mut warm, 0)?;
    let rss0 = rss()?;
    populate(&monitor, &mut gen, warm_count)?;
    let rss1 = rss()?;
    let bytes_per_peer = rss1.saturating_sub(rss0) as f64 / peers as f64;
    let all_in = rss1.saturating_sub(rss_empty) as f64 / (peers + warm_count) as f64;
    eprintln!(
        "  {peers} peers, fresh process: RSS +{:.1} MB → {bytes_per_peer:.0} B/peer \
         (all-in from the empty monitor, {warm_count} warm-up peers included: {all_in:.0} B/peer)",
        rss1.saturating_sub(rss0) as f64 / 1e6
    );
    monitor.stop()?;
    println!(
        "{}",
        serde_json::json!({
            "peers": peers,
            "rss_growth_bytes": rss1.saturating_sub(rss0),
            "bytes_per_peer": bytes_per_peer,
            "warmup_peers": warm_count,
            "all_in_bytes_per_peer": all_in,
        })
    );
    Ok(0)
}

/// `--poll-http`: GETs `/v1/peers` every `period` until `stop`; prints how many and the
/// slowest answer.
fn poll_peers(addr: std::net::SocketAddr, period: Duration, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let (mut polls, mut slowest, mut bytes) = (0u64, Duration::ZERO, 0usize);
        while !stop.load(Ordering::Relaxed) {
            let t0 = Instant::now();
            let mut body = Vec::new();
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                let _ = s.write_all(b"GET /v1/peers?limit=10000 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
                let _ = s.read_to_end(&mut body);
            }
            (polls, slowest, bytes) = (polls + 1, slowest.max(t0.elapsed()), body.len());
            std::thread::sleep(period.saturating_sub(t0.elapsed()));
        }
        eprintln!("  http: {polls} GET /v1/peers, slowest {slowest:?}, {bytes} bytes each");
    })
}

fn run_one(setup: &Setup, memory: (f64, f64), rates: &[u64], step_len: Duration) -> CmdResult<PeerResult> {
    let Setup { peers, listeners, senders, ack, poll } = *setup;
    eprintln!("bench ingest: {peers} peers, {listeners} listener thread(s), {senders} sender thread(s)");
    let (monitor, target) = start_monitor(peers, listeners, poll.is_some())?;
    let mut gen = Generator::new("bench", peers, senders, ack, target)?;
    let raw = RawReceiver::start(listeners)?;
    // The raw loop ignores what it receives: the same frames, from their own sockets.
    let mut raw_gen = Generator::new("bench", peers, senders, ack, raw.addr)?;
    // Every peer is tracked before the throughput steps start.
    populate(&monitor, &mut gen, 0)?;
    let stop_polling = Arc::new(AtomicBool::new(false));
    let poller = match (poll, monitor.http_addr()?) {
        (Some(period), Some(addr)) => Some(poll_peers(addr, period, Arc::clone(&stop_polling))),
        _ => None,
    };

    let mut mon_steps = Vec::new();
    let mut raw_steps = Vec::new();
    for &rate in rates {
        gen.set_interval(((peers as f64 / rate as f64) * 1000.0).ceil() as u32);

        // The engine's CPU (beats), apart from the HTTP API's (a `--poll-http` reader).
        let engine_cpu = || procstat::threads_cpu("hb-").saturating_sub(procstat::threads_cpu("hb-http"));
        let (r0, c0, h0) = (monitor_received(), engine_cpu(), procstat::threads_cpu("hb-http"));
        let sent = gen.send(rate, step_len);
        let r1 = settle(&monitor_received);
        let m = Step::new(rate, &sent, r1 - r0, engine_cpu().saturating_sub(c0));
        let http_cpu = procstat::threads_cpu("hb-http").saturating_sub(h0);

        let (q0, k0) = (raw.received.load(Ordering::Relaxed), raw.cpu());
        let sent = raw_gen.send(rate, step_len);
        let q1 = settle(&|| raw.received.load(Ordering::Relaxed));
        let r = Step::new(rate, &sent, q1 - q0, raw.cpu().saturating_sub(k0));
        let http = if poll.is_some() { format!(" (http {} ms CPU)", http_cpu.as_millis()) } else { String::new() };
        eprintln!(
            "  {rate}/s: monitor {:.0}/s loss {:.3}% {:.2} µs/hb{http} | raw {:.0}/s loss {:.3}% {:.2} µs/dg | senders {:.2} cores",
            m.rate(),
            m.loss() * 100.0,
            m.cpu_us(),
            r.rate(),
            r.loss() * 100.0,
            r.cpu_us(),
            m.gen_cores(),
        );
        mon_steps.push(m);
        raw_steps.push(r);
    }
    stop_polling.store(true, Ordering::Relaxed);
    if let Some(p) = poller {
        let _ = p.join();
    }
    monitor.stop()?;
    Ok(PeerResult { peers, listeners, memory, monitor: mon_steps, raw: raw_steps })
}
