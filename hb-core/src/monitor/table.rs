//! The peer table: every tracked peer, its state machine and the sweeper's timing wheel.
//!
//! Pure and synchronous: time comes in as `now_ns`, frames come in decoded, and the caller
//! sends the returned replies. The listeners and the sweeper task hold the one table lock
//! around a whole receive batch or sweep, not per frame.
//!
//! States: alive → suspect → dead on silence (reason `timeout`, or `flapping` when the flap
//! damper holds the peer), any → left on LEAVE, back to alive when heard (`recovered`), and
//! alive with `restarted` on a higher incarnation (see `newer_incarnation`: the 64-bit
//! `incarnation_us` when the peer sends it, the header's u32 otherwise). Dead and left
//! peers stay visible for `reap_after` (10 minutes by default), then they are forgotten
//! without an event.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::detect::{Detector, DetectorKind, DetectorParams, FlapDamper, PauseGuard};
use crate::events::{Event, EventHub, Reason, State};
use crate::metrics;
use crate::peers::PeerInfo;
use crate::proto::{Flags, FrameRef, Kind, NackReason};

use super::admission::{self, Admission};
use super::claim::{self, Rival, Tracked, Verdict};
use super::intern::{to_map, Interner, Meta};
use super::rejects::reject;
use super::slab::Slab;
use super::wheel::TimingWheel;

/// Longest beat interval a monitor accepts (sent back in every ACK).
pub const DEFAULT_MAX_INTERVAL_MS: u32 = 30_000;
/// How long dead and left peers stay in `peers()` before they are forgotten.
pub const DEFAULT_REAP_AFTER_NS: u64 = 600 * 1_000_000_000;
/// Shortest interval taken from a beat (a 0 or absurdly small announcement is clamped).
const MIN_INTERVAL_MS: u32 = 10;
/// A sweep later than this always means the monitor itself was paused (shorter lateness
/// does when it reaches half a live peer's slack, see `PauseGuard`); the sweeper wakes at
/// least this often.
pub const SWEEP_MAX_LATENESS_NS: u64 = 250_000_000;
/// Lateness below this is timer noise, never a pause (two wheel ticks).
const SWEEP_MIN_LATENESS_NS: u64 = 2 * super::wheel::TICK_NS;

#[derive(Clone, Debug)]
pub struct TableConfig {
    pub detector: DetectorKind,
    pub params: DetectorParams,
    pub max_peers: usize,
    pub max_interval_ms: u32,
    pub reap_after_ns: u64,
    /// With an auth key, replayed frames (seq not increasing) are rejected.
    pub check_replay: bool,
    /// From this many peers on, a new id is admitted on probation (see `Peer::on_probation`).
    pub probation_at: usize,
}

impl TableConfig {
    pub fn new(detector: DetectorKind, max_peers: usize, check_replay: bool) -> TableConfig {
        TableConfig {
            detector,
            params: DetectorParams::default(),
            max_peers,
            max_interval_ms: DEFAULT_MAX_INTERVAL_MS,
            reap_after_ns: DEFAULT_REAP_AFTER_NS,
            check_replay,
            probation_at: probation_at(max_peers),
        }
    }
}

/// How long a table stays under pressure after it last was: new ids are admitted on
/// probation until then.
const PRESSURE_HOLD_NS: u64 = 10_000 * MS;

