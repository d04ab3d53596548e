//! The TCP listener: frames prefixed by a big-endian u16 length (`proto::stream`), many
//! concurrent connections, each with a small bounded buffer and an idle timeout.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{timeout, timeout_at, Instant};

use crate::proto::stream::{self, StreamDecoder};
use crate::proto::{decode, DecodeError, Flags, Kind, NackReason};

use super::rejects::reject;
use super::reply::ReplyEncoder;
use super::table::{Reply, Source, Transport};
use super::Ingest;

/// Connections beyond this are closed at once (each costs a task and ~2 KB).
pub const MAX_CONNECTIONS: usize = 16_384;
/// A frame that started must complete within this.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn run(listener: TcpListener, ingest: Arc<Ingest>) {
    // Dropping the set (when this task is aborted by `stop`) aborts every connection.
    let mut conns = JoinSet::new();
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) => {
                    if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                        reject("too_many_connections");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    open.fetch_add(1, Ordering::Relaxed);
                    let (ingest, open) = (Arc::clone(&ingest), Arc::clone(&open));
                    conns.spawn(async move {
                        serve(stream, from, &ingest).await;
                        open.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve(stream: TcpStream, from: SocketAddr, ingest: &Ingest) {
    let (mut rd, mut wr) = stream.into_split();
    let mut inbox = StreamDecoder::new();
    let mut chunk = [0u8; 1024];
    let mut encoder = ReplyEncoder::new(&ingest.monitor_id, ingest.key.clone(), ingest.max_interval_ms);
    let (mut reply_frame, mut out) = (Vec::with_capacity(128), Vec::with_capacity(128));
    let source = Source { addr: from, transport: Transport::Tcp };
    // When the frame now buffered in part began: it must complete within FRAME_TIMEOUT.
    let mut partial_since: Option<Instant> = None;
    loop {
        let deadline = match partial_since {
            Some(t) => t + FRAME_TIMEOUT,
            None => Instant::now() + ingest.tcp_idle,
        };
        let n = match timeout_at(deadline, rd.read(&mut chunk)).await {
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
                    return;
                }
            };
            let Some(reply) = handle(frame, source, ingest) else { continue };
            reply_frame.clear();
            if encoder.encode(&reply, &mut reply_frame) {
                out.clear();
                stream::put(&reply_frame, &mut out);
                match timeout(WRITE_TIMEOUT, wr.write_all(&out)).await {
                    Ok(Ok(())) => crate::metrics::get().acks_sent.inc(),
                    _ => return,
                }
            }
        }
        partial_since = match (inbox.is_partial(), partial_since) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(Instant::now()),
        };
    }
}

/// Decodes one frame and applies it to the table; the reply to send, if any.
fn handle(frame: &[u8], source: Source, ingest: &Ingest) -> Option<Reply> {
    match decode(frame, ingest.key.as_ref()) {
        Ok(f) => {
            if f.kind == Kind::Beat {
                crate::metrics::get().beats_received.inc();
                ingest.stats.beats_received.fetch_add(1, Ordering::Relaxed);
            }
            let now = ingest.clock.now_ns();
            ingest.with_table(|t| t.ingest(&f, source, now))
        }
        Err(e) => {
            reject(e.reason());
            ingest.stats.frames_rejected.fetch_add(1, Ordering::Relaxed);
            auth_required(frame, &e)
        }
    }
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
