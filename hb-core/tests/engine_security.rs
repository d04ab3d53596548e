//! Auth, hostile input, the peer cap, and event delivery guarantees with a real monitor.

mod engine_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine_support::*;
use hb_core::proto::{encode, AuthKey, Flags, Frame};
use hb_core::{Monitor, State};
use parking_lot::Mutex;

const KEY: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn wrong_or_missing_key_is_rejected_and_counted() {
    let m = monitor("udp://127.0.0.1:0,tcp://127.0.0.1:0", &[("auth_key", KEY)]);
    let (bad, untagged) = (rejected("bad_tag"), rejected("untagged"));
    let _wrong = client(&endpoint(&m, "udp"), "wrong-key", &[("auth_key", "another-key-entirely-000")]);
    let _none = client(&endpoint(&m, "tcp"), "no-key", &[]);
    wait_until("bad tags counted", DEADLINE, || rejected("bad_tag") >= bad + 3);
    wait_until("untagged counted", DEADLINE, || rejected("untagged") >= untagged + 3);
    assert!(m.peers().unwrap().is_empty());
    assert!(m.events().next_event(Some(Duration::ZERO)).unwrap().is_none());
    assert!(m.stats().frames_rejected >= 6);

    // The right key gets through; the client verifies the tagged ACKs.
    let good = client(&endpoint(&m, "udp"), "right-key", &[("auth_key", KEY)]);
    wait_transition(&m, "right-key", State::Alive, DEADLINE);
    wait_until("client healthy", DEADLINE, || good.state().unwrap() == hb_core::State::Healthy);
}

#[test]
fn replayed_frames_are_dropped_with_a_key() {
    let m = monitor("udp://127.0.0.1:0", &[("auth_key", KEY)]);
    let key = AuthKey::new(KEY.as_bytes()).unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = m.local_addr("udp").unwrap();
    let mut f = Frame::beat("replayed");
    f.seq = 10;
    f.incarnation = 1;
    f.interval_ms = 1000;
    f.flags = Flags(Flags::ACK_REQ);
    let mut bytes = Vec::new();
    encode(&f, Some(&key), &mut bytes).unwrap();
    let before = rejected("replay");
    sock.send_to(&bytes, to).unwrap();
    wait_transition(&m, "replayed", State::Alive, DEADLINE);
    for _ in 0..3 {
        sock.send_to(&bytes, to).unwrap();
    }
    wait_until("replays counted", DEADLINE, || rejected("replay") >= before + 3);
}

#[test]
fn hostile_datagrams_are_dropped_and_counted_while_peers_stay_alive() {
    let m = monitor("udp://127.0.0.1:0,tcp://127.0.0.1:0", &[]);
    let c = client(&endpoint(&m, "udp"), "steady", &[]);
    wait_transition(&m, "steady", State::Alive, DEADLINE);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = m.local_addr("udp").unwrap();
    let before = m.stats().frames_rejected;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..5_000usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x as usize) % 700;
        let mut d: Vec<u8> = (0..len).map(|j| (x >> (j % 56)) as u8).collect();
        if i % 2 == 0 && d.len() > 4 {
            // Plausible start, garbage after: exercises the deeper decode paths.
            d[..4].copy_from_slice(&[0x48, 0x42, 1, 1]);
        }
        let _ = sock.send_to(&d, to);
    }
    // Garbage on TCP too: a bad length closes that connection, nothing else.
    let mut t = std::net::TcpStream::connect(m.local_addr("tcp").unwrap()).unwrap();
    std::io::Write::write_all(&mut t, &[0xff, 0xff, 1, 2, 3]).unwrap();
    wait_until("garbage counted", DEADLINE, || m.stats().frames_rejected >= before + 1_000);
    let beats = m.stats().beats_received;
    wait_until("still receiving beats", DEADLINE, || m.stats().beats_received >= beats + 3);
    assert_eq!(m.peers().unwrap().iter().find(|p| p.id == "steady").unwrap().state, State::Alive);
    assert_eq!(c.state().unwrap(), State::Healthy);
    assert!(m.peers().unwrap().len() <= 2, "garbage must not create many peers: {}", m.peers().unwrap().len());
}

