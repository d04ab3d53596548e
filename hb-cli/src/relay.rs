//! A userspace UDP impairment proxy. Clients send to the relay; each client address gets
//! its own upstream socket, so the monitor's replies come back on that socket and are
//! routed to the right client. Every packet, both directions, passes one scheduler that
//! decides its fate (loss, delay) with a seeded RNG and delivers it from a timer queue
//! (a binary heap ordered by due time), not with a sleep per packet.
//!
//! With several upstreams the relay tees: each beat goes to all of them (the same
//! impaired traffic reaches, e.g., an adaptive and a phi monitor), and only the first
//! upstream's replies travel back.
//!
//! `cut(id)` drops every later packet from the client whose frames carry that instance
//! id: to the monitors this is indistinguishable from that process crashing.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::impair::{Flow, Impairer, Impairment};

/// Cap on distinct client addresses, so a spoofing sender cannot exhaust our sockets.
const MAX_SESSIONS: usize = 20_000;

pub struct RelaySpec {
    pub listen: SocketAddr,
    pub upstreams: Vec<SocketAddr>,
    pub impairment: Impairment,
    pub seed: u64,
}

#[derive(Default)]
pub struct RelayStats {
    pub up_forwarded: AtomicU64,
    pub down_forwarded: AtomicU64,
    pub lost: AtomicU64,
    pub cut: AtomicU64,
}

struct Shared {
    stats: RelayStats,
    cut_ids: Mutex<HashSet<String>>,
}

pub struct Relay {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

enum Direction {
    /// From this client to the upstream(s), through the client's own socket.
    Up(SocketAddr, Arc<UdpSocket>),
    /// Upstream back to this client, through the listening socket.
    Down(SocketAddr),
}

struct Packet {
    data: Vec<u8>,
    dir: Direction,
}

impl Packet {
    /// Each client's beats, and the replies to it, are a flow of their own (loss bursts).
    fn flow(&self) -> Flow {
        match self.dir {
            Direction::Up(client, _) => Flow { client, up: true },
            Direction::Down(client) => Flow { client, up: false },
        }
    }
}

struct Due {
    at: Instant,
    order: u64,
    packet: Packet,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (o.at, o.order).cmp(&(self.at, self.order))
    }
}

