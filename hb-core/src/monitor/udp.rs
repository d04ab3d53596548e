//! The UDP listener: receive a batch, decode it outside the lock, apply it to the table
//! under one lock, then send the replies in one batch.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::proto::{decode, DecodeError, FrameRef, Kind};

use super::mmsg::{RecvBatch, BATCH};
use super::rejects::reject;
use super::reply::{NackBudget, ReplyEncoder};
use super::table::{Reply, Source, Transport};
use super::Ingest;

pub(super) async fn run(sock: UdpSocket, ingest: Arc<Ingest>) {
    let mut batch = RecvBatch::new();
    let mut encoder = ReplyEncoder::new(&ingest.monitor_id, ingest.key.clone(), ingest.max_interval_ms);
    let mut out = Vec::with_capacity(BATCH * 64);
    let mut replies: Vec<(SocketAddr, Range<usize>)> = Vec::with_capacity(BATCH);
    let mut spare: Vec<Received<'static>> = Vec::with_capacity(BATCH);
    let mut load = LoadMeter::new();
    let mut nacks = NackBudget::new();
    loop {
        if sock.readable().await.is_err() {
            continue;
        }
        // Drain: full batches back to back until the socket runs dry (bounded, so other
        // tasks on the runtime get their turn).
        let mut received = 0;
        for _ in 0..MAX_BATCHES_PER_WAKE {
            let n = match sock.try_io(Interest::READABLE, || receive(&sock, &mut batch)) {
                Ok(n) => n,
                // WouldBlock: drained (or spurious readiness). Anything else (e.g. ICMP
                // errors reported on the socket) concerns one datagram, not the listener.
                Err(_) => break,
            };
            received += n;
            let mut frames = recycle(std::mem::take(&mut spare));
            let mut replier = Replier { encoder: &mut encoder, nacks: &mut nacks, out: &mut out, to: &mut replies };
            handle_batch(&sock, &ingest, &batch, n, &mut replier, &mut frames);
            spare = recycle(frames);
            if n < BATCH {
                break;
            }
        }
        if load.busy_after(received) {
            // Under load, let datagrams gather so the next receive fills a whole batch,
            // instead of waking (and sending ACKs) once or twice per datagram.
            tokio::time::sleep(COALESCE).await;
        } else if received > 0 {
            tokio::task::yield_now().await;
        }
    }
}

/// Longest run of batches handled per wake-up before yielding to other tasks.
const MAX_BATCHES_PER_WAKE: usize = 32;
/// How long a busy listener lets datagrams gather between drains. At the busy threshold
/// that is a few datagrams; at 300k/s a few hundred, well within the receive buffer. It
/// adds at most about this much to ACK latency, and only under load.
const COALESCE: Duration = Duration::from_millis(1);
/// Arrival rate (datagrams/s) from which the listener coalesces.
const BUSY_RATE: u64 = 20_000;

/// Measures the arrival rate over short windows of real time: busy or not.
struct LoadMeter {
    window_start: Instant,
    count: u64,
    busy: bool,
}

impl LoadMeter {
    const WINDOW: Duration = Duration::from_millis(20);

    fn new() -> LoadMeter {
        LoadMeter { window_start: Instant::now(), count: 0, busy: false }
    }

    /// Adds `received` datagrams; true while the last whole window's rate was busy.
    fn busy_after(&mut self, received: usize) -> bool {
        self.count += received as u64;
        let elapsed = self.window_start.elapsed();
        if elapsed >= Self::WINDOW {
            self.busy = self.count * 1_000_000 >= BUSY_RATE * elapsed.as_micros() as u64;
            (self.window_start, self.count) = (Instant::now(), 0);
        }
        self.busy
    }
}

/// A decoded datagram, where it came from and its size (a reply to it may not be larger).
type Received<'b> = (FrameRef<'b>, SocketAddr, usize);

/// The decoded frames of one batch borrow its buffers, so the Vec holding them cannot
/// outlive it; this hands its (emptied) allocation on to the next batch's lifetime.
/// No value crosses lifetimes, and std collects in place since the layout is the same.
fn recycle<'b>(mut frames: Vec<Received<'_>>) -> Vec<Received<'b>> {
    frames.clear();
    frames.into_iter().map(|_| unreachable!("emptied above")).collect()
}

/// Where one batch's replies are encoded, and what bounds them.
struct Replier<'a> {
    encoder: &'a mut ReplyEncoder,
    nacks: &'a mut NackBudget,
    out: &'a mut Vec<u8>,
    to: &'a mut Vec<(SocketAddr, Range<usize>)>,
}

