//! `bench ingest --transport tls`: N peers, each on its own mutually authenticated TLS
//! connection with its own certificate (made here by rcgen, naming its id), beating into
//! an in-process Monitor's `tls://` listener at the offered rates of the UDP steps.
//!
//! The load generator is a child process (`bench ingest-tls-gen`), so that this process's
//! RSS and CPU are the monitor's: CPU per beat is the engine threads' (`hb-*`), and bytes
//! per peer the RSS growth per connected, tracked peer, its TLS connection included
//! (all-in: from the started, empty monitor). TCP does not lose beats: a rate the monitor
//! cannot keep up with shows as a received rate below the offered one.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_core::proto::{encode, stream, Frame};
use hb_core::{Monitor, Options};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use tokio::io::AsyncWriteExt;

use crate::cli::IngestTlsGenArgs;
use crate::fail::{runtime, set, usage, CmdResult};
use crate::procstat;

/// Connections one source address may hold at the monitor is 1,024: peers spread over
/// 127.0.0.2, 127.0.0.3, ... this many to an address.
const PEERS_PER_ADDRESS: usize = 1000;

/// One offered rate's figures.
pub struct TlsStep {
    pub offered: u64,
    pub sent: u64,
    pub received: u64,
    pub seconds: f64,
    pub cpu: Duration,
}

impl TlsStep {
    pub fn rate(&self) -> f64 {
        self.received as f64 / self.seconds
    }

    pub fn cpu_us_per_beat(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.received.max(1) as f64
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "offered_per_s": self.offered, "sent": self.sent, "received": self.received,
            "received_per_s": self.rate(), "cpu_us_per_beat": self.cpu_us_per_beat(),
        })
    }
}

pub struct TlsResult {
    pub peers: usize,
    pub all_in_bytes_per_peer: f64,
    pub steps: Vec<TlsStep>,
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("no names");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "heartbeater bench CA");
    p
}

fn leaf_params(names: Vec<String>) -> CmdResult<CertificateParams> {
    let mut p = CertificateParams::new(names).map_err(|e| runtime(format!("certificate names: {e}")))?;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    Ok(p)
}

fn write(dir: &Path, file: &str, text: &str) -> CmdResult<String> {
    let path = dir.join(file);
    std::fs::write(&path, text).map_err(|e| runtime(format!("write {}: {e}", path.display())))?;
    Ok(path.display().to_string())
}

fn id(i: usize) -> String {
    format!("tls-{i:07}")
}

/// `--transport udp,tls`: which of the two to run.
pub fn transports(text: &str) -> CmdResult<(bool, bool)> {
    let mut which = (false, false);
    for t in text.split(',').map(str::trim) {
        match t {
            "udp" => which.0 = true,
            "tls" => which.1 = true,
            _ => return Err(usage(format!("transport {text:?}: expected udp and/or tls, comma-separated"))),
        }
    }
    Ok(which)
}

/// The TLS table (nothing without TLS results).
pub fn report(results: &[TlsResult]) {
    if results.is_empty() {
        return;
    }
    println!();
    println!(
        "{:>8} {:>11} {:>10} {:>14} {:>12} {:>16}",
        "tls peers", "offered/s", "sent/s", "monitor hb/s", "µs CPU/hb", "all-in B/peer"
    );
    for r in results {
        for s in &r.steps {
            println!(
                "{:>8} {:>11} {:>10.0} {:>14.0} {:>12.2} {:>16.0}",
                r.peers,
                s.offered,
                s.sent as f64 / s.seconds,
                s.rate(),
                s.cpu_us_per_beat(),
                r.all_in_bytes_per_peer
            );
        }
    }
    println!("(tls: one mutually authenticated TLS 1.3 connection per peer; all-in B/peer: RSS growth");
    println!(" of the monitor's process per connected, tracked peer, TLS state included)");
}

