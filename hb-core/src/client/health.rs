//! A client's own health and the fencing arithmetic, shared by the direct and etcd
//! transports. Pure: time comes in as monotonic nanoseconds.
//!
//! healthy → degraded after `DEGRADED_AFTER` consecutive failures (retrying goes on),
//! → lost once the other side must already consider us dead (nothing acknowledged for a
//! whole TTL), → healthy again on the next success.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::events::{Reason, State};

pub const DEGRADED_AFTER: u32 = 3;

/// A change of health for the caller to emit as an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

#[derive(Clone, Debug)]
pub struct Health {
    ttl_ns: u64,
    margin_ns: u64,
    state: State,
    failures: u32,
    /// Send time of the newest acknowledged beat/keepalive: the other side's TTL started
    /// no earlier than this, so our validity ends no later than this + TTL.
    last_acked_sent_ns: Option<u64>,
    lease_id: i64,
    epoch: u64,
}

impl Health {
    pub fn new(ttl: Duration) -> Health {
        let ttl_ns = ttl.as_nanos() as u64;
        Health {
            ttl_ns,
            margin_ns: safety_margin_ns(ttl_ns),
            state: State::Unknown,
            failures: 0,
            last_acked_sent_ns: None,
            lease_id: 0,
            epoch: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    pub fn lease_id(&self) -> i64 {
        self.lease_id
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A new registration (lease granted and key written): the epoch goes up.
    pub fn registered(&mut self, lease_id: i64, sent_at_ns: u64) -> Option<Transition> {
        self.lease_id = lease_id;
        self.epoch += 1;
        let reason = if self.epoch == 1 { Reason::Registered } else { Reason::Acked };
        self.success(sent_at_ns, reason)
    }

    /// A beat or keepalive sent at `sent_at_ns` was acknowledged.
    pub fn acked(&mut self, sent_at_ns: u64) -> Option<Transition> {
        self.success(sent_at_ns, Reason::Acked)
    }

    fn success(&mut self, sent_at_ns: u64, reason: Reason) -> Option<Transition> {
        self.failures = 0;
        if self.last_acked_sent_ns.map_or(true, |t| sent_at_ns > t) {
            self.last_acked_sent_ns = Some(sent_at_ns);
        }
        self.move_to(State::Healthy, reason)
    }

    /// A beat or keepalive failed (timeout, refused, error).
    pub fn failed(&mut self, now_ns: u64, reason: Reason) -> Option<Transition> {
        self.failures = self.failures.saturating_add(1);
        if let Some(t) = self.tick(now_ns) {
            return Some(t);
        }
        if self.failures >= DEGRADED_AFTER && self.state == State::Healthy {
            return self.move_to(State::Degraded, reason);
        }
        None
    }

    /// Time passing: becomes `lost` once the deadline has gone by.
    pub fn tick(&mut self, now_ns: u64) -> Option<Transition> {
        if matches!(self.state, State::Healthy | State::Degraded) && self.remaining_ns(now_ns) == 0 {
            return self.move_to(State::Lost, Reason::LeaseDeadline);
        }
        None
    }

    /// The lease is gone for sure (etcd said so); a new registration must follow.
    pub fn lease_lost(&mut self, reason: Reason) -> Option<Transition> {
        self.last_acked_sent_ns = None;
        self.move_to(State::Lost, reason)
    }

    pub fn stopped(&mut self) -> Option<Transition> {
        self.last_acked_sent_ns = None;
        self.move_to(State::Stopped, Reason::Stopped)
    }

    /// Conservative validity left: (send time of last ack + TTL − margin) − now.
    pub fn remaining_ns(&self, now_ns: u64) -> u64 {
        match self.last_acked_sent_ns {
            Some(sent) => (sent + self.ttl_ns).saturating_sub(self.margin_ns).saturating_sub(now_ns),
            None => 0,
        }
    }

    pub fn check(&self, now_ns: u64) -> Result<()> {
        if self.remaining_ns(now_ns) > 0 && self.state != State::Lost {
            return Ok(());
        }
        Err(Error::NotHolder(match self.state {
            State::Unknown => "not registered yet".to_string(),
            State::Stopped => "stopped".to_string(),
            _ => format!("no acknowledgement within the last TTL ({} ms); the registration may have expired", self.ttl_ns / 1_000_000),
        }))
    }

    fn move_to(&mut self, to: State, reason: Reason) -> Option<Transition> {
        if self.state == to || self.state == State::Stopped {
            return None;
        }
        let from = std::mem::replace(&mut self.state, to);
        Some(Transition { from, to, reason })
    }
}

/// Slack for clock-rate differences and delivery delay: 10% of the TTL, 50 ms .. 1 s.
fn safety_margin_ns(ttl_ns: u64) -> u64 {
    (ttl_ns / 10).clamp(50_000_000, 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn healthy_degraded_lost_and_back() {
        let mut h = Health::new(Duration::from_secs(3));
        assert!(h.check(0).is_err());
        let t = h.acked(10 * S).unwrap();
        assert_eq!((t.from, t.to), (State::Unknown, State::Healthy));
        assert_eq!(h.failed(11 * S, Reason::AckTimeout), None);
        assert_eq!(h.failed(11 * S, Reason::AckTimeout), None);
        let t = h.failed(11 * S, Reason::AckTimeout).unwrap();
        assert_eq!((t.to, t.reason), (State::Degraded, Reason::AckTimeout));
        assert!(h.check(12 * S).is_ok());
        // 3 s TTL, 300 ms margin: valid until 12.7 s.
        assert_eq!(h.remaining_ns(12 * S), 700_000_000);
        let t = h.tick(12 * S + 700_000_000).unwrap();
        assert_eq!((t.to, t.reason), (State::Lost, Reason::LeaseDeadline));
        assert!(h.check(13 * S).is_err());
        let t = h.acked(14 * S).unwrap();
        assert_eq!((t.from, t.to), (State::Lost, State::Healthy));
    }

    #[test]
    fn frozen_process_fails_check_without_any_contact() {
        let mut h = Health::new(Duration::from_secs(2));
        h.registered(42, 0);
        assert!(h.check(S).is_ok());
        // Frozen for 5 s: nothing ran, yet the arithmetic alone says no.
        assert!(matches!(h.check(6 * S), Err(Error::NotHolder(_))));
    }

    #[test]
    fn epochs_increase_with_registrations() {
        let mut h = Health::new(Duration::from_secs(2));
        h.registered(1, 0);
        h.lease_lost(Reason::LeaseNotFound);
        assert!(h.check(0).is_err());
        h.registered(2, S);
        assert_eq!((h.lease_id(), h.epoch()), (2, 2));
        assert!(h.check(S).is_ok());
    }

    #[test]
    fn old_acks_do_not_extend_validity() {
        let mut h = Health::new(Duration::from_secs(3));
        h.acked(5 * S);
        h.acked(4 * S);
        assert_eq!(h.remaining_ns(5 * S), 3 * S - 300_000_000);
    }
}
