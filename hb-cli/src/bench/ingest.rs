//! `bench ingest`: N distinct peers beating over loopback into an in-process Monitor at
//! rising offered rates, and, in the same run and at the same rates, a minimal raw
//! recvmmsg loop that only counts datagrams: the physical baseline.
//!
//! The load generator is one thread using sendmmsg over pre-encoded frames
//! (`hb_core::proto::encode` once per peer; per round only the seq field is patched in
//! place, so it stays a valid, strictly increasing seq).

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
    fn new(peers: usize, ack: bool) -> CmdResult<Frames> {
        Frames::named("bench", peers, ack)
    }

    /// `peers` frames with ids `<prefix>-0000000` …
    fn named(prefix: &str, peers: usize, ack: bool) -> CmdResult<Frames> {
        let mut bytes = Vec::new();
        let mut len = 0;
        for i in 0..peers {
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
        Ok(Frames { bytes, len, count: peers })
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

/// Sends `rate` frames/s for `duration` round-robin over all peers; returns frames sent.
/// `next_seq` carries on between calls so every peer's seq keeps increasing.
fn generate(sock: &UdpSocket, frames: &mut Frames, rate: u64, duration: Duration, cursor: &mut (usize, u32)) -> u64 {
    let fd = sock.as_raw_fd();
    let start = Instant::now();
    let mut sent: u64 = 0;
    let mut iovecs: Vec<libc::iovec> = Vec::with_capacity(BATCH);
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(BATCH);
    while start.elapsed() < duration {
        let due = (rate as f64 * start.elapsed().as_secs_f64()) as u64;
        if sent >= due + BATCH as u64 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        iovecs.clear();
        msgs.clear();
        let mut idx = Vec::with_capacity(BATCH);
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

/// The physical baseline: a recvmmsg loop that only counts datagrams.
struct RawReceiver {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    cpu_ns: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RawReceiver {
    fn start() -> CmdResult<RawReceiver> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| runtime(format!("bind raw receiver: {e}")))?;
        sock.set_read_timeout(Some(Duration::from_millis(50))).map_err(|e| runtime(e.to_string()))?;
        let addr = sock.local_addr().map_err(|e| runtime(e.to_string()))?;
        // The monitor's own receive buffer (SO_RCVBUFFORCE, else SO_RCVBUF), by the
        // monitor's own code: the comparison is about the receive loop only.
        hb_core::monitor::size_udp_recv_buffer(&sock);
        let (received, cpu_ns, stop) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (r, c, s) = (Arc::clone(&received), Arc::clone(&cpu_ns), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("raw-recv".into())
            .spawn(move || {
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
                while !s.load(Ordering::Relaxed) {
                    // SAFETY: the buffers and headers live for the whole loop.
                    let n = unsafe {
                        libc::recvmmsg(
                            fd,
                            msgs.as_mut_ptr(),
                            BATCH as libc::c_uint,
                            libc::MSG_WAITFORONE,
                            std::ptr::null_mut(),
                        )
                    };
                    if n > 0 {
                        r.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    c.store(procstat::this_thread_cpu().as_nanos() as u64, Ordering::Relaxed);
                }
            })
            .map_err(|e| runtime(e.to_string()))?;
        Ok(RawReceiver { addr, received, cpu_ns, stop, thread: Some(thread) })
    }
}

impl Drop for RawReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
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
    cpu: Duration,
}

impl Step {
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
    fn cpu_us_per_beat(&self) -> f64 {
        if self.received == 0 {
            0.0
        } else {
            self.cpu.as_secs_f64() * 1e6 / self.received as f64
        }
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "offered_per_s": self.offered, "sent": self.sent, "sent_per_s": self.sent as f64 / self.seconds, "received": self.received,
            "received_per_s": self.rate(), "loss": self.loss(), "cpu_us_per_beat": self.cpu_us_per_beat(),
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

pub fn run(a: IngestArgs) -> CmdResult {
    let peer_counts = super::list("peers", &a.peers)?;
    let rates = super::list("rates", &a.rates)?;
    let step_len = crate::impair::duration("duration", &a.duration)?;
    let poll = a.poll_http.as_deref().map(|p| crate::impair::duration("poll_http", p)).transpose()?;
    let (udp, tls) = super::ingest_tls::transports(&a.transport)?;
    let mut results = Vec::new();
    for &peers in peer_counts.iter().filter(|_| udp) {
        let memory = bytes_per_peer_in_child(peers as usize, a.ack)?;
        results.push(run_one(peers as usize, memory, &rates, step_len, a.ack, poll)?);
    }
    let tls_results = if tls { super::ingest_tls::run(&peer_counts, &rates, step_len)? } else { Vec::new() };
    if !udp {
        super::ingest_tls::report(&tls_results);
        return super::write_json(a.json.as_deref(), &super::ingest_tls::json(&tls_results)).map(|()| 0);
    }
    println!();
    println!(
        "{:>8} {:>11} {:>10} {:>14} {:>10} {:>12} {:>14} {:>8} {:>12}",
        "peers", "offered/s", "sent/s", "monitor hb/s", "loss", "µs CPU/hb", "raw recv/s", "ratio", "raw loss"
    );
    for r in &results {
        for (m, raw) in r.monitor.iter().zip(&r.raw) {
            println!(
                "{:>8} {:>11} {:>10.0} {:>14.0} {:>9.3}% {:>12.2} {:>14.0} {:>8.2} {:>11.3}%",
                r.peers,
                m.offered,
                m.sent as f64 / m.seconds,
                m.rate(),
                m.loss() * 100.0,
                m.cpu_us_per_beat(),
                raw.rate(),
                m.rate() / raw.rate().max(1.0),
                raw.loss() * 100.0
            );
        }
    }
    println!();
    println!(
        "{:>8} {:>22} {:>22} {:>8} {:>11} {:>14}",
        "peers", "monitor sustained hb/s", "raw sustained recv/s", "ratio", "bytes/peer", "all-in B/peer"
    );
    let mut json = Vec::new();
    for r in &results {
        let m = sustained(&r.monitor);
        let raw = sustained(&r.raw);
        let (per_peer, all_in) = r.memory;
        println!(
            "{:>8} {:>22.0} {:>22.0} {:>8.2} {:>11.0} {:>14.0}",
            r.peers,
            m,
            raw,
            m / raw.max(1.0),
            per_peer,
            all_in
        );
        json.push(serde_json::json!({
            "peers": r.peers,
            "monitor_sustained_per_s": m,
            "raw_sustained_per_s": raw,
            "ratio": m / raw.max(1.0),
            "bytes_per_peer": per_peer,
            "all_in_bytes_per_peer": all_in,
            "monitor_steps": r.monitor.iter().map(Step::json).collect::<Vec<_>>(),
            "raw_steps": r.raw.iter().map(Step::json).collect::<Vec<_>>(),
        }));
    }
    println!("(sustained = highest received rate among steps with loss <= {}%)", MAX_LOSS * 100.0);
    println!("(bytes/peer: RSS growth per tracked peer after a warm-up population of N/10 peers;");
    println!(" all-in: from the empty monitor, fixed costs such as its full event queue included)");
    super::ingest_tls::report(&tls_results);
    super::write_json(
        a.json.as_deref(),
        &serde_json::json!({
            "step_s": step_len.as_secs_f64(), "ack": a.ack, "results": json,
            "tls": super::ingest_tls::json(&tls_results),
        }),
    )?;
    Ok(0)
}

fn sustained(steps: &[Step]) -> f64 {
    steps.iter().filter(|s| s.loss() <= MAX_LOSS).map(Step::rate).fold(0.0, f64::max)
}

struct PeerResult {
    peers: usize,
    /// (bytes per tracked peer, all-in bytes per peer), from `bytes_per_peer_in_child`.
    memory: (f64, f64),
    monitor: Vec<Step>,
    raw: Vec<Step>,
}

/// A started Monitor with room for `peers`, and a load-generator socket connected to it.
fn start_monitor(peers: usize, http: bool) -> CmdResult<(Monitor, UdpSocket)> {
    let mut o = Options::new();
    set(&mut o, "listen", "udp://127.0.0.1:0")?;
    set(&mut o, "max_peers", &(peers * 2).to_string())?;
    if http {
        set(&mut o, "http_addr", "127.0.0.1:0")?;
    }
    let monitor = Monitor::new(&o)?;
    monitor.start()?;
    let target =
        monitor.local_addrs()?.into_iter().map(|(_, a)| a).next().ok_or_else(|| runtime("monitor bound no address"))?;
    let gen = UdpSocket::bind("127.0.0.1:0").map_err(|e| runtime(e.to_string()))?;
    gen.connect(target).map_err(|e| runtime(e.to_string()))?;
    Ok((monitor, gen))
}

/// Every peer beats twice, slowly enough not to lose any (one beat from a host that sends
/// thousands of new ids only puts an id on probation: docs/states.md, "A full table"); then
/// waits (at most 10 s) until the monitor tracks them all (on top of `already` tracked).
/// Returns the cursor to carry on from.
fn populate(monitor: &Monitor, gen: &UdpSocket, frames: &mut Frames, already: usize) -> CmdResult<(usize, u32)> {
    let peers = already + frames.count;
    let mut cursor = (0usize, 1u32);
    let populate_rate = 100_000u64;
    let populate_for = Duration::from_secs_f64(peers as f64 / populate_rate as f64);
    generate(gen, frames, populate_rate, 2 * populate_for, &mut cursor);
    while cursor.1 <= 2 {
        generate(gen, frames, populate_rate, Duration::from_millis(10), &mut cursor);
    }
    let tracked = || {
        let s = monitor.stats();
        s.alive + s.suspect + s.dead + s.left
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while tracked() < peers {
        if Instant::now() > deadline {
            return Err(runtime(format!("monitor tracks {} of {peers} peers after populating", tracked())));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The last batch ran into the third round: let those beats land before any step counts.
    settle(&monitor_received);
    Ok(cursor)
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
    let mut warm = Frames::named("warm", warm_count, a.ack)?;
    let mut frames = Frames::new(peers, a.ack)?;
    let (monitor, gen) = start_monitor(peers + warm_count, false)?;
    let rss = || procstat::rss_bytes(None).ok_or_else(|| runtime("cannot read own RSS"));
    let rss_empty = rss()?;
    populate(&monitor, &gen, &mut warm, 0)?;
    let rss0 = rss()?;
    populate(&monitor, &gen, &mut frames, warm_count)?;
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

fn run_one(
    peers: usize,
    memory: (f64, f64),
    rates: &[u64],
    step_len: Duration,
    ack: bool,
    poll: Option<Duration>,
) -> CmdResult<PeerResult> {
    eprintln!("bench ingest: {peers} peers");
    let mut frames = Frames::new(peers, ack)?;
    let (monitor, gen) = start_monitor(peers, poll.is_some())?;
    let raw = RawReceiver::start()?;
    let raw_gen = UdpSocket::bind("127.0.0.1:0").map_err(|e| runtime(e.to_string()))?;
    raw_gen.connect(raw.addr).map_err(|e| runtime(e.to_string()))?;
    // Every peer is tracked before the throughput steps start.
    let mut cursor = populate(&monitor, &gen, &mut frames, 0)?;
    let stop_polling = Arc::new(AtomicBool::new(false));
    let poller = match (poll, monitor.http_addr()?) {
        (Some(period), Some(addr)) => Some(poll_peers(addr, period, Arc::clone(&stop_polling))),
        _ => None,
    };

    let mut mon_steps = Vec::new();
    let mut raw_steps = Vec::new();
    let mut raw_cursor = cursor;
    for &rate in rates {
        frames.set_interval(((peers as f64 / rate as f64) * 1000.0).ceil() as u32);

        // The engine's CPU (beats), apart from the HTTP API's (a `--poll-http` reader).
        let engine_cpu = || procstat::threads_cpu("hb-").saturating_sub(procstat::threads_cpu("hb-http"));
        let (r0, c0, h0) = (monitor_received(), engine_cpu(), procstat::threads_cpu("hb-http"));
        let t0 = Instant::now();
        let sent = generate(&gen, &mut frames, rate, step_len, &mut cursor);
        let seconds = t0.elapsed().as_secs_f64();
        let r1 = settle(&|| monitor_received());
        let cpu = engine_cpu().saturating_sub(c0);
        let http_cpu = procstat::threads_cpu("hb-http").saturating_sub(h0);
        let m = Step { offered: rate, sent, received: r1 - r0, seconds, cpu };

        let (q0, k0) = (raw.received.load(Ordering::Relaxed), raw.cpu_ns.load(Ordering::Relaxed));
        let t0 = Instant::now();
        let raw_cursor_ref = &mut raw_cursor;
        let sent = generate(&raw_gen, &mut frames, rate, step_len, raw_cursor_ref);
        let seconds = t0.elapsed().as_secs_f64();
        let q1 = settle(&|| raw.received.load(Ordering::Relaxed));
        let cpu = Duration::from_nanos(raw.cpu_ns.load(Ordering::Relaxed).saturating_sub(k0));
        let r = Step { offered: rate, sent, received: q1 - q0, seconds, cpu };
        let http = if poll.is_some() { format!(" (http {} ms CPU)", http_cpu.as_millis()) } else { String::new() };
        eprintln!(
            "  {rate}/s: monitor {:.0}/s loss {:.3}% {:.2} µs/hb{http} | raw {:.0}/s loss {:.3}%",
            m.rate(),
            m.loss() * 100.0,
            m.cpu_us_per_beat(),
            r.rate(),
            r.loss() * 100.0
        );
        mon_steps.push(m);
        raw_steps.push(r);
        // Keep both generators' seqs ahead of everything either has sent.
        cursor.1 = cursor.1.max(raw_cursor.1) + 1;
        raw_cursor.1 = cursor.1;
    }
    stop_polling.store(true, Ordering::Relaxed);
    if let Some(p) = poller {
        let _ = p.join();
    }
    monitor.stop()?;
    Ok(PeerResult { peers, memory, monitor: mon_steps, raw: raw_steps })
}
