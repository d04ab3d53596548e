//! Encodes ACK and NACK frames without allocating: one reusable [`Frame`] per listener.

use crate::proto::{encode, AuthKey, Flags, Frame, Kind};

use super::table::Reply;

pub struct ReplyEncoder {
    frame: Frame,
    key: Option<AuthKey>,
}

impl ReplyEncoder {
    /// `monitor_id` names the monitor in its replies; `max_interval_ms` is the longest
    /// interval it accepts, carried in every ACK.
    pub fn new(monitor_id: &str, key: Option<AuthKey>, max_interval_ms: u32) -> ReplyEncoder {
        let mut frame = Frame::new(Kind::Ack, monitor_id);
        frame.interval_ms = max_interval_ms;
        ReplyEncoder { frame, key }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{decode, NackReason};

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
