//! The peer table on a hand-moved clock: every transition, deterministic, no sleeping.

use super::*;
use crate::monitor::wheel::TICK_NS;
use crate::proto::{decode, encode, Frame};

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

fn beat(id: &str, seq: u32, inc: u32) -> Frame {
    let mut f = Frame::beat(id);
    f.flags = Flags(Flags::ACK_REQ);
    f.seq = seq;
    f.ts_ns = 1_000 + u64::from(seq);
    f.interval_ms = 1_000;
    f.incarnation = inc;
    f.service = Some("api".into());
    f.labels = vec![("zone".into(), "a".into())];
    f.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
    f
}

fn leave(id: &str, seq: u32, inc: u32) -> Frame {
    let mut f = beat(id, seq, inc);
    f.kind = Kind::Leave;
    f
}

struct Fixture {
    table: PeerTable,
    hub: Arc<EventHub>,
    now: u64,
}

impl Fixture {
    fn new(cfg: TableConfig) -> Fixture {
        let hub = EventHub::new(4096);
        Fixture { table: PeerTable::new(cfg, Arc::clone(&hub), 0), hub, now: 0 }
    }

    fn plain() -> Fixture {
        Fixture::new(TableConfig::new(DetectorKind::Adaptive, 1000, true))
    }

    fn send(&mut self, f: &Frame) -> Option<Reply> {
        self.send_from(f, "127.0.0.1:4000")
    }

    fn send_from(&mut self, f: &Frame, addr: &str) -> Option<Reply> {
        let mut bytes = Vec::new();
        encode(f, None, &mut bytes).unwrap();
        let r = decode(&bytes, None).unwrap();
        self.table.ingest(&r, Source { addr: addr.parse().unwrap(), transport: Transport::Udp }, self.now)
    }

    /// Advances time in sweeper-sized steps, sweeping on schedule.
    fn run_for(&mut self, ns: u64) {
        let end = self.now + ns;
        while self.now < end {
            self.now = (self.now + TICK_NS).min(end);
            self.table.sweep(self.now, self.now);
        }
    }

    fn events(&self) -> Vec<(String, State, State, Reason)> {
        let mut out = Vec::new();
        while let Ok(Some(e)) = self.hub.next_event(Some(std::time::Duration::ZERO)) {
            out.push((e.peer, e.from, e.to, e.reason));
        }
        out
    }

    fn state(&self, id: &str) -> Option<State> {
        self.table.snapshot(self.now, 0).into_iter().find(|p| p.id == id).map(|p| p.state)
    }
}

fn rejected(reason: &str) -> u64 {
    metrics::get().frames_rejected.with_label_values(&[reason]).get()
}

#[test]
fn first_beat_registers_alive_with_metadata_and_acks() {
    let mut t = Fixture::plain();
    let reply = t.send(&beat("a", 1, 7));
    // The ACK promises what the detector's deadline is for a new peer (no TTL sent here).
    let dead = Detector::new(DetectorKind::Adaptive, S, 0).dead_at(&DetectorParams::default());
    assert_eq!(reply, Some(Reply::Ack { seq: 1, ts_ns: 1_001, promise_ms: Some((dead / MS) as u32) }));
    let ev = t.hub.next_event(Some(std::time::Duration::ZERO)).unwrap().unwrap();
    assert_eq!((ev.from, ev.to, ev.reason), (State::Unknown, State::Alive, Reason::Registered));
    assert_eq!((ev.service.as_str(), ev.incarnation), ("api", 7));
    assert_eq!(ev.labels.get("zone").map(String::as_str), Some("a"));
    assert!(ev.traceparent.unwrap().starts_with("00-0af7"));
    let p = &t.table.snapshot(0, 5_000)[0];
    assert_eq!((p.id.as_str(), p.state, p.interval_ms, p.incarnation), ("a", State::Alive, 1_000, 7));
    assert_eq!(p.addr.as_deref(), Some("udp://127.0.0.1:4000"));
    assert_eq!(p.rtt_us, None);
    assert_eq!(t.table.counts().alive, 1);
}

#[test]
fn reported_rtt_is_kept_until_a_restart_without_one() {
    let mut t = Fixture::plain();
    let rtt = |t: &Fixture| t.table.snapshot(t.now, 0)[0].rtt_us;
    t.send(&beat("a", 1, 1));
    assert_eq!(rtt(&t), None);
    t.send(&Frame { rtt_us: Some(850), ..beat("a", 2, 1) });
    assert_eq!(rtt(&t), Some(850));
    // A beat without the extension (e.g. after a lost ACK) keeps the last figure.
    t.send(&beat("a", 3, 1));
    assert_eq!(rtt(&t), Some(850));
    t.send(&Frame { rtt_us: Some(900), ..beat("a", 4, 1) });
    assert_eq!(rtt(&t), Some(900));
    // A new process has no estimate yet: the old one's is not shown as its own.
    t.send(&beat("a", 1, 2));
    assert_eq!(rtt(&t), None);
}

#[test]
fn silence_leads_to_suspect_then_dead_within_the_bound() {
    let mut t = Fixture::plain();
    for seq in 1..=20 {
        t.send(&beat("a", seq, 1));
        t.run_for(S);
    }
    assert_eq!(t.events().len(), 1, "a steady peer makes no transitions");
    let last = t.now - S;
    let mut suspect_at = None;
    let mut dead_at = None;
    while dead_at.is_none() && t.now < last + 60 * S {
        t.run_for(TICK_NS);
        for (_, _, to, reason) in t.events() {
            assert_eq!(reason, Reason::Timeout);
            match to {
                State::Suspect => suspect_at = Some(t.now),
                State::Dead => dead_at = Some(t.now),
                other => panic!("unexpected {other}"),
            }
        }
    }
    let (s, d) = (suspect_at.expect("suspected"), dead_at.expect("declared dead"));
    assert!(s > last + S, "not suspected before one interval passed: {}", s - last);
    assert!(s < d);
    // With a 1 s interval and no jitter the adaptive detector convicts within ~10 s.
    assert!(d - last <= 10 * S, "dead after {} ms of silence", (d - last) / MS);
    assert_eq!(t.table.counts().dead, 1);
}

