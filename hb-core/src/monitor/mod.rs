//! The watching side: listens on udp/tcp/tls, tracks every peer with its own detector and
//! reports transitions.
//!
//! Tasks on the engine runtime: one per UDP listener, one per TCP listener (plus one per
//! connection), and one sweeper for the whole peer table — never a timer per peer.

mod admission;
mod claim;
mod intern;
mod mmsg;
mod rejects;
mod reply;
mod slab;
mod sweeper;
pub mod table;
mod tcp;
mod tls;
mod udp;
mod udp_threads;
mod wheel;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::clock::{Clock, MonotonicClock};
use crate::config::{Config, Endpoint, HostPort, Options, Role};
use crate::error::{Error, Result};
use crate::events::EventHub;
use crate::http::HttpServer;
use crate::http::Listed;
use crate::lifecycle::{EventSource, HandleKind, Lifecycle, Phase, Started};
use crate::peers::PeerInfo;
use crate::proto::AuthKey;
use crate::tls::reload::Reloading;
use crate::tls::{ServerTls, TlsFiles};

use table::{PeerRow, PeerTable, TableConfig};
use udp_threads::UdpThread;

pub use table::DEFAULT_REAP_AFTER_NS;

/// Idle TCP connections are closed after this (a beating client sends at least every 30 s).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// UDP receive buffer asked for, so bursts (and the listener's coalescing under load)
/// survive scheduling delays: ~16k queued beats. Forced past net.core.rmem_max when the
/// process may (CAP_NET_ADMIN), else capped there by the kernel, which doubles either for
/// its bookkeeping. Memory is only used while datagrams wait.
pub const UDP_RECV_BUFFER: usize = 16 << 20;

/// What the listener and sweeper tasks share.
pub(crate) struct Ingest {
    table: Mutex<PeerTable>,
    key: Option<AuthKey>,
    clock: Arc<dyn Clock>,
    monitor_id: String,
    max_interval_ms: u32,
    tcp_idle: Duration,
    stats: IngestStats,
    /// Wakes the sweeper when a beat scheduled a deadline before its planned wake-up.
    sweep_sooner: tokio::sync::Notify,
}

impl Ingest {
    /// Runs `f` on the table under its lock, then wakes the sweeper if `f` scheduled a
    /// deadline earlier than the sweeper's plan.
    fn with_table<R>(&self, f: impl FnOnce(&mut PeerTable) -> R) -> R {
        let (r, sooner) = {
            let mut table = self.table.lock();
            let r = f(&mut table);
            (r, table.take_sweep_sooner())
        };
        if sooner {
            self.sweep_sooner.notify_one();
        }
        r
    }

    /// The peers tracked now. Only Arc clones and copies under the lock; the strings are
    /// built after it.
    fn peers(&self) -> Vec<PeerInfo> {
        let now_unix_ms = crate::events::unix_ms_now();
        self.rows().into_iter().map(|r| r.info(now_unix_ms)).collect()
    }

    fn rows(&self) -> Vec<PeerRow> {
        let now = self.clock.now_ns();
        self.table.lock().rows(now)
    }

    /// `rows`, copied a slab page at a time with the table released in between, so that a
    /// reader of a 100k-peer table (the HTTP API, at low priority) never holds ingest up
    /// for more than one page's copy. Not one instant's snapshot: a peer that joins or is
    /// reaped meanwhile may be missing; every other peer is there once.
    fn rows_paged(&self) -> Vec<PeerRow> {
        const SLOTS_PER_LOCK: u32 = 1024;
        let mut rows = Vec::new();
        let mut start = 0;
        loop {
            let table = self.table.lock();
            let end = (start + SLOTS_PER_LOCK).min(table.slots());
            if start >= end {
                return rows;
            }
            table.rows_in(start..end, self.clock.now_ns(), &mut rows);
            drop(table);
            start = end;
        }
    }
}

/// How long list requests may share one copy of the table's rows while no event happens
/// (docs/http.md): a reader polling a 100k-peer table every 100 ms then copies and sorts it
/// 4 times a second, not 10.
pub const LISTING_MAX_AGE: Duration = Duration::from_millis(250);

/// What the HTTP API shows of a running monitor: it is served only while the monitor runs.
struct HttpView {
    ingest: Arc<Ingest>,
    /// Whose last event id tells whether a state changed since the copy was taken.
    events: Arc<EventHub>,
    /// The rows list requests answer from, rebuilt when older than `max_age` or when an
    /// event happened since.
    listing: Mutex<Option<Arc<Listing>>>,
    max_age: Duration,
}

