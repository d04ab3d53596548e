//! Bytes -> FrameRef. Total: every input gives a frame or a typed error. The tag is
//! checked before the body is parsed, so with a key nothing unauthenticated is interpreted
//! beyond the version and flags.

use super::cursor::Cursor;
use super::ext;
use super::frame::{Flags, FrameRef, Kind};
use super::{AuthKey, DecodeError, MAGIC, MAX_FRAME_LEN, MAX_ID_LEN, MIN_FRAME_LEN, TAG_LEN, VERSION};

/// Decodes one datagram without allocating.
///
/// With `key = Some`, an untagged frame is `Untagged` and a wrong tag is `BadTag`.
/// With `key = None`, a tagged frame is accepted: its tag is skipped, not verified.
pub fn decode<'a>(bytes: &'a [u8], key: Option<&AuthKey>) -> Result<FrameRef<'a>, DecodeError> {
    if bytes.len() > MAX_FRAME_LEN {
        return Err(DecodeError::TooLong);
    }
    // Magic and version first (when present) so a short frame from a future version is
    // counted as a version problem, not a length one.
    let mut c = Cursor::new(bytes);
    let magic = c.u16("magic").map_err(|_| DecodeError::TooShort)?;
    if magic != MAGIC {
        return Err(DecodeError::BadMagic(magic));
    }
    let version = c.u8("version").map_err(|_| DecodeError::TooShort)?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    if bytes.len() < MIN_FRAME_LEN {
        return Err(DecodeError::TooShort);
    }
    let kind_byte = c.u8("kind")?;
    // Reserved bits are dropped: they are covered by the tag but mean nothing in v1.
    let flags = Flags(c.u8("flags")? & Flags::KNOWN);

    let body = split_tag(bytes, flags, key)?;

    // Parse the body only, so the tag can never be read as data.
    let mut c = Cursor::new(body);
    c.take(5, "header")?; // magic, version, kind, flags: read above
    let kind = Kind::from_u8(kind_byte).ok_or(DecodeError::UnknownKind(kind_byte))?;
    let seq = c.u32("seq")?;
    let ts_ns = c.u64("ts_ns")?;
    let interval_ms = c.u32("interval_ms")?;
    let incarnation = c.u32("incarnation")?;
    let stall_ms = c.u16("stall_ms")?;

    let id_len = usize::from(c.u8("id_len")?);
    if !(1..=MAX_ID_LEN).contains(&id_len) {
        return Err(DecodeError::BadIdLength(id_len));
    }
    let id = ext::name(c.take(id_len, "id")?, "id")?;

    let ext_len = usize::from(c.u16("extensions_len")?);
    let region = c.take(ext_len, "extensions")?;
    if !c.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    let exts = ext::parse(region)?;

    Ok(FrameRef {
        kind,
        flags,
        seq,
        ts_ns,
        interval_ms,
        incarnation,
        stall_ms,
        id,
        service: exts.service,
        traceparent: exts.traceparent,
        load: exts.load,
        nack_reason: exts.nack_reason,
        rtt_us: exts.rtt_us,
        incarnation_us: exts.incarnation_us,
        ttl_ms: exts.ttl_ms,
        promise_ms: exts.promise_ms,
        sent_unix_ms: exts.sent_unix_ms,
        labels_raw: region,
    })
}

/// The bytes the tag covers, after checking the tag against `key` if there is one.
fn split_tag<'a>(bytes: &'a [u8], flags: Flags, key: Option<&AuthKey>) -> Result<&'a [u8], DecodeError> {
    if !flags.contains(Flags::AUTH) {
        return match key {
            Some(_) => Err(DecodeError::Untagged),
            None => Ok(bytes),
        };
    }
    let body_len = bytes
        .len()
        .checked_sub(TAG_LEN)
        .filter(|&n| n >= MIN_FRAME_LEN)
        .ok_or(DecodeError::Truncated { field: "tag" })?;
    let (body, tag) = bytes.split_at(body_len);
    match key {
        Some(key) if !key.verify(body, tag) => Err(DecodeError::BadTag),
        _ => Ok(body),
    }
}