impl Replier<'_> {
    /// Queues `reply` to a datagram of `request_len` bytes from `from`. `proved`: the frame
    /// carried a valid tag; any other sender gets replies no larger than its request, and
    /// NACKs only within the budget (see `reply`).
    fn queue(&mut self, reply: &Reply, from: SocketAddr, request_len: usize, proved: bool) {
        let start = self.out.len();
        let queued = if proved {
            self.encoder.encode(reply, self.out)
        } else if matches!(reply, Reply::Nack { .. }) && !self.nacks.take() {
            false
        } else {
            self.encoder.encode_capped(reply, request_len, self.out)
        };
        if queued {
            self.to.push((from, start..self.out.len()));
        }
    }
}

/// Decodes a received batch outside the lock, applies it to the table under one lock,
/// then sends the replies in one batch. `frames` is empty scratch space.
fn handle_batch<'b>(
    sock: &UdpSocket,
    ingest: &Ingest,
    batch: &'b RecvBatch,
    n: usize,
    replier: &mut Replier<'_>,
    frames: &mut Vec<Received<'b>>,
) {
    replier.out.clear();
    replier.to.clear();
    for i in 0..n {
        let (bytes, from) = batch.get(i);
        let Some(from) = from else { continue };
        match decode(bytes, ingest.key.as_ref()) {
            Ok(f) => frames.push((f, from, bytes.len())),
            Err(e) => {
                reject(e.reason());
                if e == DecodeError::Untagged {
                    // One small reply per beat, like an ACK, so the client's health shows why.
                    if let Some(reply) = super::tcp::auth_required(bytes, &e) {
                        replier.queue(&reply, from, bytes.len(), false);
                    }
                }
            }
        }
    }
    if n > frames.len() {
        ingest.stats.frames_rejected.fetch_add((n - frames.len()) as u64, Ordering::Relaxed);
    }
    if frames.is_empty() {
        if !replier.to.is_empty() {
            send(sock, replier.out, replier.to);
        }
        return;
    }
    let now = ingest.clock.now_ns();
    let mut beats = 0u64;
    // With a key every frame that got here carried a valid tag.
    let proved = ingest.key.is_some();
    ingest.with_table(|table| {
        for &(ref f, from, len) in frames.iter() {
            beats += u64::from(f.kind == Kind::Beat);
            if let Some(reply) = table.ingest(f, Source { addr: from, transport: Transport::Udp }, now) {
                replier.queue(&reply, from, len, proved);
            }
        }
    });
    crate::metrics::get().beats_received.inc_by(beats);
    ingest.stats.beats_received.fetch_add(beats, Ordering::Relaxed);
    if !replier.to.is_empty() {
        let sent = send(sock, replier.out, replier.to);
        crate::metrics::get().acks_sent.inc_by(sent as u64);
    }
}

#[cfg(target_os = "linux")]
fn receive(sock: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    super::mmsg::recv_batch(sock.as_raw_fd(), batch)
}

/// Portable fallback: one datagram per call, up to a batch.
#[cfg(not(target_os = "linux"))]
fn receive(sock: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
    let mut n = 0;
    while n < BATCH {
        let (buf, len, addr) = batch.slot_mut(n);
        match sock.try_recv_from(buf) {
            Ok((got, from)) => {
                (*len, *addr) = (got, Some(from));
                n += 1;
            }
            Err(e) if n == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(n)
}

#[cfg(target_os = "linux")]
fn send(sock: &UdpSocket, data: &[u8], replies: &[(SocketAddr, Range<usize>)]) -> usize {
    use std::os::fd::AsRawFd;
    super::mmsg::send_batch(sock.as_raw_fd(), data, replies)
}

#[cfg(not(target_os = "linux"))]
fn send(sock: &UdpSocket, data: &[u8], replies: &[(SocketAddr, Range<usize>)]) -> usize {
    replies.iter().filter(|(to, r)| sock.try_send_to(&data[r.clone()], *to).is_ok()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycling_keeps_the_allocation() {
        let v: Vec<Received<'static>> = Vec::with_capacity(BATCH);
        let (ptr, cap) = (v.as_ptr() as usize, v.capacity());
        let mut bytes = Vec::new();
        crate::proto::encode(&crate::proto::Frame::beat("x"), None, &mut bytes).unwrap();
        let mut w = recycle(v);
        w.push((decode(&bytes, None).unwrap(), "127.0.0.1:1".parse().unwrap(), bytes.len()));
        let w: Vec<Received<'static>> = recycle(w);
        assert_eq!((w.as_ptr() as usize, w.capacity()), (ptr, cap));
        assert!(w.is_empty());
    }
}
