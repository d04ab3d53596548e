//! A client's own `/healthz` (`health_addr`): 200 with the fencing token while it is
//! acknowledged, 503 once `lost`, and gone after stop. About 2 s (one TTL of 1 s).

mod engine_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use engine_support::*;
use hb_core::{Client, State};
use serde_json::Value;

fn healthz(addr: SocketAddr) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}")))
}

#[test]
fn healthz_passes_while_acknowledged_and_fails_once_lost() {
    let m = monitor("udp://127.0.0.1:0", &[]);
    let c = client(&endpoint(&m, "udp"), "probed", &[("ttl", "1s"), ("health_addr", "127.0.0.1:0")]);
    let addr = c.health_addr().expect("serving /healthz");
    wait_until("healthy", DEADLINE, || c.state().unwrap() == State::Healthy);
    let (status, body) = healthz(addr);
    assert_eq!((status, body["state"].as_str()), (200, Some("healthy")), "{body}");
    assert_eq!(body["fencing_token"], serde_json::json!({ "lease_id": 0, "epoch": 1 }));
    assert!(body["remaining_ms"].as_u64().unwrap() > 0, "{body}");

    // The monitor goes away: no more ACKs, and after the TTL the client is lost.
    m.stop().unwrap();
    wait_until("lost", DEADLINE, || c.state().unwrap() == State::Lost);
    let (status, body) = healthz(addr);
    assert_eq!((status, body["state"].as_str(), body["remaining_ms"].as_u64()), (503, Some("lost"), Some(0)), "{body}");

    c.stop(std::time::Duration::from_secs(1)).unwrap();
    assert_eq!(c.health_addr(), None);
    assert!(TcpStream::connect(addr).is_err(), "the listener closes with the client");
}

#[test]
fn a_health_addr_in_use_fails_the_start_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let c = Client::new(&options(&[("endpoint", "udp://127.0.0.1:9"), ("health_addr", &addr)])).unwrap();
    let err = c.start().unwrap_err();
    assert!(err.to_string().starts_with(&format!("listen for health_addr on {addr}")), "{err}");
    assert_eq!(c.health_addr(), None);
}
