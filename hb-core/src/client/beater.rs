//! The beating logic for one endpoint, independent of the socket: builds each beat,
//! matches ACKs to outstanding beats, keeps the RTT estimate (ACK timeout) and the
//! adaptive interval, and reports successes and failures to the client's health.
//! The UDP and TCP tasks drive it with the times and bytes they see.

use std::sync::Arc;

use crate::detect::{IntervalPolicy, RttEstimator};
use crate::error::{Error, Result};
use crate::events::Reason;
use crate::metrics;
use crate::proto::{decode, encode, AuthKey, Flags, Frame, Kind, NackReason};

use super::shared::ClientShared;

/// A beat leaving this much later than scheduled is flagged STALLED (the host was paused).
const STALL_THRESHOLD_NS: u64 = 100_000_000;
/// Beats awaiting an ACK; older ones count as lost when a newer one needs the room.
const MAX_OUTSTANDING: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    seq: u32,
    sent_ns: u64,
    deadline_ns: u64,
}

pub(crate) struct Beater {
    shared: Arc<ClientShared>,
    /// Which of the client's endpoints this beater serves (its own failure count).
    endpoint: usize,
    key: Option<AuthKey>,
    frame: Frame,
    wants_ack: bool,
    rtt: RttEstimator,
    policy: IntervalPolicy,
    /// Longest interval the monitor accepts (from its ACKs).
    monitor_max_ns: u64,
    outstanding: Vec<Outstanding>,
    next_beat_ns: u64,
    /// seq of the LEAVE we sent, once stopping.
    leave_seq: Option<u32>,
    leave_acked: bool,
}

/// What an incoming frame meant.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Heard {
    Nothing,
    Acked,
    Refused(NackReason),
}

impl Beater {
    pub fn new(shared: Arc<ClientShared>, endpoint: usize, now_ns: u64) -> Result<Beater> {
        let c = &shared.config;
        let key = match &c.auth_key {
            Some(secret) => {
                Some(AuthKey::new(&secret.0).map_err(|e| Error::config("auth_key", "(hidden)", e.to_string()))?)
            }
            None => None,
        };
        let mut frame = Frame::beat(c.instance_id.clone());
        frame.service = Some(c.service.clone());
        frame.labels = c.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        frame.traceparent = c.traceparent.clone();
        // Both resolutions in every BEAT and LEAVE (the frame is reused for both).
        frame.incarnation = shared.incarnation;
        frame.incarnation_us = Some(shared.incarnation_us);
        // The TTL travels, so the monitor convicts on it too (no later than TTL of silence).
        frame.ttl_ms = Some(c.ttl.as_millis().min(u128::from(u32::MAX)) as u32);
        let wants_ack = c.ack;
        let policy = IntervalPolicy::new(
            c.interval.min.as_nanos() as u64,
            c.interval.max.as_nanos() as u64,
            c.ttl.as_nanos() as u64,
        );
        let b = Beater {
            key,
            frame,
            wants_ack,
            rtt: RttEstimator::new(),
            policy,
            monitor_max_ns: u64::MAX,
            outstanding: Vec::with_capacity(MAX_OUTSTANDING),
            next_beat_ns: now_ns,
            leave_seq: None,
            leave_acked: false,
            endpoint,
            shared,
        };
        // Fail at start, naming the cause, if our beat cannot be encoded (e.g. too long),
        // counting the RTT extension that later beats carry.
        let mut probe = Vec::new();
        let with_rtt = Frame { rtt_us: Some(u32::MAX), sent_unix_ms: b.key.as_ref().map(|_| 0), ..b.frame.clone() };
        encode(&with_rtt, b.key.as_ref(), &mut probe)
            .map_err(|e| Error::config("beat frame", &b.frame.id, e.to_string()))?;
        Ok(b)
    }

    /// The interval to keep and to announce.
    pub fn interval_ns(&self) -> u64 {
        self.policy.current_ns().min(self.monitor_max_ns).max(1_000_000)
    }

