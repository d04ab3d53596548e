//! Unit tests: round trips, every error variant, auth, TLV handling, limits.

use super::*;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn key() -> AuthKey {
    AuthKey::new(b"test key").unwrap()
}

fn full(kind: Kind) -> Frame {
    Frame {
        kind,
        flags: Flags::default().with(Flags::ACK_REQ).with(Flags::DRAINING),
        seq: 7,
        ts_ns: 0x0102_0304_0506_0708,
        interval_ms: 1000,
        incarnation: 3,
        stall_ms: 12,
        id: "node-1".into(),
        service: Some("api".into()),
        labels: vec![("zone".into(), "eu-1".into()), ("eq".into(), "a=b".into()), ("e".into(), "".into())],
        traceparent: Some(TP.into()),
        load: Some(750),
        nack_reason: (kind == Kind::Nack).then_some(NackReason::Replay),
        rtt_us: (kind == Kind::Beat).then_some(0x0001_e240),
        incarnation_us: matches!(kind, Kind::Beat | Kind::Leave).then_some(1_718_000_000_123_456),
        ttl_ms: matches!(kind, Kind::Beat | Kind::Leave).then_some(15_000),
        promise_ms: (kind == Kind::Ack).then_some(14_250),
        sent_unix_ms: matches!(kind, Kind::Beat | Kind::Leave).then_some(1_767_225_600_123),
    }
}

fn enc(frame: &Frame, key: Option<&AuthKey>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, key, &mut out).unwrap();
    out
}

/// A hand-built frame: header with the given kind/flags, id, and raw TLV region.
fn raw(kind: u8, flags: u8, id: &[u8], exts: &[u8]) -> Vec<u8> {
    let mut b = vec![0x48, 0x42, 1, kind, flags];
    b.extend_from_slice(&[0; 22]); // seq, ts, interval, incarnation, stall
    b.push(id.len() as u8);
    b.extend_from_slice(id);
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(exts);
    b
}

fn err(bytes: &[u8]) -> DecodeError {
    decode(bytes, None).unwrap_err()
}

#[test]
fn round_trips_every_kind_with_and_without_key() {
    let k = key();
    for kind in [Kind::Beat, Kind::Ack, Kind::Leave, Kind::Nack] {
        for minimal in [true, false] {
            let frame = if minimal { Frame::new(kind, "x") } else { full(kind) };
            let plain = enc(&frame, None);
            assert_eq!(decode(&plain, None).unwrap().to_owned(), frame);

            let tagged = enc(&frame, Some(&k));
            assert_eq!(tagged.len(), plain.len() + TAG_LEN);
            let expect = Frame { flags: frame.flags.with(Flags::AUTH), ..frame.clone() };
            assert_eq!(decode(&tagged, Some(&k)).unwrap().to_owned(), expect);
            // Without a key a tagged frame is accepted, tag skipped.
            assert_eq!(decode(&tagged, None).unwrap().to_owned(), expect);
        }
    }
}

#[test]
fn header_layout_is_network_order_at_documented_offsets() {
    let mut f = Frame::beat("ab");
    f.flags = Flags(Flags::STALLED);
    f.seq = 0x0a0b0c0d;
    f.ts_ns = 0x1112131415161718;
    f.interval_ms = 0x21222324;
    f.incarnation = 0x31323334;
    f.stall_ms = 0x4142;
    f.load = Some(0x5152);
    let b = enc(&f, None);
    assert_eq!(
        hex::encode(&b),
        concat!(
            "4842",
            "01",
            "01",
            "02",
            "0a0b0c0d",
            "1112131415161718",
            "21222324",
            "31323334",
            "4142",
            "02",
            "6162",
            "0004",
            "04025152"
        )
    );
    assert_eq!(HEADER_LEN, 27);
    assert_eq!(MIN_FRAME_LEN, 31);
    assert_eq!(enc(&Frame::beat("x"), None).len(), MIN_FRAME_LEN);
}

#[test]
fn labels_keep_order_and_split_at_first_equals() {
    let b = enc(&full(Kind::Beat), None);
    let r = decode(&b, None).unwrap();
    let labels: Vec<_> = r.labels().collect();
    assert_eq!(labels, [("zone", "eu-1"), ("eq", "a=b"), ("e", "")]);
}

