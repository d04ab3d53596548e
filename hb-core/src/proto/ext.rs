//! TLV extensions: `type u8, len u8, value[len]`, repeated to fill the region whose
//! length the u16 before it gives. Unknown types are skipped so v1 peers can add
//! optional data without a version bump.

use super::cursor::Cursor;
use super::ident;
use super::traceparent;
use super::{DecodeError, NackReason};

pub(super) const SERVICE: u8 = 1;
/// Value is "key=value": split at the first '='; the key is non-empty.
pub(super) const LABEL: u8 = 2;
pub(super) const TRACEPARENT: u8 = 3;
/// Value is a u16, network order.
pub(super) const LOAD: u8 = 4;
/// Value is one byte, a [`NackReason`] code.
pub(super) const NACK_REASON: u8 = 5;
/// Value is a u32, network order: the sender's smoothed RTT to this receiver, in µs.
pub(super) const RTT_US: u8 = 6;
/// Value is a u64, network order: the incarnation at full resolution, µs since the Unix
/// epoch at process start (strictly increasing within the process).
pub(super) const INCARNATION_US: u8 = 7;
/// Value is a u32, network order: the client's TTL in ms (BEAT and LEAVE). A monitor that
/// reads it reports the peer dead no later than this after its last beat.
pub(super) const TTL_MS: u8 = 8;
/// Value is a u32, network order (ACK): the monitor will not report the peer dead before
/// its receive time of the acknowledged beat + this many ms.
pub(super) const PROMISE_MS: u8 = 9;
/// Value is a u64, network order (BEAT and LEAVE, with a key): the sender's wall clock at
/// sending, ms since the Unix epoch. Under the tag, so a monitor can refuse a frame
/// captured long ago, whatever it remembers (docs/protocol.md, Authentication).
pub(super) const SENT_UNIX_MS: u8 = 10;

/// The singular extensions found in a region; labels stay in the raw region.
#[derive(Default)]
pub(super) struct Extensions<'a> {
    pub service: Option<&'a str>,
    pub traceparent: Option<&'a str>,
    pub load: Option<u16>,
    pub nack_reason: Option<NackReason>,
    pub rtt_us: Option<u32>,
    pub incarnation_us: Option<u64>,
    pub ttl_ms: Option<u32>,
    pub promise_ms: Option<u32>,
    pub sent_unix_ms: Option<u64>,
}

/// Reads one TLV, or `None` at the end of the region.
fn next<'a>(c: &mut Cursor<'a>) -> Result<Option<(u8, &'a [u8])>, DecodeError> {
    if c.is_empty() {
        return Ok(None);
    }
    let ty = c.u8("extension type")?;
    let len = c.u8("extension length")?;
    let value = c.take(usize::from(len), "extension value")?;
    Ok(Some((ty, value)))
}

/// Validates every known extension in `region`. Singular ones may appear once.
pub(super) fn parse(region: &[u8]) -> Result<Extensions<'_>, DecodeError> {
    let mut out = Extensions::default();
    let mut c = Cursor::new(region);
    while let Some((ty, value)) = next(&mut c)? {
        match ty {
            SERVICE => {
                let s = name(value, "service")?;
                if s.is_empty() {
                    return Err(DecodeError::BadExtension { ty, reason: "empty service" });
                }
                set_once(&mut out.service, s, ty)?;
            }
            LABEL => {
                let (key, _) = split_label(text(value, "label")?)
                    .ok_or(DecodeError::BadExtension { ty, reason: "expected key=value with a non-empty key" })?;
                if !ident::is_name(key) {
                    return Err(DecodeError::UnsafeChar { field: "label key" });
                }
            }
            TRACEPARENT => {
                if !traceparent::is_valid(value) {
                    return Err(DecodeError::BadTraceparent);
                }
                // ASCII by the check above, so this cannot fail.
                set_once(&mut out.traceparent, utf8(value, "traceparent")?, ty)?;
            }
            LOAD => {
                let bytes = fixed::<2>(value, ty, "load: expected 2 bytes")?;
                set_once(&mut out.load, u16::from_be_bytes(bytes), ty)?;
            }
            NACK_REASON => {
                let [code] = value else {
                    return Err(DecodeError::BadExtension { ty, reason: "nack reason: expected 1 byte" });
                };
                set_once(&mut out.nack_reason, NackReason::from_u8(*code), ty)?;
            }
            RTT_US => {
                let bytes = fixed::<4>(value, ty, "rtt_us: expected 4 bytes")?;
                set_once(&mut out.rtt_us, u32::from_be_bytes(bytes), ty)?;
            }
            INCARNATION_US => {
                let bytes = fixed::<8>(value, ty, "incarnation_us: expected 8 bytes")?;
                set_once(&mut out.incarnation_us, u64::from_be_bytes(bytes), ty)?;
            }
            TTL_MS => {
                let bytes = fixed::<4>(value, ty, "ttl_ms: expected 4 bytes")?;
                set_once(&mut out.ttl_ms, u32::from_be_bytes(bytes), ty)?;
            }
            PROMISE_MS => {
                let bytes = fixed::<4>(value, ty, "promise_ms: expected 4 bytes")?;
                set_once(&mut out.promise_ms, u32::from_be_bytes(bytes), ty)?;
            }
            SENT_UNIX_MS => {
                let bytes = fixed::<8>(value, ty, "sent_unix_ms: expected 8 bytes")?;
                set_once(&mut out.sent_unix_ms, u64::from_be_bytes(bytes), ty)?;
            }
            _ => {} // Unknown: skipped on purpose (forward compatibility).
        }
    }
    Ok(out)
}

fn utf8<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8 { field })
}

/// Valid UTF-8 without control characters (C0, DEL, C1): the form of every string a
/// frame carries.
pub(super) fn text<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, DecodeError> {
    let s = utf8(bytes, field)?;
    if has_control(s) {
        return Err(DecodeError::ControlChar { field });
    }
    Ok(s)
}

/// `text` that is also a name (id, service): see `ident`.
pub(super) fn name<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, DecodeError> {
    let s = text(bytes, field)?;
    if !ident::is_name(s) {
        return Err(DecodeError::UnsafeChar { field });
    }
    Ok(s)
}

pub(super) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// The value of a fixed-size extension, or `BadExtension` with `reason` (its size).
fn fixed<const N: usize>(value: &[u8], ty: u8, reason: &'static str) -> Result<[u8; N], DecodeError> {
    value.try_into().map_err(|_| DecodeError::BadExtension { ty, reason })
}

fn set_once<T>(slot: &mut Option<T>, value: T, ty: u8) -> Result<(), DecodeError> {
    if slot.is_some() {
        // Two values for one field would make "which one counts" a peer-dependent guess.
        return Err(DecodeError::BadExtension { ty, reason: "duplicate" });
    }
    *slot = Some(value);
    Ok(())
}

/// "k=v" -> ("k", "v"); `None` without '=' or with an empty key.
pub(super) fn split_label(s: &str) -> Option<(&str, &str)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Some((k, v)),
        _ => None,
    }
}

/// Labels of an already validated region, in wire order. Stops quietly on anything
/// invalid rather than panicking, though `parse` has ruled that out.
pub(super) fn labels(region: &[u8]) -> impl Iterator<Item = (&str, &str)> + '_ {
    let mut c = Cursor::new(region);
    std::iter::from_fn(move || next(&mut c).ok().flatten())
        .filter(|&(ty, _)| ty == LABEL)
        .filter_map(|(_, value)| split_label(std::str::from_utf8(value).ok()?))
}