#[test]
fn leave_is_reported_at_once_and_late_beats_do_not_resurrect() {
    let mut t = Fixture::plain();
    t.send(&beat("a", 1, 1));
    t.send(&beat("a", 2, 1));
    assert_eq!(t.send(&leave("a", 3, 1)), Some(Reply::Ack { seq: 3, ts_ns: 1_003, promise_ms: None }));
    let ev = t.events();
    assert_eq!(ev.last().unwrap().2..=ev.last().unwrap().2, State::Left..=State::Left);
    assert_eq!(ev.last().unwrap().3, Reason::Left);
    // A beat overtaken by its LEAVE, and time passing: still left, no new event.
    t.send(&beat("a", 2, 1));
    t.run_for(30 * S);
    assert!(t.events().is_empty());
    assert_eq!(t.state("a"), Some(State::Left));
    // Beating again after the goodbye is a new registration.
    t.send(&beat("a", 4, 1));
    assert_eq!(t.events(), vec![("a".into(), State::Left, State::Alive, Reason::Registered)]);
}

#[test]
fn higher_incarnation_is_a_restart_and_lower_one_is_rejected() {
    let mut t = Fixture::plain();
    t.send(&beat("a", 10, 1));
    t.send(&beat("a", 1, 2));
    let ev = t.events();
    assert_eq!(ev[1], ("a".into(), State::Alive, State::Alive, Reason::Restarted));
    let before = rejected("stale_incarnation");
    assert_eq!(t.send(&beat("a", 50, 1)), None);
    assert_eq!(rejected("stale_incarnation"), before + 1);
    // A restart after death comes back alive as restarted too.
    t.run_for(30 * S);
    assert_eq!(t.state("a"), Some(State::Dead));
    t.events();
    t.send(&beat("a", 1, 3));
    assert_eq!(t.events(), vec![("a".into(), State::Dead, State::Alive, Reason::Restarted)]);
}

/// A beat from the process started at `unix_us`, with both incarnations as a Client sends them.
fn beat_of(id: &str, seq: u32, start: crate::client::shared::Incarnation) -> Frame {
    Frame { incarnation_us: Some(start.us), ..beat(id, seq, start.tenths) }
}

#[test]
fn process_starts_one_millisecond_apart_are_a_restart_and_the_old_ones_frames_are_stale() {
    use crate::client::shared::incarnation_at;
    // 2026-01-01T00:00:00.010Z and 1 ms later: the same tenth of a second in the header.
    let (old, new) = (incarnation_at(1_767_225_600_010_000), incarnation_at(1_767_225_600_011_000));
    assert_eq!(old.tenths, new.tenths);
    let mut t = Fixture::plain(); // with replay protection, as with an auth key
    for seq in 1..=20 {
        t.send(&beat_of("a", seq, old));
    }
    // The restarted process counts seq from 1 again: a new incarnation, not a replay.
    assert!(matches!(t.send(&beat_of("a", 1, new)), Some(Reply::Ack { seq: 1, ts_ns: 1_001, promise_ms: Some(_) })));
    let ev = t.events();
    assert_eq!(ev.last(), Some(&("a".into(), State::Alive, State::Alive, Reason::Restarted)), "{ev:?}");
    assert_eq!(t.table.snapshot(t.now, 0)[0].incarnation, new.tenths, "events show the header's value");
    assert!(t.send(&beat_of("a", 2, new)).is_some());
    // The old process's late frames, its LEAVE included, are stale now: no event.
    assert_eq!(t.send(&beat_of("a", 21, old)), None);
    assert_eq!(t.send(&Frame { kind: Kind::Leave, ..beat_of("a", 22, old) }), None);
    assert_eq!(t.events(), vec![]);
    assert_eq!(t.state("a"), Some(State::Alive));
}

#[test]
fn clients_with_and_without_the_us_incarnation_are_ordered_by_the_header() {
    let us = |inc: u32, us: u64| Frame { incarnation_us: Some(us), ..beat("a", 1, inc) };
    // Upgrade: the old client never sent the extension, so a frame with it and the same
    // header is a later process; one with an older header is stale.
    let mut t = Fixture::plain();
    t.send(&beat("a", 5, 7));
    assert_eq!(t.send(&us(6, 9_000)), None);
    assert!(t.send(&us(7, 9_000)).is_some());
    assert_eq!(t.events().last().map(|e| e.3), Some(Reason::Restarted));
    // Downgrade: without the extension the header decides; the same header is the same
    // incarnation (seq rules apply, as before the extension).
    assert_eq!(t.send(&beat("a", 1, 7)), None, "seq 1 again in the same incarnation is a replay");
    assert_eq!(t.send(&beat("a", 9, 6)), None, "older header: stale");
    assert!(t.send(&beat("a", 1, 8)).is_some());
    assert_eq!(t.events(), vec![("a".into(), State::Alive, State::Alive, Reason::Restarted)]);
    // A 0 µs value is no value: repeated, it does not restart the peer again and again.
    let mut z = Fixture::plain();
    z.send(&us(7, 0));
    for seq in 2..5 {
        z.send(&Frame { seq, ..us(7, 0) });
    }
    assert_eq!(z.events().len(), 1, "registered once, nothing after");
}

#[test]
fn dead_peer_heard_again_recovers() {
    let mut t = Fixture::plain();
    t.send(&beat("a", 1, 1));
    t.run_for(30 * S);
    t.events();
    t.send(&beat("a", 2, 1));
    assert_eq!(t.events(), vec![("a".into(), State::Dead, State::Alive, Reason::Recovered)]);
}

#[test]
fn replays_are_rejected_and_counted_with_a_key() {
    let mut t = Fixture::plain();
    t.send(&beat("a", 5, 1));
    let before = rejected("replay");
    assert_eq!(t.send(&beat("a", 5, 1)), None);
    assert_eq!(t.send(&beat("a", 4, 1)), None);
    assert_eq!(rejected("replay"), before + 2);
    assert!(t.send(&beat("a", 6, 1)).is_some());

    // Without a key (no replay protection) reordered beats still count as signs of life.
    let mut open = Fixture::new(TableConfig::new(DetectorKind::Adaptive, 10, false));
    open.send(&beat("a", 5, 1));
    assert!(open.send(&beat("a", 4, 1)).is_some());
}

