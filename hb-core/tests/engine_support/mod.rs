//! Helpers shared by the engine integration tests: loopback only, port 0, and waits
//! that poll a condition until a deadline (never a sleep that hopes for the best).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use hb_core::{Client, Event, Monitor, Options, Reason, State};

pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn options(pairs: &[(&str, &str)]) -> Options {
    let mut o = Options::new();
    for (k, v) in pairs {
        o.set(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
    }
    o
}

pub fn monitor(listen: &str, extra: &[(&str, &str)]) -> Monitor {
    let mut pairs = vec![("listen", listen)];
    pairs.extend_from_slice(extra);
    let m = Monitor::new(&options(&pairs)).unwrap();
    m.start().unwrap();
    m
}

/// `scheme` is "udp" or "tcp"; the endpoint of `m`'s listener for it.
pub fn endpoint(m: &Monitor, scheme: &str) -> String {
    format!("{scheme}://{}", m.local_addr(scheme).expect("listener bound"))
}

pub fn client(endpoint: &str, id: &str, extra: &[(&str, &str)]) -> Client {
    let mut pairs =
        vec![("endpoint", endpoint), ("instance_id", id), ("service", "engine-test"), ("interval", "100ms")];
    pairs.extend_from_slice(extra);
    let c = Client::new(&options(&pairs)).unwrap();
    c.start().unwrap();
    c
}

/// Pulls events until one matches, up to `within`; returns it with the events before it.
pub fn wait_event(m: &Monitor, within: Duration, pred: impl Fn(&Event) -> bool) -> (Option<Event>, Vec<Event>) {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (None, seen);
        }
        match m.events().next_event(Some(left)) {
            Ok(Some(e)) if pred(&e) => return (Some(e), seen),
            Ok(Some(e)) => seen.push(e),
            Ok(None) | Err(_) => return (None, seen),
        }
    }
}

pub fn wait_transition(m: &Monitor, peer: &str, to: State, within: Duration) -> Event {
    let (hit, seen) = wait_event(m, within, |e| e.peer == peer && e.to == to);
    hit.unwrap_or_else(|| panic!("{peer} did not become {to} within {within:?}; saw {seen:?}"))
}

pub fn wait_until(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn rejected(reason: &str) -> u64 {
    hb_core::metrics::get().frames_rejected.with_label_values(&[reason]).get()
}

pub fn registered(e: &Event) -> bool {
    e.to == State::Alive && e.reason == Reason::Registered
}