/// The table's rows as copied at `taken`, in the default order (service, then id).
struct Listing {
    rows: Vec<PeerRow>,
    taken: std::time::Instant,
    unix_ms: u64,
    /// Counts the copies taken: which one this is.
    generation: u64,
    /// The last event id before the copy: every state in it is at least that recent.
    event_id: u64,
}

impl HttpView {
    fn new(ingest: Arc<Ingest>, events: Arc<EventHub>, max_age: Duration) -> HttpView {
        HttpView { ingest, events, listing: Mutex::new(None), max_age }
    }

    /// The shared copy of the rows, rebuilt if it is too old or a peer changed state since
    /// (so that a reader who lists the peers, then follows `/v1/events` from the id it
    /// saw, misses no transition). Requests that arrive during a rebuild wait for it
    /// (under `listing`) rather than each copying the table.
    fn listing(&self) -> Arc<Listing> {
        let mut slot = self.listing.lock();
        let event_id = self.events.history().latest();
        if let Some(fresh) = slot.as_ref().filter(|l| l.taken.elapsed() < self.max_age && l.event_id == event_id) {
            return Arc::clone(fresh);
        }
        let taken = std::time::Instant::now();
        let unix_ms = crate::events::unix_ms_now();
        let mut rows = self.ingest.rows_paged();
        rows.sort_by(|a, b| (a.service(), a.id()).cmp(&(b.service(), b.id())));
        let generation = slot.as_ref().map_or(0, |l| l.generation + 1);
        let listing = Arc::new(Listing { rows, taken, unix_ms, generation, event_id });
        *slot = Some(Arc::clone(&listing));
        listing
    }
}

impl crate::http::PeerView for HttpView {
    fn peers(&self) -> Result<Vec<PeerInfo>> {
        Ok(self.ingest.peers())
    }
    fn ready(&self) -> std::result::Result<(), String> {
        Ok(())
    }
    fn listing_generation(&self) -> Option<u64> {
        Some(self.listing().generation)
    }
    /// Filters, sorts and pages the shared copy of the rows; builds only the page's peers.
    fn list(&self, query: &crate::http::ListQuery) -> Result<crate::http::Page> {
        let listing = self.listing();
        let (page, total) = query.apply(listing.rows.iter().collect());
        let peers = page.into_iter().map(|r| r.info(listing.unix_ms)).collect();
        Ok(crate::http::Page { peers, total, as_of_unix_ms: listing.unix_ms })
    }
}

#[derive(Default)]
struct IngestStats {
    beats_received: AtomicU64,
    frames_rejected: AtomicU64,
    sweeps: AtomicU64,
}

/// Figures about one monitor (the process-wide ones are in `metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorStats {
    pub alive: usize,
    pub suspect: usize,
    pub dead: usize,
    pub left: usize,
    /// Valid BEAT frames received.
    pub beats_received: u64,
    /// Frames dropped before reaching the table (malformed, bad tag, ...); replays and
    /// refusals are in `metrics` by reason.
    pub frames_rejected: u64,
    /// Sweeper passes run so far: about one a second when idle, at most one per 10 ms tick.
    pub sweeps: u64,
    /// New ids admitted while the table was under pressure, not reported until confirmed
    /// by a second beat (docs/states.md, "A full table").
    pub on_probation: usize,
    /// Peers forgotten to make room for new ones.
    pub peers_evicted: u64,
    /// New peers refused: the table was full of confirmed live peers.
    pub peers_refused: u64,
    /// Events this monitor dropped because its consumer was slow.
    pub events_dropped: u64,
}

struct Running {
    tasks: Vec<JoinHandle<()>>,
    /// The UDP listeners' own threads, with `listen_threads` > 1 (else they are tasks).
    udp_threads: Vec<UdpThread>,
    addrs: Vec<(String, SocketAddr)>,
    _metrics: Option<HttpServer>,
    http: Option<crate::http::HttpServer>,
}

pub struct Monitor {
    config: Config,
    events: Arc<EventHub>,
    ingest: Arc<Ingest>,
    /// With a `tls://` listener: its certificate files, loaded (and reloaded on change).
    tls: Option<Arc<Reloading<ServerTls>>>,
    life: Lifecycle<Running>,
}

impl Monitor {
    pub fn new(options: &Options) -> Result<Monitor> {
        Monitor::from_config(Config::resolve(options, Role::Monitor)?)
    }

