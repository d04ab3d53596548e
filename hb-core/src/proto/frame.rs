//! Frame types: the owned [`Frame`] for building and the borrowed [`FrameRef`] for reading.

use super::ext;

/// What a frame is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// "I am alive", client to monitor.
    Beat = 1,
    /// Monitor's answer to a beat that asked for one (echoes `ts_ns`).
    Ack = 2,
    /// Graceful goodbye: the sender is stopping on purpose.
    Leave = 3,
    /// Monitor refused the beat; `nack_reason` says why.
    Nack = 4,
}

impl Kind {
    /// The kind for a wire byte, or `None` if it is not one of ours.
    pub fn from_u8(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Beat),
            2 => Some(Kind::Ack),
            3 => Some(Kind::Leave),
            4 => Some(Kind::Nack),
            _ => None,
        }
    }
}

/// Bit set carried in the header. Unknown bits are reserved: senders send zero,
/// decoders drop them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u8);

impl Flags {
    /// Sender wants an ACK for this beat.
    pub const ACK_REQ: u8 = 0x01;
    /// Sender noticed it was paused (see `stall_ms`).
    pub const STALLED: u8 = 0x02;
    /// A tag follows the extensions. Set by [`encode`](super::encode) iff a key is given.
    pub const AUTH: u8 = 0x04;
    /// Sender is shutting down soon; do not page anyone if it goes quiet.
    pub const DRAINING: u8 = 0x08;
    /// Every bit v1 defines.
    pub const KNOWN: u8 = Self::ACK_REQ | Self::STALLED | Self::AUTH | Self::DRAINING;

    /// True if every bit of `bit` is set.
    pub fn contains(self, bit: u8) -> bool {
        self.0 & bit == bit
    }

    /// These flags plus `bit`.
    pub fn with(self, bit: u8) -> Flags {
        Flags(self.0 | bit)
    }

    /// These flags minus `bit`.
    pub fn without(self, bit: u8) -> Flags {
        Flags(self.0 & !bit)
    }
}

/// Why a monitor sent a NACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NackReason {
    /// Also what any code this version does not know decodes to.
    Unknown = 0,
    AuthRequired = 1,
    BadTag = 2,
    Replay = 3,
    TooManyPeers = 4,
    IntervalTooLong = 5,
    Malformed = 6,
    /// Another process is beating under this id (see docs/protocol.md, "Claims").
    Conflict = 7,
    /// TCP: the monitor holds as many connections as it takes (from this host, or in all).
    TooManyConnections = 8,
    /// tls://: the beat's id is not one the client's certificate names.
    IdMismatch = 9,
    /// tls://: the client presented no certificate.
    CertRequired = 10,
    /// tls://: the client's certificate is not signed by the monitor's CA.
    CertUntrusted = 11,
    /// tls://: the client's certificate has expired (by the monitor's clock).
    CertExpired = 12,
    /// tls://: the client's certificate is not valid yet (by the monitor's clock).
    CertNotYetValid = 13,
    /// tls://: the client's certificate is refused for another reason (revoked, wrong
    /// purpose, bad encoding).
    CertInvalid = 14,
}

impl NackReason {
    /// Total: codes from a newer peer become `Unknown` rather than an error.
    pub fn from_u8(byte: u8) -> NackReason {
        match byte {
            1 => NackReason::AuthRequired,
            2 => NackReason::BadTag,
            3 => NackReason::Replay,
            4 => NackReason::TooManyPeers,
            5 => NackReason::IntervalTooLong,
            6 => NackReason::Malformed,
            7 => NackReason::Conflict,
            8 => NackReason::TooManyConnections,
            9 => NackReason::IdMismatch,
            10 => NackReason::CertRequired,
            11 => NackReason::CertUntrusted,
            12 => NackReason::CertExpired,
            13 => NackReason::CertNotYetValid,
            14 => NackReason::CertInvalid,
            _ => NackReason::Unknown,
        }
    }

    /// The reason's name, as docs/protocol.md and the test vectors spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            NackReason::Unknown => "unknown",
            NackReason::AuthRequired => "auth_required",
            NackReason::BadTag => "bad_tag",
            NackReason::Replay => "replay",
            NackReason::TooManyPeers => "too_many_peers",
            NackReason::IntervalTooLong => "interval_too_long",
            NackReason::Malformed => "malformed",
            NackReason::Conflict => "conflict",
            NackReason::TooManyConnections => "too_many_connections",
            NackReason::IdMismatch => "id_mismatch",
            NackReason::CertRequired => "cert_required",
            NackReason::CertUntrusted => "cert_untrusted",
            NackReason::CertExpired => "cert_expired",
            NackReason::CertNotYetValid => "cert_not_yet_valid",
            NackReason::CertInvalid => "cert_invalid",
        }
    }
}

