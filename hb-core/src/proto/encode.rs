//! Frame -> bytes. Every limit is checked before the first byte is written, so on error
//! `out` is left exactly as it was.

use super::frame::{Flags, Frame};
use super::ident;
use super::{ext, traceparent};
use super::{AuthKey, EncodeError, MAX_EXT_VALUE_LEN, MAX_FRAME_LEN, MAX_ID_LEN, TAG_LEN};
use super::{HEADER_LEN, MAGIC, VERSION};

/// Appends the encoding of `frame` to `out` (reusing its capacity). Sets the AUTH flag and
/// appends the tag iff `key` is given; the AUTH bit in `frame.flags` is ignored.
pub fn encode(frame: &Frame, key: Option<&AuthKey>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let ext_len = check(frame)?;
    let tag_len = if key.is_some() { TAG_LEN } else { 0 };
    let len = HEADER_LEN + 1 + frame.id.len() + 2 + ext_len + tag_len;
    if len > MAX_FRAME_LEN {
        return Err(EncodeError::FrameTooLong { len });
    }
    let flags = match key {
        Some(_) => frame.flags.with(Flags::AUTH),
        None => frame.flags.without(Flags::AUTH),
    };

    let start = out.len();
    out.reserve(len);
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.push(VERSION);
    out.push(frame.kind as u8);
    out.push(flags.0);
    out.extend_from_slice(&frame.seq.to_be_bytes());
    out.extend_from_slice(&frame.ts_ns.to_be_bytes());
    out.extend_from_slice(&frame.interval_ms.to_be_bytes());
    out.extend_from_slice(&frame.incarnation.to_be_bytes());
    out.extend_from_slice(&frame.stall_ms.to_be_bytes());
    push_u8_len(out, frame.id.len());
    out.extend_from_slice(frame.id.as_bytes());

    // ext_len <= 512 here, so it fits the u16.
    out.extend_from_slice(&u16::try_from(ext_len).unwrap_or(u16::MAX).to_be_bytes());
    // Canonical order: by type, labels in the order given.
    if let Some(service) = &frame.service {
        tlv(out, ext::SERVICE, &[service.as_bytes()]);
    }
    for (k, v) in &frame.labels {
        tlv(out, ext::LABEL, &[k.as_bytes(), b"=", v.as_bytes()]);
    }
    if let Some(tp) = &frame.traceparent {
        tlv(out, ext::TRACEPARENT, &[tp.as_bytes()]);
    }
    if let Some(load) = frame.load {
        tlv(out, ext::LOAD, &[&load.to_be_bytes()]);
    }
    if let Some(reason) = frame.nack_reason {
        tlv(out, ext::NACK_REASON, &[&[reason as u8]]);
    }
    if let Some(rtt_us) = frame.rtt_us {
        tlv(out, ext::RTT_US, &[&rtt_us.to_be_bytes()]);
    }
    if let Some(us) = frame.incarnation_us {
        tlv(out, ext::INCARNATION_US, &[&us.to_be_bytes()]);
    }
    if let Some(ttl_ms) = frame.ttl_ms {
        tlv(out, ext::TTL_MS, &[&ttl_ms.to_be_bytes()]);
    }
    if let Some(promise_ms) = frame.promise_ms {
        tlv(out, ext::PROMISE_MS, &[&promise_ms.to_be_bytes()]);
    }
    if let Some(ms) = frame.sent_unix_ms {
        tlv(out, ext::SENT_UNIX_MS, &[&ms.to_be_bytes()]);
    }

    if let Some(key) = key {
        let tag = key.tag(out.get(start..).unwrap_or_default());
        out.extend_from_slice(&tag);
    }
    debug_assert_eq!(out.len() - start, len);
    Ok(())
}

/// Validates every field against its limit; returns the TLV region's length.
fn check(frame: &Frame) -> Result<usize, EncodeError> {
    if frame.flags.0 & !Flags::KNOWN != 0 {
        return Err(EncodeError::ReservedFlags { flags: frame.flags.0 });
    }
    if !(1..=MAX_ID_LEN).contains(&frame.id.len()) {
        return Err(EncodeError::IdLength { len: frame.id.len() });
    }
    name("id", &frame.id)?;
    let mut ext_len = 0;
    if let Some(service) = &frame.service {
        name("service", service)?;
        if !(1..=MAX_EXT_VALUE_LEN).contains(&service.len()) {
            return Err(EncodeError::ServiceLength { len: service.len() });
        }
        ext_len += 2 + service.len();
    }
    for (index, (k, v)) in frame.labels.iter().enumerate() {
        if k.is_empty() || k.contains('=') {
            return Err(EncodeError::LabelKey { index, key: k.clone() });
        }
        name("label key", k)?;
        no_control("label value", v)?;
        let len = k.len() + 1 + v.len();
        if len > MAX_EXT_VALUE_LEN {
            return Err(EncodeError::LabelLength { index, len });
        }
        ext_len += 2 + len;
    }
    if let Some(tp) = &frame.traceparent {
        if !traceparent::is_valid(tp.as_bytes()) {
            return Err(EncodeError::Traceparent { value: tp.clone() });
        }
        ext_len += 2 + traceparent::LEN;
    }
    if frame.load.is_some() {
        ext_len += 2 + 2;
    }
    if frame.nack_reason.is_some() {
        ext_len += 2 + 1;
    }
    if frame.rtt_us.is_some() {
        ext_len += 2 + 4;
    }
    ext_len += 10 * (usize::from(frame.incarnation_us.is_some()) + usize::from(frame.sent_unix_ms.is_some()));
    ext_len += 6 * (usize::from(frame.ttl_ms.is_some()) + usize::from(frame.promise_ms.is_some()));
    Ok(ext_len)
}

/// What a monitor's decoder would reject is refused here, naming the field.
fn no_control(field: &'static str, value: &str) -> Result<(), EncodeError> {
    if ext::has_control(value) {
        return Err(EncodeError::ControlChar { field, value: value.to_string() });
    }
    Ok(())
}

/// A name (id, service, label key) must also pass `ident::is_name`, as monitors require.
fn name(field: &'static str, value: &str) -> Result<(), EncodeError> {
    no_control(field, value)?;
    if !ident::is_name(value) {
        return Err(EncodeError::UnsafeChar { field, value: value.to_string() });
    }
    Ok(())
}

/// Lengths reaching here were checked against their u8 limits.
fn push_u8_len(out: &mut Vec<u8>, len: usize) {
    out.push(u8::try_from(len).unwrap_or(u8::MAX));
}

fn tlv(out: &mut Vec<u8>, ty: u8, parts: &[&[u8]]) {
    out.push(ty);
    push_u8_len(out, parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.extend_from_slice(p);
    }
}