    pub fn from_config(config: Config) -> Result<Monitor> {
        Monitor::with_clock(config, Arc::new(MonotonicClock))
    }

    /// A monitor whose detectors read `clock` (tests pass a `ManualClock`).
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Monitor> {
        Monitor::build(config, clock, DEFAULT_REAP_AFTER_NS)
    }

    /// Like [`with_clock`](Self::with_clock), keeping dead and left peers for `reap_after`.
    pub fn with_clock_and_reap(config: Config, clock: Arc<dyn Clock>, reap_after: Duration) -> Result<Monitor> {
        Monitor::build(config, clock, reap_after.as_nanos() as u64)
    }

    fn build(config: Config, clock: Arc<dyn Clock>, reap_after_ns: u64) -> Result<Monitor> {
        let events = EventHub::new(config.event_capacity);
        let key = match &config.auth_key {
            Some(secret) => {
                Some(AuthKey::new(&secret.0).map_err(|e| Error::config("auth_key", "(hidden)", e.to_string()))?)
            }
            None => None,
        };
        let mut cfg = TableConfig::new(config.detector, config.max_peers, key.is_some());
        cfg.reap_after_ns = reap_after_ns;
        cfg.params.target_false_dead_per_s = config.false_dead_per_s;
        cfg.params.target_false_suspect_per_s = config.false_suspect_per_s;
        let max_interval_ms = cfg.max_interval_ms;
        let tls = match config.endpoints.iter().any(Endpoint::is_tls) {
            true => {
                let files = TlsFiles::of(&config.tls)?;
                Some(Arc::new(Reloading::new(files.paths(), move || crate::tls::server(&files))?))
            }
            false => None,
        };
        let table = PeerTable::new(cfg, Arc::clone(&events), clock.now_ns());
        let ingest = Arc::new(Ingest {
            table: Mutex::new(table),
            key,
            clock,
            monitor_id: config.instance_id.clone(),
            max_interval_ms,
            tcp_idle: TCP_IDLE_TIMEOUT,
            stats: IngestStats::default(),
            sweep_sooner: tokio::sync::Notify::new(),
        });
        Ok(Monitor { config, events, ingest, tls, life: Lifecycle::new(HandleKind::Monitor) })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Binds every listen endpoint and starts tracking. Errors name the address that could
    /// not be bound. A second call fails with `InvalidState`, a call after `stop` with
    /// `Stopped`.
    pub fn start(&self) -> Result<()> {
        self.life.begin_start()?;
        match self.life.finish_start(self.run())? {
            Started::Running => {}
            Started::StopWon(running) => self.halt(running),
        }
        Ok(())
    }

    /// Where this handle is in its life (docs/states.md).
    pub fn phase(&self) -> Phase {
        self.life.phase()
    }

    /// Binds every listen endpoint and spawns the listener and sweeper tasks.
    fn run(&self) -> Result<Running> {
        let rt = crate::runtime::handle()?;
        let _enter = rt.enter();
        rejects::preregister();
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        let mut tls = Vec::new();
        let mut addrs = Vec::new();
        for ep in &self.config.endpoints {
            match ep {
                Endpoint::Udp(hp) => {
                    let socks = bind_udp(hp, self.config.listen_threads)?;
                    let local = socks[0].local_addr().map_err(|e| Error::io(format!("bind {ep}"), e))?;
                    addrs.push((format!("udp://{local}"), local));
                    udp.extend(socks);
                }
                Endpoint::Tcp(hp) => {
                    let listener = bind_tcp(hp, "tcp")?;
                    let local = listener.local_addr().map_err(|e| Error::io(format!("bind {ep}"), e))?;
                    addrs.push((format!("tcp://{local}"), local));
                    tcp.push(listener);
                }
                Endpoint::Tls(hp) => {
                    let files = self.tls.clone().ok_or_else(|| Error::io(format!("bind {ep}"), "no certificates"))?;
                    let listener = bind_tcp(hp, "tls")?;
                    let local = listener.local_addr().map_err(|e| Error::io(format!("bind {ep}"), e))?;
                    addrs.push((format!("tls://{local}"), local));
                    tls.push((listener, files));
                }
                Endpoint::Etcd { .. } => {
                    return Err(Error::config(
                        "listen",
                        ep,
                        "udp://, tcp:// or tls://host:port (watch etcd with a Watcher)",
                    ))
                }
            }
        }
        let metrics = match self.config.metrics_addr {
            Some(addr) => Some(crate::http::serve_metrics(addr)?),
            None => None,
        };
        let view = Arc::new(HttpView::new(Arc::clone(&self.ingest), Arc::clone(&self.events), LISTING_MAX_AGE));
        let http = crate::http::serve_view(&self.config, view, &self.events)?;
        let mut tasks = Vec::new();
        let mut udp_threads = Vec::new();
        if self.config.listen_threads == 1 {
            for sock in udp {
                let sock = tokio::net::UdpSocket::from_std(sock).map_err(|e| Error::io("listen udp", e))?;
                tasks.push(rt.spawn(udp::run(sock, Arc::clone(&self.ingest))));
            }
        } else {
            for (i, sock) in udp.into_iter().enumerate() {
                let name = format!("hb-udp-{}", i + 1);
                match UdpThread::spawn(sock, Arc::clone(&self.ingest), name) {
                    Ok(t) => udp_threads.push(t),
                    Err(e) => {
                        udp_threads.into_iter().for_each(|t: UdpThread| t.stop(true));
                        return Err(e);
                    }
                }
            }
        }
        for listener in tcp {
            tasks.push(rt.spawn(tcp::run(listener, Arc::clone(&self.ingest))));
        }
        for (listener, files) in tls {
            tasks.push(rt.spawn(tls::run(listener, Arc::clone(&self.ingest), files)));
        }
        tasks.push(rt.spawn(sweeper::run(Arc::clone(&self.ingest))));
        Ok(Running { tasks, udp_threads, addrs, _metrics: metrics, http })
    }

    /// Aborts the tasks and waits until the sockets are really closed, so that the port can
    /// be bound again; on an engine thread we must not block, and the abort completes on
    /// its own.
    fn halt(&self, r: Running) {
        for t in &r.tasks {
            t.abort();
        }
        let wait = !crate::runtime::on_engine_thread();
        r.udp_threads.into_iter().for_each(|t| t.stop(wait));
        if wait {
            let tasks = r.tasks;
            let _ = crate::runtime::run(
                async move {
                    for t in tasks {
                        let _ = t.await;
                    }
                },
                Duration::from_secs(2),
            );
        }
        self.ingest.table.lock().release_gauges();
    }

    /// The bound addresses as `udp://ip:port` / `tcp://ip:port` (useful with port 0).
    /// None before start; `Stopped` once stopped.
    pub fn local_addrs(&self) -> Result<Vec<(String, SocketAddr)>> {
        self.life.not_stopped()?;
        Ok(self.life.with_running(|r| r.addrs.clone()).unwrap_or_default())
    }

    /// The address of the first listener of `scheme` ("udp", "tcp" or "tls").
    pub fn local_addr(&self, scheme: &str) -> Option<SocketAddr> {
        let prefix = format!("{scheme}://");
        self.local_addrs().ok()?.into_iter().find(|(url, _)| url.starts_with(&prefix)).map(|(_, a)| a)
    }

    /// Stops listening and sweeping; no event is delivered after it returns (also when
    /// called from this monitor's own callback). Idempotent.
    pub fn stop(&self) -> Result<()> {
        if let Some(r) = self.life.begin_stop(self.config.stop_timeout)? {
            self.halt(r);
        }
        self.events.close();
        Ok(())
    }

    /// The peers tracked now (none before start); `Stopped` once stopped.
    pub fn peers(&self) -> Result<Vec<PeerInfo>> {
        self.life.not_stopped()?;
        Ok(self.ingest.peers())
    }

    pub fn stats(&self) -> MonitorStats {
        let c = self.ingest.table.lock().counts();
        MonitorStats {
            alive: c.alive,
            suspect: c.suspect,
            dead: c.dead,
            left: c.left,
            beats_received: self.ingest.stats.beats_received.load(Ordering::Relaxed),
            frames_rejected: self.ingest.stats.frames_rejected.load(Ordering::Relaxed),
            sweeps: self.ingest.stats.sweeps.load(Ordering::Relaxed),
            on_probation: c.on_probation,
            peers_evicted: c.evicted,
            peers_refused: c.refused,
            events_dropped: self.events.dropped(),
        }
    }

    /// Approximate bytes of memory held for tracked peers (table, index, strings, wheel);
    /// divide by the peer count for bytes per peer. O(peers): call it for reports only.
    pub fn tracked_bytes_estimate(&self) -> usize {
        self.ingest.table.lock().tracked_bytes_estimate()
    }

    pub fn events(&self) -> &Arc<EventHub> {
        &self.events
    }

    /// Where the HTTP API listens (`http_addr`, useful with port 0): from `start` to `stop`,
    /// None before, after and without `http_addr`; `Forked` in a forked child.
    pub fn http_addr(&self) -> Result<Option<SocketAddr>> {
        self.life.same_process()?;
        Ok(self.life.with_running(|r| r.http.as_ref().map(|h| h.local_addr())).flatten())
    }
}

impl EventSource for Monitor {
    fn events(&self) -> &Arc<EventHub> {
        &self.events
    }
    fn same_process(&self) -> Result<()> {
        self.life.same_process()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if !self.life.is_forked() {
            let _ = self.stop();
        }
    }
}

fn resolve(hp: &HostPort, scheme: &str) -> Result<Vec<SocketAddr>> {
    hp.resolve().map_err(|e| Error::io(format!("resolve {scheme}://{hp}"), e))
}

/// Gives a UDP socket the receive buffer a monitor's listener has ([`UDP_RECV_BUFFER`]).
/// Public so that a benchmark's baseline receiver gets exactly the same.
pub fn size_udp_recv_buffer(sock: &std::net::UdpSocket) {
    size_recv_buffer(&socket2::SockRef::from(sock));
}

/// Best effort: without the privilege to force it (SO_RCVBUFFORCE), the kernel caps
/// SO_RCVBUF at net.core.rmem_max.
fn size_recv_buffer(sock: &socket2::Socket) {
    if !mmsg::force_recv_buffer(sock, UDP_RECV_BUFFER) {
        let _ = sock.set_recv_buffer_size(UDP_RECV_BUFFER);
    }
}

/// `count` UDP sockets bound to one address, each sized like a monitor's listener and
/// non-blocking. With `count > 1` they share the port through `SO_REUSEPORT`: the kernel
/// picks a socket per datagram by hashing its 4-tuple, so one source address always lands
/// on the same socket (a peer's beats stay in order), and traffic spreads only over
/// several source addresses. Port 0 is resolved by the first bind and reused by the rest.
/// Public so that a benchmark's baseline receiver gets exactly the same sockets.
pub fn bind_udp_group(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::UdpSocket>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut socks: Vec<std::net::UdpSocket> = Vec::with_capacity(count);
    let mut at = addr;
    for _ in 0..count.max(1) {
        let sock = Socket::new(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP))?;
        size_recv_buffer(&sock);
        if count > 1 {
            sock.set_reuse_port(true)?;
        }
        sock.set_nonblocking(true)?;
        sock.bind(&at.into())?;
        let sock: std::net::UdpSocket = sock.into();
        at = sock.local_addr()?;
        socks.push(sock);
    }
    Ok(socks)
}