#[test]
fn new_peers_over_the_cap_are_refused_with_a_nack() {
    let mut t = Fixture::new(TableConfig::new(DetectorKind::Phi, 2, false));
    let refused = metrics::get().peers_refused.get();
    for seq in 1..=2 {
        t.send(&beat("a", seq, 1));
        t.send(&beat("b", seq, 1));
    }
    let r = t.send(&beat("c", 1, 1));
    assert_eq!(r, Some(Reply::Nack { seq: 1, ts_ns: 1_001, reason: NackReason::TooManyPeers }));
    assert!(metrics::get().peers_refused.get() > refused);
    assert_eq!(t.table.len(), 2);
    assert_eq!(t.table.counts().refused, 1);
    // Known peers keep being served.
    assert!(matches!(t.send(&beat("a", 3, 1)), Some(Reply::Ack { .. })));
}

/// A full table makes room: peers heard only once go first (reported `dead`, `evicted`,
/// if they were reported), then dead and left ones (silently: they had their last event).
#[test]
fn a_full_table_evicts_the_unconfirmed_then_the_gone_before_refusing() {
    let mut t = Fixture::new(TableConfig::new(DetectorKind::Phi, 3, false));
    t.send(&beat("once", 1, 1));
    for seq in 1..=2 {
        t.send(&beat("live", seq, 1));
        t.send(&beat("leaving", seq, 1));
    }
    t.send(&leave("leaving", 3, 1));
    t.events();
    let evicted = metrics::get().peers_evicted.get();
    assert!(matches!(t.send(&beat("new-1", 1, 1)), Some(Reply::Ack { .. })));
    assert_eq!(t.events(), vec![("once".into(), State::Alive, State::Dead, Reason::Evicted)]);
    // Admitted into a full table, new-1 is on probation: reported once it beats again.
    t.send(&beat("new-1", 2, 1));
    assert_eq!(t.events(), vec![("new-1".into(), State::Unknown, State::Alive, Reason::Registered)]);
    // Now the left peer is next.
    assert!(matches!(t.send(&beat("new-2", 1, 1)), Some(Reply::Ack { .. })));
    let ev = t.events();
    assert!(!ev.iter().any(|e| e.0 == "leaving"), "a left peer goes without an event: {ev:?}");
    assert_eq!(t.state("leaving"), None);
    assert_eq!(t.table.counts().evicted, 2);
    assert_eq!(metrics::get().peers_evicted.get(), evicted + 2);
    // Nothing left to evict but new-2, heard once (on probation: no event): it goes.
    t.send(&beat("new-3", 1, 1));
    assert_eq!(t.events(), vec![]);
    assert_eq!(t.table.len(), 3);
    assert_eq!(t.table.counts().on_probation, 1);
}

/// Past `probation_at`, a new id is not reported until its second beat: a flood of made-up
/// ids (one beat each) makes no events and no rows, and the real newcomer is reported as
/// soon as it beats again.
#[test]
fn under_pressure_a_new_id_is_reported_once_it_beats_twice() {
    let mut cfg = TableConfig::new(DetectorKind::Adaptive, 100, false);
    cfg.probation_at = 2;
    let mut t = Fixture::new(cfg);
    t.send(&beat("a", 1, 1));
    t.send(&beat("b", 1, 1));
    t.events();
    for i in 0..50 {
        assert!(t.send(&beat(&format!("flood-{i}"), 1, 1)).is_some(), "acked like any beat");
    }
    assert_eq!(t.events(), vec![]);
    assert_eq!(t.table.snapshot(t.now, 0).len(), 2);
    assert_eq!(t.table.counts().on_probation, 50);
    t.send(&beat("flood-7", 2, 1));
    assert_eq!(t.events(), vec![("flood-7".into(), State::Unknown, State::Alive, Reason::Registered)]);
    assert_eq!((t.table.counts().alive, t.table.counts().on_probation), (3, 49));
    // The rest never beat again: dropped without a word by their suspect deadline.
    for _ in 0..30 {
        t.send(&beat("a", 2, 1));
        t.send(&beat("b", 2, 1));
        t.send(&beat("flood-7", 3, 1));
        t.run_for(S);
    }
    assert_eq!(t.table.counts().on_probation, 0);
    assert_eq!(t.table.len(), 3);
    assert!(t.events().iter().all(|e| e.0 != "flood-3"));
    // A LEAVE from one on probation needs no event either.
    t.send(&beat("quiet", 1, 1));
    t.send(&leave("quiet", 2, 1));
    assert_eq!(t.events(), vec![]);
    assert_eq!(t.table.len(), 3);
}

#[test]
fn a_flapping_peer_is_held_in_suspect_until_calm() {
    // The phi detector, whose deadlines do not learn from the silences: the adaptive one
    // reads each as a burst of loss and soon waits far longer before suspecting again (so
    // it flaps less), which would make this a test of the detector, not of the damper.
    let mut t = Fixture::new(TableConfig::new(DetectorKind::Phi, 1000, true));
    let mut seq = 0;
    // 200 ms beats: three silences long enough to be suspected fit in the damper's ~8 s.
    let mut beat_now = |t: &mut Fixture| {
        seq += 1;
        t.send(&Frame { interval_ms: 200, ..beat("a", seq, 1) });
    };
    for _ in 0..50 {
        beat_now(&mut t);
        t.run_for(200 * MS);
    }
    t.events();
    let mut reasons = Vec::new();
    for _ in 0..3 {
        // Silent until suspected, then heard again.
        while t.state("a") != Some(State::Suspect) {
            t.run_for(TICK_NS);
        }
        beat_now(&mut t);
        reasons.extend(t.events().into_iter().map(|e| (e.2, e.3)));
    }
    assert_eq!(
        reasons,
        vec![
            (State::Suspect, Reason::Timeout),
            (State::Alive, Reason::Recovered),
            (State::Suspect, Reason::Timeout),
            (State::Alive, Reason::Recovered),
            (State::Suspect, Reason::Flapping),
        ]
    );
    // Held: beating steadily does not bring it back for a while (20 s)...
    for _ in 0..100 {
        beat_now(&mut t);
        t.run_for(200 * MS);
    }
    assert_eq!(t.state("a"), Some(State::Suspect));
    // ...but once calm long enough (2 more minutes) it recovers, and is not declared dead meanwhile.
    for _ in 0..600 {
        beat_now(&mut t);
        t.run_for(200 * MS);
    }
    assert_eq!(t.state("a"), Some(State::Alive));
    assert_eq!(t.events(), vec![("a".into(), State::Suspect, State::Alive, Reason::Recovered)]);
}