/// Owned frame (used to build outgoing frames; tests; slow paths).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub flags: Flags,
    /// Per-incarnation counter; the monitor requires it to increase (replay, loss).
    pub seq: u32,
    /// Sender's monotonic clock, echoed verbatim in ACK.
    pub ts_ns: u64,
    /// BEAT: sender's current interval; ACK: longest interval the monitor accepts.
    pub interval_ms: u32,
    /// Bumps on every process start, so a restart is not mistaken for a resurrection.
    pub incarnation: u32,
    /// How late this beat left versus schedule.
    pub stall_ms: u16,
    /// 1..=64 bytes UTF-8.
    pub id: String,
    pub service: Option<String>,
    pub labels: Vec<(String, String)>,
    /// W3C traceparent, format "00-<32hex>-<16hex>-<2hex>".
    pub traceparent: Option<String>,
    /// Sender load hint (per-mille).
    pub load: Option<u16>,
    pub nack_reason: Option<NackReason>,
    /// Sender's smoothed round-trip time to this receiver, in µs (BEAT, once known).
    pub rtt_us: Option<u32>,
    /// The incarnation at full resolution (BEAT and LEAVE): µs since the Unix epoch at
    /// process start, strictly increasing within the process. When present it orders
    /// incarnations; `incarnation` (tenths of a second) stays for monitors that predate it.
    pub incarnation_us: Option<u64>,
    /// The client's TTL in ms (BEAT and LEAVE): the monitor reports the peer dead no later
    /// than this after its last beat arrived.
    pub ttl_ms: Option<u32>,
    /// ACK: the monitor's promise, in ms from its receive time of the acknowledged beat,
    /// not to report the peer dead before then. The client fences on it.
    pub promise_ms: Option<u32>,
    /// BEAT and LEAVE with a key: the sender's wall clock when sending, ms since the Unix
    /// epoch, so a keyed monitor refuses frames captured long ago.
    pub sent_unix_ms: Option<u64>,
}

impl Frame {
    /// A BEAT from `id` with every other field zero or empty.
    pub fn beat(id: impl Into<String>) -> Frame {
        Frame::new(Kind::Beat, id)
    }

    /// A frame of `kind` from `id` with every other field zero or empty.
    pub fn new(kind: Kind, id: impl Into<String>) -> Frame {
        Frame {
            kind,
            flags: Flags::default(),
            seq: 0,
            ts_ns: 0,
            interval_ms: 0,
            incarnation: 0,
            stall_ms: 0,
            id: id.into(),
            service: None,
            labels: Vec::new(),
            traceparent: None,
            load: None,
            nack_reason: None,
            rtt_us: None,
            incarnation_us: None,
            ttl_ms: None,
            promise_ms: None,
            sent_unix_ms: None,
        }
    }
}

/// Borrowed, zero-allocation view of a decoded datagram: the monitor's hot path uses this.
/// Only [`decode`](super::decode) makes one, so every field is already validated.
#[derive(Clone, Copy, Debug)]
pub struct FrameRef<'a> {
    pub kind: Kind,
    pub flags: Flags,
    pub seq: u32,
    pub ts_ns: u64,
    pub interval_ms: u32,
    pub incarnation: u32,
    pub stall_ms: u16,
    pub id: &'a str,
    pub service: Option<&'a str>,
    pub traceparent: Option<&'a str>,
    pub load: Option<u16>,
    pub nack_reason: Option<NackReason>,
    pub rtt_us: Option<u32>,
    pub incarnation_us: Option<u64>,
    pub ttl_ms: Option<u32>,
    pub promise_ms: Option<u32>,
    pub sent_unix_ms: Option<u64>,
    /// The whole (already validated) TLV region; `labels()` walks it lazily so decoding
    /// needs no allocation however many labels there are.
    pub(super) labels_raw: &'a [u8],
}

impl<'a> FrameRef<'a> {
    /// Labels in wire order.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        ext::labels(self.labels_raw)
    }

    /// Copy into an owned [`Frame`] (allocates).
    pub fn to_owned(&self) -> Frame {
        Frame {
            kind: self.kind,
            flags: self.flags,
            seq: self.seq,
            ts_ns: self.ts_ns,
            interval_ms: self.interval_ms,
            incarnation: self.incarnation,
            stall_ms: self.stall_ms,
            id: self.id.to_owned(),
            service: self.service.map(str::to_owned),
            labels: self.labels().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            traceparent: self.traceparent.map(str::to_owned),
            load: self.load,
            nack_reason: self.nack_reason,
            rtt_us: self.rtt_us,
            incarnation_us: self.incarnation_us,
            ttl_ms: self.ttl_ms,
            promise_ms: self.promise_ms,
            sent_unix_ms: self.sent_unix_ms,
        }
    }
}