fn bind_udp(hp: &HostPort, count: usize) -> Result<Vec<std::net::UdpSocket>> {
    let mut last = None;
    for addr in resolve(hp, "udp")? {
        match bind_udp_group(addr, count) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::io(format!("bind udp://{hp}"), last.map(|e| e.to_string()).unwrap_or_default()))
}

fn bind_tcp(hp: &HostPort, scheme: &str) -> Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut last = None;
    for addr in resolve(hp, scheme)? {
        let attempt = (|| {
            let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            // Lets a restarted monitor bind its port while old connections sit in TIME_WAIT.
            sock.set_reuse_address(true)?;
            sock.set_nonblocking(true)?;
            sock.bind(&addr.into())?;
            sock.listen(1024)?;
            tokio::net::TcpListener::from_std(sock.into())
        })();
        match attempt {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::io(format!("bind {scheme}://{hp}"), last.map(|e| e.to_string()).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use crate::config::{Options, DAY_S};

    #[test]
    fn the_target_rates_reach_the_detector() {
        let mut o = Options::new();
        o.set("listen", "udp://127.0.0.1:0").unwrap();
        o.set("false_dead_rate", "1/y").unwrap();
        o.set("false_suspect_rate", "2/h").unwrap();
        let m = super::Monitor::new(&o).unwrap();
        let table = m.ingest.table.lock();
        assert_eq!(table.params().target_false_dead_per_s, 1.0 / (365.25 * DAY_S));
        assert_eq!(table.params().target_false_suspect_per_s, 2.0 / 3_600.0);
    }

    #[test]
    fn list_requests_share_one_sorted_copy_of_the_rows_until_it_is_too_old_or_a_state_changes() {
        use crate::http::{ListQuery, PeerView};
        use crate::proto::{decode, encode, Frame};
        use std::sync::Arc;
        use std::time::Duration;
        let mut o = Options::new();
        o.set("listen", "udp://127.0.0.1:0").unwrap();
        let m = super::Monitor::new(&o).unwrap();
        let beat = |id: &str, service: &str, seq: u32| {
            let mut f = Frame::beat(id);
            (f.seq, f.incarnation, f.service) = (seq, 1, Some(service.into()));
            let mut bytes = Vec::new();
            encode(&f, None, &mut bytes).unwrap();
            let from =
                super::table::Source { addr: "127.0.0.1:9".parse().unwrap(), transport: super::table::Transport::Udp };
            m.ingest.with_table(|t| t.ingest(&decode(&bytes, None).unwrap(), from, m.ingest.clock.now_ns()));
        };
        let ids = |page: crate::http::Page| page.peers.into_iter().map(|p| p.id).collect::<Vec<_>>();
        let view = |age| super::HttpView::new(Arc::clone(&m.ingest), Arc::clone(&m.events), age);
        let (kept, fresh) = (view(Duration::from_secs(3600)), view(Duration::ZERO));
        beat("b", "web", 1);
        beat("a", "web", 1);
        assert_eq!(ids(kept.list(&ListQuery::default_page()).unwrap()), ["a", "b"], "sorted by service, then id");
        // A beat that changes no state: the copy answers on within its age ...
        let before = kept.listing();
        beat("a", "web", 2);
        assert!(Arc::ptr_eq(&before, &kept.listing()));
        // ... a new peer (an event) makes it take a new one ...
        beat("c", "db", 1);
        let after = kept.listing();
        assert!(!Arc::ptr_eq(&before, &after));
        assert_eq!(ids(kept.list(&ListQuery::default_page()).unwrap()), ["c", "a", "b"]);
        assert_eq!(after.generation, before.generation + 1);
        // ... and so does age.
        assert!(!Arc::ptr_eq(&fresh.listing(), &fresh.listing()));
    }

    #[test]
    fn two_listen_threads_share_the_port_and_every_peer_is_heard() {
        use crate::proto::{encode, Frame};
        use std::time::{Duration, Instant};
        let mut o = Options::new();
        o.set("listen", "udp://127.0.0.1:0").unwrap();
        o.set("listen_threads", "2").unwrap();
        let m = super::Monitor::new(&o).unwrap();
        m.start().unwrap();
        let addr = m.local_addr("udp").unwrap();
        let threads = || {
            let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .filter(|n| n.starts_with("hb-udp-"))
                .collect();
            names.sort();
            names
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        // A thread takes its name once it runs.
        while threads() != ["hb-udp-1", "hb-udp-2"] {
            assert!(Instant::now() < deadline, "listener threads: {:?}", threads());
            std::thread::sleep(Duration::from_millis(10));
        }
        // Many source ports, so that the kernel's 4-tuple hash reaches both sockets.
        let senders: Vec<_> = (0..32).map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let mut seq = 1;
        while m.stats().alive < senders.len() {
            assert!(Instant::now() < deadline, "{} of {} peers alive", m.stats().alive, senders.len());
            for (i, s) in senders.iter().enumerate() {
                let mut f = Frame::beat(format!("p{i}"));
                (f.seq, f.incarnation) = (seq, 1);
                let mut bytes = Vec::new();
                encode(&f, None, &mut bytes).unwrap();
                s.send_to(&bytes, addr).unwrap();
            }
            seq += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        m.stop().unwrap();
        assert!(threads().is_empty(), "the listener threads end with stop");
        // Both sockets are closed: the port can be bound again, without SO_REUSEPORT.
        std::net::UdpSocket::bind(addr).unwrap();
    }

    #[test]
    fn a_sized_udp_socket_gets_a_larger_receive_buffer() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = socket2::SockRef::from(&sock).recv_buffer_size().unwrap();
        super::size_udp_recv_buffer(&sock);
        let after = socket2::SockRef::from(&sock).recv_buffer_size().unwrap();
        // As much as the kernel allows: forced to UDP_RECV_BUFFER with CAP_NET_ADMIN, else
        // net.core.rmem_max (which is normally above the default).
        assert!(after >= before, "{before} -> {after}");
        eprintln!("receive buffer {before} -> {after} bytes");
    }
}