#[test]
fn a_late_sweep_convicts_nobody_until_peers_could_be_heard() {
    let mut t = Fixture::plain();
    t.send(&beat("a", 1, 1));
    t.run_for(500 * MS);
    let pauses = metrics::get().sweeper_pauses.get();
    // The monitor itself froze for 20 s: the sweep scheduled at +10 ms runs 20 s late.
    let scheduled = t.now + TICK_NS;
    t.now += 20 * S;
    assert_eq!(t.table.sweep(scheduled, t.now), 0);
    assert!(metrics::get().sweeper_pauses.get() > pauses);
    assert_eq!(t.state("a"), Some(State::Alive));
    // The peer answers within the hold: it never was in trouble.
    t.run_for(500 * MS);
    t.send(&beat("a", 2, 1));
    t.run_for(500 * MS);
    assert_eq!(t.state("a"), Some(State::Alive));
    // A peer that stays silent is convicted once the hold is over.
    t.run_for(30 * S);
    assert_eq!(t.state("a"), Some(State::Dead));
}

#[test]
fn dead_and_left_peers_are_reaped_after_the_reap_delay() {
    let mut cfg = TableConfig::new(DetectorKind::Adaptive, 10, false);
    cfg.reap_after_ns = 60 * S;
    let mut t = Fixture::new(cfg);
    t.send(&beat("a", 1, 1));
    t.send(&beat("b", 1, 1));
    t.send(&leave("b", 2, 1));
    t.run_for(50 * S);
    assert_eq!(t.state("b"), Some(State::Left));
    assert_eq!(t.state("a"), Some(State::Dead));
    t.run_for(20 * S);
    assert_eq!(t.state("b"), None);
    assert_eq!(t.state("a"), None);
    assert!(t.table.is_empty());
    assert_eq!(t.table.counts(), TableCounts::default());
    // A reaped id is a new peer again.
    t.send(&beat("a", 1, 1));
    assert_eq!(t.events().last().unwrap().3, Reason::Registered);
}

#[test]
fn peer_is_small_and_many_peers_share_strings() {
    // 168: 144 until the TTL and the ACK promise joined the record (two u32s), the
    // learned detector (loss and tail, issue 11) is 8 bytes more, and the boxed rival
    // claim (issue 12) 8 more.
    assert!(std::mem::size_of::<Peer>() <= 168, "{}", std::mem::size_of::<Peer>());
    let mut t = Fixture::new(TableConfig::new(DetectorKind::Adaptive, 1 << 20, false));
    let n = 20_000;
    for i in 0..n {
        let mut f = beat(&format!("instance-{i:06}"), 1, 1);
        f.traceparent = None;
        t.send(&f);
    }
    let per_peer = t.table.tracked_bytes_estimate() / n;
    eprintln!("estimate: {per_peer} bytes per peer; Peer is {} bytes", std::mem::size_of::<Peer>());
    assert!(per_peer <= 256, "{per_peer} bytes per peer");
}

#[test]
fn the_sweep_plan_follows_the_earliest_deadline_and_asks_for_a_sooner_one() {
    let mut t = Fixture::plain();
    // Nothing tracked: the pause guard's threshold caps any sleep (so that a sweep's
    // lateness measures a stall), and a shorter bound from the caller wins.
    assert_eq!(t.table.plan_sweep(0, S), SWEEP_MAX_LATENESS_NS);
    assert_eq!(t.table.plan_sweep(0, 100 * MS), 100 * MS);
    t.send(&beat("a", 1, 1));
    // The first peer's deadline (seconds out) is later than the plan: no wake-up.
    assert!(!t.table.take_sweep_sooner());
    assert_eq!(t.table.plan_sweep(0, 60 * S), SWEEP_MAX_LATENESS_NS);
    // Planned at the cap, a new peer's earlier deadline asks for a sooner sweep, once,
    // and the next plan follows that deadline.
    t.send(&Frame { interval_ms: 10, ..beat("b", 1, 1) });
    assert!(t.table.take_sweep_sooner());
    assert!(!t.table.take_sweep_sooner());
    let due = t.table.plan_sweep(0, 60 * S);
    assert!(due > 0 && due < SWEEP_MAX_LATENESS_NS, "{due}");
}

#[test]
fn one_peer_rotating_its_labels_does_not_grow_the_interner() {
    // Without an auth key a spoofed id can change its labels on every beat; each change
    // leaves the previous entry unused. The interner stays bounded by the peer count.
    let mut t = Fixture::new(TableConfig::new(DetectorKind::Adaptive, 10, false));
    for seq in 1..=10_000u32 {
        let mut f = beat("spoofed", seq, 1);
        f.labels = vec![("zone".into(), format!("z{seq}"))];
        t.send(&f);
        assert!(t.table.interner.len() <= 2 + 1024 + 1, "{} entries after {seq} beats", t.table.interner.len());
    }
    let p = &t.table.snapshot(t.now, 0)[0];
    assert_eq!(p.labels.get("zone").map(String::as_str), Some("z10000"), "the current labels survive a purge");
}

