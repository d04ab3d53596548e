//! A TCP client stopped while it is reconnecting still says goodbye: the path to the
//! monitor breaks (a proxy drops every connection), the client backs off, the path comes
//! back, and `stop` in the middle of the backoff must end with `left`, not `dead` later.

mod engine_support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_support::*;
use hb_core::State;

/// Forwards TCP connections to `target` while open; while closed, drops every new
/// connection at once (the client's connect succeeds, its session breaks).
struct Proxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let accepted = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(Mutex::new(Vec::new()));
        let (o, a, l) = (Arc::clone(&open), Arc::clone(&accepted), Arc::clone(&live));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                if !o.load(Ordering::SeqCst) {
                    drop(conn);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(target) else { continue };
                let mut live = l.lock().unwrap();
                live.push(conn.try_clone().unwrap());
                live.push(upstream.try_clone().unwrap());
                pipe(conn.try_clone().unwrap(), upstream.try_clone().unwrap());
                pipe(upstream, conn);
            }
        });
        Proxy { addr, open, accepted, live }
    }

    /// Breaks every forwarded connection and refuses new ones until `open`.
    fn break_path(&self) {
        self.open.store(false, Ordering::SeqCst);
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

#[test]
fn tcp_client_stopped_during_backoff_still_leaves() {
    let m = monitor("tcp://127.0.0.1:0", &[]);
    let proxy = Proxy::start(m.local_addr("tcp").unwrap());
    let c = client(&format!("tcp://{}", proxy.addr), "backing-off", &[]);
    wait_transition(&m, "backing-off", State::Alive, DEADLINE);
    let before = proxy.accepted.load(Ordering::SeqCst);
    proxy.break_path();
    // Two refused reconnects: the client is in its reconnect loop, with a growing backoff.
    wait_until("the client retries", DEADLINE, || proxy.accepted.load(Ordering::SeqCst) >= before + 2);
    proxy.open.store(true, Ordering::SeqCst);
    c.stop(Duration::from_secs(2)).unwrap();
    let ev = wait_transition(&m, "backing-off", State::Left, Duration::from_secs(2));
    assert_eq!(ev.reason, hb_core::Reason::Left);
    m.stop().unwrap();
}
