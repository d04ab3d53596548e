//! A rough ingest figure for development (the real benchmark is `heartbeater bench ingest`):
//! `cargo test --release -p hb-core --test engine_ingest_smoke -- --ignored --nocapture`.

mod engine_support;

use std::time::{Duration, Instant};

use engine_support::*;
use hb_core::proto::{encode, Frame};

#[test]
#[ignore = "development measurement; run in release"]
fn ingest_rate_with_10k_peers() {
    let peers = 10_000u32;
    let m = monitor("udp://127.0.0.1:0", &[]);
    let to = m.local_addr("udp").unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let frames: Vec<Vec<u8>> = (0..peers)
        .map(|i| {
            let mut f = Frame::beat(format!("peer-{i:06}"));
            f.interval_ms = 1000;
            f.incarnation = 1;
            f.service = Some("bench".into());
            let mut b = Vec::new();
            encode(&f, None, &mut b).unwrap();
            b
        })
        .collect();
    let total = 2_000_000usize;
    let before = m.stats().beats_received;
    let t0 = Instant::now();
    for i in 0..total {
        let _ = sock.send_to(&frames[i % frames.len()], to);
    }
    let sent_in = t0.elapsed();
    wait_until("drained", Duration::from_secs(5), || m.stats().beats_received - before >= total as u64 * 99 / 100);
    let got = m.stats().beats_received - before;
    let rate = got as f64 / t0.elapsed().as_secs_f64();
    eprintln!(
        "sent {total} in {sent_in:?}, received {got} ({:.2}% loss), {rate:.0} beats/s; estimate {} B/peer",
        100.0 * (1.0 - got as f64 / total as f64),
        m.tracked_bytes_estimate() / peers as usize
    );
}

#[test]
#[ignore = "development measurement; run in release"]
fn table_cost_per_beat_with_100k_peers() {
    use hb_core::monitor::table::{PeerTable, Source, TableConfig, Transport};
    use hb_core::DetectorKind;
    let peers = 100_000u32;
    let hub = hb_core::EventHub::new(16);
    let mut table = PeerTable::new(TableConfig::new(DetectorKind::Adaptive, 1 << 20, false), hub, 0);
    let frames: Vec<Vec<u8>> = (0..peers)
        .map(|i| {
            let mut f = Frame::beat(format!("peer-{i:06}"));
            f.interval_ms = 1000;
            f.incarnation = 1;
            f.service = Some("bench".into());
            let mut b = Vec::new();
            encode(&f, None, &mut b).unwrap();
            b
        })
        .collect();
    let src = Source { addr: "127.0.0.1:9".parse().unwrap(), transport: Transport::Udp };
    let mut now = 1_000_000_000u64;
    let t0 = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        for b in &frames {
            let f = hb_core::proto::decode(b, None).unwrap();
            table.ingest(&f, src, now);
            now += 10_000;
        }
        table.sweep(now, now);
    }
    let per = t0.elapsed().as_nanos() as f64 / (rounds * peers) as f64;
    eprintln!(
        "decode+ingest: {per:.0} ns per beat; estimate {} B/peer",
        table.tracked_bytes_estimate() / peers as usize
    );
}
