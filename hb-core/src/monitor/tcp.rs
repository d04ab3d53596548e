//! The TCP listener: frames prefixed by a big-endian u16 length (`proto::stream`), many
//! concurrent connections, each with a small bounded buffer and an idle timeout.
//!
//! A connection slot is earned: the first valid frame must come within
//! `FIRST_FRAME_TIMEOUT`, the idle timer runs from the last valid frame (junk does not
//! keep a connection open), one invalid frame closes it, and one host holds at most
//! `MAX_CONNECTIONS_PER_HOST`. A refused or closed connection is told why first, with a
//! NACK about the connection (seq 0, ts 0), so its client's `check()` can say so.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{timeout, timeout_at, Instant};

use crate::proto::stream::{self, StreamDecoder};
use crate::proto::{decode, DecodeError, Flags, Kind, NackReason};
use crate::tls::peer::PeerIds;

use super::rejects::reject;
use super::reply::ReplyEncoder;
use super::table::{Reply, Source, Transport};
use super::Ingest;

/// Connections beyond this are closed at once (each costs a task and ~2 KB).
pub const MAX_CONNECTIONS: usize = 16_384;
/// Connections one source host may hold: a sixteenth of all.
pub const MAX_CONNECTIONS_PER_HOST: usize = MAX_CONNECTIONS / 16;
/// A new connection must deliver a valid frame within this (a client sends its first beat
/// as soon as it is connected).
pub(super) const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// A frame that started must complete within this.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Open connections, in all and per source host.
#[derive(Default)]
struct Slots {
    open: AtomicUsize,
    by_host: std::sync::Mutex<HashMap<IpAddr, usize>>,
}

impl Slots {
    /// Takes a slot for a connection from `ip`; false when there is none for it.
    fn take(&self, ip: IpAddr) -> bool {
        if self.open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            return false;
        }
        let mut by_host = self.by_host.lock().unwrap_or_else(|e| e.into_inner());
        let n = by_host.entry(ip).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_HOST {
            return false;
        }
        *n += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn give_back(&self, ip: IpAddr) {
        let mut by_host = self.by_host.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = by_host.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                by_host.remove(&ip);
            }
        }
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) async fn run(listener: TcpListener, ingest: Arc<Ingest>) {
    let mut encoder = ReplyEncoder::new(&ingest.monitor_id, ingest.key.clone(), ingest.max_interval_ms);
    // Said without waiting: a fresh socket's send buffer is empty.
    let refuse = move |stream: &TcpStream| {
        let _ = stream.try_write(&connection_nack(&mut encoder, NackReason::TooManyConnections));
    };
    accept_loop(listener, refuse, move |stream, from| {
        let ingest = Arc::clone(&ingest);
        async move { serve(stream, Source { addr: from, transport: Transport::Tcp }, &ingest, None).await }
    })
    .await
}