#[test]
fn a_beat_late_from_the_senders_own_pause_is_heard_but_not_learned() {
    let mut t = Fixture::plain();
    let suspect_at = |t: &Fixture, id: &str| {
        let slot = t.table.index[id];
        t.table.slab.get(slot).unwrap().detector.suspect_at(&t.table.cfg.params)
    };
    for id in ["paused", "slow"] {
        t.send(&beat(id, 1, 1));
    }
    for seq in 2..=40 {
        t.now += S;
        for id in ["paused", "slow"] {
            t.send(&beat(id, seq, 1));
        }
    }
    // Both beats come 1.4 s after the last (within the learnable range); only one says
    // it left late because its sender was paused.
    t.now += 1_400 * MS;
    t.send(&Frame { flags: Flags(Flags::ACK_REQ | Flags::STALLED), stall_ms: 400, ..beat("paused", 41, 1) });
    t.send(&beat("slow", 41, 1));
    let (paused, slow) = (suspect_at(&t, "paused"), suspect_at(&t, "slow"));
    assert!(paused > t.now, "heard: the deadline moved on");
    assert!(paused < slow, "the pause was not learned as a slower rhythm: {paused} vs {slow}");
}

fn with_ttl(mut f: Frame, ttl_ms: u32) -> Frame {
    f.ttl_ms = Some(ttl_ms);
    f
}

fn promise_of(reply: Option<Reply>) -> u32 {
    match reply {
        Some(Reply::Ack { promise_ms: Some(p), .. }) => p,
        other => panic!("expected an ACK with a promise, got {other:?}"),
    }
}

#[test]
fn the_ttl_bounds_dead_and_the_ack_promises_the_deadline() {
    let mut t = Fixture::plain();
    // 1 s beats, 2.5 s TTL: the detector alone would wait ~7 s at warm-up.
    let mut last_rx = 0;
    for seq in 1..=10 {
        last_rx = t.now;
        let promise = promise_of(t.send(&with_ttl(beat("a", seq, 1), 2_500)));
        assert_eq!(promise, 2_500, "beat {seq}: the TTL is the earlier deadline");
        t.run_for(S);
    }
    t.events();
    t.run_for(S + TICK_NS); // now 2 s after the last beat: alive or suspect, not dead
    assert_ne!(t.state("a"), Some(State::Dead));
    t.run_for(500 * MS);
    assert_eq!(t.state("a"), Some(State::Dead));
    let dead_at = t.since_ns("a");
    assert!(dead_at <= last_rx + 2_500 * MS + TICK_NS, "dead {} ms after the last beat", (dead_at - last_rx) / MS);

    // A long TTL does not delay the detector: dead on its own deadline, well before 60 s.
    let mut t = Fixture::plain();
    for seq in 1..=20 {
        let promise = promise_of(t.send(&with_ttl(beat("b", seq, 1), 60_000)));
        assert!(promise < 60_000, "the detector's deadline is the earlier one: {promise} ms");
        t.run_for(S);
    }
    t.run_for(20 * S);
    assert_eq!(t.state("b"), Some(State::Dead));
}

#[test]
fn a_leave_ack_promises_nothing_and_an_old_client_gets_the_detector_deadline() {
    let mut t = Fixture::plain();
    let promise = promise_of(t.send(&beat("old", 1, 1)));
    let dead = Detector::new(DetectorKind::Adaptive, S, 0).dead_at(&DetectorParams::default());
    assert_eq!(u64::from(promise), dead / MS, "no ttl_ms: the detector decides alone");
    assert_eq!(t.send(&leave("old", 2, 1)), Some(Reply::Ack { seq: 2, ts_ns: 1_002, promise_ms: None }));
}

impl Fixture {
    /// Advances to `at_ns` in sweeper steps; `late` sweeps run `late_ns` after their plan.
    fn run_until(&mut self, at_ns: u64, late: Option<u64>) {
        while self.now < at_ns {
            self.now = (self.now + TICK_NS).min(at_ns);
            let scheduled = late.map_or(self.now, |l| self.now.saturating_sub(l));
            self.table.sweep(scheduled, self.now);
        }
    }

    /// When peer `id` entered its current state (the sweep that made it dead, say).
    fn since_ns(&self, id: &str) -> u64 {
        let slot = self.table.index[id];
        self.table.slab.get(slot).expect("tracked").since_ns
    }
}

/// The promise is never broken, whatever the detector learns between beats: seeded runs
/// with jitter rising and falling, interval changes, stalled beats, late sweeps (the
/// pause guard) and flapping. Every `dead` comes at or after every promise made before
/// it, and (with on-time sweeps) no later than TTL + one wheel tick after the last beat.
#[test]
fn promises_are_kept_while_the_detector_relearns() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut checked = (0, 0);
    for seed in 0..60u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let kind = if seed % 3 == 0 { DetectorKind::Phi } else { DetectorKind::Adaptive };
        let mut t = Fixture::new(TableConfig::new(kind, 100, false));
        let ttl_ms: Option<u32> = (seed % 4 != 0).then(|| rng.gen_range(300..20_000));
        let pauses = seed % 5 == 1;
        let (mut seq, mut promised_until, mut last_rx) = (0u32, 0u64, 0u64);
        let mut interval_ms: u32 = rng.gen_range(20..2_000);
        let mut jitter_ms: u32 = 0;
        for _ in 0..400 {
            // Change the regime now and then: interval, jitter up or down, a silence.
            match rng.gen_range(0..20) {
                0 => interval_ms = rng.gen_range(20..2_000),
                1 => jitter_ms = rng.gen_range(0..=interval_ms),
                2 => jitter_ms = 0,
                _ => {}
            }
            let silence = if rng.gen_ratio(1, 15) { rng.gen_range(1..40) * interval_ms } else { interval_ms };
            let gap = u64::from(silence) * MS + u64::from(rng.gen_range(0..=jitter_ms)) * MS;
            let late = (pauses && rng.gen_ratio(1, 10)).then(|| rng.gen_range(100..3_000) * MS);
            let next = t.now + gap.max(MS);
            let dead_before = t.state("p") == Some(State::Dead);
            t.run_until(next, late);
            if !dead_before && t.state("p") == Some(State::Dead) {
                let dead_at = t.since_ns("p");
                assert!(dead_at >= promised_until, "seed {seed}: dead at {dead_at}, promised until {promised_until}");
                if let (Some(ttl), None, false) = (ttl_ms, late, pauses) {
                    let bound = last_rx + u64::from(ttl) * MS + TICK_NS;
                    assert!(
                        dead_at <= bound,
                        "seed {seed}: dead {} ms after the last beat, ttl {ttl}",
                        (dead_at - last_rx) / MS
                    );
                    checked.1 += 1;
                }
                checked.0 += 1;
            }
            seq += 1;
            let mut f = beat("p", seq, 1);
            f.interval_ms = interval_ms;
            f.ttl_ms = ttl_ms;
            if rng.gen_ratio(1, 12) {
                f.flags = f.flags.with(Flags::STALLED);
            }
            last_rx = t.now;
            if let Some(Reply::Ack { promise_ms: Some(p), .. }) = t.send(&f) {
                if let Some(ttl) = ttl_ms {
                    assert!(p <= ttl, "seed {seed}: promise {p} ms beyond the ttl {ttl} ms");
                }
                promised_until = promised_until.max(t.now + u64::from(p) * MS);
            }
        }
    }
    eprintln!("dead transitions checked against promises: {}, against the TTL bound: {}", checked.0, checked.1);
    assert!(checked.0 > 100 && checked.1 > 30, "the runs must exercise convictions: {checked:?}");
}