#[test]
fn encode_appends_and_sets_auth_only_with_key() {
    let mut out = vec![0xff];
    let mut f = Frame::beat("x");
    f.flags = Flags(Flags::AUTH); // ignored: no key, so no tag and no AUTH bit
    encode(&f, None, &mut out).unwrap();
    assert_eq!(out[0], 0xff);
    assert_eq!(out[1..].len(), MIN_FRAME_LEN);
    assert!(!decode(&out[1..], None).unwrap().flags.contains(Flags::AUTH));

    let start = out.len();
    encode(&Frame::beat("x"), Some(&key()), &mut out).unwrap();
    assert!(decode(&out[start..], Some(&key())).unwrap().flags.contains(Flags::AUTH));
}

#[test]
fn encode_error_leaves_buffer_untouched() {
    let mut out = vec![1, 2, 3];
    let mut f = Frame::beat("x");
    f.labels = vec![("".into(), "v".into())];
    assert!(encode(&f, None, &mut out).is_err());
    assert_eq!(out, [1, 2, 3]);
}

#[test]
fn every_encode_error() {
    let check = |f: Frame, e: EncodeError| {
        assert_eq!(encode(&f, None, &mut Vec::new()), Err(e));
    };
    check(Frame::beat(""), EncodeError::IdLength { len: 0 });
    check(Frame::beat("a".repeat(65)), EncodeError::IdLength { len: 65 });
    check(Frame { service: Some("".into()), ..Frame::beat("x") }, EncodeError::ServiceLength { len: 0 });
    check(Frame { service: Some("s".repeat(256)), ..Frame::beat("x") }, EncodeError::ServiceLength { len: 256 });
    check(
        Frame { labels: vec![("a".into(), "b".into()), ("k=".into(), "v".into())], ..Frame::beat("x") },
        EncodeError::LabelKey { index: 1, key: "k=".into() },
    );
    check(
        Frame { labels: vec![("k".into(), "v".repeat(254))], ..Frame::beat("x") },
        EncodeError::LabelLength { index: 0, len: 256 },
    );
    check(
        Frame { traceparent: Some("00-abc".into()), ..Frame::beat("x") },
        EncodeError::Traceparent { value: "00-abc".into() },
    );
    check(Frame { flags: Flags(0x10), ..Frame::beat("x") }, EncodeError::ReservedFlags { flags: 0x10 });
    check(Frame::beat("a\nb"), EncodeError::ControlChar { field: "id", value: "a\nb".into() });
    check(
        Frame { service: Some("s\u{1b}".into()), ..Frame::beat("x") },
        EncodeError::ControlChar { field: "service", value: "s\u{1b}".into() },
    );
    check(
        Frame { labels: vec![("k".into(), "v\r".into())], ..Frame::beat("x") },
        EncodeError::ControlChar { field: "label value", value: "v\r".into() },
    );
    assert_eq!(AuthKey::new(&[]).unwrap_err(), EncodeError::EmptyKey);
    assert_eq!(EncodeError::IdLength { len: 70 }.to_string(), "id: 70 bytes, expected 1..=64 bytes of UTF-8");
}

#[test]
fn frame_length_limit_is_exact_and_counts_the_tag() {
    // 31-byte minimum frame with a 1-byte id; grow the service until the frame is 512.
    let mut f = Frame::beat("x");
    f.service = Some("s".repeat(255));
    f.labels = vec![("k".into(), "v".repeat(512 - MIN_FRAME_LEN - 257 - 2 - 2))];
    let b = enc(&f, None);
    assert_eq!(b.len(), MAX_FRAME_LEN);
    assert_eq!(decode(&b, None).unwrap().to_owned(), f);
    assert_eq!(
        encode(&f, Some(&key()), &mut Vec::new()),
        Err(EncodeError::FrameTooLong { len: MAX_FRAME_LEN + TAG_LEN })
    );
    f.labels[0].1.push('v');
    assert_eq!(encode(&f, None, &mut Vec::new()), Err(EncodeError::FrameTooLong { len: 513 }));
}

#[test]
fn id_limits() {
    let id = "é".repeat(32); // 64 bytes, 32 chars
    assert_eq!(decode(&enc(&Frame::beat(id.clone()), None), None).unwrap().id, id);
    assert_eq!(err(&raw(1, 0, &[b'a'; 65], &[])), DecodeError::BadIdLength(65));
}