/// Accepts connections until aborted, each served by `conn` in a task of its own while it
/// holds a slot; one past the limits is counted, handed to `refuse`, and closed.
pub(super) async fn accept_loop<F, Fut>(listener: TcpListener, mut refuse: impl FnMut(&TcpStream), mut conn: F)
where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // Dropping the set (when this task is aborted by `stop`) aborts every connection.
    let mut conns = JoinSet::new();
    let slots = Arc::new(Slots::default());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) => {
                    if !slots.take(from.ip()) {
                        reject("too_many_connections");
                        refuse(&stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let (work, slots) = (conn(stream, from), Arc::clone(&slots));
                    conns.spawn(async move {
                        work.await;
                        slots.give_back(from.ip());
                    });
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Reads frames from one connection until it closes or breaks a rule. With `ids` (a
/// `tls://` client's certificate), a frame under any other id is refused (`id_mismatch`).
pub(super) async fn serve<S>(mut stream: S, source: Source, ingest: &Ingest, ids: Option<&PeerIds>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut inbox = StreamDecoder::new();
    let mut chunk = [0u8; 1024];
    let mut encoder = ReplyEncoder::new(&ingest.monitor_id, ingest.key.clone(), ingest.max_interval_ms);
    let (mut reply_frame, mut out) = (Vec::with_capacity(128), Vec::with_capacity(128));
    // When the frame now buffered in part began: it must complete within FRAME_TIMEOUT.
    let mut partial_since: Option<Instant> = None;
    // Until the first valid frame, the connection has FIRST_FRAME_TIMEOUT; then the idle
    // timeout runs from the last valid one.
    let mut idle_deadline = Instant::now() + FIRST_FRAME_TIMEOUT.min(ingest.tcp_idle);
    loop {
        let deadline = match partial_since {
            Some(t) => (t + FRAME_TIMEOUT).min(idle_deadline),
            None => idle_deadline,
        };
        let n = match timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            // Closed, reset, idle for too long, or a frame that never completed.
            _ => return,
        };
        inbox.push(&chunk[..n]);
        loop {
            let frame = match inbox.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    // The stream cannot be resynchronised after a bad length.
                    reject(e.reason());
                    ingest.stats.frames_rejected.fetch_add(1, Ordering::Relaxed);
                    out.clear();
                    stream::put(&connection_nack(&mut encoder, NackReason::Malformed), &mut out);
                    let _ = timeout(WRITE_TIMEOUT, stream.write_all(&out)).await;
                    return;
                }
            };
            let (reply, valid) = match handle(frame, source, ingest, ids) {
                Ok(reply) => (reply, true),
                Err(refusal) => (Some(refusal), false),
            };
            if valid {
                idle_deadline = Instant::now() + ingest.tcp_idle;
            }
            if let Some(reply) = reply {
                reply_frame.clear();
                if encoder.encode(&reply, &mut reply_frame) {
                    out.clear();
                    stream::put(&reply_frame, &mut out);
                    match timeout(WRITE_TIMEOUT, stream.write_all(&out)).await {
                        Ok(Ok(())) => crate::metrics::get().acks_sent.inc(),
                        _ => return,
                    }
                }
            }
            if !valid {
                // One invalid frame and the slot goes to someone else; the client was told.
                return;
            }
        }
        partial_since = match (inbox.is_partial(), partial_since) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(Instant::now()),
        };
    }
}

/// Decodes one frame and applies it to the table: the reply to send, if any; or, for an
/// invalid frame, the NACK to send before closing.
fn handle(frame: &[u8], source: Source, ingest: &Ingest, ids: Option<&PeerIds>) -> Result<Option<Reply>, Reply> {
    match decode(frame, ingest.key.as_ref()) {
        Ok(f) if ids.is_some_and(|ids| !ids.allows(f.id)) => {
            reject(NackReason::IdMismatch.as_str());
            ingest.stats.frames_rejected.fetch_add(1, Ordering::Relaxed);
            Err(Reply::Nack { seq: f.seq, ts_ns: f.ts_ns, reason: NackReason::IdMismatch })
        }
        Ok(f) => {
            if f.kind == Kind::Beat {
                crate::metrics::get().beats_received.inc();
                ingest.stats.beats_received.fetch_add(1, Ordering::Relaxed);
            }
            let now = ingest.clock.now_ns();
            Ok(ingest.with_table(|t| t.ingest(&f, source, now)))
        }
        Err(e) => {
            reject(e.reason());
            ingest.stats.frames_rejected.fetch_add(1, Ordering::Relaxed);
            let reason = match e {
                DecodeError::Untagged => NackReason::AuthRequired,
                DecodeError::BadTag => NackReason::BadTag,
                _ => NackReason::Malformed,
            };
            Err(auth_required(frame, &e).unwrap_or(Reply::Nack { seq: 0, ts_ns: 0, reason }))
        }
    }
}

/// A NACK about the connection rather than a beat (seq 0, ts 0), length-prefixed.
pub(super) fn connection_nack(encoder: &mut ReplyEncoder, reason: NackReason) -> Vec<u8> {
    let (mut frame, mut out) = (Vec::with_capacity(64), Vec::with_capacity(66));
    if encoder.encode(&Reply::Nack { seq: 0, ts_ns: 0, reason }, &mut frame) {
        stream::put(&frame, &mut out);
    }
    out
}

/// A well-formed beat without a tag, from a client that was not given the key: answer
/// NACK auth_required so its owner sees why it is ignored.
pub(super) fn auth_required(bytes: &[u8], err: &DecodeError) -> Option<Reply> {
    if *err != DecodeError::Untagged {
        return None;
    }
    let f = decode(bytes, None).ok()?;
    (f.kind == Kind::Beat && f.flags.contains(Flags::ACK_REQ)).then_some(Reply::Nack {
        seq: f.seq,
        ts_ns: f.ts_ns,
        reason: NackReason::AuthRequired,
    })
}
