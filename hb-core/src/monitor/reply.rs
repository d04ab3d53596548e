//! Encodes ACK and NACK frames without allocating: one reusable [`Frame`] per listener.
//!
//! A UDP source address can be forged, so a reply to a sender that has not proved it holds
//! our key is never larger than the frame it answers ([`ReplyEncoder::encode_capped`]):
//! the monitor cannot be used to amplify a flood at someone else. NACKs to such senders are
//! also rate-limited ([`NackBudget`]).

use std::time::Instant;

use crate::proto::{encode, AuthKey, Flags, Frame, Kind};

use super::table::Reply;

pub struct ReplyEncoder {
    frame: Frame,
    key: Option<AuthKey>,
    /// Swapped in for the monitor's id when a full reply would outgrow its request.
    short_id: String,
}

impl ReplyEncoder {
    /// `monitor_id` names the monitor in its replies; `max_interval_ms` is the longest
    /// interval it accepts, carried in every ACK.
    pub fn new(monitor_id: &str, key: Option<AuthKey>, max_interval_ms: u32) -> ReplyEncoder {
        let mut frame = Frame::new(Kind::Ack, monitor_id);
        frame.interval_ms = max_interval_ms;
        ReplyEncoder { frame, key, short_id: SHORT_ID.to_owned() }
    }

    /// Appends the encoded reply to `out`. False if it could not be encoded (cannot happen
    /// with a valid monitor id; the reply is then skipped).
    pub fn encode(&mut self, reply: &Reply, out: &mut Vec<u8>) -> bool {
        let f = &mut self.frame;
        match *reply {
            Reply::Ack { seq, ts_ns, promise_ms } => {
                f.kind = Kind::Ack;
                (f.seq, f.ts_ns, f.nack_reason, f.promise_ms) = (seq, ts_ns, None, promise_ms);
            }
            Reply::Nack { seq, ts_ns, reason } => {
                f.kind = Kind::Nack;
                (f.seq, f.ts_ns, f.nack_reason, f.promise_ms) = (seq, ts_ns, Some(reason), None);
            }
        }
        f.flags = Flags::default();
        encode(f, self.key.as_ref(), out).is_ok()
    }

    /// Appends the reply to a frame of `request_len` bytes from a sender that did not prove
    /// it holds our key (no key configured, or its frame was untagged): untagged, and no
    /// larger than the request — with a one-letter monitor id if need be (clients do not read
    /// it), else not at all. False when nothing was appended.
    pub fn encode_capped(&mut self, reply: &Reply, request_len: usize, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let key = self.key.take();
        let mut fits = self.encode(reply, out) && out.len() - start <= request_len;
        if !fits {
            out.truncate(start);
            std::mem::swap(&mut self.frame.id, &mut self.short_id);
            fits = self.encode(reply, out) && out.len() - start <= request_len;
            std::mem::swap(&mut self.frame.id, &mut self.short_id);
        }
        self.key = key;
        if !fits {
            out.truncate(start);
        }
        fits
    }
}

/// The monitor id in a reply cut down to fit its request.
const SHORT_ID: &str = "m";

/// NACKs a listener sends to senders that did not prove they hold our key: at most
/// `RATE` a second, in bursts of up to `RATE` (a token bucket).
pub struct NackBudget {
    tokens: f64,
    last: Instant,
}

impl NackBudget {
    pub const RATE: f64 = 1_000.0;

    pub fn new() -> NackBudget {
        NackBudget { tokens: Self::RATE, last: Instant::now() }
    }

    /// Takes one NACK from the budget; false when it is spent.
    pub fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * Self::RATE;
        self.tokens = (self.tokens + earned).min(Self::RATE);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{decode, NackReason};

    #[test]
    fn a_reply_to_an_unproved_sender_never_outgrows_its_request() {
        let key = AuthKey::new(b"0123456789abcdef").unwrap();
        let mut enc = ReplyEncoder::new("monitor-with-a-long-name.example", Some(key), 30_000);
        let nack = Reply::Nack { seq: 1, ts_ns: 2, reason: NackReason::AuthRequired };
        let mut out = vec![0xAA];
        // Full size: 27 + 1 + 32 + 2 + 3 = 65 bytes untagged; short id: 34.
        assert!(enc.encode_capped(&nack, 65, &mut out));
        assert_eq!(out.len() - 1, 65);
        let f = decode(&out[1..], None).unwrap();
        assert_eq!(
            (f.kind, f.nack_reason, f.id),
            (Kind::Nack, Some(NackReason::AuthRequired), "monitor-with-a-long-name.example")
        );
        out.truncate(1);
        assert!(enc.encode_capped(&nack, 40, &mut out));
        assert_eq!(decode(&out[1..], None).unwrap().id, "m");
        assert!(out.len() - 1 <= 40);
        out.truncate(1);
        assert!(!enc.encode_capped(&nack, 33, &mut out), "the smallest NACK is 34 bytes");
        assert_eq!(out, vec![0xAA]);
        // The full id is back for the next reply.
        assert!(enc.encode_capped(&nack, 1000, &mut out));
        assert_eq!(decode(&out[1..], None).unwrap().id, "monitor-with-a-long-name.example");
    }

    #[test]
    fn the_nack_budget_is_spent_then_refills() {
        let mut b = NackBudget::new();
        let sent = (0..5_000).filter(|_| b.take()).count();
        assert!((1_000..1_100).contains(&sent), "{sent}");
        b.last -= std::time::Duration::from_millis(100);
        assert!((0..200).filter(|_| b.take()).count() >= 100);
    }

    #[test]
    fn ack_echoes_seq_and_ts_and_carries_the_interval_and_promise() {
        let key = AuthKey::new(b"0123456789abcdef").unwrap();
        let mut enc = ReplyEncoder::new("mon-1", Some(key.clone()), 30_000);
        let mut out = Vec::new();
        assert!(enc.encode(&Reply::Ack { seq: 7, ts_ns: 123_456_789, promise_ms: Some(1_500) }, &mut out));
        let f = decode(&out, Some(&key)).unwrap();
        assert_eq!((f.kind, f.seq, f.ts_ns, f.interval_ms, f.id), (Kind::Ack, 7, 123_456_789, 30_000, "mon-1"));
        assert_eq!(f.promise_ms, Some(1_500));
        out.clear();
        assert!(enc.encode(&Reply::Nack { seq: 8, ts_ns: 1, reason: NackReason::TooManyPeers }, &mut out));
        let f = decode(&out, Some(&key)).unwrap();
        assert_eq!((f.kind, f.nack_reason, f.promise_ms), (Kind::Nack, Some(NackReason::TooManyPeers), None));
        out.clear();
        assert!(enc.encode(&Reply::Ack { seq: 9, ts_ns: 2, promise_ms: None }, &mut out));
        assert_eq!(decode(&out, Some(&key)).unwrap().promise_ms, None, "a LEAVE's ACK promises nothing");
    }
}