/// A table under pressure is half full (a flood of made-up ids fills it fast); a small one
/// (under 1,024) only when full.
fn probation_at(max_peers: usize) -> usize {
    if max_peers >= 1024 {
        max_peers / 2
    } else {
        max_peers
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PeerState {
    Alive,
    Suspect,
    Dead,
    Left,
}

impl PeerState {
    const ALL: [PeerState; 4] = [PeerState::Alive, PeerState::Suspect, PeerState::Dead, PeerState::Left];

    /// Dead or left: no longer vouched for, kept only to be shown.
    fn is_gone(self) -> bool {
        matches!(self, PeerState::Dead | PeerState::Left)
    }

    pub fn public(self) -> State {
        match self {
            PeerState::Alive => State::Alive,
            PeerState::Suspect => State::Suspect,
            PeerState::Dead => State::Dead,
            PeerState::Left => State::Left,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// Where a frame came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// What to send back for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `promise_ms`: no `dead` before the beat's receive time + this (BEATs only).
    Ack {
        seq: u32,
        ts_ns: u64,
        promise_ms: Option<u32>,
    },
    Nack {
        seq: u32,
        ts_ns: u64,
        reason: NackReason,
    },
}

/// One tracked peer. Kept small (see `tests::peer_is_small`): the table is sized for 100k.
struct Peer {
    id: Arc<str>,
    /// Service and labels, shared with every peer that has the same.
    meta: Arc<Meta>,
    traceparent: Option<Box<Traceparent>>,
    detector: Detector,
    flap: FlapDamper,
    /// When the current state was entered (monotonic ns).
    since_ns: u64,
    /// The wheel tick this peer is scheduled in; older wheel entries are stale.
    wheel_tick: u32,
    /// The header's incarnation (tenths of a second): shown in events and `peers()`.
    incarnation: u32,
    last_seq: u32,
    interval_ms: u32,
    /// The peer's own smoothed RTT to us in µs, as its beats report it; `NO_RTT` until one does.
    rtt_us: u32,
    ip: IpAddr,
    port: u16,
    transport: Transport,
    state: PeerState,
    /// The `incarnation_us` extension of the current incarnation; `NO_INCARNATION_US` when
    /// the peer does not send it (a client older than the extension).
    incarnation_us: u64,
    /// The TTL the peer sends (`ttl_ms`): never `dead` later than this after its last beat.
    /// `NO_TTL` for a client older than the extension.
    ttl_ms: u32,
    /// The latest promise given in an ACK, in ms after the last beat: never `dead` before
    /// then (see `dead_deadline`). A u32 relative to the last beat rather than a u64
    /// instant keeps the peer record small.
    promise_ms: u32,
    /// Another incarnation claiming this id while this one still beats (see `claim`).
    rival: Option<Box<Rival>>,
    /// Heard more than once: a peer that beat once and never again is what a flood of
    /// made-up ids looks like, and the first to go when the table is full.
    confirmed: bool,
    /// Admitted while the table was under pressure: not reported (no event, not in
    /// `peers()` or the counts) until a second beat confirms it; dropped without a word if
    /// none comes by its suspect deadline or when room is needed.
    on_probation: bool,
}

/// `Peer::ttl_ms` of a peer that does not send one: the detector alone decides.
const NO_TTL: u32 = 0;
const MS: u64 = 1_000_000;

impl Peer {
    fn last_beat_ns(&self) -> u64 {
        self.detector.last_heartbeat_ns()
    }

    /// No `dead` before this: the latest promise made in an ACK.
    fn promised_until_ns(&self) -> u64 {
        self.last_beat_ns().saturating_add(u64::from(self.promise_ms) * MS)
    }

    /// Keeps the promise made before the last beat moved (`promised_until_ns` is relative
    /// to it): rounded up, so the kept promise is never shorter than the one made.
    fn keep_promise(&mut self, promised_until_ns: u64) {
        let ms = promised_until_ns.saturating_sub(self.last_beat_ns()).div_ceil(MS);
        self.promise_ms = ms.min(u64::from(u32::MAX)) as u32;
    }

    /// When the peer is reported `dead` if nothing more is heard: the detector's deadline,
    /// but no later than TTL after the last beat, and never before a promise already made
    /// (promises only move out, so every ACK's promise is kept).
    fn dead_deadline(&self, params: &DetectorParams) -> u64 {
        let mut dead = self.detector.dead_at(params);
        if self.ttl_ms != NO_TTL {
            dead = dead.min(self.last_beat_ns().saturating_add(u64::from(self.ttl_ms) * MS));
        }
        dead.max(self.promised_until_ns())
    }

    /// When the peer becomes `suspect`: the detector's, or `dead_deadline` if that is sooner.
    /// Runs on every beat, so it does not place the detector's dead deadline (the costly
    /// part of `dead_deadline`): that one is never before the suspect one, so only the TTL
    /// bound and the promise can make `dead_deadline` sooner, exactly as computed here.
    fn suspect_deadline(&self, params: &DetectorParams) -> u64 {
        let suspect = self.detector.suspect_at(params);
        let mut dead = suspect;
        if self.ttl_ms != NO_TTL {
            dead = dead.min(self.last_beat_ns().saturating_add(u64::from(self.ttl_ms) * MS));
        }
        let due = suspect.min(dead.max(self.promised_until_ns()));
        debug_assert_eq!(due, suspect.min(self.dead_deadline(params)), "the shortcut is the definition");
        due
    }

    /// The promise for an ACK sent now (the beat just arrived): `dead_deadline` − now,
    /// remembered so that later beats can only move it out.
    fn promise(&mut self, now_ns: u64, params: &DetectorParams) -> u32 {
        let until = self.dead_deadline(params);
        self.keep_promise(until);
        // What the peer record can hold (u32 ms after the last beat) bounds what is promised.
        let kept = until.min(self.promised_until_ns());
        (kept.saturating_sub(now_ns) / MS).min(u64::from(u32::MAX)) as u32
    }
}

/// `Peer::incarnation_us` of a peer that does not send the extension (0 µs since the
/// epoch is never a real process start).
const NO_INCARNATION_US: u64 = 0;

/// How the incarnation of frame `f` compares with the peer's current one.
///
/// With the 64-bit value on both sides, it decides alone (µs: a restart within 100 ms,
/// which repeats the header's tenths of a second, is still newer). A client that predates
/// the extension is ordered by the header, as before. A frame with the extension after
/// ones without is a later process (the old one never sent it) unless its header is older.
fn newer_incarnation(p: &Peer, f: &FrameRef<'_>) -> Ordering {
    match (p.incarnation_us, frame_incarnation_us(f)) {
        (_, NO_INCARNATION_US) => f.incarnation.cmp(&p.incarnation),
        (NO_INCARNATION_US, _) => match f.incarnation.cmp(&p.incarnation) {
            Ordering::Less => Ordering::Less,
            _ => Ordering::Greater,
        },
        (stored, us) => us.cmp(&stored),
    }
}

/// The frame's `incarnation_us`, as stored: a 0 counts as absent.
fn frame_incarnation_us(f: &FrameRef<'_>) -> u64 {
    f.incarnation_us.unwrap_or(NO_INCARNATION_US)
}

/// How long after a LEAVE a beat numbered before it is taken as overtaken by it (UDP
/// reordering, a LEAVE retried on a fresh TCP connection): three intervals, 100 ms .. 1 s.
fn overtaken_window_ns(interval_ns: u64) -> u64 {
    (3 * interval_ns).clamp(100 * MS, 1_000 * MS)
}

/// True if `slot` holds a peer from `ip` heard only once.
fn unconfirmed_from(slab: &Slab<Peer>, slot: u32, ip: IpAddr) -> bool {
    slab.get(slot).is_some_and(|p| !p.confirmed && p.ip == ip)
}

/// How far a keyed frame's `sent_unix_ms` may be from our wall clock: replay protection
/// that survives a monitor restart or a reap (clocks of keyed hosts must agree this well).
pub const REPLAY_WINDOW_MS: u64 = 60_000;

/// A keyed frame sent (by its authenticated wall-clock stamp) longer ago than the replay
/// window, or that far ahead. A frame without the stamp (a client older than it) passes:
/// only the per-peer seq check protects it.
fn outside_replay_window(f: &FrameRef<'_>) -> bool {
    f.sent_unix_ms.is_some_and(|sent| sent.abs_diff(crate::events::unix_ms_now()) > REPLAY_WINDOW_MS)
}

/// The tracked process of peer `p`, as a claim on its id is judged.
fn tracked(p: &Peer) -> Tracked {
    Tracked {
        live: matches!(p.state, PeerState::Alive | PeerState::Suspect),
        last_heard_ns: p.last_beat_ns(),
        interval_ns: u64::from(p.interval_ms) * MS,
        ip: p.ip,
    }
}

/// The most a sender's seq can have grown in `elapsed_ns` since we last heard it: one a
/// millisecond (no client beats faster), plus room for a burst.
fn max_seq_advance(elapsed_ns: u64) -> u32 {
    (elapsed_ns / MS).saturating_add(1024).min(u64::from(u32::MAX)) as u32
}

/// `Peer::rtt_us` before the peer reported one (a u32, not an Option, to keep peers small;
/// 2^32−1 µs is over an hour, never a real report).
const NO_RTT: u32 = u32::MAX;

/// A W3C traceparent is always 55 bytes: stored inline behind a thin pointer.
type Traceparent = [u8; 55];

fn traceparent(t: Option<&str>) -> Option<Box<Traceparent>> {
    t.and_then(|t| <Traceparent>::try_from(t.as_bytes()).ok()).map(Box::new)
}

fn traceparent_str(t: &Traceparent) -> String {
    String::from_utf8_lossy(t).into_owned()
}

/// One peer as copied out of the table under its lock: no string is built yet.
pub struct PeerRow {
    id: Arc<str>,
    meta: Arc<Meta>,
    ago_ms: u64,
    state: PeerState,
    incarnation: u32,
    interval_ms: u32,
    rtt_us: u32,
    addr: SocketAddr,
    transport: Transport,
}

impl PeerRow {
    pub fn info(&self, now_unix_ms: u64) -> PeerInfo {
        let scheme = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        };
        PeerInfo {
            id: self.id.to_string(),
            service: self.meta.service.to_string(),
            labels: to_map(&self.meta.labels),
            state: self.state.public(),
            last_seen_unix_ms: now_unix_ms.saturating_sub(self.ago_ms),
            incarnation: self.incarnation,
            epoch: 0,
            interval_ms: self.interval_ms,
            rtt_us: (self.rtt_us != NO_RTT).then_some(self.rtt_us),
            addr: Some(format!("{scheme}://{}", self.addr)),
        }
    }
}

/// A row is listed as the peer it becomes (`GET /v1/peers`).
impl crate::http::Listed for PeerRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn service(&self) -> &str {
        &self.meta.service
    }
    fn label(&self, key: &str) -> Option<&str> {
        self.meta.labels.iter().find(|(k, _)| &**k == key).map(|(_, v)| &**v)
    }
    fn state(&self) -> crate::events::State {
        self.state.public()
    }
    fn recency(&self) -> u64 {
        u64::MAX - self.ago_ms
    }
}

/// Counters a Monitor reports in `stats()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounts {
    pub alive: usize,
    pub suspect: usize,
    pub dead: usize,
    pub left: usize,
    /// Admitted on probation, not yet confirmed (not in `peers()`).
    pub on_probation: usize,
    /// Peers forgotten to make room for new ones, since the table was made.
    pub evicted: u64,
    /// New peers refused because the table was full of confirmed live ones.
    pub refused: u64,
}

pub struct PeerTable {
    cfg: TableConfig,
    slab: Slab<Peer>,
    index: HashMap<Arc<str>, u32>,
    interner: Interner,
    wheel: TimingWheel,
    guard: PauseGuard,
    events: Arc<EventHub>,
    counts: [usize; 4],
    gauges: [prometheus::IntGauge; 4],
    on_probation: usize,
    evicted: u64,
    refused: u64,
    /// Until then new ids are admitted on probation (see `PRESSURE_HOLD_NS`).
    pressure_until_ns: u64,
    admission: Admission,
    due: Vec<(u32, u32)>,
    reaped_since_purge: usize,
    /// When the sweeper plans to run next (see `plan_sweep`).
    sweep_planned_ns: u64,
    /// A deadline earlier than `sweep_planned_ns` was scheduled since the plan was made.
    sweep_sooner: bool,
}

impl PeerTable {
    /// The detector parameters every peer is judged by.
    #[cfg(test)]
    pub(crate) fn params(&self) -> &DetectorParams {
        &self.cfg.params
    }

    pub fn new(cfg: TableConfig, events: Arc<EventHub>, now_ns: u64) -> PeerTable {
        let gauges = PeerState::ALL.map(|s| metrics::get().peers.with_label_values(&[s.public().as_str()]));
        PeerTable {
            slab: Slab::new(),
            index: HashMap::new(),
            interner: Interner::new(),
            wheel: TimingWheel::new(now_ns),
            guard: PauseGuard::new(SWEEP_MIN_LATENESS_NS, SWEEP_MAX_LATENESS_NS),
            events,
            counts: [0; 4],
            gauges,
            on_probation: 0,
            evicted: 0,
            refused: 0,
            pressure_until_ns: 0,
            admission: Admission::default(),
            due: Vec::new(),
            reaped_since_purge: 0,
            sweep_planned_ns: u64::MAX,
            sweep_sooner: false,
            cfg,
        }
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    pub fn counts(&self) -> TableCounts {
        TableCounts {
            alive: self.counts[0],
            suspect: self.counts[1],
            dead: self.counts[2],
            left: self.counts[3],
            on_probation: self.on_probation,
            evicted: self.evicted,
            refused: self.refused,
        }
    }

    pub fn max_interval_ms(&self) -> u32 {
        self.cfg.max_interval_ms
    }

    /// Handles one decoded frame received at `now_ns`; returns the reply to send, if any.
    pub fn ingest(&mut self, f: &FrameRef<'_>, from: Source, now_ns: u64) -> Option<Reply> {
        let wants_ack = f.flags.contains(Flags::ACK_REQ);
        let ack = Reply::Ack { seq: f.seq, ts_ns: f.ts_ns, promise_ms: None };
        if !matches!(f.kind, Kind::Beat | Kind::Leave) {
            reject("unexpected_kind");
            return None;
        }
        if self.cfg.check_replay && outside_replay_window(f) {
            reject("outside_window");
            return None;
        }
        let interval_ms = f.interval_ms.clamp(MIN_INTERVAL_MS, self.cfg.max_interval_ms);
        let interval_ns = u64::from(interval_ms) * 1_000_000;
        let Some(&slot) = self.index.get(f.id) else {
            if f.kind == Kind::Leave {
                // Never heard of it: nothing to report.
                return wants_ack.then_some(ack);
            }
            let host_full = self.admission.host_full(from.addr.ip(), admission::host_quota(self.cfg.max_peers));
            if host_full || self.slab.len() >= self.cfg.probation_at {
                // Held a while: a flood's ids expiring together must not let the next
                // thousand through as reported peers.
                self.pressure_until_ns = now_ns.saturating_add(PRESSURE_HOLD_NS);
            }
            let on_probation = now_ns < self.pressure_until_ns;
            if self.slab.len() >= self.cfg.max_peers && !self.evict_one(now_ns) {
                self.refused += 1;
                metrics::get().peers_refused.inc();
                reject("too_many_peers");
                return Some(Reply::Nack { seq: f.seq, ts_ns: f.ts_ns, reason: NackReason::TooManyPeers });
            }
            let slot = self.insert(f, from, interval_ms, now_ns, on_probation);
            return wants_ack.then(|| self.ack(slot, f, now_ns));
        };
        let check_replay = self.cfg.check_replay;
        let params = self.cfg.params;
        let kind = self.cfg.detector;
        let peers = self.slab.len();
        let own_pause_end_ns = self.guard.pause_end_ns();
        let p = self.slab.get_mut(slot).expect("index points at a live slot");
        if p.on_probation && f.kind == Kind::Leave {
            // Never reported, so its goodbye needs no event either.
            self.reap(slot);
            return wants_ack.then_some(ack);
        }
        let order = newer_incarnation(p, f);
        if order != Ordering::Equal {
            let tracked = tracked(p);
            match claim::judge(&mut p.rival, f, from.addr.ip(), order, &tracked, check_replay, now_ns) {
                Verdict::TakeOver => {}
                Verdict::Refuse(reason) => {
                    reject(reason);
                    return None;
                }
                Verdict::HoldOff { report } => {
                    reject("conflict");
                    if report {
                        self.report_conflict(slot);
                    }
                    return wants_ack.then_some(Reply::Nack {
                        seq: f.seq,
                        ts_ns: f.ts_ns,
                        reason: NackReason::Conflict,
                    });
                }
            }
        }
        // Promises outlive the beat that moves the detector's clock, and a restart too:
        // the old process was promised them (it may still be running, cut off).
        let promised_until_ns = p.promised_until_ns();
        // Another incarnation took the id over: a restart, or (older) the process that a
        // forged restart had displaced. Replay protection keys on the incarnation too: a
        // new one starts a new seq run.
        let took_over = match order {
            Ordering::Greater => Some(Reason::Restarted),
            Ordering::Less => Some(Reason::Conflict),
            Ordering::Equal => None,
        };
        let restarted = took_over.is_some();
        let mut conflict = false;
        if restarted {
            p.incarnation = f.incarnation;
            p.incarnation_us = frame_incarnation_us(f);
            p.last_seq = f.seq;
            p.detector = Detector::new(kind, interval_ns, now_ns);
        } else {
            if !check_replay && f.seq > p.last_seq.saturating_add(max_seq_advance(now_ns - p.last_beat_ns())) {
                // Without a key a forged frame far ahead in seq would make the real
                // sender's LEAVE look stale; no sender counts faster than one a millisecond.
                reject("implausible_seq");
                return None;
            }
            if f.kind == Kind::Leave && f.seq < p.last_seq {
                // A client's LEAVE is the last frame it numbers: one older than a beat we
                // have is stale (or forged: without a key, seq 0 would make a false `left`).
                reject("stale_leave");
                return None;
            }
            if p.state == PeerState::Left && f.seq <= p.last_seq {
                // A beat overtaken by its own LEAVE arrives moments after it: not a
                // resurrection. Later than that the sender is plainly still running (a LEAVE
                // far ahead in seq, forged without a key, must not silence it until the reap),
                // so its seq run starts again; with a key such a beat is a replay.
                if now_ns.saturating_sub(p.since_ns) <= overtaken_window_ns(interval_ns) || check_replay {
                    return None;
                }
                p.last_seq = f.seq;
            }
            if check_replay && f.seq <= p.last_seq {
                reject("replay");
                return None;
            }
            p.last_seq = p.last_seq.max(f.seq);
            // Late because the sender was paused, or spanning our own pause: heard, but not
            // a sample of the path (learning it would read our stall as a burst of loss).
            let paused = f.flags.contains(Flags::STALLED) || p.last_beat_ns() < own_pause_end_ns;
            if f.kind == Kind::Beat && paused {
                p.detector.heartbeat_after_pause(now_ns, interval_ns, &params);
            } else if f.kind == Kind::Beat {
                p.detector.heartbeat(now_ns, interval_ns, &params);
            }
            let tracked = tracked(p);
            conflict = claim::tracked_heard(&mut p.rival, &tracked, now_ns);
        }
        let confirms = f.kind == Kind::Beat && !restarted && !p.confirmed;
        if confirms {
            p.confirmed = true;
            self.admission.no_longer_unconfirmed(p.ip);
        }
        p.keep_promise(promised_until_ns);
        if refresh(p, f, from, interval_ms, restarted, &mut self.interner) {
            self.interner.purge_if_bloated(peers);
        }
        let target = match (f.kind, p.state) {
            (Kind::Leave, PeerState::Left) => None,
            (Kind::Leave, _) => Some((PeerState::Left, Reason::Left)),
            (_, _) if restarted => took_over.map(|reason| (PeerState::Alive, reason)),
            (_, PeerState::Alive) => None,
            (_, PeerState::Suspect) if p.flap.hold_suspect(now_ns) => None,
            // It said goodbye, and now beats again: a new registration (docs/states.md).
            (_, PeerState::Left) => Some((PeerState::Alive, Reason::Registered)),
            (_, _) => Some((PeerState::Alive, Reason::Recovered)),
        };
        if let Some((to, reason)) = target {
            self.transition(slot, to, reason, now_ns);
        }
        if confirms && self.slab.get(slot).is_some_and(|p| p.on_probation) {
            self.end_probation(slot);
        }
        if conflict {
            self.report_conflict(slot);
        }
        // The suspect deadline, the costly part of a beat, placed once for both uses.
        let mut suspect = None;
        if f.kind == Kind::Beat {
            let p = self.slab.get(slot).expect("live slot");
            let expected_ns = p.last_beat_ns().saturating_add(interval_ns);
            let deadline = p.suspect_deadline(&params);
            self.guard.observe_slack(deadline.saturating_sub(expected_ns), now_ns);
            suspect = Some(deadline);
        }
        self.schedule_if_earlier_given(slot, suspect);
        wants_ack.then(|| self.ack(slot, f, now_ns))
    }

    /// The ACK for frame `f` of the peer in `slot`, received at `now_ns`: a BEAT's carries
    /// the promise; a LEAVE's does not (the peer left, nothing is promised).
    fn ack(&mut self, slot: u32, f: &FrameRef<'_>, now_ns: u64) -> Reply {
        let params = self.cfg.params;
        let p = self.slab.get_mut(slot).expect("live slot");
        let promise_ms = (f.kind == Kind::Beat).then(|| p.promise(now_ns, &params));
        Reply::Ack { seq: f.seq, ts_ns: f.ts_ns, promise_ms }
    }

    fn insert(&mut self, f: &FrameRef<'_>, from: Source, interval_ms: u32, now_ns: u64, on_probation: bool) -> u32 {
        let id: Arc<str> = Arc::from(f.id);
        let interval_ns = u64::from(interval_ms) * 1_000_000;
        let peer = Peer {
            id: Arc::clone(&id),
            meta: self.interner.meta(f.service.unwrap_or(""), f.labels()),
            traceparent: traceparent(f.traceparent),
            detector: Detector::new(self.cfg.detector, interval_ns, now_ns),
            flap: FlapDamper::default(),
            since_ns: now_ns,
            wheel_tick: u32::MAX,
            incarnation: f.incarnation,
            last_seq: f.seq,
            interval_ms,
            rtt_us: f.rtt_us.unwrap_or(NO_RTT),
            ip: from.addr.ip(),
            port: from.addr.port(),
            transport: from.transport,
            state: PeerState::Alive,
            incarnation_us: frame_incarnation_us(f),
            ttl_ms: f.ttl_ms.unwrap_or(NO_TTL),
            promise_ms: 0,
            rival: None,
            confirmed: false,
            on_probation,
        };
        let slot = self.slab.insert(peer);
        self.index.insert(id, slot);
        let slab = &self.slab;
        self.admission.inserted(slot, from.addr.ip(), slab.len(), |s| slab.get(s).is_some_and(|p| !p.confirmed));
        if on_probation {
            self.on_probation += 1;
        } else {
            self.report_registered(slot);
        }
        self.schedule_if_earlier(slot);
        slot
    }

    fn report_registered(&mut self, slot: u32) {
        self.counts[PeerState::Alive as usize] += 1;
        self.gauges[PeerState::Alive as usize].inc();
        metrics::get().transitions.with_label_values(&[Reason::Registered.as_str()]).inc();
        let p = self.slab.get(slot).expect("live slot");
        self.events.emit(event(p, State::Unknown, Reason::Registered));
    }

    /// A peer on probation beat a second time: from now on it is a peer like any other.
    fn end_probation(&mut self, slot: u32) {
        let p = self.slab.get_mut(slot).expect("live slot");
        p.on_probation = false;
        p.state = PeerState::Alive;
        self.on_probation -= 1;
        self.report_registered(slot);
    }

    /// Makes room in a full table: the oldest peer never heard twice (of the host holding
    /// the most of them, if any holds several), else the oldest dead or left one. False when
    /// every peer is live and confirmed: the newcomer is refused.
    fn evict_one(&mut self, now_ns: u64) -> bool {
        let slab = &self.slab;
        // From the host holding the most first: a flood from one host churns its own ids.
        let heaviest = self.admission.heaviest_host();
        let victim = heaviest
            .and_then(|ip| self.admission.oldest_of_host(ip, |s| unconfirmed_from(slab, s, ip)))
            .or_else(|| self.admission.oldest_unconfirmed(|s| slab.get(s).is_some_and(|p| !p.confirmed)))
            .or_else(|| self.admission.oldest_gone(|s| slab.get(s).is_some_and(|p| p.state.is_gone())));
        if let Some(slot) = victim {
            self.evict(slot, now_ns);
        }
        victim.is_some()
    }

    /// Forgets a peer to make room. One that was reported and is not dead or left yet is
    /// reported `dead` (`evicted`): the monitor no longer vouches for it.
    fn evict(&mut self, slot: u32, now_ns: u64) {
        let p = self.slab.get(slot).expect("live slot");
        if !p.on_probation && matches!(p.state, PeerState::Alive | PeerState::Suspect) {
            self.transition(slot, PeerState::Dead, Reason::Evicted, now_ns);
        }
        self.evicted += 1;
        metrics::get().peers_evicted.inc();
        self.reap(slot);
    }

    fn transition(&mut self, slot: u32, to: PeerState, reason: Reason, now_ns: u64) {
        let p = self.slab.get_mut(slot).expect("live slot");
        let from = p.state;
        p.state = to;
        p.since_ns = now_ns;
        if p.on_probation {
            return; // not reported yet: counted and told only once confirmed
        }
        if from != to {
            self.counts[from as usize] -= 1;
            self.counts[to as usize] += 1;
            self.gauges[from as usize].dec();
            self.gauges[to as usize].inc();
        }
        metrics::get().transitions.with_label_values(&[reason.as_str()]).inc();
        self.events.emit(event(p, from.public(), reason));
        if to.is_gone() {
            let slab = &self.slab;
            self.admission.gone(slot, slab.len(), |s| slab.get(s).is_some_and(|p| p.state.is_gone()));
        }
    }

    /// Two processes beat under this peer's id: the tracked one keeps it (see `claim`).
    fn report_conflict(&mut self, slot: u32) {
        let p = self.slab.get(slot).expect("live slot");
        metrics::get().transitions.with_label_values(&[Reason::Conflict.as_str()]).inc();
        self.events.emit(event(p, p.state.public(), Reason::Conflict));
    }

    /// When the peer becomes suspect if nothing more is heard, our own last pause allowed for.
    fn suspect_due(&self, p: &Peer) -> u64 {
        self.suspect_due_given(p, None)
    }

    /// `suspect_due`, with `p.suspect_deadline` already placed if `deadline` is given.
    fn suspect_due_given(&self, p: &Peer, deadline: Option<u64>) -> u64 {
        let deadline = deadline.unwrap_or_else(|| p.suspect_deadline(&self.cfg.params));
        self.guard.after_pause(deadline, p.last_beat_ns())
    }

    /// When the peer is dead if nothing more is heard, our own last pause allowed for.
    fn dead_due(&self, p: &Peer) -> u64 {
        self.guard.after_pause(p.dead_deadline(&self.cfg.params), p.last_beat_ns())
    }

    /// When this peer next needs the sweeper's attention.
    fn next_due(&self, p: &Peer) -> u64 {
        self.next_due_given(p, None)
    }

    /// `next_due`, with `p.suspect_deadline` already placed if `suspect` is given.
    fn next_due_given(&self, p: &Peer, suspect: Option<u64>) -> u64 {
        if p.on_probation {
            return self.suspect_due_given(p, suspect);
        }
        match p.state {
            PeerState::Alive => self.suspect_due_given(p, suspect),
            PeerState::Suspect => {
                let dead = self.dead_due(p);
                match p.flap.release_at_ns() {
                    Some(release) => dead.min(release),
                    None => dead,
                }
            }
            PeerState::Dead | PeerState::Left => p.since_ns.saturating_add(self.cfg.reap_after_ns),
        }
    }

    /// Puts the peer in the wheel if its deadline is now earlier than where it sits (a
    /// later deadline is found lazily when the old entry comes due).
    fn schedule_if_earlier(&mut self, slot: u32) {
        self.schedule_if_earlier_given(slot, None)
    }

    /// `schedule_if_earlier`, with the peer's `suspect_deadline` already placed if given.
    fn schedule_if_earlier_given(&mut self, slot: u32, suspect: Option<u64>) {
        let p = self.slab.get(slot).expect("live slot");
        let due = self.next_due_given(p, suspect);
        if self.wheel.tick_of(due) < p.wheel_tick {
            let tick = self.wheel.insert(slot, due);
            self.slab.get_mut(slot).expect("live slot").wheel_tick = tick;
            let start = self.wheel.start_ns(tick);
            if start < self.sweep_planned_ns {
                self.sweep_planned_ns = start;
                self.sweep_sooner = true;
            }
        }
    }

    /// When the sweeper should run next: the earliest wheel deadline, but no later than
    /// `now_ns + max_wait_ns`. Remembered, so that a beat scheduling an earlier deadline
    /// can ask for a sooner sweep (`take_sweep_sooner`).
    pub fn plan_sweep(&mut self, now_ns: u64, max_wait_ns: u64) -> u64 {
        // Waking at least every pause threshold is what lets lateness measure a stall.
        let latest = now_ns.saturating_add(max_wait_ns.min(self.guard.threshold_ns()));
        let at = self.wheel.next_due_ns().map_or(latest, |due| due.min(latest));
        self.sweep_planned_ns = at;
        self.sweep_sooner = false;
        at
    }

    /// True (once) when a deadline earlier than the planned sweep was scheduled: the
    /// caller wakes the sweeper so that it plans again.
    pub fn take_sweep_sooner(&mut self) -> bool {
        std::mem::take(&mut self.sweep_sooner)
    }

    /// One sweeper pass, scheduled for `scheduled_ns` and running at `now_ns`. Returns the
    /// number of transitions it made.
    pub fn sweep(&mut self, scheduled_ns: u64, now_ns: u64) -> usize {
        if self.guard.on_sweep(scheduled_ns, now_ns) {
            metrics::get().sweeper_pauses.inc();
        }
        let mut due = std::mem::take(&mut self.due);
        self.wheel.drain_due(now_ns, &mut due);
        let mut changed = 0;
        for &(slot, tick) in &due {
            if self.slab.get(slot).is_some_and(|p| p.wheel_tick == tick) {
                changed += self.evaluate(slot, now_ns);
            }
        }
        due.clear();
        self.due = due;
        if self.reaped_since_purge > 1024 || (self.reaped_since_purge > 0 && self.slab.len() < 1024) {
            self.interner.purge_unused();
            self.reaped_since_purge = 0;
        }
        changed
    }

    fn evaluate(&mut self, slot: u32, now_ns: u64) -> usize {
        let mut changed = 0;
        loop {
            let p = self.slab.get(slot).expect("live slot");
            let (suspect_due, dead_due) = (self.suspect_due(p), self.dead_due(p));
            let p = self.slab.get_mut(slot).expect("live slot");
            if p.on_probation && now_ns >= suspect_due {
                // Beat once and fell silent: never reported, so dropped without a word.
                self.reap(slot);
                return changed;
            }
            match p.state {
                PeerState::Alive if now_ns >= suspect_due => {
                    p.flap.on_transition(now_ns);
                    let reason = if p.flap.hold_suspect(now_ns) { Reason::Flapping } else { Reason::Timeout };
                    self.transition(slot, PeerState::Suspect, reason, now_ns);
                    changed += 1;
                }
                PeerState::Suspect if now_ns >= dead_due => {
                    self.transition(slot, PeerState::Dead, Reason::Timeout, now_ns);
                    changed += 1;
                }
                PeerState::Suspect if !p.flap.hold_suspect(now_ns) && now_ns < suspect_due => {
                    // Heard while held for flapping, and calm long enough now.
                    self.transition(slot, PeerState::Alive, Reason::Recovered, now_ns);
                    changed += 1;
                }
                PeerState::Dead | PeerState::Left if now_ns >= p.since_ns.saturating_add(self.cfg.reap_after_ns) => {
                    self.reap(slot);
                    return changed;
                }
                _ => break,
            }
        }
        let p = self.slab.get(slot).expect("live slot");
        let due = self.next_due(p).max(now_ns + 1);
        let tick = self.wheel.insert(slot, due);
        self.slab.get_mut(slot).expect("live slot").wheel_tick = tick;
        changed
    }

    fn reap(&mut self, slot: u32) {
        if let Some(p) = self.slab.remove(slot) {
            self.index.remove(&p.id);
            if !p.confirmed {
                self.admission.no_longer_unconfirmed(p.ip);
            }
            if p.on_probation {
                self.on_probation -= 1;
            } else {
                self.counts[p.state as usize] -= 1;
                self.gauges[p.state as usize].dec();
            }
            self.reaped_since_purge += 1;
        }
    }

    /// Removes this table's peers from the process-wide gauge (the monitor stopped).
    pub fn release_gauges(&mut self) {
        for (i, n) in self.counts.iter_mut().enumerate() {
            self.gauges[i].sub(*n as i64);
            *n = 0;
        }
    }

    /// Every peer as cheap shared and copied fields: the caller holds the table lock only
    /// for this, and builds the strings (`PeerRow::info`) after releasing it, so that
    /// listing 100k peers does not stall ingest and the sweeper.
    pub fn rows(&self, now_ns: u64) -> Vec<PeerRow> {
        let mut rows = Vec::with_capacity(self.slab.len());
        self.rows_in(0..self.slab.slots(), now_ns, &mut rows);
        rows
    }

    /// One past the highest slot a peer can be in (for `rows_in`).
    pub fn slots(&self) -> u32 {
        self.slab.slots()
    }

    /// `rows` of the peers in the slots `range`, appended to `out`.
    pub fn rows_in(&self, range: std::ops::Range<u32>, now_ns: u64, out: &mut Vec<PeerRow>) {
        let rows = range.filter_map(|slot| self.slab.get(slot)).filter(|p| !p.on_probation).map(|p| PeerRow {
            id: Arc::clone(&p.id),
            meta: Arc::clone(&p.meta),
            ago_ms: now_ns.saturating_sub(p.detector.last_heartbeat_ns()) / 1_000_000,
            state: p.state,
            incarnation: p.incarnation,
            interval_ms: p.interval_ms,
            rtt_us: p.rtt_us,
            addr: SocketAddr::new(p.ip, p.port),
            transport: p.transport,
        });
        out.extend(rows);
    }

    /// `rows` turned into `PeerInfo`s (for tests; the monitor releases the lock in between).
    #[cfg(test)]
    pub fn snapshot(&self, now_ns: u64, now_unix_ms: u64) -> Vec<PeerInfo> {
        self.rows(now_ns).into_iter().map(|r| r.info(now_unix_ms)).collect()
    }

    /// Approximate heap and table bytes held for the tracked peers (for `bench ingest`,
    /// which measures real RSS as well). Shared service/label strings are counted once.
    pub fn tracked_bytes_estimate(&self) -> usize {
        // Allocations are rounded up to 16 bytes by the allocator.
        let round = |n: usize| n.div_ceil(16) * 16;
        let per_peer: usize =
            self.slab.iter().map(|(_, p)| round(16 + p.id.len()) + p.traceparent.as_ref().map_or(0, |_| 64)).sum();
        let index = self.index.capacity() * (std::mem::size_of::<(Arc<str>, u32)>() + 1);
        self.slab.heap_bytes() + index + per_peer + self.interner.heap_bytes() + self.wheel.heap_bytes()
    }
}

/// Updates the peer from a frame it sent; true when its service or labels were replaced
/// (the old interned entry may now be unused).
fn refresh(
    p: &mut Peer,
    f: &FrameRef<'_>,
    from: Source,
    interval_ms: u32,
    restarted: bool,
    interner: &mut Interner,
) -> bool {
    let service = f.service.unwrap_or(&p.meta.service);
    let replaced = !p.meta.matches(service, f.labels());
    if replaced {
        p.meta = interner.meta(service, f.labels());
    }
    match (f.traceparent, &p.traceparent) {
        (Some(t), Some(old)) if old[..] == *t.as_bytes() => {}
        (None, None) => {}
        (t, _) => p.traceparent = traceparent(t),
    }
    if let Some(ttl_ms) = f.ttl_ms {
        p.ttl_ms = ttl_ms;
    }
    if f.kind == Kind::Beat {
        p.interval_ms = interval_ms;
        // A restarted peer has no estimate yet: forget the old process's figure.
        if let Some(rtt) = f.rtt_us.or(restarted.then_some(NO_RTT)) {
            p.rtt_us = rtt;
        }
    }
    p.ip = from.addr.ip();
    p.port = from.addr.port();
    p.transport = from.transport;
    replaced
}

fn event(p: &Peer, from: State, reason: Reason) -> Event {
    let mut ev = Event::new(&*p.id, &*p.meta.service, from, p.state.public(), reason);
    ev.incarnation = p.incarnation;
    ev.labels = to_map(&p.meta.labels);
    ev.traceparent = p.traceparent.as_deref().map(traceparent_str);
    ev
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