impl Relay {
    /// Binds the listening socket now (so errors surface here) and serves on its own
    /// thread with its own single-threaded runtime.
    pub fn start(spec: RelaySpec) -> std::io::Result<Relay> {
        if spec.upstreams.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "relay needs an upstream"));
        }
        let socket = StdUdpSocket::bind(spec.listen)?;
        socket.set_nonblocking(true)?;
        let local_addr = socket.local_addr()?;
        let shared = Arc::new(Shared { stats: RelayStats::default(), cut_ids: Mutex::new(HashSet::new()) });
        let (tx, rx) = oneshot::channel();
        let inner = Arc::clone(&shared);
        let thread = std::thread::Builder::new().name("relay".into()).spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("relay runtime");
            rt.block_on(async move {
                let listen = UdpSocket::from_std(socket).expect("register relay socket");
                serve(listen, spec, inner, rx).await;
            });
        })?;
        Ok(Relay { local_addr, shared, shutdown: Some(tx), thread: Some(thread) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> &RelayStats {
        &self.shared.stats
    }

    /// From now on, drop every packet from the client whose frames carry `id`.
    pub fn cut(&self, id: &str) {
        self.shared.cut_ids.lock().insert(id.to_string());
    }

    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listen: UdpSocket, spec: RelaySpec, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    let listen = Arc::new(listen);
    let (tx, mut rx) = mpsc::unbounded_channel::<Packet>();
    let reader = tokio::spawn(read_clients(Arc::clone(&listen), spec.upstreams[0], tx));
    let mut impairer = Impairer::new(spec.impairment.clone(), spec.seed);
    let mut queue: BinaryHeap<Due> = BinaryHeap::new();
    let mut order = 0u64;
    loop {
        let next_due = queue.peek().map(|d| d.at);
        tokio::select! {
            _ = &mut shutdown => break,
            packet = rx.recv() => {
                let Some(packet) = packet else { break };
                if is_cut(&shared, &packet) {
                    shared.stats.cut.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                match impairer.fate(packet.flow()) {
                    None => { shared.stats.lost.fetch_add(1, Ordering::Relaxed); }
                    Some(delay) => {
                        order += 1;
                        queue.push(Due { at: Instant::now() + delay, order, packet });
                    }
                }
            }
            _ = sleep_until_opt(next_due) => {
                let now = Instant::now();
                while queue.peek().is_some_and(|d| d.at <= now) {
                    let Some(due) = queue.pop() else { break };
                    deliver(&listen, &spec.upstreams, &shared, due.packet);
                }
            }
        }
    }
    reader.abort();
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn is_cut(shared: &Shared, packet: &Packet) -> bool {
    if !matches!(packet.dir, Direction::Up(..)) {
        return false;
    }
    let cut = shared.cut_ids.lock();
    if cut.is_empty() {
        return false;
    }
    // The tag is not checked (no key): we only need the claimed id.
    match hb_core::proto::decode(&packet.data, None) {
        Ok(frame) => cut.contains(frame.id),
        Err(_) => false,
    }
}

fn deliver(listen: &UdpSocket, upstreams: &[SocketAddr], shared: &Shared, packet: Packet) {
    // try_send: a UDP send only fails when the socket buffer is full, which is a loss too.
    match packet.dir {
        Direction::Up(_, session) => {
            for up in upstreams {
                let _ = session.try_send_to(&packet.data, *up);
            }
            shared.stats.up_forwarded.fetch_add(1, Ordering::Relaxed);
        }
        Direction::Down(client) => {
            let _ = listen.try_send_to(&packet.data, client);
            shared.stats.down_forwarded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn read_clients(listen: Arc<UdpSocket>, primary: SocketAddr, tx: mpsc::UnboundedSender<Packet>) {
    let mut sessions: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = listen.recv_from(&mut buf).await else { continue };
        let session = match sessions.get(&client) {
            Some(s) => Arc::clone(s),
            None => {
                if sessions.len() >= MAX_SESSIONS {
                    continue;
                }
                let bind: SocketAddr = if primary.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
                let Ok(sock) = UdpSocket::bind(bind).await else { continue };
                let sock = Arc::new(sock);
                tokio::spawn(read_replies(Arc::clone(&sock), primary, client, tx.clone()));
                sessions.insert(client, Arc::clone(&sock));
                sock
            }
        };
        if tx.send(Packet { data: buf[..n].to_vec(), dir: Direction::Up(client, session) }).is_err() {
            return;
        }
    }
}

/// Replies on one client's upstream socket; only the primary upstream's go back.
async fn read_replies(
    sock: Arc<UdpSocket>,
    primary: SocketAddr,
    client: SocketAddr,
    tx: mpsc::UnboundedSender<Packet>,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else { continue };
        if from != primary {
            continue;
        }
        if tx.send(Packet { data: buf[..n].to_vec(), dir: Direction::Down(client) }).is_err() {
            return;
        }
    }
}

/// Parses `udp://H:P` into a socket address (the relay speaks UDP only).
pub fn udp_addr(flag: &str, text: &str) -> Result<SocketAddr, String> {
    let bad = || format!("{flag} {text:?}: expected udp://host:port, e.g. udp://127.0.0.1:7946");
    let rest = text.strip_prefix("udp://").ok_or_else(bad)?;
    use std::net::ToSocketAddrs;
    rest.to_socket_addrs().map_err(|_| bad())?.next().ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use std::time::Instant as StdInstant;

    fn echo_server() -> (SocketAddr, std::thread::JoinHandle<()>) {
        let s = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&buf[..n]);
                s.send_to(&reply, from).unwrap();
            }
        });
        (addr, t)
    }

    #[test]
    fn forwards_both_ways_with_delay() {
        let (upstream, _t) = echo_server();
        let impairment = Impairment { delay: Duration::from_millis(40), ..Impairment::none() };
        let relay = Relay::start(RelaySpec {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstreams: vec![upstream],
            impairment,
            seed: 1,
        })
        .unwrap();
        let clients: Vec<StdUdpSocket> = (0..3).map(|_| StdUdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        for (i, c) in clients.iter().enumerate() {
            c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let t0 = StdInstant::now();
            c.send_to(format!("hello {i}").as_bytes(), relay.local_addr()).unwrap();
            let mut buf = [0u8; 100];
            let (n, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!(from, relay.local_addr());
            assert_eq!(&buf[..n], format!("echo:hello {i}").as_bytes());
            // Delayed on the way up and on the way down.
            assert!(t0.elapsed() >= Duration::from_millis(80), "{:?}", t0.elapsed());
        }
        assert_eq!(relay.stats().up_forwarded.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn total_loss_drops_everything_and_counts_it() {
        let (upstream, _t) = echo_server();
        let impairment = Impairment { loss: 1.0, ..Impairment::none() };
        let relay = Relay::start(RelaySpec {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstreams: vec![upstream],
            impairment,
            seed: 1,
        })
        .unwrap();
        let c = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 {
            c.send_to(b"x", relay.local_addr()).unwrap();
        }
        let t0 = StdInstant::now();
        while relay.stats().lost.load(Ordering::Relaxed) < 10 && t0.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(relay.stats().lost.load(Ordering::Relaxed), 10);
        assert_eq!(relay.stats().up_forwarded.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn cut_drops_only_that_peer() {
        let (upstream, _t) = echo_server();
        let relay = Relay::start(RelaySpec {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstreams: vec![upstream],
            impairment: Impairment::none(),
            seed: 1,
        })
        .unwrap();
        relay.cut("victim");
        let c = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let frame = |id: &str| {
            let mut out = Vec::new();
            hb_core::proto::encode(&hb_core::proto::Frame::beat(id), None, &mut out).unwrap();
            out
        };
        c.send_to(&frame("victim"), relay.local_addr()).unwrap();
        c.send_to(&frame("other"), relay.local_addr()).unwrap();
        let mut buf = [0u8; 600];
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[5..n], frame("other").as_slice());
        assert_eq!(relay.stats().cut.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn udp_addr_errors_are_precise() {
        assert_eq!(udp_addr("--upstream", "udp://127.0.0.1:9").unwrap(), "127.0.0.1:9".parse().unwrap());
        assert_eq!(
            udp_addr("--upstream", "tcp://x:1").unwrap_err(),
            "--upstream \"tcp://x:1\": expected udp://host:port, e.g. udp://127.0.0.1:7946"
        );
    }
}
