//! A client's own health and the fencing arithmetic, shared by the direct and etcd
//! transports. Pure: time comes in as monotonic nanoseconds.
//!
//! healthy → degraded after `DEGRADED_AFTER` consecutive failures of any one endpoint
//! (retrying goes on), → lost once the other side must already consider us dead (nothing
//! acknowledged by any endpoint for a whole TTL), → healthy again once every endpoint
//! succeeds.
//!
//! With redundant monitors, each endpoint counts its own failures: an ACK from a healthy
//! monitor does not hide a dead one. Validity (`remaining`, `check`) comes from whichever
//! endpoint acknowledged last — that is what redundancy is for — while `degraded` says
//! that some endpoint is failing and the redundancy is gone.

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
    /// Consecutive failures, per endpoint (index as in the config's endpoint list).
    failures: Vec<u32>,
    /// Send time of the newest acknowledged beat/keepalive: the other side's TTL started
    /// no earlier than this, so our validity ends no later than this + TTL.
    last_acked_sent_ns: Option<u64>,
    lease_id: i64,
    epoch: u64,
}

impl Health {
    /// Health over one endpoint (an etcd registration, or one monitor).
    pub fn new(ttl: Duration) -> Health {
        Health::with_endpoints(ttl, 1)
    }

    /// Health over `endpoints` redundant endpoints (at least one).
    pub fn with_endpoints(ttl: Duration, endpoints: usize) -> Health {
        let ttl_ns = ttl.as_nanos() as u64;
        Health {
            ttl_ns,
            margin_ns: safety_margin_ns(ttl_ns),
            state: State::Unknown,
            failures: vec![0; endpoints.max(1)],
            last_acked_sent_ns: None,
            lease_id: 0,
            epoch: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Consecutive failures of the worst endpoint.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures.iter().copied().max().unwrap_or(0)
    }

    /// Consecutive failures of each endpoint, in config order.
    pub fn endpoint_failures(&self) -> &[u32] {
        &self.failures
    }

    pub fn lease_id(&self) -> i64 {
        self.lease_id
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A new registration (lease granted and key written): the epoch goes up.
    pub fn registered(&mut self, lease_id: i64, sent_at_ns: u64) -> Option<Transition> {
        self.registered_by(0, lease_id, sent_at_ns)
    }

    /// `registered`, by endpoint `endpoint`.
    pub fn registered_by(&mut self, endpoint: usize, lease_id: i64, sent_at_ns: u64) -> Option<Transition> {
        self.lease_id = lease_id;
        self.epoch += 1;
        let reason = if self.epoch == 1 { Reason::Registered } else { Reason::Acked };
        self.success(endpoint, sent_at_ns, reason)
    }

    /// A beat or keepalive sent at `sent_at_ns` was acknowledged.
    pub fn acked(&mut self, sent_at_ns: u64) -> Option<Transition> {
        self.acked_by(0, sent_at_ns)
    }

    /// `acked`, by endpoint `endpoint`.
    pub fn acked_by(&mut self, endpoint: usize, sent_at_ns: u64) -> Option<Transition> {
        self.success(endpoint, sent_at_ns, Reason::Acked)
    }

    fn success(&mut self, endpoint: usize, sent_at_ns: u64, reason: Reason) -> Option<Transition> {
        if let Some(f) = self.failures.get_mut(endpoint) {
            *f = 0;
        }
        if self.last_acked_sent_ns.map_or(true, |t| sent_at_ns > t) {
            self.last_acked_sent_ns = Some(sent_at_ns);
        }
        // Valid again either way; healthy only when no other endpoint is still failing.
        let to = if self.any_endpoint_degraded() { State::Degraded } else { State::Healthy };
        self.move_to(to, reason)
    }

    /// A beat or keepalive failed (timeout, refused, error).
    pub fn failed(&mut self, now_ns: u64, reason: Reason) -> Option<Transition> {
        self.failed_by(0, now_ns, reason)
    }

    /// `failed`, at endpoint `endpoint`.
    pub fn failed_by(&mut self, endpoint: usize, now_ns: u64, reason: Reason) -> Option<Transition> {
        if let Some(f) = self.failures.get_mut(endpoint) {
            *f = f.saturating_add(1);
        }
        if let Some(t) = self.tick(now_ns) {
            return Some(t);
        }
        if self.any_endpoint_degraded() && self.state == State::Healthy {
            return self.move_to(State::Degraded, reason);
        }
        None
    }

    fn any_endpoint_degraded(&self) -> bool {
        self.failures.iter().any(|&f| f >= DEGRADED_AFTER)
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
            _ => format!(
                "no acknowledgement within the last TTL ({} ms); the registration may have expired",
                self.ttl_ns / 1_000_000
            ),
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
    fn a_failing_redundant_endpoint_degrades_though_another_acks() {
        let mut h = Health::with_endpoints(Duration::from_secs(3), 2);
        assert_eq!(h.acked_by(0, S).unwrap().to, State::Healthy);
        // Endpoint 1 fails every time while endpoint 0 keeps acknowledging in between.
        let mut degraded = None;
        for i in 0..3 {
            assert_eq!(h.acked_by(0, S + i * 100_000_000), None);
            if let Some(t) = h.failed_by(1, S + i * 100_000_000, Reason::AckTimeout) {
                degraded = Some((i, t));
            }
        }
        let (at, t) = degraded.expect("degraded by endpoint 1's third failure");
        assert_eq!((at, t.from, t.to, t.reason), (2, State::Healthy, State::Degraded, Reason::AckTimeout));
        assert_eq!(h.endpoint_failures(), &[0, 3]);
        // Still valid thanks to endpoint 0, and endpoint 0's ACKs do not clear the state.
        assert_eq!(h.acked_by(0, 2 * S), None);
        assert_eq!(h.state(), State::Degraded);
        assert!(h.check(2 * S).is_ok());
        // Endpoint 1 comes back: healthy.
        let t = h.acked_by(1, 2 * S).unwrap();
        assert_eq!((t.from, t.to, t.reason), (State::Degraded, State::Healthy, Reason::Acked));
        // Lost only when nothing at all was acknowledged for a TTL; the first ACK after
        // that, with the other endpoint still failing, is valid again but degraded.
        for _ in 0..3 {
            h.failed_by(1, 3 * S, Reason::AckTimeout);
        }
        assert_eq!(h.tick(5 * S).unwrap().to, State::Lost);
        assert_eq!(h.acked_by(0, 6 * S).unwrap().to, State::Degraded);
    }

    #[test]
    fn old_acks_do_not_extend_validity() {
        let mut h = Health::new(Duration::from_secs(3));
        h.acked(5 * S);
        h.acked(4 * S);
        assert_eq!(h.remaining_ns(5 * S), 3 * S - 300_000_000);
    }
}