#[test]
fn every_decode_error_is_reachable() {
    use DecodeError::*;
    let ok = raw(1, 0, b"x", &[]);
    assert!(decode(&ok, None).is_ok());

    assert_eq!(err(&[]), TooShort);
    assert_eq!(err(&[0x48]), TooShort);
    assert_eq!(err(&[0x48, 0x42]), TooShort);
    assert_eq!(err(&ok[..MIN_FRAME_LEN - 1]), TooShort);
    assert_eq!(err(&[0u8; MAX_FRAME_LEN + 1]), TooLong);
    assert_eq!(err(&[0x12, 0x34]), BadMagic(0x1234));
    assert_eq!(err(&[0x48, 0x42, 2]), UnsupportedVersion(2));
    assert_eq!(err(&raw(9, 0, b"x", &[])), UnknownKind(9));
    assert_eq!(err(&raw(0, 0, b"x", &[])), UnknownKind(0));

    let mut b = raw(1, 0, b"x", &[]);
    b[27] = 0; // id_len
    assert_eq!(err(&b), BadIdLength(0));
    let mut b = raw(1, 0, b"x", &[]);
    b[27] = 5; // longer than what follows
    assert_eq!(err(&b), Truncated { field: "id" });
    assert_eq!(err(&raw(1, 0, &[0xff], &[])), BadUtf8 { field: "id" });
    // Control characters (C0, DEL, C1) would forge lines or escapes in text output.
    for id in ["a\nb", "\r", "\u{1b}[2J", "x\u{7f}", "x\u{85}"] {
        assert_eq!(err(&raw(1, 0, id.as_bytes(), &[])), ControlChar { field: "id" });
    }
    assert!(decode(&raw(1, 0, "zoë-π".as_bytes(), &[]), None).is_ok());
    assert_eq!(err(&raw(1, 0, b"x", &[1, 2, b'a', b'\t'])), ControlChar { field: "service" });
    assert_eq!(err(&raw(1, 0, b"x", &[2, 4, b'k', b'\n', b'=', b'v'])), ControlChar { field: "label" });
    assert_eq!(err(&raw(1, 0, b"x", &[2, 3, b'k', b'=', 0])), ControlChar { field: "label" });

    let mut b = raw(1, 0, b"abc", &[]);
    b.truncate(b.len() - 1); // half of extensions_len
    assert_eq!(err(&b), Truncated { field: "extensions_len" });
    let mut b = raw(1, 0, b"abc", &[]);
    b[31] = 9; // extensions_len says 9, nothing follows
    assert_eq!(err(&b), Truncated { field: "extensions" });
    assert_eq!(err(&raw(1, 0, b"x", &[1])), Truncated { field: "extension length" });
    assert_eq!(err(&raw(1, 0, b"x", &[1, 3, b'a'])), Truncated { field: "extension value" });
    let mut b = raw(1, Flags::AUTH, b"x", &[]);
    b.extend_from_slice(&[0; TAG_LEN - 1]);
    assert_eq!(err(&b), Truncated { field: "tag" });

    assert_eq!(err(&raw(1, 0, b"x", &[1, 1, 0xff])), BadUtf8 { field: "service" });
    assert_eq!(err(&raw(1, 0, b"x", &[2, 1, 0xff])), BadUtf8 { field: "label" });
    let ext = |ty, reason| BadExtension { ty, reason };
    assert_eq!(err(&raw(1, 0, b"x", &[1, 0])), ext(1, "empty service"));
    assert_eq!(err(&raw(1, 0, b"x", &[1, 1, b'a', 1, 1, b'b'])), ext(1, "duplicate"));
    let bad_label = "expected key=value with a non-empty key";
    assert_eq!(err(&raw(1, 0, b"x", &[2, 1, b'k'])), ext(2, bad_label));
    assert_eq!(err(&raw(1, 0, b"x", &[2, 2, b'=', b'v'])), ext(2, bad_label));
    assert_eq!(err(&raw(1, 0, b"x", &[4, 1, 0])), ext(4, "load: expected 2 bytes"));
    assert_eq!(err(&raw(1, 0, b"x", &[4, 2, 0, 1, 4, 2, 0, 1])), ext(4, "duplicate"));
    assert_eq!(err(&raw(4, 0, b"x", &[5, 2, 0, 1])), ext(5, "nack reason: expected 1 byte"));
    assert_eq!(err(&raw(1, 0, b"x", &[3, 3, b'0', b'0', b'-'])), BadTraceparent);

    let mut b = raw(1, 0, b"x", &[]);
    b.push(0);
    assert_eq!(err(&b), TrailingBytes);

    let k = key();
    assert_eq!(decode(&ok, Some(&k)).unwrap_err(), Untagged);
    let mut b = enc(&Frame::beat("x"), Some(&k));
    *b.last_mut().unwrap() ^= 1;
    assert_eq!(decode(&b, Some(&k)).unwrap_err(), BadTag);
}