/// Issue 10's promise to users: with the defaults (interval 1s..30s, TTL 15 s) a peer that
/// goes silent is dead within 15 s, and growing the interval to its cap is not suspected.
#[test]
fn the_default_configuration_detects_a_silent_peer_within_its_ttl() {
    use crate::detect::{IntervalPolicy, RttEstimator};
    let mut policy = IntervalPolicy::new(S, 30 * S, 15 * S);
    let mut rtt = RttEstimator::new();
    let mut t = Fixture::plain();
    let mut last_rx = 0;
    for seq in 1..=100 {
        // A beat announces the gap until the next one; ACKs may grow the one after.
        let gap = policy.current_ns();
        let mut f = with_ttl(beat("d", seq, 1), 15_000);
        f.interval_ms = (gap / MS) as u32;
        last_rx = t.now;
        t.send(&f);
        policy.on_ack(5 * MS, &rtt);
        rtt.sample(5 * MS);
        t.run_for(gap);
    }
    assert_eq!(policy.current_ns(), 3 * S, "the cap for 15 s at the 1 % loss floor");
    let ev = t.events();
    assert_eq!(ev.len(), 1, "registered, and nothing else while the interval grew: {ev:?}");
    t.run_for(16 * S);
    assert_eq!(t.state("d"), Some(State::Dead));
    let dead_after = t.since_ns("d") - last_rx;
    assert!(dead_after <= 15 * S + TICK_NS, "dead {} ms after the last beat", dead_after / MS);
}

/// Issue 11's pause-guard gap: the monitor itself stalls (SIGSTOP, GC) for 0.1 .. 3 s while
/// 19 peers keep beating into its socket; on resume the sweeper runs before the listeners
/// have read what queued up (the worst order). No live peer is suspected, and a peer
/// killed just before the stall is dead within one deadline after it.
#[test]
fn own_stalls_convict_nobody_and_a_peer_killed_before_one_is_still_convicted() {
    for interval_ms in [50u64, 200] {
        for stall_ms in [100u64, 250, 450, 490, 1_000, 3_000] {
            let interval = interval_ms * MS;
            let mut t = Fixture::plain();
            let ids: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
            // Each peer beats every interval, offset so that arrivals spread over the cycle.
            let mut next: Vec<u64> = (0..20).map(|i| i * interval / 20).collect();
            let mut seq = [0u32; 20];
            let beat_of = |id: &str, seq: u32| {
                let mut f = with_ttl(beat(id, seq, 1), 15_000);
                f.interval_ms = interval_ms as u32;
                f
            };
            let stall_at = 30 * S + 7 * MS;
            let victim = 19;
            let mut victim_last = 0;
            let mut victim_span = 0;
            // Normal running up to the stall: beats and on-time sweeps, tick by tick.
            while t.now < stall_at {
                for i in 0..20 {
                    let killed = i == victim && next[i] >= stall_at - interval / 2;
                    while next[i] <= t.now && !killed {
                        seq[i] += 1;
                        t.send(&beat_of(&ids[i], seq[i]));
                        next[i] += interval;
                        if i == victim {
                            let p = t.table.slab.get(t.table.index[ids[i].as_str()]).unwrap();
                            victim_last = t.now;
                            victim_span = p.dead_deadline(&DetectorParams::default()) - p.last_beat_ns();
                        }
                    }
                }
                t.now += TICK_NS;
                t.table.sweep(t.now, t.now);
            }
            t.events();
            // The stall: nothing read, no sweep; the live peers' beats queue up.
            let resume = stall_at + stall_ms * MS;
            let mut queued = Vec::new();
            for i in 0..victim {
                while next[i] <= resume {
                    seq[i] += 1;
                    queued.push(beat_of(&ids[i], seq[i]));
                    next[i] += interval;
                }
            }
            // Resume: the sweep planned a tick into the stall runs first, then the backlog.
            t.now = resume;
            t.table.sweep(stall_at + TICK_NS, resume);
            for f in &queued {
                t.send(f);
            }
            // Then normal running again for a few seconds.
            let end = resume + 5 * S;
            while t.now < end {
                for i in 0..victim {
                    while next[i] <= t.now {
                        seq[i] += 1;
                        t.send(&beat_of(&ids[i], seq[i]));
                        next[i] += interval;
                    }
                }
                t.now += TICK_NS;
                t.table.sweep(t.now, t.now);
            }
            let what = format!("{interval_ms} ms peers, {stall_ms} ms stall");
            let events = t.events();
            let false_alarms: Vec<_> = events.iter().filter(|e| e.0 != ids[victim]).collect();
            assert!(false_alarms.is_empty(), "{what}: {false_alarms:?}");
            assert_eq!(t.state(&ids[victim]), Some(State::Dead), "{what}");
            let dead_at = t.since_ns(&ids[victim]);
            let bound = (victim_last + victim_span).max(resume + victim_span) + TICK_NS;
            assert!(
                dead_at <= bound,
                "{what}: victim dead {} ms after the stall, its deadline span is {} ms",
                (dead_at.saturating_sub(resume)) / MS,
                victim_span / MS
            );
        }
    }
}

