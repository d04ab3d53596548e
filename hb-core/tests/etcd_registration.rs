//! etcd registration against a real etcd (tests/harness/etcd.py): key, value and lease,
//! graceful stop, re-registration after a wipe, recovery after a restart, one shared
//! keepalive stream, and precise errors.

mod etcd_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_support::{options, start_client, token, wait_event, wait_for, Etcd};
use hb_core::registry::RegistrationValue;
use hb_core::Client;
use hb_core::{Error, Reason, State};

fn member(etcd: &Etcd, id: &str, ttl: &str) -> Client {
    start_client(&options(&[
        ("endpoint", &etcd.url("/services")),
        ("service", "svc"),
        ("instance_id", id),
        ("ttl", ttl),
        ("labels", "zone=z1"),
    ]))
    .unwrap_or_else(|e| panic!("start {id}: {e}"))
}

fn value_of(etcd: &Etcd, key: &str) -> Option<RegistrationValue> {
    let kvs = etcd.get_prefix(key);
    kvs.into_iter().find(|(k, _)| k == key).and_then(|(_, v)| serde_json::from_str(&v).ok())
}

fn lease_of(etcd: &Etcd, key: &str) -> i64 {
    let out = etcd.etcdctl(&["get", key, "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["kvs"][0]["lease"].as_i64().unwrap_or(0)
}

#[test]
fn registers_under_a_lease_then_leaves_gracefully() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    let m = member(&etcd, "a", "3s");
    let v = value_of(&etcd, "/services/svc/a").expect("key registered");
    assert_eq!((v.id.as_str(), v.service.as_str(), v.state.as_str(), v.epoch), ("a", "svc", "up", 1));
    assert_eq!(v.labels["zone"], "z1");
    assert_eq!(v.incarnation, m.incarnation().unwrap());
    let (lease, epoch) = token(&m);
    assert_eq!(epoch, 1);
    assert_eq!(lease_of(&etcd, "/services/svc/a"), lease);
    assert_ne!(lease, 0);
    assert_eq!(m.state().unwrap(), State::Healthy);
    m.check().unwrap();
    assert!(m.remaining().unwrap() > Duration::from_secs(2) && m.remaining().unwrap() <= Duration::from_secs(3));

    // Keepalives keep it valid well past one TTL.
    std::thread::sleep(Duration::from_millis(4000));
    m.check().unwrap();
    assert_eq!(token(&m), (lease, 1));

    let t0 = Instant::now();
    m.stop(Duration::from_secs(2)).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(etcd.keys("/services/").is_empty(), "key removed at once by the revoke");
    assert_eq!(m.state().unwrap(), State::Stopped);
    assert!(matches!(m.check(), Err(Error::Stopped(_))));
    let ev = wait_event(m.events(), Duration::from_secs(1), "stopped", |e| e.to == State::Stopped).clone();
    assert_eq!(ev.reason, Reason::Deregistered);
}

#[test]
fn wiped_etcd_means_a_new_registration_with_a_higher_epoch() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let mut etcd = Etcd::start();
    let m = member(&etcd, "w", "2s");
    let before = hb_core::metrics::get().reregistrations.get();
    etcd.restart(true);
    let ev = wait_event(m.events(), Duration::from_secs(10), "reregistered", |e| e.to == State::Reregistered);
    assert_eq!(ev.epoch, 2);
    assert_eq!(ev.reason, Reason::LeaseNotFound);
    let v = wait_for(Duration::from_secs(3), "key back", || value_of(&etcd, "/services/svc/w"));
    assert_eq!(v.epoch, 2);
    assert_eq!(token(&m).1, 2);
    wait_for(Duration::from_secs(3), "healthy", || (m.state().unwrap() == State::Healthy).then_some(()));
    m.check().unwrap();
    assert!(hb_core::metrics::get().reregistrations.get() > before);
    m.stop(Duration::from_secs(2)).unwrap();
}

