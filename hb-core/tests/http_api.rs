//! The HTTP API (docs/http.md) against a real monitor with real clients: the peer JSON is
//! `peers()`, the event stream delivers every transition in order and resumes after a
//! disconnect without a gap or a duplicate, the token is enforced, and oversized, slow or
//! surplus requests are refused.

mod engine_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine_support::*;
use hb_core::http::{Limits, PeerView, LIMITS};
use hb_core::{Config, EventHub, Monitor, PeerInfo, Role, State};
use serde_json::Value;

/// One request on a fresh connection; (status, body).
fn request(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(format!("{head}\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status: {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, &format!("GET {path} HTTP/1.1"))
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = get(addr, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn http_addr(m: &Monitor) -> SocketAddr {
    m.http_addr().unwrap().expect("serving http")
}

/// What must agree between `peers()` and the JSON: everything but the clocks that move
/// between the two reads (last seen, RTT), which are checked to be close.
fn stable(p: &Value) -> Value {
    let mut p = p.clone();
    let o = p.as_object_mut().unwrap();
    o.remove("last_seen_unix_ms");
    o.remove("rtt_us");
    p
}

#[test]
fn the_peer_json_is_what_peers_returns_filtered_sorted_and_paged() {
    let m = monitor("udp://127.0.0.1:0", &[("http_addr", "127.0.0.1:0")]);
    let ep = endpoint(&m, "udp");
    let clients: Vec<_> = ["c", "a", "b"]
        .iter()
        .map(|id| client(&ep, id, &[("label", &format!("zone={}", if *id == "b" { "eu" } else { "us" }))]))
        .collect();
    wait_until("three alive peers", DEADLINE, || {
        m.peers().unwrap().iter().filter(|p| p.state == State::Alive).count() == 3
    });
    let addr = http_addr(&m);

    let page = get_json(addr, "/v1/peers");
    let mut expected: Vec<PeerInfo> = m.peers().unwrap();
    expected.sort_by(|a, b| (&a.service, &a.id).cmp(&(&b.service, &b.id)));
    let got = page["peers"].as_array().unwrap();
    assert_eq!(
        got.iter().map(stable).collect::<Vec<_>>(),
        expected.iter().map(|p| stable(&p.to_json())).collect::<Vec<_>>()
    );
    for (g, e) in got.iter().zip(&expected) {
        let seen = g["last_seen_unix_ms"].as_u64().unwrap();
        assert!(seen.abs_diff(e.last_seen_unix_ms) < 5_000, "{g} vs {e:?}");
        assert!(g["rtt_us"].is_null() || g["rtt_us"].is_u64(), "{g}");
    }
    assert_eq!((page["total"].as_u64(), page["next_offset"].is_null()), (Some(3), true));

    let page = get_json(addr, "/v1/peers?label=zone%3Dus&state=alive&limit=1");
    assert_eq!(page["peers"][0]["id"], "a");
    assert_eq!((page["total"].as_u64(), page["next_offset"].as_u64()), (Some(2), Some(1)));
    let page = get_json(addr, "/v1/peers?label=zone%3Dus&state=alive&limit=1&offset=1");
    assert_eq!(page["peers"][0]["id"], "c");
    assert!(page["next_offset"].is_null());
    assert_eq!(get_json(addr, "/v1/peers?service=nobody")["total"], 0);

    let one = get_json(addr, "/v1/peers/b");
    assert_eq!((one["id"].as_str(), one["labels"]["zone"].as_str()), (Some("b"), Some("eu")));
    assert_eq!(get(addr, "/v1/peers/zz").0, 404);
    let (status, body) = get(addr, "/v1/peers?state=zombie");
    assert_eq!(status, 400);
    assert!(body.contains(r#"state \"zombie\": expected"#), "{body}");

    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("heartbeater_beats_received_total"), "{body}");
    assert_eq!(get(addr, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(addr, "/readyz"), (200, "ready\n".into()));
    assert_eq!(get(addr, "/nothing").0, 404);
    let (status, page) = get(addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("new EventSource(\"v1/events") && page.contains("v1/peers"), "{page}");
    // Self-contained: nothing is fetched from anywhere but this listener.
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("src="), "{page}");
    assert!(!page.contains("innerHTML"), "peer text goes through textContent only");

    drop(clients);
    m.stop().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "the listener closes with the monitor");
}

/// An SSE reader over HTTP/1.0, so the stream is the raw body (no chunked framing).
struct Stream(BufReader<TcpStream>);

impl Stream {
    fn open(addr: SocketAddr, last_event_id: Option<u64>) -> Stream {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let resume = last_event_id.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
        s.write_all(format!("GET /v1/events HTTP/1.0\r\nAccept: text/event-stream\r\n{resume}\r\n").as_bytes())
            .unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.0 200") || line.starts_with("HTTP/1.1 200"), "{line}");
        while line != "\r\n" {
            line.clear();
            r.read_line(&mut line).unwrap();
        }
        Stream(r)
    }

    /// The next event: (kind, id, data); keep-alive comments are skipped.
    fn next(&mut self) -> (String, Option<u64>, Value) {
        let (mut kind, mut id, mut data) = (String::new(), None, Value::Null);
        loop {
            let mut line = String::new();
            assert!(self.0.read_line(&mut line).unwrap() > 0, "stream ended");
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if !kind.is_empty() {
                    return (kind, id, data);
                }
            } else if let Some(v) = line.strip_prefix("event: ") {
                kind = v.to_string();
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = serde_json::from_str(v).unwrap();
            }
        }
    }

    fn transition(&mut self) -> (u64, Value) {
        let (kind, id, data) = self.next();
        assert_eq!(kind, "transition", "{data}");
        (id.unwrap(), data)
    }
}

#[test]
fn the_event_stream_resumes_after_a_disconnect_without_a_gap_or_a_duplicate() {
    let m = monitor("udp://127.0.0.1:0", &[("http_addr", "127.0.0.1:0")]);
    let (ep, addr) = (endpoint(&m, "udp"), http_addr(&m));
    // Id 0: everything the history holds, from the first event on.
    let mut first = Stream::open(addr, Some(0));
    let a = client(&ep, "a", &[]);
    let b = client(&ep, "b", &[]);
    let mut seen = vec![first.transition(), first.transition()];
    drop(first);
    // While no one listens: a third peer joins and one leaves.
    let c = client(&ep, "c", &[]);
    a.stop(Duration::from_secs(2)).unwrap();
    wait_until("a left and c registered", DEADLINE, || {
        let peers = m.peers().unwrap();
        let state = |id: &str| peers.iter().find(|p| p.id == id).map(|p| p.state);
        state("a") == Some(State::Left) && state("c") == Some(State::Alive)
    });
    let mut second = Stream::open(addr, Some(seen[1].0));
    let is = |e: &Value, peer: &str, to: &str| e["peer"] == peer && e["to"] == to;
    while !(seen.iter().any(|(_, e)| is(e, "c", "alive")) && seen.iter().any(|(_, e)| is(e, "a", "left"))) {
        seen.push(second.transition());
    }
    let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=seen.len() as u64).collect::<Vec<_>>());
    // The same transitions, in the same order, as the monitor's own event stream.
    let mut own = Vec::new();
    while let Ok(Some(ev)) = m.events().next_event(Some(Duration::ZERO)) {
        own.push(ev.to_json());
    }
    assert_eq!(seen.iter().map(|(_, ev)| ev.clone()).collect::<Vec<_>>(), own[..seen.len()].to_vec());

    // An id this monitor never gave out (an earlier run's) is a gap: read /v1/peers again.
    let mut stale = Stream::open(addr, Some(1_000_000));
    let (kind, id, data) = stale.next();
    assert_eq!((kind.as_str(), id), ("gap", None), "{data}");
    assert_eq!(data["next"], 1);
    assert_eq!(stale.transition().0, 1);
    let (status, body) = request(addr, "GET /v1/events?last_event_id=soon HTTP/1.1");
    assert_eq!(status, 400);
    assert!(body.contains(r#"last_event_id \"soon\""#), "{body}");
    drop((b, c));
}

/// A view with no peers, served with `limits`, for the tests of the listener itself.
struct Empty;

impl PeerView for Empty {
    fn peers(&self) -> hb_core::Result<Vec<PeerInfo>> {
        Ok(Vec::new())
    }
    fn ready(&self) -> Result<(), String> {
        Err("still listing".into())
    }
}

fn serve_empty(extra: &[(&str, &str)], limits: Limits) -> hb_core::http::HttpServer {
    let mut pairs = vec![("listen", "udp://127.0.0.1:0"), ("http_addr", "127.0.0.1:0")];
    pairs.extend_from_slice(extra);
    let config = Config::resolve(&options(&pairs), Role::Monitor).unwrap();
    let hub = EventHub::new(8);
    hb_core::http::serve_view_with(&config, Arc::new(Empty), &hub, limits).unwrap().unwrap()
}

#[test]
fn the_token_is_enforced_except_for_the_probes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cret-token-0123456789\n").unwrap();
    let server = serve_empty(&[("http_token_file", file.to_str().unwrap())], LIMITS);
    let addr = server.local_addr();
    for path in ["/v1/peers", "/v1/peers/x", "/v1/events", "/metrics"] {
        assert_eq!(get(addr, path).0, 401, "{path}");
        assert_eq!(request(addr, &format!("GET {path} HTTP/1.1\r\nAuthorization: Bearer wrong")).0, 401, "{path}");
    }
    let (status, body) = request(addr, "GET /v1/peers HTTP/1.1\r\nAuthorization: Bearer s3cret-token-0123456789");
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["total"].as_u64()), (200, Some(0)));
    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(get(addr, "/readyz"), (503, "not ready: still listing\n".into()));

    std::fs::write(&file, "short\n").unwrap();
    let err = Config::resolve(
        &options(&[("listen", "udp://127.0.0.1:0"), ("http_token_file", file.to_str().unwrap())]),
        Role::Monitor,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("http_token_file "), "{err}");
}