#[test]
fn reasons_are_stable_labels() {
    use DecodeError::*;
    let cases = [
        (TooShort, "too_short"),
        (TooLong, "too_long"),
        (BadMagic(0), "bad_magic"),
        (UnsupportedVersion(2), "bad_version"),
        (UnknownKind(0), "unknown_kind"),
        (BadIdLength(0), "malformed"),
        (BadUtf8 { field: "id" }, "malformed"),
        (ControlChar { field: "id" }, "malformed"),
        (Truncated { field: "id" }, "malformed"),
        (BadExtension { ty: 1, reason: "duplicate" }, "malformed"),
        (BadTraceparent, "malformed"),
        (TrailingBytes, "malformed"),
        (Untagged, "untagged"),
        (BadTag, "bad_tag"),
    ];
    for (e, label) in cases {
        assert_eq!(e.reason(), label);
        assert!(DecodeError::REASONS.contains(&label));
    }
}

#[test]
fn unknown_extensions_are_skipped() {
    let b = raw(1, 0, b"x", &[200, 3, 1, 2, 3, 1, 3, b'a', b'p', b'i', 0, 0]);
    let r = decode(&b, None).unwrap();
    assert_eq!(r.service, Some("api"));
    assert_eq!(r.labels().count(), 0);
}

#[test]
fn reserved_flag_bits_are_dropped_on_decode() {
    let b = raw(1, 0xf1, b"x", &[]);
    let r = decode(&b, None).unwrap();
    assert_eq!(r.flags, Flags(Flags::ACK_REQ));
}

#[test]
fn unknown_nack_code_decodes_as_unknown() {
    let b = raw(4, 0, b"x", &[5, 1, 99]);
    let r = decode(&b, None).unwrap();
    assert_eq!(r.nack_reason, Some(NackReason::Unknown));
    for code in 0..=14u8 {
        assert_eq!(NackReason::from_u8(code) as u8, code);
    }
    assert_eq!(NackReason::from_u8(15), NackReason::Unknown);
}

#[test]
fn rtt_extension_is_a_four_byte_singular_u32() {
    let bytes = raw(1, 0, b"x", &[6, 4, 0, 1, 0xe2, 0x40]);
    assert_eq!(decode(&bytes, None).unwrap().rtt_us, Some(123_456));
    let mut f = Frame::beat("x");
    f.rtt_us = Some(123_456);
    assert!(enc(&f, None).ends_with(&[0, 6, 6, 4, 0, 1, 0xe2, 0x40]));
    for (bad, reason) in [
        (&[6u8, 2, 0, 1][..], "rtt_us: expected 4 bytes"),
        (&[6, 5, 0, 0, 0, 1, 0][..], "rtt_us: expected 4 bytes"),
        (&[6, 4, 0, 0, 0, 1, 6, 4, 0, 0, 0, 2][..], "duplicate"),
    ] {
        assert_eq!(err(&raw(1, 0, b"x", bad)), DecodeError::BadExtension { ty: 6, reason }, "{bad:?}");
    }
}

#[test]
fn incarnation_us_extension_is_an_eight_byte_singular_u64() {
    let us: u64 = 1_718_000_000_123_456; // 0x00061a8d_9e57_a240
    let be = us.to_be_bytes();
    let mut region = vec![7u8, 8];
    region.extend_from_slice(&be);
    assert_eq!(decode(&raw(1, 0, b"x", &region), None).unwrap().incarnation_us, Some(us));
    let mut f = Frame::new(Kind::Leave, "x");
    f.incarnation_us = Some(us);
    let mut tail = vec![0u8, 10, 7, 8];
    tail.extend_from_slice(&be);
    assert!(enc(&f, None).ends_with(&tail), "written last, after rtt_us");
    let mut twice = region.clone();
    twice.extend_from_slice(&region);
    for (bad, reason) in [
        (&[7u8, 4, 0, 0, 0, 1][..], "incarnation_us: expected 8 bytes"),
        (&[7, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1][..], "incarnation_us: expected 8 bytes"),
        (&twice[..], "duplicate"),
    ] {
        assert_eq!(err(&raw(1, 0, b"x", bad)), DecodeError::BadExtension { ty: 7, reason }, "{bad:?}");
    }
}