#[test]
fn a_callback_handling_reregistered_already_sees_the_new_epoch() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let mut etcd = Etcd::start();
    let client = Arc::new(
        Client::new(&options(&[
            ("endpoint", &etcd.url("/services")),
            ("service", "svc"),
            ("instance_id", "cb"),
            ("ttl", "2s"),
        ]))
        .unwrap(),
    );
    // What the callback saw while handling `reregistered`: (event epoch, token epoch, check ok).
    let seen: Arc<Mutex<Option<(u64, u64, bool)>>> = Arc::default();
    let (weak, seen2) = (Arc::downgrade(&client), Arc::clone(&seen));
    client
        .events()
        .set_callback(Box::new(move |ev| {
            if ev.to == State::Reregistered {
                if let Some(c) = weak.upgrade() {
                    *seen2.lock().unwrap() = Some((ev.epoch, token(&c).1, c.check().is_ok()));
                }
            }
        }))
        .unwrap();
    client.start().unwrap();
    etcd.restart(true);
    let seen = wait_for(Duration::from_secs(10), "reregistered in the callback", || *seen.lock().unwrap());
    assert_eq!(seen, (2, 2, true), "(event epoch, fencing token epoch, check ok) inside the callback");
    client.stop(Duration::from_secs(2)).unwrap();
}

#[test]
fn an_unlimited_stop_timeout_leaves_gracefully() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    let m = member(&etcd, "forever", "3s");
    m.stop(Duration::MAX).unwrap();
    assert!(etcd.keys("/services/").is_empty(), "key revoked");
    let ev = wait_event(m.events(), Duration::from_secs(1), "stopped", |e| e.to == State::Stopped);
    assert_eq!(ev.reason, Reason::Deregistered);
}

#[test]
fn restarted_etcd_with_its_data_gets_the_key_back_within_ttl() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let mut etcd = Etcd::start();
    let m = member(&etcd, "r", "3s");
    etcd.kill();
    std::thread::sleep(Duration::from_millis(1500));
    etcd.start_again(false);
    let back = Instant::now();
    wait_for(Duration::from_secs(3), "key present after restart", || value_of(&etcd, "/services/svc/r"));
    // It must stay there: the lease is kept alive (or re-made), not left to expire.
    std::thread::sleep(Duration::from_secs(4));
    assert!(value_of(&etcd, "/services/svc/r").is_some(), "key vanished after etcd came back");
    wait_for(Duration::from_secs(3), "healthy", || (m.state().unwrap() == State::Healthy).then_some(()));
    m.check().unwrap();
    assert!(back.elapsed() < Duration::from_secs(10));
    m.stop(Duration::from_secs(2)).unwrap();
}

#[test]
fn many_members_share_one_keepalive_stream() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    let members: Vec<Client> = (0..40).map(|i| member(&etcd, &format!("m{i}"), "3s")).collect();
    assert_eq!(etcd.keys("/services/").len(), 40);
    let metrics = || {
        let text = http_get(etcd.metrics_port, "/metrics");
        let streams = sample(&text, "grpc_server_started_total", &["grpc_method=\"LeaseKeepAlive\""]);
        let renewed = sample(&text, "etcd_debugging_lease_renewed_total", &[]);
        (streams, renewed)
    };
    let (_, r0) = metrics();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let (streams, r1) = metrics();
    let rate = (r1 - r0) / t0.elapsed().as_secs_f64();
    // 40 leases at TTL/3 = 1 s: 40 keepalives a second.
    assert!((28.0..=52.0).contains(&rate), "keepalive rate {rate}/s, expected about 40/s");
    assert_eq!(streams, 1.0, "all leases must share one LeaseKeepAlive stream");
    for m in &members {
        m.check().unwrap();
    }
    for m in &members {
        m.stop(Duration::from_secs(2)).unwrap();
    }
    assert!(etcd.keys("/services/").is_empty());
}

/// When each lease's last acknowledged keepalive was sent, on the engine's clock: `remaining()`
/// is that send time + TTL − margin − now, so `now + remaining()` moves by exactly the time
/// between two sends.
fn acked_send_ns(m: &Client) -> u64 {
    hb_core::clock::monotonic_ns() + m.remaining().unwrap().as_nanos() as u64
}

