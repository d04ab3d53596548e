//! The RTT a peer measures to its monitor shows in that monitor's `peers()` once a few
//! beats were acknowledged, over UDP and TCP, and per endpoint when a client has several.

mod engine_support;

use engine_support::*;
use hb_core::Monitor;

fn rtt_us(m: &Monitor, id: &str) -> Option<u32> {
    m.peers().unwrap().into_iter().find(|p| p.id == id).and_then(|p| p.rtt_us)
}

fn rtt_becomes_known(scheme: &str) {
    let m = monitor(&format!("{scheme}://127.0.0.1:0"), &[]);
    let id = format!("rtt-{scheme}");
    let c = client(&endpoint(&m, scheme), &id, &[]);
    wait_until("peer listed", DEADLINE, || m.peers().unwrap().iter().any(|p| p.id == id));
    wait_until("rtt reported", DEADLINE, || rtt_us(&m, &id).is_some());
    let rtt = rtt_us(&m, &id).unwrap();
    // Loopback: well under a second (and the figure is µs, not ns or ms).
    assert!(rtt < 1_000_000, "implausible loopback rtt {rtt} µs");
    c.stop(std::time::Duration::from_secs(2)).unwrap();
    m.stop().unwrap();
}

#[test]
fn udp_peer_rtt_becomes_known_after_acked_beats() {
    rtt_becomes_known("udp");
}

#[test]
fn tcp_peer_rtt_becomes_known_after_acked_beats() {
    rtt_becomes_known("tcp");
}

#[test]
fn each_monitor_sees_the_rtt_of_its_own_path() {
    let a = monitor("udp://127.0.0.1:0", &[]);
    let b = monitor("tcp://127.0.0.1:0", &[]);
    let both = format!("{},{}", endpoint(&a, "udp"), endpoint(&b, "tcp"));
    let c = client(&both, "rtt-two-paths", &[]);
    for m in [&a, &b] {
        wait_until("rtt reported", DEADLINE, || rtt_us(m, "rtt-two-paths").is_some());
    }
    c.stop(std::time::Duration::from_secs(2)).unwrap();
    a.stop().unwrap();
    b.stop().unwrap();
}
