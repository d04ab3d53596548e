//! Direct beats to one or more heartbeater monitors over `udp://`, `tcp://` or `tls://`.
//!
//! One tokio task and one socket per endpoint (several endpoints = monitor redundancy);
//! no thread per client. TCP and TLS reconnect forever with jittered exponential backoff;
//! each TLS handshake takes the certificate files as they are then (`tls::reload`).
//! `stop` sends LEAVE to every endpoint and returns within its timeout whatever happens.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

use crate::backoff::Backoff;
use crate::config::{Endpoint, HostPort};
use crate::error::{Error, Result};
use crate::proto::stream::{self, StreamDecoder, PREFIX_LEN};
use crate::proto::MAX_FRAME_LEN;
use crate::tls::reload::Reloading;
use crate::tls::TlsFiles;

use super::beater::Beater;
use super::shared::{ClientShared, Transport};

/// Reconnect delays: 100 ms doubling up to 5 s, each drawn from [d/2, d].
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
const TCP_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Run,
    /// Say goodbye and end, by this monotonic time.
    Leave {
        deadline_ns: u64,
    },
}

pub(crate) struct DirectTransport {
    shared: Arc<ClientShared>,
    commands: watch::Sender<Command>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl DirectTransport {
    /// Resolves and opens every endpoint, then starts beating. Returns without waiting for
    /// the first ACK (the client's state moves to `healthy` when it comes).
    pub(crate) fn start(shared: Arc<ClientShared>) -> Result<DirectTransport> {
        let rt = crate::runtime::handle()?;
        let _enter = rt.enter();
        let (commands, rx) = watch::channel(Command::Run);
        let now = shared.now_ns();
        let mut work: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> = Vec::new();
        let connect_timeout = shared.config.connect_timeout;
        let tls = match shared.config.endpoints.iter().any(Endpoint::is_tls) {
            true => {
                let files = TlsFiles::of(&shared.config.tls)?;
                Some(Arc::new(Reloading::new(files.paths(), move || crate::tls::client(&files))?))
            }
            false => None,
        };
        for (index, ep) in shared.config.endpoints.iter().enumerate() {
            let beater = Beater::new(Arc::clone(&shared), index, now)?;
            match ep {
                Endpoint::Udp(hp) => {
                    let target = resolve(hp, ep)?;
                    let bind: SocketAddr =
                        if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
                    let sock = std::net::UdpSocket::bind(bind)
                        .and_then(|s| s.connect(target).map(|_| s))
                        .and_then(|s| s.set_nonblocking(true).map(|_| s))
                        .and_then(UdpSocket::from_std)
                        .map_err(|e| Error::Connect { what: "monitor", addr: ep.to_string(), detail: e.to_string() })?;
                    work.push(Box::pin(udp_task(sock, beater, rx.clone())));
                }
                Endpoint::Tcp(hp) => {
                    let dialer = Dialer { target: resolve(hp, ep)?, connect_timeout, tls: None };
                    work.push(Box::pin(tcp_task(dialer, beater, rx.clone())));
                }
                Endpoint::Tls(hp) => {
                    let name =
                        crate::tls::server_name(shared.config.tls.server_name.as_deref(), &hp.host, &ep.to_string())?;
                    let files = tls.clone().ok_or_else(|| Error::config("tls_ca_file", "", "a PEM file"))?;
                    let dialer = Dialer { target: resolve(hp, ep)?, connect_timeout, tls: Some((files, name)) };
                    work.push(Box::pin(tcp_task(dialer, beater, rx.clone())));
                }
                Endpoint::Etcd { .. } => {
                    return Err(Error::config(
                        "endpoint",
                        ep,
                        "udp://, tcp:// or tls://host:port (etcd endpoints use the registry)",
                    ))
                }
            }
        }
        let tasks = work.into_iter().map(|w| rt.spawn(w)).collect();
        Ok(DirectTransport { shared, commands, tasks: Mutex::new(tasks) })
    }
}

impl Transport for DirectTransport {
    fn stop(&self, timeout: Duration) -> Result<()> {
        let tasks = std::mem::take(&mut *self.tasks.lock());
        // Leave a quarter of the budget for the tasks to finish after their deadline.
        let budget_ns = (timeout.as_nanos() as u64).saturating_mul(3) / 4;
        let _ = self.commands.send(Command::Leave { deadline_ns: self.shared.now_ns().saturating_add(budget_ns) });
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        if crate::runtime::on_engine_thread() {
            // Cannot block here; the tasks end on their own by the deadline.
            return Ok(());
        }
        let waited = crate::runtime::run(
            async move {
                for t in tasks {
                    let _ = t.await;
                }
            },
            timeout,
        );
        if waited.is_err() {
            aborts.iter().for_each(|a| a.abort());
        }
        Ok(())
    }