#[test]
fn oversized_slow_and_surplus_requests_are_refused() {
    let limits = Limits { header_read_timeout: Duration::from_millis(300), max_connections: 4, ..LIMITS };
    let server = serve_empty(&[], limits);
    let addr = server.local_addr();
    let big = "x".repeat(LIMITS.max_header_bytes + 1);
    assert_eq!(request(addr, &format!("GET /v1/peers HTTP/1.1\r\nX-Big: {big}")).0, 431);
    let many: String = (0..LIMITS.max_headers + 1).map(|i| format!("\r\nX-{i}: y")).collect();
    assert_eq!(request(addr, &format!("GET /v1/peers HTTP/1.1{many}")).0, 431);
    assert_eq!(request(addr, "GET /v1/peers HTTP/1.1\r\nContent-Length: 5000").0, 413);

    // Slow: half a request line, then nothing. Closed after the header timeout, while
    // whole requests are answered meanwhile.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /v1/pe").unwrap();
    slow.set_read_timeout(Some(DEADLINE)).unwrap();
    let t0 = Instant::now();
    assert_eq!(get(addr, "/healthz").0, 200);
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(t0.elapsed() < Duration::from_secs(5), "the slow request was not cut off: {:?}", t0.elapsed());
    assert!(rest.is_empty() || String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408"), "{rest:?}");

    // Surplus: with every connection held, one more is closed at once; after one goes, a
    // new one is served.
    let mut held: Vec<TcpStream> = (0..limits.max_connections).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for s in &mut held {
        s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut line = [0u8; 12];
        s.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"HTTP/1.1 200");
    }
    let mut extra = TcpStream::connect(addr).unwrap();
    extra.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut got = Vec::new();
    let _ = extra.read_to_end(&mut got);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    drop(held.pop());
    wait_until("a connection slot to free", DEADLINE, || {
        TcpStream::connect(addr).is_ok_and(|mut s| {
            let _ = s.set_read_timeout(Some(DEADLINE));
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            text.starts_with("HTTP/1.1 200")
        })
    });
}