#[test]
fn batched_keepalives_renew_every_lease_every_ttl_over_3_on_shared_slots() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    // TTL 3 s: a keepalive every 1 s, on slots 100 ms apart (hb-core/src/registry/schedule.rs).
    let interval_ns = 1_000_000_000u64;
    let tick_ns = 100_000_000u64;
    let members: Vec<Client> = (0..4)
        .map(|i| {
            // Registered 35 ms apart: unbatched, their keepalives would be 35 ms apart too.
            std::thread::sleep(Duration::from_millis(35));
            member(&etcd, &format!("k{i}"), "3s")
        })
        .collect();
    let mut sends: Vec<Vec<u64>> = members.iter().map(|m| vec![acked_send_ns(m)]).collect();
    wait_for(Duration::from_secs(30), "7 keepalives of every lease", || {
        for (m, seen) in members.iter().zip(sends.iter_mut()) {
            let at = acked_send_ns(m);
            if at > seen.last().unwrap() + 1_000_000 {
                seen.push(at);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
        sends.iter().all(|s| s.len() >= 8).then_some(())
    });
    for (i, s) in sends.iter().enumerate() {
        // The first is the grant's put (any time), the second the first keepalive.
        for pair in s[1..].windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap <= interval_ns + tick_ns, "lease k{i}: {gap} ns between two keepalives, {s:?}");
            assert!(gap + tick_ns >= interval_ns, "lease k{i}: {gap} ns between two keepalives, {s:?}");
        }
    }
    // Every lease's keepalives fall on the same 100 ms slots as k0's (within the wake-up
    // delay): the keepalives of one slot leave together.
    let reference = sends[0][1];
    let mut off_slot: Vec<u64> = sends[1..]
        .iter()
        .flat_map(|s| s[1..].iter())
        .map(|&at| {
            let phase = at.abs_diff(reference) % tick_ns;
            phase.min(tick_ns - phase)
        })
        .collect();
    off_slot.sort_unstable();
    let median = off_slot[off_slot.len() / 2];
    assert!(median < 15_000_000, "keepalives {median} ns off the shared slots (median), {off_slot:?}");
    for m in &members {
        m.check().unwrap();
        m.stop(Duration::from_secs(2)).unwrap();
    }
}

#[test]
fn unreachable_etcd_is_a_quick_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t0 = Instant::now();
    let err = start_client(&options(&[
        ("endpoint", &format!("etcd://127.0.0.1:{port}/services")),
        ("service", "svc"),
        ("instance_id", "x"),
        ("ttl", "3s"),
        ("connect_timeout", "1s"),
    ]))
    .err()
    .expect("must fail");
    assert!(t0.elapsed() < Duration::from_secs(3), "took {:?}", t0.elapsed());
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with(&format!("cannot reach etcd at 127.0.0.1:{port}: ")), "{text}");
}

#[test]
fn stop_is_bounded_when_etcd_is_gone() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let mut etcd = Etcd::start();
    let m = member(&etcd, "gone", "3s");
    etcd.kill();
    let t0 = Instant::now();
    m.stop(Duration::from_millis(500)).unwrap();
    assert!(t0.elapsed() < Duration::from_millis(1200), "stop took {:?}", t0.elapsed());
    assert_eq!(m.state().unwrap(), State::Stopped);
    // The `leaving` mark could not be written: watchers will see `expired`, and we say so.
    let ev = wait_event(m.events(), Duration::from_secs(1), "stopped", |e| e.to == State::Stopped).clone();
    assert_eq!(ev.reason, Reason::LeaveFailed);
}

#[test]
fn keepalive_failures_degrade_then_lose_then_recover() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let mut etcd = Etcd::start();
    let m = member(&etcd, "d", "3s");
    etcd.kill();
    wait_event(m.events(), Duration::from_secs(5), "degraded", |e| e.to == State::Degraded);
    let lost = wait_event(m.events(), Duration::from_secs(5), "lost", |e| e.to == State::Lost);
    assert_eq!(lost.reason, Reason::LeaseDeadline);
    assert!(matches!(m.check(), Err(Error::NotHolder(_))));
    etcd.start_again(false);
    wait_event(m.events(), Duration::from_secs(10), "healthy again", |e| e.to == State::Healthy);
    m.check().unwrap();
    m.stop(Duration::from_secs(2)).unwrap();
}

pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// Sum of the samples of `name` whose label text contains every one of `labels`.
pub fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (head, value) = l.rsplit_once(' ')?;
            let (metric, label_text) = head.split_once('{').unwrap_or((head, ""));
            (metric == name && labels.iter().all(|x| label_text.contains(x))).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}