    fn crash(&self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

/// The first address of the endpoint's host.
fn resolve(hp: &HostPort, ep: &Endpoint) -> Result<SocketAddr> {
    let addrs =
        hp.resolve().map_err(|e| Error::Connect { what: "monitor", addr: ep.to_string(), detail: e.to_string() })?;
    Ok(addrs[0])
}

fn until(b: &Beater, at_ns: u64) -> Duration {
    Duration::from_nanos(at_ns.saturating_sub(b.now_ns()))
}

async fn udp_task(sock: UdpSocket, mut b: Beater, mut commands: watch::Receiver<Command>) {
    let mut out = Vec::with_capacity(MAX_FRAME_LEN);
    let mut buf = [0u8; MAX_FRAME_LEN + 1];
    loop {
        if b.on_timer(b.now_ns(), &mut out) && !out.is_empty() {
            // Errors (e.g. ICMP port unreachable from an earlier send) show up as missing ACKs.
            let _ = sock.send(&out).await;
        }
        let wait = until(&b, b.next_wakeup_ns());
        tokio::select! {
            _ = sleep(wait) => {}
            r = sock.recv(&mut buf) => {
                if let Ok(n) = r {
                    b.on_frame(&buf[..n], b.now_ns());
                }
            }
            changed = commands.changed() => {
                let deadline_ns = match (changed, *commands.borrow()) {
                    (Ok(()), Command::Leave { deadline_ns }) => deadline_ns,
                    (Ok(()), Command::Run) => continue,
                    (Err(_), _) => return,
                };
                udp_leave(&sock, &mut b, deadline_ns, &mut out, &mut buf).await;
                return;
            }
        }
    }
}

/// LEAVE, and once more if it is not confirmed within about an RTO.
async fn udp_leave(sock: &UdpSocket, b: &mut Beater, deadline_ns: u64, out: &mut Vec<u8>, buf: &mut [u8]) {
    for attempt in 0..2 {
        b.leave(b.now_ns(), out);
        let _ = sock.send(out).await;
        let left = deadline_ns.saturating_sub(b.now_ns());
        let wait_ns = if attempt == 0 { b.rto_ns().min(left / 2) } else { left };
        let wait_until = b.now_ns() + wait_ns;
        while !b.leave_acked() {
            match timeout(until(b, wait_until), sock.recv(buf)).await {
                Ok(Ok(n)) => {
                    b.on_frame(&buf[..n], b.now_ns());
                }
                Ok(Err(_)) => {}
                Err(_) => break,
            }
        }
        if b.leave_acked() || b.now_ns() >= deadline_ns {
            return;
        }
    }
}

/// A byte stream to a monitor: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How a stream endpoint connects.
struct Dialer {
    target: SocketAddr,
    connect_timeout: Duration,
    /// `tls://`: the client's configuration and the name the monitor's certificate holds.
    tls: Option<(Arc<Reloading<ClientConfig>>, ServerName<'static>)>,
}

impl Dialer {
    /// A connected stream, within the connect timeout; or `Err`, with a reason for
    /// `check()` when there is more to say than "could not connect" (TLS refusals).
    async fn dial(&self) -> std::result::Result<Box<dyn Stream>, Option<String>> {
        let connect = async {
            let tcp = TcpStream::connect(self.target).await.map_err(|_| None)?;
            let _ = tcp.set_nodelay(true);
            let Some((config, name)) = &self.tls else {
                return Ok(Box::new(tcp) as Box<dyn Stream>);
            };
            let connector = tokio_rustls::TlsConnector::from(config.current());
            match connector.connect(name.clone(), tcp).await {
                Ok(tls) => Ok(Box::new(tls) as Box<dyn Stream>),
                Err(e) => Err(Some(crate::tls::client_failure(&e, name))),
            }
        };
        timeout(self.connect_timeout, connect).await.unwrap_or(Err(None))
    }
}

async fn tcp_task(dialer: Dialer, mut b: Beater, mut commands: watch::Receiver<Command>) {
    let mut backoff = Backoff::new(BACKOFF_START, BACKOFF_CAP);
    while *commands.borrow() == Command::Run {
        let connected = tokio::select! {
            r = dialer.dial() => r,
            _ = commands.changed() => break,
        };
        if let Err(Some(why)) = &connected {
            b.connect_refused(why.clone());
        }
        if let Ok(stream) = connected {
            backoff.reset();
            if session(stream, &mut b, &mut commands).await == Ended::Stopped {
                if b.leave_acked() {
                    return;
                }
                // The session broke under its LEAVE (a path that just came back can drop
                // the first connection): one more attempt below, on a fresh one.
                break;
            }
        }
        b.transport_failed(b.now_ns());
        b.tick(b.now_ns());
        tokio::select! {
            _ = sleep(backoff.next()) => {}
            _ = commands.changed() => break,
        }
    }
    // Stopped while connecting or backing off: one bounded attempt to say goodbye, so
    // that a monitor that is reachable again reports `left` rather than `dead` later.
    let command = *commands.borrow();
    if let Command::Leave { deadline_ns } = command {
        let wait = until(&b, deadline_ns).min(dialer.connect_timeout);
        if let Ok(Ok(stream)) = timeout(wait, dialer.dial()).await {
            let (mut rd, mut wr) = tokio::io::split(stream);
            tcp_leave(&mut rd, &mut wr, &mut b, deadline_ns, &mut StreamDecoder::new()).await;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Stopped,
    Broken,
}

async fn session(stream: Box<dyn Stream>, b: &mut Beater, commands: &mut watch::Receiver<Command>) -> Ended {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut out = Vec::with_capacity(PREFIX_LEN + MAX_FRAME_LEN);
    let mut frame = Vec::with_capacity(MAX_FRAME_LEN);
    let mut inbox = StreamDecoder::new();
    let mut chunk = [0u8; 1024];
    loop {
        if b.on_timer(b.now_ns(), &mut frame) && !frame.is_empty() {
            prefix(&frame, &mut out);
            if !matches!(timeout(TCP_WRITE_TIMEOUT, wr.write_all(&out)).await, Ok(Ok(()))) {
                return Ended::Broken;
            }
        }
        let wait = until(b, b.next_wakeup_ns());
        tokio::select! {
            _ = sleep(wait) => {}
            r = rd.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return Ended::Broken,
                Ok(n) => {
                    if !take_frames(&mut inbox, &chunk[..n], b) {
                        return Ended::Broken;
                    }
                }
            },
            changed = commands.changed() => {
                let deadline_ns = match (changed, *commands.borrow()) {
                    (Ok(()), Command::Leave { deadline_ns }) => deadline_ns,
                    (Ok(()), Command::Run) => continue,
                    (Err(_), _) => return Ended::Stopped,
                };
                tcp_leave(&mut rd, &mut wr, b, deadline_ns, &mut inbox).await;
                return Ended::Stopped;
            }
        }
    }
}

/// Sends LEAVE and waits, until `deadline_ns`, for its ACK. `inbox` holds what was
/// already read from the stream.
async fn tcp_leave(
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
    b: &mut Beater,
    deadline_ns: u64,
    inbox: &mut StreamDecoder,
) {
    let mut frame = Vec::with_capacity(MAX_FRAME_LEN);
    let mut out = Vec::with_capacity(PREFIX_LEN + MAX_FRAME_LEN);
    b.leave(b.now_ns(), &mut frame);
    prefix(&frame, &mut out);
    if !matches!(timeout(until(b, deadline_ns), wr.write_all(&out)).await, Ok(Ok(()))) {
        return;
    }
    let mut chunk = [0u8; 1024];
    while !b.leave_acked() {
        match timeout(until(b, deadline_ns), rd.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                if !take_frames(inbox, &chunk[..n], b) {
                    return;
                }
            }
            _ => return,
        }
    }
}

fn prefix(frame: &[u8], out: &mut Vec<u8>) {
    out.clear();
    stream::put(frame, out);
}

/// Adds `bytes` and hands every complete frame to the beater. False if the stream is
/// corrupt (a length no monitor sends).
fn take_frames(inbox: &mut StreamDecoder, bytes: &[u8], b: &mut Beater) -> bool {
    inbox.push(bytes);
    loop {
        match inbox.next_frame() {
            Ok(Some(frame)) => {
                b.on_frame(frame, b.now_ns());
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}