#[test]
fn peers_over_the_cap_are_refused() {
    let m = monitor("udp://127.0.0.1:0", &[("max_peers", "1")]);
    let refused = hb_core::metrics::get().peers_refused.get();
    let _a = client(&endpoint(&m, "udp"), "first", &[]);
    wait_transition(&m, "first", State::Alive, DEADLINE);
    // Heard twice: a peer heard once would be evicted for the newcomer.
    wait_until("first confirmed", DEADLINE, || m.stats().beats_received >= 2);
    let b = client(&endpoint(&m, "udp"), "second", &[]);
    wait_until("refusal counted", DEADLINE, || hb_core::metrics::get().peers_refused.get() >= refused + 2);
    assert_eq!(m.peers().unwrap().len(), 1);
    assert_ne!(b.state().unwrap(), State::Healthy);
    assert!(m.stats().peers_refused >= 2);
}

#[test]
fn events_arrive_in_order_and_no_callback_runs_after_stop() {
    let m = Monitor::new(&options(&[("listen", "udp://127.0.0.1:0")])).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stopped = Arc::new(AtomicBool::new(false));
    let late = Arc::new(AtomicUsize::new(0));
    let (s, st, l) = (seen.clone(), stopped.clone(), late.clone());
    m.events()
        .set_callback(Box::new(move |e| {
            if st.load(Ordering::SeqCst) {
                l.fetch_add(1, Ordering::SeqCst);
            }
            s.lock().push((e.peer.clone(), e.to));
        }))
        .unwrap();
    m.start().unwrap();
    let ep = endpoint(&m, "udp");
    let a = client(&ep, "order-a", &[]);
    wait_until("a alive", DEADLINE, || seen.lock().contains(&("order-a".into(), State::Alive)));
    a.stop(Duration::from_secs(1)).unwrap();
    wait_until("a left", DEADLINE, || seen.lock().contains(&("order-a".into(), State::Left)));
    let b = client(&ep, "order-b", &[]);
    wait_until("b alive", DEADLINE, || seen.lock().contains(&("order-b".into(), State::Alive)));
    let a_events: Vec<State> = seen.lock().iter().filter(|(p, _)| p == "order-a").map(|(_, s)| *s).collect();
    assert_eq!(a_events, vec![State::Alive, State::Left]);

    m.stop().unwrap();
    stopped.store(true, Ordering::SeqCst);
    // b keeps beating into a stopped monitor and then crashes: nothing may reach the callback.
    let sent = hb_core::metrics::get().beats_sent.get();
    wait_until("more beats sent", DEADLINE, || hb_core::metrics::get().beats_sent.get() >= sent + 5);
    b.crash_for_test();
    assert_eq!(late.load(Ordering::SeqCst), 0);
}

#[test]
fn stop_from_inside_the_monitors_own_callback_does_not_deadlock() {
    let m = Arc::new(Monitor::new(&options(&[("listen", "udp://127.0.0.1:0")])).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let (weak, d) = (Arc::downgrade(&m), done.clone());
    m.events()
        .set_callback(Box::new(move |_| {
            if let Some(m) = weak.upgrade() {
                m.stop().unwrap();
                d.store(true, Ordering::SeqCst);
            }
        }))
        .unwrap();
    m.start().unwrap();
    let c = client(&endpoint(&m, "udp"), "stopper", &[]);
    wait_until("callback stopped the monitor", DEADLINE, || done.load(Ordering::SeqCst));
    assert!(matches!(m.local_addrs(), Err(hb_core::Error::Stopped(_))));

    // The same for a client stopping itself from its own callback.
    let c2 = Arc::new(c);
    let done2 = Arc::new(AtomicBool::new(false));
    let (weak, d) = (Arc::downgrade(&c2), done2.clone());
    let m2 = monitor("udp://127.0.0.1:0", &[]);
    let own = Arc::new(client(&endpoint(&m2, "udp"), "self-stopper", &[]));
    let weak_own = Arc::downgrade(&own);
    own.events()
        .set_callback(Box::new(move |e| {
            if e.to == State::Healthy {
                if let Some(c) = weak_own.upgrade() {
                    c.stop(Duration::from_secs(1)).unwrap();
                    d.store(true, Ordering::SeqCst);
                }
            }
        }))
        .unwrap();
    let _ = weak;
    wait_until("client stopped itself", DEADLINE, || done2.load(Ordering::SeqCst));
    wait_transition(&m2, "self-stopper", State::Left, DEADLINE);
}
