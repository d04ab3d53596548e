//! Property tests for the wire format: round trips, totality of decode, tag integrity.

use hb_core::proto::{decode, encode, AuthKey, Flags, Frame, Kind, NackReason, MAX_FRAME_LEN};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Beat), Just(Kind::Ack), Just(Kind::Leave), Just(Kind::Nack)]
}

fn traceparent() -> impl Strategy<Value = String> {
    ("[0-9a-f]{32}", "[0-9a-f]{16}", "[0-9a-f]{2}")
        .prop_filter("W3C forbids all-zero ids", |(t, p, _)| {
            t.bytes().any(|b| b != b'0') && p.bytes().any(|b| b != b'0')
        })
        .prop_map(|(t, p, f)| format!("00-{t}-{p}-{f}"))
}

/// Any frame within the limits. Sizes are chosen so even the largest fits with a tag
/// (64 + 82 + 4*53 + 57 + 7 + 30 + 10 + 16 < 512).
/// Names a monitor accepts (`proto::ident`): ASCII without space, Latin-1 letters, Greek
/// and some Han, 1..=20 characters.
const NAME: &str = "[!-~\u{00C0}-\u{00FF}\u{03B1}-\u{03C9}\u{4E00}-\u{4E2F}]{1,20}";

fn valid_frame() -> impl Strategy<Value = Frame> {
    let fixed = (kind(), any::<u8>(), any::<u32>(), any::<u64>(), any::<u32>(), any::<u32>(), any::<u16>());
    let vars = (
        NAME.prop_map(|s| s.chars().take(16).collect::<String>()), // up to 64 bytes
        proptest::option::of(NAME),
        proptest::collection::vec(("[a-z_.]{1,10}", "\\PC{0,10}"), 0..4),
        proptest::option::of(traceparent()),
        proptest::option::of(any::<u16>()),
        proptest::option::of((0u8..9).prop_map(NackReason::from_u8)),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u64>()),
    );
    (fixed, vars).prop_map(
        |(
            (kind, flags, seq, ts_ns, interval_ms, incarnation, stall_ms),
            (
                id,
                service,
                labels,
                traceparent,
                load,
                nack_reason,
                rtt_us,
                incarnation_us,
                ttl_ms,
                promise_ms,
                sent_unix_ms,
            ),
        )| Frame {
            kind,
            flags: Flags(flags & (Flags::KNOWN & !Flags::AUTH)),
            seq,
            ts_ns,
            interval_ms,
            incarnation,
            stall_ms,
            id,
            service,
            labels,
            traceparent,
            load,
            nack_reason,
            rtt_us,
            incarnation_us,
            ttl_ms,
            promise_ms,
            sent_unix_ms,
        },
    )
}

fn key() -> impl Strategy<Value = AuthKey> {
    proptest::collection::vec(any::<u8>(), 1..64).prop_map(|k| AuthKey::new(&k).unwrap())
}

/// Decode must be total; when it succeeds, re-encoding must give an equivalent frame.
fn decode_is_total_and_stable(bytes: &[u8], key: Option<&AuthKey>) {
    if let Ok(r) = decode(bytes, key) {
        let owned = r.to_owned();
        let mut again = Vec::new();
        encode(&owned, key, &mut again).expect("a decoded frame re-encodes");
        let r2 = decode(&again, key).expect("a re-encoded frame decodes");
        assert_eq!(r2.to_owned().flags.without(Flags::AUTH), owned.flags.without(Flags::AUTH));
        assert_eq!(Frame { flags: owned.flags, ..r2.to_owned() }, owned);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip_without_key(frame in valid_frame()) {
        let mut buf = Vec::new();
        encode(&frame, None, &mut buf).unwrap();
        prop_assert!(buf.len() <= MAX_FRAME_LEN);
        prop_assert_eq!(decode(&buf, None).unwrap().to_owned(), frame);
    }

    #[test]
    fn round_trip_with_key(frame in valid_frame(), key in key()) {
        let mut buf = Vec::new();
        encode(&frame, Some(&key), &mut buf).unwrap();
        let expect = Frame { flags: frame.flags.with(Flags::AUTH), ..frame };
        prop_assert_eq!(decode(&buf, Some(&key)).unwrap().to_owned(), expect.clone());
        prop_assert_eq!(decode(&buf, None).unwrap().to_owned(), expect);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), key in key()) {
        decode_is_total_and_stable(&bytes, None);
        decode_is_total_and_stable(&bytes, Some(&key));
    }

    /// Random bytes rarely get past the magic; mutating real frames reaches the body parser.
    #[test]
    fn mutated_frames_never_panic(
        frame in valid_frame(),
        tagged in any::<bool>(),
        key in key(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut buf = Vec::new();
        encode(&frame, tagged.then_some(&key), &mut buf).unwrap();
        for (i, b) in edits {
            let i = i.index(buf.len());
            buf[i] = b;
        }
        buf.truncate(cut.index(buf.len() + 1));
        buf.extend_from_slice(&extra);
        decode_is_total_and_stable(&buf, None);
        decode_is_total_and_stable(&buf, Some(&key));
    }

    #[test]
    fn bit_flips_of_a_tagged_frame_never_verify(frame in valid_frame(), key in key(), bit in any::<prop::sample::Index>()) {
        let mut buf = Vec::new();
        encode(&frame, Some(&key), &mut buf).unwrap();
        let bit = bit.index(buf.len() * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(decode(&buf, Some(&key)).is_err());
    }
}
