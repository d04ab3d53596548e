//! The TCP listener: frames prefixed by a big-endian u16 length, many concurrent
//! connections, each with a small bounded buffer and an idle timeout.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::proto::{decode, DecodeError, Flags, Kind, NackReason, MAX_FRAME_LEN};

use super::reply::ReplyEncoder;
use super::rejects::reject;
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
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(1024, rd);
    let mut frame = [0u8; MAX_FRAME_LEN];
    let mut encoder = ReplyEncoder::new(&ingest.monitor_id, ingest.key.clone(), ingest.max_interval_ms);
    let mut out = Vec::with_capacity(128);
    let source = Source { addr: from, transport: Transport::Tcp };
    loop {
        let mut len = [0u8; 2];
        match timeout(ingest.tcp_idle, rd.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            // Closed, reset, or idle for too long.
            _ => return,
        }
        let len = usize::from(u16::from_be_bytes(len));
        if len == 0 || len > MAX_FRAME_LEN {
            // The stream cannot be resynchronised after a bad length.
            reject(if len == 0 { "too_short" } else { "too_long" });
            ingest.stats.frames_rejected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match timeout(FRAME_TIMEOUT, rd.read_exact(&mut frame[..len])).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let reply = match decode(&frame[..len], ingest.key.as_ref()) {
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
                auth_required(&frame[..len], &e)
            }
        };
        if let Some(reply) = reply {
            out.clear();
            out.extend_from_slice(&[0, 0]);
            if encoder.encode(&reply, &mut out) {
                let n = (out.len() - 2) as u16;
                out[..2].copy_from_slice(&n.to_be_bytes());
                match timeout(WRITE_TIMEOUT, wr.write_all(&out)).await {
                    Ok(Ok(())) => crate::metrics::get().acks_sent.inc(),
                    _ => return,
                }
            }
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
    (f.kind == Kind::Beat && f.flags.contains(Flags::ACK_REQ))
        .then_some(Reply::Nack { seq: f.seq, ts_ns: f.ts_ns, reason: NackReason::AuthRequired })
}
