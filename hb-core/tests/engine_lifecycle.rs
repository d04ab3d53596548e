//! A real Monitor and real Clients over loopback UDP and TCP: registration, graceful
//! leave, crash detection, restart, reconnect.

mod engine_support;

use std::time::{Duration, Instant};

use engine_support::*;
use hb_core::{Error, Reason, State};

fn alive_then_left_within_half_a_second(scheme: &str) {
    let m = monitor("udp://127.0.0.1:0,tcp://127.0.0.1:0", &[]);
    let id = format!("leaver-{scheme}");
    let c = client(&endpoint(&m, scheme), &id, &[("label", "zone=a")]);
    let ev = wait_transition(&m, &id, State::Alive, DEADLINE);
    assert_eq!((ev.from, ev.reason, ev.service.as_str()), (State::Unknown, Reason::Registered, "engine-test"));
    assert_eq!(ev.incarnation, c.incarnation().unwrap());
    assert_eq!(ev.labels.get("zone").map(String::as_str), Some("a"));
    wait_until("client healthy", DEADLINE, || c.state().unwrap() == State::Healthy);
    let token = c.fencing_token().unwrap();
    assert_eq!((token.lease_id, token.epoch), (0, 1));
    assert!(c.check().is_ok());
    // Valid for what the monitor promised: its deadline for a 100 ms beat, under the TTL.
    let remaining = c.remaining().unwrap();
    assert!(remaining > Duration::ZERO && remaining < c.config().ttl, "{remaining:?}");
    let peer = m.peers().unwrap().into_iter().find(|p| p.id == id).unwrap();
    assert_eq!(peer.state, State::Alive);
    assert_eq!(peer.interval_ms, 100);
    assert!(peer.addr.unwrap().starts_with(&format!("{scheme}://127.0.0.1:")));

    let t0 = Instant::now();
    c.stop(Duration::from_secs(2)).unwrap();
    let ev = wait_transition(&m, &id, State::Left, Duration::from_secs(2));
    assert!(t0.elapsed() < Duration::from_millis(500), "left after {:?}", t0.elapsed());
    assert_eq!(ev.reason, Reason::Left);
    assert_eq!(c.state().unwrap(), State::Stopped);
    assert!(c.check().is_err());
    // Idempotent, and the peer stays visible as left.
    c.stop(Duration::from_secs(1)).unwrap();
    assert_eq!(m.peers().unwrap().into_iter().find(|p| p.id == id).unwrap().state, State::Left);
    m.stop().unwrap();
}

#[test]
fn udp_client_is_alive_then_left_on_stop() {
    alive_then_left_within_half_a_second("udp");
}

#[test]
fn tcp_client_is_alive_then_left_on_stop() {
    alive_then_left_within_half_a_second("tcp");
}

#[test]
fn crashed_client_goes_suspect_then_dead_in_order() {
    let m = monitor("udp://127.0.0.1:0", &[]);
    let c = client(&endpoint(&m, "udp"), "crasher", &[]);
    wait_transition(&m, "crasher", State::Alive, DEADLINE);
    // Let the detector learn the 100 ms rhythm for a few beats.
    let beats = m.stats().beats_received;
    wait_until("a few beats", DEADLINE, || m.stats().beats_received >= beats + 5);
    c.crash_for_test();
    let t0 = Instant::now();
    let suspect = wait_transition(&m, "crasher", State::Suspect, DEADLINE);
    let dead = wait_transition(&m, "crasher", State::Dead, DEADLINE);
    assert_eq!((suspect.from, suspect.reason), (State::Alive, Reason::Timeout));
    assert_eq!((dead.from, dead.reason), (State::Suspect, Reason::Timeout));
    assert!(t0.elapsed() < Duration::from_secs(5), "dead after {:?}", t0.elapsed());
    assert_eq!(m.stats().dead, 1);
}

#[test]
fn a_new_client_with_the_same_id_is_reported_restarted() {
    let m = monitor("udp://127.0.0.1:0", &[]);
    let ep = endpoint(&m, "udp");
    let first = client(&ep, "phoenix", &[]);
    wait_transition(&m, "phoenix", State::Alive, DEADLINE);
    first.crash_for_test();
    let second = client(&ep, "phoenix", &[]);
    assert!(second.incarnation().unwrap() > first.incarnation().unwrap());
    let (hit, _) = wait_event(&m, DEADLINE, |e| e.reason == Reason::Restarted);
    let ev = hit.expect("restart reported");
    assert_eq!((ev.to, ev.incarnation), (State::Alive, second.incarnation().unwrap()));
}

#[test]
fn tcp_client_reconnects_after_the_monitor_restarts() {
    let m = monitor("tcp://127.0.0.1:0", &[]);
    let addr = m.local_addr("tcp").unwrap();
    let c = client(&format!("tcp://{addr}"), "reconnector", &[]);
    wait_transition(&m, "reconnector", State::Alive, DEADLINE);
    m.stop().unwrap();
    drop(m);
    // Lost once the monitor's promise runs out, or degraded first if three beats fail sooner.
    wait_until("client notices the loss", DEADLINE, || matches!(c.state().unwrap(), State::Degraded | State::Lost));
    let m2 = monitor(&format!("tcp://{addr}"), &[]);
    wait_transition(&m2, "reconnector", State::Alive, Duration::from_secs(15));
    wait_until("client healthy again", DEADLINE, || c.state().unwrap() == State::Healthy);
    c.stop(Duration::from_secs(1)).unwrap();
    wait_transition(&m2, "reconnector", State::Left, Duration::from_secs(2));
}

