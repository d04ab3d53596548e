//! Batched UDP receive and send (`recvmmsg`/`sendmmsg`): one system call for up to
//! [`BATCH`] datagrams, the monitor's ingest fast path. Linux only; `udp.rs` has the
//! portable loop used elsewhere. The only `unsafe` code of the monitor lives here.

use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::{io, os::fd::RawFd};

#[cfg(target_os = "linux")]
use socket2::SockAddr;

use crate::proto::MAX_FRAME_LEN;

pub const BATCH: usize = 64;
/// One byte more than any valid frame, so an oversized datagram shows as too long
/// instead of being silently truncated to a valid length.
pub const BUF_LEN: usize = MAX_FRAME_LEN + 1;

/// Receive buffers, reused for every batch.
pub struct RecvBatch {
    bufs: Box<[[u8; BUF_LEN]; BATCH]>,
    lens: [usize; BATCH],
    addrs: [Option<SocketAddr>; BATCH],
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        RecvBatch { bufs: Box::new([[0; BUF_LEN]; BATCH]), lens: [0; BATCH], addrs: [None; BATCH] }
    }

    /// Datagram `i` of the last batch and its sender (None for a non-IP sender).
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        (&self.bufs[i][..self.lens[i]], self.addrs[i])
    }

    #[cfg_attr(target_os = "linux", allow(dead_code))]
    /// Slot `i` for a receive loop that fills one datagram at a time.
    pub fn slot_mut(&mut self, i: usize) -> (&mut [u8; BUF_LEN], &mut usize, &mut Option<SocketAddr>) {
        (&mut self.bufs[i], &mut self.lens[i], &mut self.addrs[i])
    }
}

/// Sets the receive buffer with SO_RCVBUFFORCE, which may exceed net.core.rmem_max but
/// needs CAP_NET_ADMIN. False if refused (the caller falls back to SO_RCVBUF).
#[cfg(target_os = "linux")]
pub fn force_recv_buffer(sock: &socket2::Socket, bytes: usize) -> bool {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a live socket fd and a pointer to one c_int whose size is passed along; the
    // kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
pub fn force_recv_buffer(_sock: &socket2::Socket, _bytes: usize) -> bool {
    false
}

/// Receives up to [`BATCH`] datagrams without blocking; `Ok(0)` never happens (would-block
/// is an error, as for any non-blocking read).
#[cfg(target_os = "linux")]
pub fn recv_batch(fd: RawFd, batch: &mut RecvBatch) -> io::Result<usize> {
    // SAFETY: all-zero bytes are valid values for these plain C structs.
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..BATCH {
        iovecs[i] = libc::iovec { iov_base: batch.bufs[i].as_mut_ptr().cast(), iov_len: BUF_LEN };
        let hdr = &mut msgs[i].msg_hdr;
        hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
        hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        hdr.msg_iov = &mut iovecs[i];
        hdr.msg_iovlen = 1;
    }
    // SAFETY: every msghdr points at a live iovec, which points at BUF_LEN writable bytes
    // of `batch`, and at a sockaddr_storage whose size is given in msg_namelen; all of
    // them outlive the call, which writes only within those bounds. `vlen` is the array
    // length. A null timeout with MSG_DONTWAIT returns at once.
    let n = unsafe {
        libc::recvmmsg(fd, msgs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut())
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for i in 0..n {
        // msg_len is what was copied, at most BUF_LEN (MSG_TRUNC marks the rest as cut).
        let truncated = msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        batch.lens[i] = if truncated { BUF_LEN } else { (msgs[i].msg_len as usize).min(BUF_LEN) };
        let len = msgs[i].msg_hdr.msg_namelen;
        // SAFETY: the kernel filled names[i] with an address of `len` bytes (at most the
        // storage size), which is what SockAddr::new requires.
        let addr = unsafe { SockAddr::new(names[i], len) };
        batch.addrs[i] = addr.as_socket();
    }
    Ok(n)
}

/// Sends each `(to, range)` datagram of `data`, batched. Returns how many were sent before
/// the socket would block or failed (UDP replies are best effort).
#[cfg(target_os = "linux")]
pub fn send_batch(fd: RawFd, data: &[u8], msgs_out: &[(SocketAddr, std::ops::Range<usize>)]) -> usize {
    let mut sent = 0;
    for chunk in msgs_out.chunks(BATCH) {
        let names: Vec<SockAddr> = chunk.iter().map(|(a, _)| SockAddr::from(*a)).collect();
        // SAFETY: all-zero bytes are valid values for these plain C structs.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (_, range)) in chunk.iter().enumerate() {
            let bytes = &data[range.clone()];
            // The kernel only reads through iov_base for a send; the cast to *mut is what
            // the C struct's type demands.
            iovecs[i] = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = names[i].as_ptr() as *mut libc::c_void;
            hdr.msg_namelen = names[i].len();
            hdr.msg_iov = &mut iovecs[i];
            hdr.msg_iovlen = 1;
        }
        let mut done = 0;
        while done < chunk.len() {
            // SAFETY: the first chunk.len() msghdrs point at live iovecs over `data` and at
            // live socket addresses of the stated length; nothing is written through them.
            let n = unsafe {
                libc::sendmmsg(fd, msgs[done..].as_mut_ptr(), (chunk.len() - done) as libc::c_uint, libc::MSG_DONTWAIT)
            };
            if n <= 0 {
                // Would block or an error for the first message: drop it and move on, so a
                // single unreachable address cannot stall the others.
                if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
                    return sent;
                }
                done += 1;
                continue;
            }
            done += n as usize;
            sent += n as usize;
        }
    }
    sent
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn receives_and_sends_batches() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..10u8 {
            tx.send_to(&[i; 3], rx.local_addr().unwrap()).unwrap();
        }
        tx.send_to(&[9; 600], rx.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 11 && std::time::Instant::now() < deadline {
            match recv_batch(rx.as_raw_fd(), &mut batch) {
                Ok(n) => (0..n).for_each(|i| got.push((batch.get(i).0.to_vec(), batch.get(i).1))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got.len(), 11);
        assert_eq!(got[3], (vec![3; 3], Some(tx.local_addr().unwrap())));
        assert_eq!(got[10].0.len(), BUF_LEN, "oversized datagram shows as too long");

        let data = b"aabbb".to_vec();
        let to = tx.local_addr().unwrap();
        assert_eq!(send_batch(rx.as_raw_fd(), &data, &[(to, 0..2), (to, 2..5)]), 2);
        let mut buf = [0u8; 16];
        tx.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        assert_eq!(tx.recv(&mut buf).unwrap(), 2);
        assert_eq!(tx.recv(&mut buf).unwrap(), 3);
    }
}
