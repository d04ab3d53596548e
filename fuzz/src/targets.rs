//! The bodies of the fuzz targets, one function per target. cargo-fuzz runs them from
//! `fuzz_targets/*.rs` (nightly, libFuzzer); `hb-core/tests/fuzz_corpus.rs` includes this
//! file and replays every committed input of `fuzz/corpus/<target>/` through the same
//! functions on stable `cargo test`. Only hb-core's public API is used. A panic (a failed
//! assert included) is a finding.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use hb_core::client::probe::{ReplyOutcome, ReplyProbe};
use hb_core::config::{Options, OPTION_KEYS};
use hb_core::monitor::table::{PeerTable, Source, TableConfig, Transport};
use hb_core::proto::stream::{StreamDecoder, PREFIX_LEN};
use hb_core::proto::MAX_FRAME_LEN;
use hb_core::proto::{decode as decode_frame, encode, AuthKey, DecodeError, Flags, Frame, Kind, NackReason};
use hb_core::registry::RegistrationValue;
use hb_core::{DetectorKind, Error, EventHub, Reason, State};

/// A target's body: takes the fuzz input, panics on a finding.
pub type Body = fn(&[u8]);

/// Every target, by the name of its `fuzz_targets/` file and corpus directory.
pub const TARGETS: &[(&str, Body)] = &[
    ("decode", decode),
    ("stream", stream),
    ("reply", reply),
    ("table", table),
    ("options", options),
    ("registry_value", registry_value),
];

/// Reads the fuzz input as a sequence of small values; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// Up to `n` bytes.
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

// -- decode ------------------------------------------------------------------------------

/// Whatever decodes (with and without a key) re-encodes and decodes to the same fields.
pub fn decode(data: &[u8]) {
    // A fixed key: the fuzzer cannot forge tags, but this drives the verify path.
    let key = AuthKey::new(b"fuzz key").expect("non-empty key");
    round_trip(data, None);
    round_trip(data, Some(&key));
}

fn round_trip(bytes: &[u8], key: Option<&AuthKey>) {
    let Ok(frame) = decode_frame(bytes, key) else {
        return;
    };
    let owned = frame.to_owned();
    let mut again = Vec::new();
    encode(&owned, key, &mut again).expect("a decoded frame re-encodes");
    let back = decode_frame(&again, key).expect("a re-encoded frame decodes").to_owned();
    // encode sets AUTH iff a key is given, so compare everything else.
    let normalize = |f: Frame| Frame { flags: f.flags.without(Flags::AUTH), ..f };
    assert_eq!(normalize(back), normalize(owned));
}

// -- stream ------------------------------------------------------------------------------