#[test]
fn stop_is_bounded_when_nothing_listens() {
    // Ports that were just free: nothing answers there.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let c = client(&format!("udp://{udp},tcp://{tcp}"), "lonely", &[]);
    wait_until("some beats sent", DEADLINE, || hb_core::metrics::get().beats_sent.get() > 0);
    let t0 = Instant::now();
    c.stop(Duration::from_millis(300)).unwrap();
    assert!(t0.elapsed() < Duration::from_millis(600), "stop took {:?}", t0.elapsed());
    assert_ne!(c.state().unwrap(), State::Healthy);
}

/// A callback that stops its client on the first event can run before `start` has
/// returned (it did under valgrind in the C e2e test): the start still succeeds, the
/// client ends stopped, and the monitor hears its goodbye.
#[test]
fn a_client_stopped_by_its_own_first_event_has_still_started() {
    let m = monitor("udp://127.0.0.1:0", &[]);
    let ep = endpoint(&m, "udp");
    for i in 0..20 {
        let id = format!("first-event-stopper-{i}");
        let pairs =
            [("endpoint", ep.as_str()), ("instance_id", &id), ("service", "engine-test"), ("interval", "100ms")];
        let c = std::sync::Arc::new(hb_core::Client::new(&options(&pairs)).unwrap());
        let weak = std::sync::Arc::downgrade(&c);
        c.events()
            .set_callback(Box::new(move |_| {
                if let Some(c) = weak.upgrade() {
                    c.stop(Duration::from_secs(1)).unwrap();
                }
            }))
            .unwrap();
        c.start().unwrap();
        wait_until("client stopped by its callback", DEADLINE, || c.state().unwrap() == State::Stopped);
        wait_transition(&m, &id, State::Left, DEADLINE);
    }
    m.stop().unwrap();
}

#[test]
fn start_twice_start_after_stop_and_bind_errors() {
    let m = monitor("udp://127.0.0.1:0", &[]);
    assert!(matches!(m.start(), Err(Error::InvalidState(_))));
    let addr = m.local_addr("udp").unwrap();
    let clash = hb_core::Monitor::new(&options(&[("listen", &format!("udp://{addr}"))])).unwrap();
    let err = clash.start().unwrap_err().to_string();
    assert!(err.contains(&addr.to_string()), "{err}");
    m.stop().unwrap();
    m.stop().unwrap();
    assert!(matches!(m.start(), Err(Error::Stopped(_))));

    let c = client(&format!("udp://{addr}"), "twice", &[]);
    assert!(matches!(c.start(), Err(Error::InvalidState(_))));
    c.stop(Duration::from_millis(100)).unwrap();
    assert!(matches!(c.start(), Err(Error::Stopped(_))));
}

#[test]
fn an_idle_monitor_sweeps_four_times_a_second_not_every_tick() {
    let m = monitor("udp://127.0.0.1:0", &[]);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let sweeps = m.stats().sweeps;
    let elapsed = t0.elapsed();
    // A 10 ms tick would be ~150 passes. An idle sweeper still wakes every pause-guard
    // threshold (250 ms with no peers), so that its lateness measures a stall: ~6 here.
    let most = (elapsed.as_millis() / 250 + 2) as u64;
    assert!(sweeps <= most, "{sweeps} sweeps in {elapsed:?}");
    m.stop().unwrap();
}

#[test]
fn an_explicit_event_capacity_is_kept() {
    // The queue grows as events arrive (hb-core events.rs), so the default costs an idle
    // client nothing; the bound is what a slow consumer can make it hold.
    let base = [("endpoint", "udp://127.0.0.1:9"), ("instance_id", "q"), ("service", "s")];
    let c = hb_core::Client::new(&options(&base)).unwrap();
    assert_eq!(c.config().event_capacity, hb_core::config::DEFAULT_EVENT_CAPACITY);
    let mut explicit = base.to_vec();
    explicit.push(("event_capacity", "5000"));
    assert_eq!(hb_core::Client::new(&options(&explicit)).unwrap().config().event_capacity, 5000);
}

#[test]
fn a_dead_redundant_monitor_degrades_the_client_while_the_other_keeps_it_valid() {
    let m = monitor("udp://127.0.0.1:0", &[]);
    // A port that was just free: nothing answers there.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let c = client(&format!("{},udp://{dead}", endpoint(&m, "udp")), "redundant", &[]);
    wait_transition(&m, "redundant", State::Alive, DEADLINE);
    // The live monitor's ACKs do not hide that the other one never answers.
    wait_until("client degraded", DEADLINE, || c.state().unwrap() == State::Degraded);
    assert!(c.check().is_ok(), "still valid: one monitor acknowledges");
    assert_eq!(m.peers().unwrap()[0].state, State::Alive);
    c.stop(Duration::from_millis(500)).unwrap();
}
