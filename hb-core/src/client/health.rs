//! A client's own health and the fencing arithmetic, shared by the direct and etcd
//! transports. Pure: time comes in as monotonic nanoseconds.
//!
//! healthy → degraded after `DEGRADED_AFTER` consecutive failures of any one endpoint
//! (retrying goes on), → lost once the other side must already consider us dead (nothing
//! acknowledged by any endpoint for a whole TTL), → healthy again once every endpoint
//! succeeds.
//!
//! Validity (`remaining`, `check`) is what the other side has promised: each
//! acknowledgement keeps us valid until its send time + min(TTL, promise) − margin, where
//! the promise is the monitor's word that it reports us `dead` no earlier than its
//! receive time + promise (an etcd lease, or a monitor older than promises: the TTL).
//! The send time is before the receive time, so our validity ends first.
//!
//! With redundant monitors, each endpoint counts its own failures (an ACK from a healthy
//! monitor does not hide a dead one) and keeps its own validity. We are valid only while
//! *every* monitor that ever acknowledged us still promises: any one of them could report
//! us dead, and a failover acting on that report must not meet a holder that still
//! passes `check()`. So redundancy makes detection and events survive a monitor, not
//! fencing (docs/states.md). `degraded` says some endpoint is failing.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::events::{Reason, State};
use crate::proto::NackReason;

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
    state: State,
    /// Consecutive failures, per endpoint (index as in the config's endpoint list).
    failures: Vec<u32>,
    /// Per endpoint: until when its acknowledgements keep us valid; `None` while it has
    /// never acknowledged us.
    valid_until_ns: Vec<Option<u64>>,
    lease_id: i64,
    epoch: u64,
    /// Why a monitor last refused us (a NACK), or we it (its TLS certificate), until one
    /// acknowledges us: what `check()` says while we are not registered yet.
    refused: Option<String>,
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
            state: State::Unknown,
            failures: vec![0; endpoints.max(1)],
            valid_until_ns: vec![None; endpoints.max(1)],
            lease_id: 0,
            epoch: 0,
            refused: None,
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
        self.registered_by(0, lease_id, sent_at_ns, None)
    }

    /// `registered`, by endpoint `endpoint`, with the promise its acknowledgement carried.
    pub fn registered_by(
        &mut self,
        endpoint: usize,
        lease_id: i64,
        sent_at_ns: u64,
        promise_ns: Option<u64>,
    ) -> Option<Transition> {
        self.lease_id = lease_id;
        self.epoch += 1;
        let reason = if self.epoch == 1 { Reason::Registered } else { Reason::Acked };
        self.success(endpoint, sent_at_ns, promise_ns, reason)
    }

    /// A beat or keepalive sent at `sent_at_ns` was acknowledged (etcd: the lease's TTL).
    pub fn acked(&mut self, sent_at_ns: u64) -> Option<Transition> {
        self.acked_by(0, sent_at_ns, None)
    }

    /// `acked`, by endpoint `endpoint`, with the promise its acknowledgement carried
    /// (`None`: a monitor older than promises, the TTL counts).
    pub fn acked_by(&mut self, endpoint: usize, sent_at_ns: u64, promise_ns: Option<u64>) -> Option<Transition> {
        self.success(endpoint, sent_at_ns, promise_ns, Reason::Acked)
    }

    fn success(
        &mut self,
        endpoint: usize,
        sent_at_ns: u64,
        promise_ns: Option<u64>,
        reason: Reason,
    ) -> Option<Transition> {
        if let Some(f) = self.failures.get_mut(endpoint) {
            *f = 0;
        }
        self.refused = None;
        let span = promise_ns.map_or(self.ttl_ns, |p| p.min(self.ttl_ns));
        let until = (sent_at_ns + span).saturating_sub(safety_margin_ns(span));
        if let Some(v) = self.valid_until_ns.get_mut(endpoint) {
            // An older ACK arriving late does not shorten what a newer one gave.
            *v = Some(v.map_or(until, |old| old.max(until)));
        }
        if self.remaining_ns(sent_at_ns) == 0 {
            // Another monitor's promise ran out: it may report us dead, so we stay lost.
            return None;
        }
        // Valid again; healthy only when no other endpoint is still failing.
        let to = if self.any_endpoint_degraded() { State::Degraded } else { State::Healthy };
        self.move_to(to, reason)
    }

    /// A monitor refused a beat (NACK) or a connection, for `reason`: remembered for
    /// `check()`'s message until a monitor acknowledges us.
    pub fn refused(&mut self, reason: NackReason) {
        self.refused = Some(format!("the monitor refused us ({})", reason.as_str()));
    }

    /// A connection failed for `why` (a sentence: the monitor's certificate was refused):
    /// remembered as [`refused`](Self::refused) is.
    pub fn failed_because(&mut self, why: String) {
        self.refused = Some(why);
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
        self.valid_until_ns.fill(None);
        self.move_to(State::Lost, reason)
    }

    pub fn stopped(&mut self) -> Option<Transition> {
        self.valid_until_ns.fill(None);
        self.move_to(State::Stopped, Reason::Stopped)
    }

    /// Conservative validity left: the earliest end among the endpoints that ever
    /// acknowledged us, minus now (0 if none did).
    pub fn remaining_ns(&self, now_ns: u64) -> u64 {
        self.valid_until_ns.iter().flatten().min().map_or(0, |until| until.saturating_sub(now_ns))
    }

    pub fn check(&self, now_ns: u64) -> Result<()> {
        if self.remaining_ns(now_ns) > 0 && self.state != State::Lost {
            return Ok(());
        }
        Err(Error::NotHolder(match self.state {
            State::Unknown => match &self.refused {
                Some(why) => format!("not registered yet: {why}"),
                None => "not registered yet".to_string(),
            },
            State::Stopped => "stopped".to_string(),
            _ => format!(
                "validity ran out: a monitor that acknowledged us may report us dead now (TTL {} ms, \
                 no acknowledgement still covers us); the registration may have expired",
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

/// Slack for clock-rate differences between us and the other side, and for the caller's
/// own latency between `check()` and acting on it: 10% of the span (TTL or promise),
/// 1 ms .. 1 s. The span itself starts at our send time, before the other side's receive
/// time, so transit needs no slack.
fn safety_margin_ns(span_ns: u64) -> u64 {
    (span_ns / 10).clamp(1_000_000, 1_000_000_000)
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
        assert_eq!(h.acked_by(0, S, None).unwrap().to, State::Healthy);
        // Endpoint 1 fails every time while endpoint 0 keeps acknowledging in between.
        let mut degraded = None;
        for i in 0..3 {
            assert_eq!(h.acked_by(0, S + i * 100_000_000, None), None);
            if let Some(t) = h.failed_by(1, S + i * 100_000_000, Reason::AckTimeout) {
                degraded = Some((i, t));
            }
        }
        let (at, t) = degraded.expect("degraded by endpoint 1's third failure");
        assert_eq!((at, t.from, t.to, t.reason), (2, State::Healthy, State::Degraded, Reason::AckTimeout));
        assert_eq!(h.endpoint_failures(), &[0, 3]);
        // Endpoint 1 never acknowledged us, so it cannot report us dead: endpoint 0's
        // ACKs keep us valid, and they do not clear the state.
        assert_eq!(h.acked_by(0, 2 * S, None), None);
        assert_eq!(h.state(), State::Degraded);
        assert!(h.check(2 * S).is_ok());
        // Endpoint 1 comes back: healthy.
        let t = h.acked_by(1, 2 * S, None).unwrap();
        assert_eq!((t.from, t.to, t.reason), (State::Degraded, State::Healthy, Reason::Acked));
    }

    #[test]
    fn with_redundant_monitors_validity_is_the_earliest_promise_of_any_that_acknowledged() {
        let mut h = Health::with_endpoints(Duration::from_secs(3), 2);
        h.acked_by(0, S, Some(2 * S));
        h.acked_by(1, S, None);
        // Endpoint 0 promised 2 s (margin 200 ms), endpoint 1 the TTL (3 s, margin 300 ms).
        assert_eq!(h.remaining_ns(S), 1_800_000_000);
        // Endpoint 1 goes silent (a partition to it): endpoint 0 keeps acknowledging, but
        // monitor 1 may report us dead 3 s after our last beat reached it.
        for i in 1..=8 {
            h.acked_by(0, S + i * 200_000_000, Some(2 * S));
            h.failed_by(1, S + i * 200_000_000, Reason::AckTimeout);
        }
        assert_eq!(h.remaining_ns(3 * S), 700_000_000, "endpoint 1's promise ends at 3.7 s");
        assert!(h.check(3_699_999_999).is_ok());
        assert!(h.check(3_700_000_000).is_err());
        assert_eq!(h.tick(3_700_000_000).unwrap().to, State::Lost);
        // Endpoint 0's ACKs no longer make us valid: monitor 1 may still report us dead.
        assert_eq!(h.acked_by(0, 4 * S, Some(2 * S)), None);
        assert!(h.check(4 * S).is_err());
        // Monitor 1 hears us again: valid, until the earlier of the two promises (endpoint
        // 0's from 4 s: 5.8 s; endpoint 1's: 5.9 s).
        assert_eq!(h.acked_by(1, 5 * S, Some(S)).unwrap().to, State::Healthy);
        assert_eq!(h.remaining_ns(5 * S), 800_000_000);
    }

    #[test]
    fn validity_is_the_send_time_plus_the_smaller_of_ttl_and_promise_minus_a_tenth() {
        let mut h = Health::new(Duration::from_secs(15));
        h.acked_by(0, 10 * S, Some(6 * S));
        // 6 s promise, 600 ms margin: valid until 15.4 s, not 24 s (the TTL's 13.5 s + 10).
        assert_eq!(h.remaining_ns(10 * S), 5_400_000_000);
        // A longer promise than the TTL is capped at the TTL (1 s margin).
        h.acked_by(0, 11 * S, Some(40 * S));
        assert_eq!(h.remaining_ns(11 * S), 14 * S);
        // A later ACK with a shorter promise does not take back what an earlier one gave.
        h.acked_by(0, 12 * S, Some(100_000_000));
        assert_eq!(h.remaining_ns(12 * S), 13 * S);
        // No promise (an older monitor, or etcd): the TTL.
        let mut h = Health::new(Duration::from_secs(2));
        h.acked(0);
        assert_eq!(h.remaining_ns(0), 1_800_000_000);
    }

    #[test]
    fn old_acks_do_not_extend_validity() {
        let mut h = Health::new(Duration::from_secs(3));
        h.acked(5 * S);
        h.acked(4 * S);
        assert_eq!(h.remaining_ns(5 * S), 3 * S - 300_000_000);
    }
}