/// The TCP stream decoder, fed the input in pieces whose sizes the input chooses, hands out
/// exactly the frames (and the error) that reading the whole input at once by the
/// documented rule gives: u16 big-endian length, 1..=MAX_FRAME_LEN, then the frame.
pub fn stream(data: &[u8]) {
    let mut input = Input(data);
    let cuts = usize::from(input.u8() % 16);
    let sizes: Vec<usize> = (0..cuts).map(|_| usize::from(input.u8())).collect();
    let bytes = input.0;

    let (want_frames, want_error) = reference_stream(bytes);

    let mut d = StreamDecoder::new();
    let (mut got, mut error, mut rest) = (Vec::new(), None, bytes);
    let mut size = sizes.iter().cycle();
    while error.is_none() {
        let n = if rest.is_empty() { 0 } else { size.next().map_or(rest.len(), |&s| s.max(1)).min(rest.len()) };
        let (piece, after) = rest.split_at(n);
        rest = after;
        d.push(piece);
        loop {
            match d.next_frame() {
                Ok(Some(frame)) => {
                    assert!(!frame.is_empty() && frame.len() <= MAX_FRAME_LEN, "frame of {} bytes", frame.len());
                    got.push(frame.to_vec());
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if rest.is_empty() && error.is_none() {
            break;
        }
    }
    assert_eq!(got, want_frames, "frames differ from a one-shot read");
    assert_eq!(error, want_error);
    if error.is_none() {
        let consumed: usize = got.iter().map(|f| f.len() + PREFIX_LEN).sum();
        assert_eq!(d.is_partial(), consumed < bytes.len(), "is_partial after {consumed} of {} bytes", bytes.len());
    }
}

fn reference_stream(mut bytes: &[u8]) -> (Vec<Vec<u8>>, Option<DecodeError>) {
    let mut frames = Vec::new();
    while bytes.len() >= PREFIX_LEN {
        let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        if len == 0 {
            return (frames, Some(DecodeError::TooShort));
        }
        if len > MAX_FRAME_LEN {
            return (frames, Some(DecodeError::TooLong));
        }
        let Some(frame) = bytes.get(PREFIX_LEN..PREFIX_LEN + len) else {
            break;
        };
        frames.push(frame.to_vec());
        bytes = &bytes[PREFIX_LEN + len..];
    }
    (frames, None)
}

// -- reply -------------------------------------------------------------------------------

/// The client's ACK/NACK handling (the beater the UDP and TCP tasks run), driven by beats,
/// time, replies forged to match a sent beat, and raw bytes. A reply counts once; bytes
/// that do not decode are ignored; the interval stays within its bounds.
pub fn reply(data: &[u8]) {
    let mut input = Input(data);
    let mut p = ReplyProbe::new("10ms..2s", "5s").expect("valid options");
    let mut sent: Vec<(u32, u64)> = Vec::new();
    let mut leave_seq = None;
    for _ in 0..256 {
        if input.is_empty() {
            break;
        }
        match input.u8() % 8 {
            0 => {
                if let Some(bytes) = p.next_beat() {
                    let f = decode_frame(&bytes, None).expect("our own beat decodes");
                    assert_eq!(f.kind, Kind::Beat);
                    sent.push((f.seq, f.ts_ns));
                }
            }
            1 => p.advance_ns(u64::from(input.u16()) * 1_000_000),
            2 | 3 => {
                // An ACK or NACK for one of the beats sent (or for a made-up one).
                let pick = usize::from(input.u8());
                let (seq, ts_ns) = sent.get(pick).copied().unwrap_or((input.u32(), u64::from(input.u32())));
                let nack = input.u8() % 2 == 1;
                let mut f = Frame::new(if nack { Kind::Nack } else { Kind::Ack }, "mon");
                (f.seq, f.ts_ns, f.interval_ms) = (seq, ts_ns, input.u32());
                if nack {
                    f.nack_reason = Some(NackReason::from_u8(input.u8()));
                } else if input.u8() % 2 == 1 {
                    f.promise_ms = Some(input.u32());
                }
                let mut bytes = Vec::new();
                encode(&f, None, &mut bytes).expect("a reply encodes");
                let first = p.reply(&bytes);
                let to_beat = sent.iter().position(|&s| s == (seq, ts_ns));
                // Once stopping, an ACK at or after the LEAVE's seq confirms the LEAVE.
                let leave_ack = !nack && leave_seq.is_some_and(|l| seq >= l);
                if to_beat.is_none() && !leave_ack {
                    assert_eq!(first, ReplyOutcome::Ignored, "a reply to nothing sent was taken");
                }
                if let (Some(i), false) = (to_beat, leave_ack) {
                    if first != ReplyOutcome::Ignored {
                        // Taken: that beat is answered, a second copy is not a reply.
                        assert_eq!(p.reply(&bytes), ReplyOutcome::Ignored, "the same reply counted twice");
                        sent.remove(i);
                    }
                    // An ACK whose promise gives no validity (promise_ms 0, or within the
                    // safety margin) leaves the state as it was: only a valid one counts.
                    if first == ReplyOutcome::Acked && p.check() {
                        assert!(
                            matches!(p.health(), State::Healthy | State::Degraded),
                            "acked, valid, {:?}",
                            p.health()
                        );
                    }
                }
            }
            4 => {
                let len = usize::from(input.u8());
                let bytes = input.bytes(len);
                let outcome = p.reply(bytes);
                if decode_frame(bytes, None).is_err() {
                    assert_eq!(outcome, ReplyOutcome::Ignored, "undecodable bytes were taken as a reply");
                }
            }
            5 if leave_seq.is_none() => {
                let bytes = p.leave();
                let f = decode_frame(&bytes, None).expect("our own LEAVE decodes");
                assert!(f.kind == Kind::Leave && f.flags.contains(Flags::ACK_REQ));
                leave_seq = Some(f.seq);
            }
            6 => {
                if let Some(seq) = leave_seq {
                    let mut f = Frame::new(Kind::Ack, "mon");
                    f.seq = seq;
                    let mut bytes = Vec::new();
                    encode(&f, None, &mut bytes).expect("an ACK encodes");
                    assert_eq!(p.reply(&bytes), ReplyOutcome::Acked);
                    assert!(p.leave_acked());
                }
            }
            _ => {
                let _ = p.check();
            }
        }
        let interval = p.interval_ns();
        assert!((1_000_000..=2_000_000_000).contains(&interval), "interval {interval} ns out of 10ms..2s");
        assert!(p.rto_ns() > 0);
        assert!(
            matches!(p.health(), State::Unknown | State::Healthy | State::Degraded | State::Lost),
            "{:?}",
            p.health()
        );
    }
}

// -- table -------------------------------------------------------------------------------

/// Transitions a monitor may report (docs/states.md, "A peer, as a Monitor sees it"). A
/// new kind of event must be added here (and there) deliberately.
fn allowed(from: State, to: State, reason: Reason) -> bool {
    use Reason as R;
    use State as S;
    matches!(
        (from, to, reason),
        (S::Unknown, S::Alive, R::Registered)
            | (S::Left, S::Alive, R::Registered)
            | (S::Alive, S::Suspect, R::Timeout | R::Flapping)
            | (S::Suspect, S::Dead, R::Timeout)
            | (S::Suspect | S::Dead, S::Alive, R::Recovered)
            | (_, S::Alive, R::Restarted)
            | (_, S::Left, R::Left)
            // Two processes under one id: reported in place, or the displaced one took it back.
            | (S::Alive, S::Alive, R::Conflict)
            | (S::Suspect, S::Suspect, R::Conflict)
            | (_, S::Alive, R::Conflict)
            // Forgotten to make room in a full table.
            | (S::Alive | S::Suspect, S::Dead, R::Evicted)
    )
}

const TABLE_IDS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const TABLE_MAX_PEERS: usize = 4;

/// The monitor's peer table driven through its public API by frames (made from a few input
/// bytes, or raw) and clock moves with sweeps. After every step: counts match the peers
/// listed, the table never exceeds max_peers, and every event is an allowed transition
/// from the state last reported for that peer.
pub fn table(data: &[u8]) {
    let mut input = Input(data);
    let check_replay = input.u8() % 2 == 1;
    let events = EventHub::new(1 << 16);
    let mut now_ns: u64 = 1_000_000_000;
    let cfg = TableConfig::new(DetectorKind::Adaptive, TABLE_MAX_PEERS, check_replay);
    let mut t = PeerTable::new(cfg, std::sync::Arc::clone(&events), now_ns);
    let mut last: BTreeMap<String, State> = BTreeMap::new();
    for _ in 0..128 {
        if input.is_empty() {
            break;
        }
        let before: BTreeSet<String> = peers_of(&t, now_ns).into_iter().map(|p| p.id).collect();
        match input.u8() % 4 {
            0 | 1 => {
                let op = input.u8();
                let mut f = Frame::new(
                    if op & 0x80 != 0 { Kind::Leave } else { Kind::Beat },
                    TABLE_IDS[usize::from(op & 7) % 6],
                );
                f.flags = Flags(input.u8() & 0x0f & !Flags::AUTH);
                f.seq = input.u32();
                f.ts_ns = now_ns;
                f.interval_ms = u32::from(input.u16());
                f.incarnation = input.u32();
                if op & 0x40 != 0 {
                    f.incarnation_us = Some(u64::from(input.u32()) << 16);
                }
                if op & 0x20 != 0 {
                    f.ttl_ms = Some(u32::from(input.u16()) * 10);
                }
                f.service = (op & 0x10 != 0).then(|| "svc".to_string());
                let mut bytes = Vec::new();
                if encode(&f, None, &mut bytes).is_ok() {
                    ingest(&mut t, &bytes, input.u8(), now_ns);
                }
            }
            2 => {
                let len = usize::from(input.u8());
                let bytes = input.bytes(len);
                ingest(&mut t, bytes, input.u8(), now_ns);
            }
            _ => {
                let planned = t.plan_sweep(now_ns, 1_000_000_000);
                let _ = t.take_sweep_sooner();
                // Late by up to ~65 s: also a monitor pause.
                let late = u64::from(input.u16()) * 1_000_000;
                now_ns = planned.max(now_ns).saturating_add(late);
                t.sweep(planned, now_ns);
            }
        }
        while let Ok(Some(ev)) = events.next_event(Some(std::time::Duration::ZERO)) {
            let known = last.get(&ev.peer).copied().unwrap_or(State::Unknown);
            // A reaped peer is forgotten without an event: it comes back from `unknown`.
            let reaped = !before.contains(&ev.peer) && ev.from == State::Unknown;
            assert!(
                ev.from == known || reaped,
                "{} went {} -> {} but was last reported {known}",
                ev.peer,
                ev.from,
                ev.to
            );
            assert!(
                allowed(ev.from, ev.to, ev.reason),
                "{} -> {} ({}) is not a monitor transition",
                ev.from,
                ev.to,
                ev.reason
            );
            last.insert(ev.peer.clone(), ev.to);
        }
        let peers = peers_of(&t, now_ns);
        assert!(t.len() <= TABLE_MAX_PEERS, "{} peers tracked, max {TABLE_MAX_PEERS}", t.len());
        // Peers on probation are tracked but not listed (docs/states.md, "A full table").
        assert_eq!(peers.len() + t.counts().on_probation, t.len());
        let c = t.counts();
        let count = |s: State| peers.iter().filter(|p| p.state == s).count();
        assert_eq!(
            (c.alive, c.suspect, c.dead, c.left),
            (count(State::Alive), count(State::Suspect), count(State::Dead), count(State::Left)),
            "counts disagree with the peers listed"
        );
        for p in &peers {
            assert_eq!(last.get(&p.id), Some(&p.state), "{} is {} but its events said otherwise", p.id, p.state);
        }
    }
}

fn peers_of(t: &PeerTable, now_ns: u64) -> Vec<hb_core::PeerInfo> {
    t.rows(now_ns).into_iter().map(|r| r.info(0)).collect()
}

fn ingest(t: &mut PeerTable, bytes: &[u8], from: u8, now_ns: u64) {
    let Ok(f) = decode_frame(bytes, None) else {
        return;
    };
    let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1 + (from & 3)], 4000 + u16::from(from >> 4)));
    let transport = if from & 8 != 0 { Transport::Tcp } else { Transport::Udp };
    let _ = t.ingest(&f, Source { addr, transport }, now_ns);
}