    /// When the task must wake up next: the next beat or the earliest ACK deadline.
    pub fn next_wakeup_ns(&self) -> u64 {
        self.outstanding.iter().map(|o| o.deadline_ns).fold(self.next_beat_ns, u64::min)
    }

    pub fn rto_ns(&self) -> u64 {
        self.rtt.rto_ns()
    }

    /// Expires overdue ACKs and, if a beat is due, encodes it into `out` (cleared first).
    /// Returns true when `out` holds a beat to send.
    pub fn on_timer(&mut self, now_ns: u64, out: &mut Vec<u8>) -> bool {
        self.expire(now_ns);
        self.shared.update_health(|h| h.tick(now_ns));
        if now_ns < self.next_beat_ns {
            return false;
        }
        let late_ns = now_ns - self.next_beat_ns;
        self.encode_beat(Kind::Beat, now_ns, late_ns, out);
        self.next_beat_ns = now_ns + self.interval_ns();
        true
    }

    fn encode_beat(&mut self, kind: Kind, now_ns: u64, late_ns: u64, out: &mut Vec<u8>) {
        let f = &mut self.frame;
        f.kind = kind;
        f.seq = f.seq.wrapping_add(1);
        f.ts_ns = now_ns;
        f.interval_ms = (self.policy.current_ns().min(self.monitor_max_ns).max(1_000_000) / 1_000_000)
            .min(u64::from(u32::MAX)) as u32;
        f.stall_ms = (late_ns / 1_000_000).min(u64::from(u16::MAX)) as u16;
        // With a key, when it left by our wall clock: a keyed monitor refuses frames
        // captured long ago, even after it restarted.
        f.sent_unix_ms = self.key.as_ref().map(|_| crate::events::unix_ms_now());
        // This endpoint's own path RTT, so its monitor can show it.
        f.rtt_us = match kind {
            Kind::Beat => self.rtt.srtt_ns().map(|ns| (ns / 1_000).min(u64::from(u32::MAX)) as u32),
            _ => None,
        };
        let mut flags = Flags::default();
        // A LEAVE always asks to be confirmed, so stop() can end early.
        if self.wants_ack || kind == Kind::Leave {
            flags = flags.with(Flags::ACK_REQ);
        }
        if late_ns > STALL_THRESHOLD_NS {
            flags = flags.with(Flags::STALLED);
        }
        f.flags = flags;
        out.clear();
        if encode(f, self.key.as_ref(), out).is_err() {
            // Checked at construction: the frame's size does not change between beats.
            out.clear();
            return;
        }
        if kind == Kind::Beat {
            metrics::get().beats_sent.inc();
            if self.wants_ack {
                if self.outstanding.len() == MAX_OUTSTANDING {
                    self.outstanding.remove(0);
                    self.lost(now_ns);
                }
                let f = &self.frame;
                let (seq, deadline_ns) = (f.seq, now_ns + self.rtt.rto_ns());
                self.outstanding.push(Outstanding { seq, sent_ns: now_ns, deadline_ns });
            }
        }
    }

    /// Encodes a LEAVE (asking for an ACK) into `out`.
    pub fn leave(&mut self, now_ns: u64, out: &mut Vec<u8>) {
        self.encode_beat(Kind::Leave, now_ns, 0, out);
        self.leave_seq.get_or_insert(self.frame.seq);
    }

    pub fn leave_acked(&self) -> bool {
        self.leave_acked
    }

    /// Time passing without a beat to send (e.g. while reconnecting).
    pub fn tick(&mut self, now_ns: u64) {
        self.expire(now_ns);
        self.shared.update_health(|h| h.tick(now_ns));
    }

    pub fn now_ns(&self) -> u64 {
        self.shared.now_ns()
    }

    fn expire(&mut self, now_ns: u64) {
        let before = self.outstanding.len();
        self.outstanding.retain(|o| o.deadline_ns > now_ns);
        for _ in self.outstanding.len()..before {
            self.lost(now_ns);
        }
    }