#[test]
fn tag_covers_every_byte_before_it() {
    let k = key();
    let b = enc(&full(Kind::Beat), Some(&k));
    for i in 0..b.len() {
        let mut m = b.clone();
        m[i] ^= 0x80;
        let e = decode(&m, Some(&k)).unwrap_err();
        // Flipping the AUTH bit itself makes the frame untagged; anything else is a bad tag
        // (or an error found before the tag is checked: magic, version).
        assert!(
            matches!(
                e,
                DecodeError::BadTag
                    | DecodeError::Untagged
                    | DecodeError::BadMagic(_)
                    | DecodeError::UnsupportedVersion(_)
            ),
            "byte {i}: {e:?}"
        );
    }
    let other = AuthKey::new(b"other key").unwrap();
    assert_eq!(decode(&b, Some(&other)).unwrap_err(), DecodeError::BadTag);
}

#[test]
fn flags_helpers() {
    let f = Flags::default().with(Flags::ACK_REQ).with(Flags::STALLED);
    assert!(f.contains(Flags::ACK_REQ) && f.contains(Flags::STALLED) && !f.contains(Flags::AUTH));
    assert!(f.contains(Flags::ACK_REQ | Flags::STALLED));
    assert_eq!(f.without(Flags::ACK_REQ), Flags(Flags::STALLED));
}

#[test]
fn ttl_and_promise_extensions_are_four_byte_singular_u32s_written_last() {
    let mut beat = Frame::beat("x");
    (beat.incarnation_us, beat.ttl_ms) = (Some(1), Some(15_000));
    assert!(
        enc(&beat, None).ends_with(&[7, 8, 0, 0, 0, 0, 0, 0, 0, 1, 8, 4, 0, 0, 0x3a, 0x98]),
        "after incarnation_us"
    );
    let mut ack = Frame::new(Kind::Ack, "m");
    ack.promise_ms = Some(14_250);
    let bytes = enc(&ack, None);
    assert!(bytes.ends_with(&[0, 6, 9, 4, 0, 0, 0x37, 0xaa]));
    let got = decode(&bytes, None).unwrap();
    assert_eq!((got.ttl_ms, got.promise_ms), (None, Some(14_250)));
    for ty in [8u8, 9] {
        let one = [ty, 4, 0, 0, 0, 7];
        let bytes = raw(1, 0, b"x", &one);
        let f = decode(&bytes, None).unwrap();
        assert_eq!(if ty == 8 { f.ttl_ms } else { f.promise_ms }, Some(7));
        let name = if ty == 8 { "ttl_ms: expected 4 bytes" } else { "promise_ms: expected 4 bytes" };
        let (twice, short, long) = ([one, one].concat(), [ty, 2, 0, 1], [ty, 5, 0, 0, 0, 0, 1]);
        for (bad, reason) in [(&short[..], name), (&long[..], name), (&twice[..], "duplicate")] {
            assert_eq!(err(&raw(1, 0, b"x", bad)), DecodeError::BadExtension { ty, reason }, "{bad:?}");
        }
    }
}

#[test]
fn names_that_are_not_shown_as_themselves_are_refused_both_ways() {
    for (field, bad) in [("id", "evil\u{202e}gnp"), ("service", "check\u{a0}out"), ("label key", "zo\u{200b}ne")] {
        let mut f = Frame::beat("a");
        match field {
            "id" => f.id = bad.into(),
            "service" => f.service = Some(bad.into()),
            _ => f.labels = vec![(bad.into(), "v".into())],
        }
        let e = encode(&f, None, &mut Vec::new()).unwrap_err();
        assert_eq!(e, EncodeError::UnsafeChar { field, value: bad.into() });
        assert!(e.to_string().contains("no spaces, control, format or separator characters"), "{e}");
    }
    // Label values are free text: any script, spaces and all (only control characters are refused).
    let mut f = Frame::beat("a");
    f.labels = vec![("desc".into(), "caf\u{e9} \u{5e9}\u{5dc}\u{5d5}\u{5dd}".into())];
    let bytes = enc(&f, None);
    assert_eq!(decode(&bytes, None).unwrap().labels().next(), Some(("desc", "caf\u{e9} \u{5e9}\u{5dc}\u{5d5}\u{5dd}")));
}