/// Without a key anyone can send a LEAVE. One numbered below the last beat is stale and
/// refused, one further ahead than the sender could have counted is refused too; one a
/// little ahead makes a false `left` (unavoidable without a key), but the real sender's
/// next beats bring the peer back within three intervals, not after the reap.
#[test]
fn a_forged_leave_cannot_silence_a_live_peer() {
    let mut t = Fixture::new(TableConfig::new(DetectorKind::Adaptive, 100, false));
    for seq in 1..=10 {
        t.send(&beat("a", seq, 1));
        t.run_for(S);
    }
    t.events();
    let stale = rejected("stale_leave");
    assert_eq!(t.send(&leave("a", 0, 1)), None);
    assert_eq!(rejected("stale_leave"), stale + 1);
    let implausible = rejected("implausible_seq");
    assert_eq!(t.send(&leave("a", u32::MAX, 1)), None);
    assert_eq!(t.send(&beat("a", u32::MAX, 1)), None, "a beat that far ahead would make the real LEAVE stale");
    assert_eq!(rejected("implausible_seq"), implausible + 2);
    assert_eq!(t.state("a"), Some(State::Alive));
    // A LEAVE 50 ahead: left at once...
    t.send(&leave("a", 60, 1));
    assert_eq!(t.state("a"), Some(State::Left));
    // ...and back with the real process's beats once they cannot be overtaken ones.
    let mut seq = 11;
    let left_at = t.now;
    while t.state("a") != Some(State::Alive) {
        t.run_for(S);
        t.send(&beat("a", seq, 1));
        seq += 1;
        assert!(t.now - left_at <= 3 * S, "shut out for more than three intervals");
    }
    let ev = t.events();
    assert_eq!(ev.last().map(|e| (e.2, e.3)), Some((State::Alive, Reason::Registered)), "{ev:?}");
    // A LEAVE overtaking its own last beat still ends it: that beat is not a resurrection.
    t.send(&leave("a", seq + 1, 1));
    t.send(&beat("a", seq, 1));
    assert_eq!(t.state("a"), Some(State::Left));
}

/// Peer "a" beating once a second for 5 s (events taken), and its next seq.
fn steady_peer_without_a_key() -> (Fixture, u32) {
    let mut t = Fixture::new(TableConfig::new(DetectorKind::Adaptive, 100, false));
    let mut seq = 1;
    for _ in 0..5 {
        t.send(&beat("a", seq, 1));
        seq += 1;
        t.run_for(S);
    }
    t.events();
    (t, seq)
}

/// Another host claims a live peer's id with a newer incarnation (a duplicate process, or a
/// forgery without a key): held off and reported as a conflict, never a false restart; it
/// takes over only once the real process has been quiet for two intervals.
#[test]
fn a_claim_from_another_host_is_a_conflict_while_the_peer_beats() {
    let (mut t, mut seq) = steady_peer_without_a_key();
    let held = rejected("conflict");
    let nack = Some(Reply::Nack { seq: 1, ts_ns: 1_001, reason: NackReason::Conflict });
    assert_eq!(t.send_from(&beat("a", 1, 2), "127.0.0.2:5000"), nack);
    assert_eq!(t.events(), vec![], "one frame of a claim is not yet a conflict");
    // The real process beats on: both are heard, a conflict, reported once per 10 s.
    for _ in 0..8 {
        t.run_for(S / 2);
        t.send(&beat("a", seq, 1));
        seq += 1;
        t.run_for(S / 2);
        assert_eq!(t.send_from(&beat("a", 1, 2), "127.0.0.2:5000"), nack);
    }
    assert_eq!(t.events(), vec![("a".into(), State::Alive, State::Alive, Reason::Conflict)]);
    assert_eq!(rejected("conflict"), held + 9);
    assert_eq!(t.table.snapshot(t.now, 0)[0].incarnation, 1, "the tracked process keeps the id");
    // The real process stops beating: two intervals later the claimant has it.
    t.run_for(2 * S);
    assert!(matches!(t.send_from(&beat("a", 2, 2), "127.0.0.2:5000"), Some(Reply::Ack { .. })));
    let ev = t.events();
    assert_eq!(ev.last(), Some(&("a".into(), State::Alive, State::Alive, Reason::Restarted)), "{ev:?}");
}

/// A forged restart from the peer's own host (spoofed, without a key) takes over at once,
/// as a real restart there would; the real process, still beating, takes its id back once
/// the forger has been quiet for two intervals: shut out for at most three.
#[test]
fn a_forged_restart_cannot_lock_the_real_process_out() {
    let (mut t, mut seq) = steady_peer_without_a_key();
    t.send_from(&beat("a", 1, 2), "127.0.0.1:4999");
    assert_eq!(t.events(), vec![("a".into(), State::Alive, State::Alive, Reason::Restarted)]);
    let forged_at = t.now;
    while t.table.snapshot(t.now, 0)[0].incarnation != 1 {
        t.run_for(S / 2);
        t.send(&beat("a", seq, 1));
        seq += 1;
        assert!(t.now - forged_at <= 3 * S, "shut out for more than three intervals");
    }
    let ev = t.events();
    assert_eq!(ev.last(), Some(&("a".into(), State::Alive, State::Alive, Reason::Conflict)), "{ev:?}");
    assert!(!ev.iter().any(|e| e.2 != State::Alive), "never suspect or dead: {ev:?}");
    // An incarnation from the far future is refused outright, from any host.
    let future = rejected("future_incarnation");
    assert_eq!(t.send(&beat("a", 1, u32::MAX)), None);
    assert_eq!(t.send(&Frame { incarnation_us: Some(u64::MAX), ..beat("a", 1, 3) }), None);
    assert_eq!(rejected("future_incarnation"), future + 2);
    assert_eq!(t.table.snapshot(t.now, 0)[0].incarnation, 1);
}

