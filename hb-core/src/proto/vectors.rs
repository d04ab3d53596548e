//! Test vectors in `tests/vectors/*.json` (repo root), checked both ways:
//! decode(hex) == fields, and encode(fields) == hex. They were generated once by this
//! encoder and are kept as data, so a change in the wire format shows up as a failure here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct Vector {
    pub name: String,
    pub description: String,
    pub hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hex: Option<String>,
    /// Expected decode result for a valid vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameJson>,
    /// True when the hex is not what our encoder emits (e.g. it carries an unknown
    /// extension), so only the decode direction is checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decode_only: bool,
    /// `DecodeError::reason()` for an invalid vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error's Display text, so bindings can check their messages too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct FrameJson {
    pub kind: String,
    pub flags: u8,
    pub seq: u32,
    pub ts_ns: u64,
    pub interval_ms: u32,
    pub incarnation: u32,
    pub stall_ms: u16,
    pub id: String,
    pub service: Option<String>,
    pub labels: Vec<(String, String)>,
    pub traceparent: Option<String>,
    pub load: Option<u16>,
    pub nack_reason: Option<String>,
    /// Absent in vectors written before the extension existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<u32>,
    /// Absent in vectors written before the extension existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation_us: Option<u64>,
    /// Absent in vectors written before the extension existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u32>,
    /// Absent in vectors written before the extension existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promise_ms: Option<u32>,
    /// Absent in vectors written before the extension existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_unix_ms: Option<u64>,
}

const KINDS: [(Kind, &str); 4] =
    [(Kind::Beat, "beat"), (Kind::Ack, "ack"), (Kind::Leave, "leave"), (Kind::Nack, "nack")];

/// Every reason, by its wire code: the vectors name them as `NackReason::as_str` does.
const NACK_REASONS: [NackReason; 15] = [
    NackReason::Unknown,
    NackReason::AuthRequired,
    NackReason::BadTag,
    NackReason::Replay,
    NackReason::TooManyPeers,
    NackReason::IntervalTooLong,
    NackReason::Malformed,
    NackReason::Conflict,
    NackReason::TooManyConnections,
    NackReason::IdMismatch,
    NackReason::CertRequired,
    NackReason::CertUntrusted,
    NackReason::CertExpired,
    NackReason::CertNotYetValid,
    NackReason::CertInvalid,
];

fn name_of<T: PartialEq + Copy>(table: &[(T, &'static str)], v: T) -> String {
    table.iter().find(|(t, _)| *t == v).map(|(_, n)| n.to_string()).unwrap()
}

fn value_of<T: Copy>(table: &[(T, &'static str)], name: &str) -> T {
    let found = table.iter().find(|(_, n)| *n == name);
    found.map(|(t, _)| *t).unwrap_or_else(|| panic!("unknown name {name:?}"))
}

impl FrameJson {
    pub fn from_frame(f: &Frame) -> FrameJson {
        FrameJson {
            kind: name_of(&KINDS, f.kind),
            flags: f.flags.0,
            seq: f.seq,
            ts_ns: f.ts_ns,
            interval_ms: f.interval_ms,
            incarnation: f.incarnation,
            stall_ms: f.stall_ms,
            id: f.id.clone(),
            service: f.service.clone(),
            labels: f.labels.clone(),
            traceparent: f.traceparent.clone(),
            load: f.load,
            nack_reason: f.nack_reason.map(|r| r.as_str().to_owned()),
            rtt_us: f.rtt_us,
            incarnation_us: f.incarnation_us,
            ttl_ms: f.ttl_ms,
            promise_ms: f.promise_ms,
            sent_unix_ms: f.sent_unix_ms,
        }
    }

    fn to_frame(&self) -> Frame {
        Frame {
            kind: value_of(&KINDS, &self.kind),
            flags: Flags(self.flags),
            seq: self.seq,
            ts_ns: self.ts_ns,
            interval_ms: self.interval_ms,
            incarnation: self.incarnation,
            stall_ms: self.stall_ms,
            id: self.id.clone(),
            service: self.service.clone(),
            labels: self.labels.clone(),
            traceparent: self.traceparent.clone(),
            load: self.load,
            nack_reason: self.nack_reason.as_deref().map(|n| {
                *NACK_REASONS.iter().find(|r| r.as_str() == n).unwrap_or_else(|| panic!("unknown nack reason {n:?}"))
            }),
            rtt_us: self.rtt_us,
            incarnation_us: self.incarnation_us,
            ttl_ms: self.ttl_ms,
            promise_ms: self.promise_ms,
            sent_unix_ms: self.sent_unix_ms,
        }
    }
}

pub(super) fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn load_all() -> Vec<(PathBuf, Vector)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/vectors exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect()
}

fn check(v: &Vector) {
    let bytes = hex::decode(&v.hex).expect("hex");
    let key = v.key_hex.as_ref().map(|k| AuthKey::new(&hex::decode(k).unwrap()).unwrap());
    match (&v.frame, &v.error) {
        (Some(expect), None) => {
            let got = decode(&bytes, key.as_ref()).unwrap_or_else(|e| panic!("decode: {e}"));
            assert_eq!(&FrameJson::from_frame(&got.to_owned()), expect, "decode direction");
            if key.is_some() {
                // Without a key the tag is skipped, not verified: same fields.
                let unverified = decode(&bytes, None).unwrap().to_owned();
                assert_eq!(&FrameJson::from_frame(&unverified), expect, "decode without key");
            }
            if !v.decode_only {
                let mut out = Vec::new();
                encode(&expect.to_frame(), key.as_ref(), &mut out).unwrap();
                assert_eq!(hex::encode(out), v.hex, "encode direction");
            }
        }
        (None, Some(reason)) => {
            let e = decode(&bytes, key.as_ref()).expect_err("must not decode");
            assert_eq!(e.reason(), reason);
            assert_eq!(Some(e.to_string()), v.error_message);
        }
        _ => panic!("a vector has exactly one of frame and error"),
    }
}

#[test]
fn vectors_decode_and_encode_both_ways() {
    let all = load_all();
    for (path, v) in &all {
        let stem = path.file_stem().unwrap().to_string_lossy();
        assert_eq!(stem, v.name.as_str(), "file name and name differ");
        let result = std::panic::catch_unwind(|| check(v));
        assert!(result.is_ok(), "vector {} failed", path.display());
    }
    let valid = all.iter().filter(|(_, v)| v.frame.is_some()).count();
    let invalid = all.len() - valid;
    assert!(valid >= 7 && invalid >= 6, "expected the full set, found {valid} valid, {invalid} invalid");
}