// -- options -----------------------------------------------------------------------------

/// `Options::set(key, value)` never panics, and a refusal is a configuration error that
/// names the option (or, for an unknown key, says `option` and quotes the key).
pub fn options(data: &[u8]) {
    let mut input = Input(data);
    let mut o = Options::new();
    for _ in 0..8 {
        if input.is_empty() {
            break;
        }
        let which = usize::from(input.u8());
        let len = usize::from(input.u8());
        let value = String::from_utf8_lossy(input.bytes(len)).into_owned();
        let unknown;
        let key = match OPTION_KEYS.get(which) {
            Some(k) => *k,
            None => {
                unknown = format!("k{which}");
                &unknown
            }
        };
        match o.set(key, &value) {
            Ok(()) => {}
            Err(Error::Config { field, value: shown, .. }) => {
                if OPTION_KEYS.contains(&key) {
                    // `label`/`labels` name the label at fault: `label key`, `label zone`.
                    let names_it = field == key || key.starts_with("label") && field.starts_with("label");
                    assert!(names_it, "set({key:?}, {value:?}) failed naming {field:?}");
                } else {
                    assert_eq!((field.as_str(), shown.as_str()), ("option", key), "unknown key");
                }
            }
            Err(e) => panic!("set({key:?}, {value:?}) failed with a non-config error: {e}"),
        }
    }
}

// -- registry_value ----------------------------------------------------------------------

/// A registration value read from etcd: any bytes parse or not without panicking, and what
/// parses writes back to the same value.
pub fn registry_value(data: &[u8]) {
    if let Some(v) = RegistrationValue::parse(data) {
        let again = v.to_json();
        assert_eq!(RegistrationValue::parse(&again).as_ref(), Some(&v), "a parsed value does not round-trip");
        let _ = v.is_leaving();
    }
}
