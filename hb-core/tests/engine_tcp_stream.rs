//! The monitor's TCP framing (`proto::stream`) on a raw connection: frames split across
//! writes and several frames in one write are all answered, in order.

mod engine_support;

use std::io::{Read, Write};
use std::time::Duration;

use engine_support::*;
use hb_core::proto::stream::{self, StreamDecoder};
use hb_core::proto::{decode, encode, Flags, Frame, Kind};
use hb_core::State;

fn beat(seq: u32) -> Vec<u8> {
    let mut f = Frame::beat("raw-tcp");
    (f.flags, f.seq, f.ts_ns, f.interval_ms, f.incarnation) = (Flags(Flags::ACK_REQ), seq, u64::from(seq), 1_000, 1);
    let (mut frame, mut out) = (Vec::new(), Vec::new());
    encode(&f, None, &mut frame).unwrap();
    stream::put(&frame, &mut out);
    out
}

#[test]
fn split_and_coalesced_frames_are_all_acknowledged_in_order() {
    let m = monitor("tcp://127.0.0.1:0", &[]);
    let mut t = std::net::TcpStream::connect(m.local_addr("tcp").unwrap()).unwrap();
    t.set_read_timeout(Some(DEADLINE)).unwrap();
    // Beat 1 in three pieces (one inside the length prefix), then beats 2 and 3 in one write.
    let one = beat(1);
    for piece in [&one[..1], &one[1..10], &one[10..]] {
        t.write_all(piece).unwrap();
        t.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    t.write_all(&[beat(2), beat(3)].concat()).unwrap();
    let mut acks = StreamDecoder::new();
    let mut seqs = Vec::new();
    let mut chunk = [0u8; 512];
    while seqs.len() < 3 {
        let n = t.read(&mut chunk).unwrap();
        assert!(n > 0, "closed after acks for {seqs:?}");
        acks.push(&chunk[..n]);
        while let Some(frame) = acks.next_frame().unwrap() {
            let f = decode(frame, None).unwrap();
            assert_eq!(f.kind, Kind::Ack);
            seqs.push(f.seq);
        }
    }
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(m.peers().unwrap()[0].state, State::Alive);
}