pub fn json(results: &[TlsResult]) -> serde_json::Value {
    serde_json::Value::Array(
        results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "peers": r.peers, "all_in_bytes_per_peer": r.all_in_bytes_per_peer,
                    "steps": r.steps.iter().map(TlsStep::json).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// Runs the TLS steps for every peer count, at `rates`.
pub fn run(peer_counts: &[u64], rates: &[u64], step_len: Duration) -> CmdResult<Vec<TlsResult>> {
    peer_counts.iter().map(|&n| run_one(n as usize, rates, step_len)).collect()
}

fn run_one(peers: usize, rates: &[u64], step_len: Duration) -> CmdResult<TlsResult> {
    eprintln!("bench ingest: {peers} peers over tls");
    let dir = std::env::temp_dir().join(format!("hb-bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| runtime(format!("{}: {e}", dir.display())))?;
    let ca_key = KeyPair::generate().map_err(|e| runtime(e.to_string()))?;
    let ca = ca_params().self_signed(&ca_key).map_err(|e| runtime(e.to_string()))?;
    let monitor_key = KeyPair::generate().map_err(|e| runtime(e.to_string()))?;
    let monitor_cert = leaf_params(vec!["127.0.0.1".into()])?
        .signed_by(&monitor_key, &ca, &ca_key)
        .map_err(|e| runtime(e.to_string()))?;
    let ca_file = write(&dir, "ca.pem", &ca.pem())?;
    write(&dir, "ca-key.pem", &ca_key.serialize_pem())?;
    let mut o = Options::new();
    set(&mut o, "listen", "tls://127.0.0.1:0")?;
    set(&mut o, "max_peers", &(peers * 2).to_string())?;
    set(&mut o, "tls_ca_file", &ca_file)?;
    set(&mut o, "tls_cert_file", &write(&dir, "monitor.pem", &monitor_cert.pem())?)?;
    set(&mut o, "tls_key_file", &write(&dir, "monitor-key.pem", &monitor_key.serialize_pem())?)?;
    let monitor = Monitor::new(&o)?;
    monitor.start()?;
    let target = monitor.local_addr("tls").ok_or_else(|| runtime("monitor bound no tls address"))?;
    let rss = || procstat::rss_bytes(None).ok_or_else(|| runtime("cannot read own RSS"));
    let rss_empty = rss()?;

    let exe = std::env::current_exe().map_err(|e| runtime(format!("own executable: {e}")))?;
    let mut child = Command::new(exe)
        .args(["bench", "ingest-tls-gen", "--target", &target.to_string(), "--peers", &peers.to_string()])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| runtime(format!("spawn ingest-tls-gen: {e}")))?;
    let mut to_gen = child.stdin.take().ok_or_else(|| runtime("no stdin to the generator"))?;
    let mut from_gen = BufReader::new(child.stdout.take().ok_or_else(|| runtime("no stdout from the generator"))?);
    let mut line = String::new();
    let mut read_line = |what: &str| -> CmdResult<String> {
        line.clear();
        match from_gen.read_line(&mut line) {
            Ok(n) if n > 0 => Ok(line.trim().to_string()),
            _ => Err(runtime(format!("the generator ended before {what}"))),
        }
    };
    let ready = read_line("connecting")?;
    // Tracked in any state: connecting 10k peers can take longer than the first ones'
    // silence takes to convict them (between steps, as over UDP, peers are silent).
    let tracked = || {
        let s = monitor.stats();
        s.alive + s.suspect + s.dead + s.left
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while tracked() < peers {
        if Instant::now() > deadline {
            return Err(runtime(format!("{ready}; the monitor tracks {} of {peers}", tracked())));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let all_in = rss()?.saturating_sub(rss_empty) as f64 / peers as f64;
    eprintln!("  {ready}: {all_in:.0} bytes per peer (all-in)");

    let mut steps = Vec::new();
    for &rate in rates {
        let engine_cpu = || procstat::threads_cpu("hb-").saturating_sub(procstat::threads_cpu("hb-http"));
        let (r0, c0) = (monitor.stats().beats_received, engine_cpu());
        writeln!(to_gen, "{rate} {}", step_len.as_millis()).map_err(|e| runtime(format!("to the generator: {e}")))?;
        let reply = read_line("a step's end")?;
        let mut it = reply.split(' ').filter_map(|w| w.parse::<u64>().ok());
        let (Some(sent), Some(ms)) = (it.next(), it.next()) else {
            return Err(runtime(format!("the generator said {reply:?}, expected SENT MILLIS")));
        };
        // From the step's start until its last beat was sent (late if the generator lags).
        let seconds = ms as f64 / 1e3;
        let r1 = settle(&monitor);
        let cpu = engine_cpu().saturating_sub(c0);
        let step = TlsStep { offered: rate, sent, received: r1 - r0, seconds, cpu };
        eprintln!("  {rate}/s: monitor {:.0}/s of {sent} sent, {:.2} µs/hb", step.rate(), step.cpu_us_per_beat());
        steps.push(step);
    }
    drop(to_gen);
    let _ = child.wait();
    monitor.stop()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(TlsResult { peers, all_in_bytes_per_peer: all_in, steps })
}

/// The monitor's received count once it stops moving (the generator's beats in flight).
fn settle(monitor: &Monitor) -> u64 {
    let mut last = monitor.stats().beats_received;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = monitor.stats().beats_received;
        if now == last {
            return now;
        }
        last = now;
    }
}

/// `bench ingest-tls-gen`: connects `--peers` TLS clients (one certificate each, signed by
/// the CA in `--dir`), each beating twice; prints one line when all are connected; then for
/// each line `RATE MILLIS` on stdin beats at RATE in all for MILLIS and prints the count
/// sent and the milliseconds it took (more than MILLIS when it lags). Ends at the end of
/// stdin.
pub fn generator(a: IngestTlsGenArgs) -> CmdResult {
    let read = |f: &str| {
        std::fs::read_to_string(Path::new(&a.dir).join(f)).map_err(|e| runtime(format!("{}/{f}: {e}", a.dir)))
    };
    let ca_key = KeyPair::from_pem(&read("ca-key.pem")?).map_err(|e| runtime(e.to_string()))?;
    // The same name and key as the parent's CA: what it signs chains to the parent's ca.pem.
    let ca = ca_params().self_signed(&ca_key).map_err(|e| runtime(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).map_err(|e| runtime(e.to_string()))?;
    let roots = Arc::new(roots);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut configs = Vec::with_capacity(a.peers);
    for i in 0..a.peers {
        let key = KeyPair::generate().map_err(|e| runtime(e.to_string()))?;
        let cert = leaf_params(vec![id(i)])?.signed_by(&key, &ca, &ca_key).map_err(|e| runtime(e.to_string()))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| runtime(e.to_string()))?
            .with_root_certificates(Arc::clone(&roots))
            .with_client_auth_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .map_err(|e| runtime(e.to_string()))?;
        configs.push(Arc::new(config));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("gen")
        .enable_all()
        .build()
        .map_err(|e| runtime(e.to_string()))?;
    let target = a.target;
    let (steps, _) = tokio::sync::watch::channel::<Option<(u64, Instant)>>(None);
    let sent = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicUsize::new(0));
    // Peers that have sent every beat of the current step (a loaded generator lags).
    let finished = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let peers = a.peers;
    for (i, config) in configs.into_iter().enumerate() {
        let (mut step, sent, connected, gate, finished) =
            (steps.subscribe(), Arc::clone(&sent), Arc::clone(&connected), Arc::clone(&gate), Arc::clone(&finished));
        rt.spawn(async move {
            let permit = gate.acquire_owned().await;
            let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i / PEERS_PER_ADDRESS) as u8));
            let Ok(mut tls) = connect(from, target, config).await else {
                eprintln!("bench ingest-tls-gen: peer {i} could not connect");
                return;
            };
            let mut frame = Frame::beat(id(i));
            (frame.incarnation, frame.interval_ms, frame.service) = (1, 1000, Some("bench".into()));
            let mut out = Vec::new();
            let beat = |frame: &mut Frame, out: &mut Vec<u8>| {
                frame.seq += 1;
                let mut body = Vec::new();
                let _ = encode(frame, None, &mut body);
                out.clear();
                stream::put(&body, out);
            };
            // Two beats: a new id from a host that brings thousands is on probation until
            // its second (docs/states.md, "A full table").
            for _ in 0..2 {
                beat(&mut frame, &mut out);
                if tls.write_all(&out).await.is_err() {
                    return;
                }
            }
            connected.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            while step.changed().await.is_ok() {
                let Some((interval_ns, until)) = *step.borrow_and_update() else { continue };
                frame.interval_ms = (interval_ns / 1_000_000).max(1) as u32;
                // Peers spread evenly over the interval.
                let phase = Duration::from_nanos(interval_ns * i as u64 / peers as u64);
                let mut next = tokio::time::Instant::now() + phase;
                while next.into_std() < until {
                    tokio::time::sleep_until(next).await;
                    beat(&mut frame, &mut out);
                    if tls.write_all(&out).await.is_err() {
                        return;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    next += Duration::from_nanos(interval_ns);
                }
                finished.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while connected.load(Ordering::Relaxed) < peers && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("{} of {peers} peers connected", connected.load(Ordering::Relaxed));
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| runtime(e.to_string()))?;
        let mut it = line.split_whitespace().filter_map(|w| w.parse::<u64>().ok());
        let (Some(rate), Some(ms)) = (it.next(), it.next()) else { continue };
        let (before, done_before, t0) =
            (sent.load(Ordering::Relaxed), finished.load(Ordering::Relaxed), Instant::now());
        let until = t0 + Duration::from_millis(ms);
        let _ = steps.send(Some(((peers as u64 * 1_000_000_000) / rate.max(1), until)));
        std::thread::sleep(Duration::from_millis(ms));
        // The step ends when every peer has sent all its beats, late ones included.
        let all = connected.load(Ordering::Relaxed);
        while finished.load(Ordering::Relaxed) - done_before < all && t0.elapsed() < Duration::from_millis(ms) * 10 {
            std::thread::sleep(Duration::from_millis(5));
        }
        println!("{} {}", sent.load(Ordering::Relaxed) - before, t0.elapsed().as_millis());
    }
    Ok(0)
}

async fn connect(
    from: IpAddr,
    target: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(from, 0))?;
    let tcp = sock.connect(target).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::IpAddress(target.ip().into());
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
}