/// With a key an older incarnation is a replay, never a claim, whoever sends it.
#[test]
fn with_a_key_an_older_incarnation_never_takes_over() {
    let mut t = Fixture::plain();
    t.send(&beat("a", 1, 1));
    t.send(&beat("a", 1, 2));
    t.run_for(30 * S);
    t.events();
    assert_eq!(t.send(&beat("a", 2, 1)), None);
    assert_eq!(t.events(), vec![]);
}

/// A flood of made-up ids from one host: past the host's share (1/64 of the table, at
/// least 1,024) its ids go on probation, so the flood is no event flood; in a full table it
/// churns its own ids, and a newcomer from another host keeps its place until its second
/// beat confirms it.
#[test]
fn one_host_cannot_crowd_out_newcomers_with_ids_it_makes_up() {
    let mut t = Fixture::new(TableConfig::new(DetectorKind::Adaptive, 4096, false));
    t.send(&beat("steady", 1, 1));
    t.send(&beat("steady", 2, 1));
    t.events();
    let mut flood = 0;
    let mut send_flood = |t: &mut Fixture, n: usize| {
        for _ in 0..n {
            t.send_from(&beat(&format!("flood-{flood}"), 1, 1), "10.9.9.9:999");
            flood += 1;
        }
    };
    send_flood(&mut t, 10_000);
    assert_eq!(t.table.len(), 4096);
    let ev = t.events();
    let reported = ev.iter().filter(|e| e.3 == Reason::Registered).count();
    assert!(reported <= 1024, "at most the host's share reported: {reported}");
    assert!(ev.iter().all(|e| e.0 != "steady"));
    // A newcomer from elsewhere, its second beat one interval (and 10,000 flood ids) later.
    t.send_from(&beat("newcomer", 1, 1), "127.0.0.9:4000");
    send_flood(&mut t, 10_000);
    t.send_from(&beat("newcomer", 2, 1), "127.0.0.9:4000");
    let ev = t.events();
    assert!(ev.contains(&("newcomer".into(), State::Unknown, State::Alive, Reason::Registered)), "{:?}", ev.last());
    assert_eq!(t.state("steady"), Some(State::Alive));
    assert_eq!(t.table.counts().evicted, 20_000 + 2 - 4096, "steady, the newcomer and the flood");
}

/// With a key a frame stamped (under the tag) more than the replay window ago is refused,
/// whatever the table remembers: a capture replayed after a monitor restart brings nobody
/// back. Unstamped frames (older clients) still pass.
#[test]
fn with_a_key_frames_from_outside_the_replay_window_are_refused() {
    let mut t = Fixture::plain();
    let now = crate::events::unix_ms_now();
    let outside = rejected("outside_window");
    let old = Frame { sent_unix_ms: Some(now - REPLAY_WINDOW_MS - 5_000), ..beat("a", 1, 1) };
    assert_eq!(t.send(&old), None);
    let ahead = Frame { sent_unix_ms: Some(now + REPLAY_WINDOW_MS + 5_000), ..beat("a", 1, 1) };
    assert_eq!(t.send(&ahead), None);
    assert_eq!(rejected("outside_window"), outside + 2);
    assert_eq!(t.table.len(), 0);
    assert!(t.send(&Frame { sent_unix_ms: Some(now), ..beat("a", 1, 1) }).is_some());
    assert!(t.send(&beat("a", 2, 1)).is_some(), "no stamp: an older client");
    // Without a key the stamp is not looked at (anyone could forge it).
    let mut open = Fixture::new(TableConfig::new(DetectorKind::Adaptive, 10, false));
    assert!(open.send(&old).is_some());
}

/// A host that stays overloaded: every sweep runs late by more than the pause threshold,
/// for a minute. Each late sweep is a pause, yet a peer that went silent is still
/// convicted, within its deadline span plus the time the sweeps lost; a peer that keeps
/// beating is never suspected.
#[test]
fn sustained_late_sweeps_delay_a_silent_peers_conviction_by_the_time_lost_only() {
    let mut t = Fixture::plain();
    let mut seq = 0;
    for _ in 0..20 {
        seq += 1;
        t.send(&with_ttl(beat("silent", seq, 1), 3_000));
        t.send(&with_ttl(beat("beating", seq, 1), 3_000));
        t.run_for(S);
    }
    let last_heard = t.now;
    let span = {
        let p = t.table.slab.get(t.table.index["silent"]).unwrap();
        p.dead_deadline(&DetectorParams::default()) - p.last_beat_ns()
    };
    t.events();
    // From now on each sweep is planned a tick ahead and runs 300 ms later than planned:
    // a pause whatever the peers' slack (the threshold is at most 250 ms).
    let late = 300 * MS;
    let pauses = metrics::get().sweeper_pauses.get();
    let mut lost = 0;
    let end = t.now + 60 * S;
    let mut next_beat = t.now + S;
    while t.now < end && t.state("silent") != Some(State::Dead) {
        t.now += TICK_NS + late;
        t.table.sweep(t.now - late, t.now);
        lost += late;
        if t.now >= next_beat {
            seq += 1;
            t.send(&with_ttl(beat("beating", seq, 1), 3_000));
            next_beat += S;
        }
    }
    assert_eq!(t.state("silent"), Some(State::Dead), "never convicted in 60 s of late sweeps");
    assert!(metrics::get().sweeper_pauses.get() > pauses + 5, "the late sweeps were pauses");
    let dead_after = t.since_ns("silent") - last_heard;
    assert!(
        dead_after <= span + lost + TICK_NS + late,
        "dead {} ms after its last beat: span {} ms + {} ms lost to late sweeps",
        dead_after / MS,
        span / MS,
        lost / MS
    );
    let beating: Vec<_> = t.events().into_iter().filter(|e| e.0 == "beating").collect();
    assert!(beating.is_empty(), "{beating:?}");
}