    fn lost(&mut self, now_ns: u64) {
        self.rtt.backoff();
        self.policy.on_loss();
        self.next_beat_ns = self.next_beat_ns.min(now_ns + self.interval_ns());
        let ep = self.endpoint;
        self.shared.update_health(|h| h.failed_by(ep, now_ns, Reason::AckTimeout));
    }

    /// The transport could not send (connect refused, reset...).
    pub fn transport_failed(&mut self, now_ns: u64) {
        self.policy.on_trouble();
        let ep = self.endpoint;
        self.shared.update_health(|h| h.failed_by(ep, now_ns, Reason::ConnectFailed));
    }

    /// The connection could not be made for a reason `check()` should name (a TLS
    /// certificate refused); `transport_failed` counts the failure itself.
    pub fn connect_refused(&mut self, why: String) {
        self.shared.update_health(|h| {
            h.failed_because(why);
            None
        });
    }

    /// A datagram or TCP frame arrived from the monitor.
    pub fn on_frame(&mut self, bytes: &[u8], now_ns: u64) -> Heard {
        let Ok(f) = decode(bytes, self.key.as_ref()) else {
            return Heard::Nothing;
        };
        if self.leave_seq.is_some_and(|first| f.seq >= first) && f.kind == Kind::Ack {
            self.leave_acked = true;
            return Heard::Acked;
        }
        let Some(pos) = self.outstanding.iter().position(|o| o.seq == f.seq && o.sent_ns == f.ts_ns) else {
            if f.kind == Kind::Nack && (f.seq, f.ts_ns) == (0, 0) {
                // About the connection, not a beat (a TCP monitor refusing it): only noted
                // for `check()`'s message, not taken as a reply, since over UDP anyone
                // could send one.
                let reason = f.nack_reason.unwrap_or(NackReason::Unknown);
                self.shared.update_health(|h| {
                    h.refused(reason);
                    None
                });
            }
            return Heard::Nothing;
        };
        let o = self.outstanding.remove(pos);
        match f.kind {
            Kind::Ack => {
                let rtt_ns = now_ns.saturating_sub(o.sent_ns);
                metrics::get().acks_received.inc();
                metrics::get().rtt_seconds.observe(rtt_ns as f64 / 1e9);
                if f.interval_ms > 0 {
                    self.monitor_max_ns = u64::from(f.interval_ms) * 1_000_000;
                }
                // The policy looks at the sample against the estimate so far, then it joins it.
                self.policy.on_ack(rtt_ns, &self.rtt);
                self.rtt.sample(rtt_ns);
                let ep = self.endpoint;
                // A monitor older than the promise extension promises nothing: the TTL.
                let promise_ns = f.promise_ms.map(|ms| u64::from(ms) * 1_000_000);
                self.shared.update_health(|h| {
                    if h.epoch() == 0 {
                        h.registered_by(ep, 0, o.sent_ns, promise_ns)
                    } else {
                        h.acked_by(ep, o.sent_ns, promise_ns)
                    }
                });
                Heard::Acked
            }
            Kind::Nack => {
                let reason = f.nack_reason.unwrap_or(NackReason::Unknown);
                self.policy.on_trouble();
                let ep = self.endpoint;
                self.shared.update_health(|h| {
                    h.refused(reason);
                    h.failed_by(ep, now_ns, Reason::Rejected)
                });
                Heard::Refused(reason)
            }
            _ => Heard::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::{Config, Options, Role};
    use crate::events::State;
    use crate::proto::{Frame, FrameRef};

    const MS: u64 = 1_000_000;

    fn beater(interval: &str, ttl: &str) -> (Beater, Arc<ClientShared>, ManualClock) {
        let mut o = Options::new();
        for (k, v) in [
            ("endpoint", "udp://127.0.0.1:9"),
            ("instance_id", "b1"),
            ("service", "svc"),
            ("interval", interval),
            ("ttl", ttl),
        ] {
            o.set(k, v).unwrap();
        }
        let config = Config::resolve_with_env(&o, Role::Client, &|_| None).unwrap();
        let clock = ManualClock::new(1_000 * MS);
        let shared = Arc::new(ClientShared::new(config, Arc::new(clock.clone())));
        (Beater::new(Arc::clone(&shared), 0, clock.now_ns()).unwrap(), shared, clock)
    }

    fn sent(bytes: &[u8]) -> FrameRef<'_> {
        decode(bytes, None).unwrap()
    }

    fn ack_for(beat: &FrameRef<'_>, max_interval_ms: u32) -> Vec<u8> {
        let mut f = Frame::new(Kind::Ack, "mon");
        (f.seq, f.ts_ns, f.interval_ms) = (beat.seq, beat.ts_ns, max_interval_ms);
        let mut out = Vec::new();
        encode(&f, None, &mut out).unwrap();
        out
    }

    #[test]
    fn acks_register_then_steady_acks_lengthen_the_interval_up_to_the_monitors_cap() {
        let (mut b, shared, clock) = beater("100ms..10s", "60s");
        let mut out = Vec::new();
        assert!(b.on_timer(clock.now_ns(), &mut out));
        let f = sent(&out);
        assert_eq!((f.kind, f.seq, f.interval_ms, f.incarnation), (Kind::Beat, 1, 100, shared.incarnation));
        assert_eq!(f.incarnation_us, Some(shared.incarnation_us));
        assert!(f.flags.contains(Flags::ACK_REQ) && !f.flags.contains(Flags::STALLED));
        assert_eq!((f.service, f.id), (Some("svc"), "b1"));
        assert_eq!(f.rtt_us, None, "no RTT is known before the first ACK");
        clock.advance_ns(2 * MS);
        assert_eq!(b.on_frame(&ack_for(&f, 400), clock.now_ns()), Heard::Acked);
        let h = shared.health.lock().clone();
        assert_eq!((h.state(), h.epoch(), h.lease_id()), (State::Healthy, 1, 0));
        for _ in 0..30 {
            clock.set_ns(b.next_wakeup_ns());
            assert!(b.on_timer(clock.now_ns(), &mut out));
            let ack = ack_for(&sent(&out), 400);
            clock.advance_ns(2 * MS);
            assert_eq!(b.on_frame(&ack, clock.now_ns()), Heard::Acked);
        }
        // Every beat after the first ACK reports the smoothed RTT (2 ms here), in µs.
        assert_eq!(sent(&out).rtt_us, Some(2_000));
        // Grew from 100 ms, but never past the 400 ms the monitor accepts.
        assert_eq!(b.interval_ns(), 400 * MS);
        assert_eq!(shared.health.lock().epoch(), 1, "acks after the first do not bump the epoch");
    }

    #[test]
    fn every_beat_and_the_leave_carry_both_incarnations() {
        let (mut b, shared, clock) = beater("100ms", "3s");
        let mut out = Vec::new();
        for _ in 0..3 {
            clock.set_ns(b.next_wakeup_ns());
            assert!(b.on_timer(clock.now_ns(), &mut out));
            let f = sent(&out);
            assert_eq!((f.incarnation, f.incarnation_us), (shared.incarnation, Some(shared.incarnation_us)));
        }
        b.leave(clock.now_ns(), &mut out);
        let f = sent(&out);
        assert_eq!(f.kind, Kind::Leave);
        assert_eq!((f.incarnation, f.incarnation_us), (shared.incarnation, Some(shared.incarnation_us)));
    }

    #[test]
    fn three_losses_degrade_a_whole_ttl_without_ack_is_lost_and_an_ack_heals() {
        let (mut b, shared, clock) = beater("100ms", "3s");
        let mut out = Vec::new();
        b.on_timer(clock.now_ns(), &mut out);
        let ack = ack_for(&sent(&out), 0);
        b.on_frame(&ack, clock.now_ns() + MS);
        let mut states = vec![];
        let mut last = State::Healthy;
        for _ in 0..200 {
            clock.set_ns(b.next_wakeup_ns());
            b.on_timer(clock.now_ns(), &mut out);
            let s = shared.health.lock().state();
            if s != last {
                states.push(s);
                last = s;
            }
        }
        assert_eq!(states, vec![State::Degraded, State::Lost]);
        assert!(shared.health.lock().check(clock.now_ns()).is_err());
        clock.set_ns(b.next_wakeup_ns());
        b.on_timer(clock.now_ns(), &mut out);
        let ack = ack_for(&sent(&out), 0);
        assert_eq!(b.on_frame(&ack, clock.now_ns() + MS), Heard::Acked);
        assert_eq!(shared.health.lock().state(), State::Healthy);
    }

    #[test]
    fn a_late_beat_reports_the_stall_and_spoofed_acks_are_ignored() {
        let (mut b, _shared, clock) = beater("100ms", "3s");
        let mut out = Vec::new();
        b.on_timer(clock.now_ns(), &mut out);
        let first = sent(&out).to_owned();
        // The host froze for 700 ms past the next beat's schedule.
        clock.set_ns(b.next_wakeup_ns().max(clock.now_ns() + 100 * MS) + 700 * MS);
        b.on_timer(clock.now_ns(), &mut out);
        let f = sent(&out);
        assert!(f.flags.contains(Flags::STALLED));
        assert!(f.stall_ms >= 600, "{}", f.stall_ms);
        // Right seq, wrong timestamp: not an answer to anything we sent.
        let mut spoof = Frame::new(Kind::Ack, "mon");
        (spoof.seq, spoof.ts_ns) = (first.seq, first.ts_ns + 1);
        let mut bytes = Vec::new();
        encode(&spoof, None, &mut bytes).unwrap();
        assert_eq!(b.on_frame(&bytes, clock.now_ns()), Heard::Nothing);
        assert_eq!(b.on_frame(b"garbage", clock.now_ns()), Heard::Nothing);
    }

    fn ack_promising(beat: &Frame, promise_ms: Option<u32>) -> Vec<u8> {
        let mut f = Frame::new(Kind::Ack, "mon");
        (f.seq, f.ts_ns, f.promise_ms) = (beat.seq, beat.ts_ns, promise_ms);
        let mut out = Vec::new();
        encode(&f, None, &mut out).unwrap();
        out
    }

    #[test]
    fn beats_carry_the_ttl_and_validity_follows_the_acks_promise() {
        let (mut b, shared, clock) = beater("100ms", "3s");
        let mut out = Vec::new();
        assert!(b.on_timer(clock.now_ns(), &mut out));
        let f = sent(&out).to_owned();
        assert_eq!(f.ttl_ms, Some(3_000));
        let sent_ns = clock.now_ns();
        clock.advance_ns(2 * MS);
        // The monitor promised 800 ms: valid until send + 800 ms - 80 ms, not the TTL's 2.7 s.
        assert_eq!(b.on_frame(&ack_promising(&f, Some(800)), clock.now_ns()), Heard::Acked);
        assert_eq!(shared.health.lock().remaining_ns(sent_ns), 720 * MS);
        // A monitor older than promises: the TTL.
        clock.set_ns(b.next_wakeup_ns());
        assert!(b.on_timer(clock.now_ns(), &mut out));
        let f = sent(&out).to_owned();
        let sent_ns = clock.now_ns();
        assert_eq!(b.on_frame(&ack_promising(&f, None), clock.now_ns() + MS), Heard::Acked);
        assert_eq!(shared.health.lock().remaining_ns(sent_ns), 2_700 * MS);
        // The leave carries it too.
        b.leave(clock.now_ns(), &mut out);
        assert_eq!(sent(&out).ttl_ms, Some(3_000));
    }
}
