//! Competing claims on one peer id.
//!
//! A frame of another incarnation than the tracked one is a claim on the id: the process
//! restarted, a second process was started with the same id, or someone forged a frame
//! (without a key, anyone who can send us a datagram can). The rule: the sender who keeps
//! beating keeps the id. While the tracked process is still heard (within
//! [`quiet_window_ns`]), another incarnation from another host is held off, and once both
//! are heard the monitor reports a `conflict`; when the tracked process has gone quiet, the
//! claim takes over — a newer incarnation as `restarted`, an older one (only without a key:
//! with one it is a replay) as `conflict`, so that one forged "restart" cannot lock the real
//! process out for longer than the quiet window. A newer incarnation from the tracked
//! process's own host is a restart there and takes over at once (a supervisor restarts a
//! process faster than two intervals); if the old process is in fact still beating, it is
//! then the older claimant, and reported as a conflict.

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::proto::FrameRef;

const MS: u64 = 1_000_000;

/// At most one `conflict` event per peer this often, however many frames a rival sends.
const REPORT_EVERY_NS: u64 = 10_000 * MS;

/// How far ahead of our wall clock a claim's `incarnation_us` (µs since the epoch at the
/// sender's start) may be: clock skew between hosts, not a forged 2^64−1.
pub const FUTURE_SLACK_US: u64 = 60_000_000;

/// The same bound for the header's tenths of a second, looser: a process bumps them once
/// per handle it makes (1,000 handles run 100 s ahead), see `client::shared`.
const FUTURE_SLACK_TENTHS: u64 = 36_000;

/// The header's tenths count from 2024-01-01 (`client::shared::incarnation_at`).
const EPOCH_2024_US: u64 = 1_704_067_200_000_000;

/// How long the tracked process must have been silent before another incarnation may take
/// the id: two of its intervals (a live sender beats once per interval), at least 100 ms.
pub fn quiet_window_ns(interval_ns: u64) -> u64 {
    interval_ns.saturating_mul(2).max(100 * MS)
}

/// The latest claim on an id by another incarnation than the tracked one. Rare, so the
/// peer record holds it boxed.
#[derive(Debug)]
pub struct Rival {
    incarnation: u32,
    incarnation_us: u64,
    /// Newer than the tracked incarnation (a restart or a duplicate), or older (a
    /// process that a forged restart displaced, or a stale duplicate).
    newer: bool,
    first_ns: u64,
    last_ns: u64,
    /// When a conflict was last reported for this id.
    reported_ns: Option<u64>,
}

/// What to do with a claim.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The tracked process has gone quiet: the claimant takes the id.
    TakeOver,
    /// The tracked process still beats: drop the frame; `report` when a `conflict` event
    /// is due now.
    HoldOff { report: bool },
    /// Not a claim at all, dropped and counted under this reason.
    Refuse(&'static str),
}

/// What the table knows of the tracked process, for judging a claim.
pub struct Tracked {
    /// Alive or suspect (dead and left processes hold no claim).
    pub live: bool,
    pub last_heard_ns: u64,
    pub interval_ns: u64,
    /// The host it beats from.
    pub ip: IpAddr,
}

impl Tracked {
    fn heard_recently(&self, now_ns: u64) -> bool {
        self.live && now_ns.saturating_sub(self.last_heard_ns) < quiet_window_ns(self.interval_ns)
    }
}

/// Judges frame `f` from host `from`, of an incarnation `order` (never `Equal`) relative
/// to the tracked one. `keyed`: frames are authenticated, so an older incarnation is a replay.
pub fn judge(
    rival: &mut Option<Box<Rival>>,
    f: &FrameRef<'_>,
    from: IpAddr,
    order: Ordering,
    tracked: &Tracked,
    keyed: bool,
    now_ns: u64,
) -> Verdict {
    if order == Ordering::Less && keyed {
        return Verdict::Refuse("stale_incarnation");
    }
    let newer = order == Ordering::Greater;
    // Before the quiet check: a live process that misses a beat or two (a busy host) must not
    // hand its id to a forged far-future incarnation, which its own next start could not beat.
    if newer && tracked.live && from_the_future(f, unix_us_now()) {
        return Verdict::Refuse("future_incarnation");
    }
    if !tracked.heard_recently(now_ns) {
        *rival = None;
        return Verdict::TakeOver;
    }
    if newer && from == tracked.ip {
        *rival = None;
        return Verdict::TakeOver;
    }
    let same = rival.as_ref().is_some_and(|r| {
        r.incarnation == f.incarnation && r.incarnation_us == f.incarnation_us.unwrap_or(0) && r.newer == newer
    });
    if !same {
        let reported_ns = rival.as_ref().and_then(|r| r.reported_ns);
        *rival = Some(Box::new(Rival {
            incarnation: f.incarnation,
            incarnation_us: f.incarnation_us.unwrap_or(0),
            newer,
            first_ns: now_ns,
            last_ns: now_ns,
            reported_ns,
        }));
    }
    let r = rival.as_mut().expect("set above");
    r.last_ns = now_ns;
    Verdict::HoldOff { report: report_due(r, tracked, now_ns) }
}

/// The tracked process was just heard: true when that proves a conflict with a rival
/// still beating and one is due to be reported. Forgets a rival long silent.
pub fn tracked_heard(rival: &mut Option<Box<Rival>>, tracked: &Tracked, now_ns: u64) -> bool {
    let Some(r) = rival.as_mut() else { return false };
    if now_ns.saturating_sub(r.last_ns) > REPORT_EVERY_NS.max(quiet_window_ns(tracked.interval_ns)) {
        *rival = None;
        return false;
    }
    report_due(r, tracked, now_ns)
}

/// Both are beating: the tracked process was heard after the claim began, and the claim is
/// still current. An older incarnation must also have lasted an interval: one frame of it
/// right after a restart is the old process's last beat still in flight, not a conflict.
fn report_due(r: &mut Rival, tracked: &Tracked, now_ns: u64) -> bool {
    let both = r.first_ns < tracked.last_heard_ns
        && now_ns.saturating_sub(r.last_ns) < quiet_window_ns(tracked.interval_ns)
        && (r.newer || r.last_ns - r.first_ns >= tracked.interval_ns);
    let due = r.reported_ns.map_or(true, |t| now_ns.saturating_sub(t) >= REPORT_EVERY_NS);
    if both && due {
        r.reported_ns = Some(now_ns);
    }
    both && due
}

/// An incarnation stamped further ahead of `now_unix_us` than clock skew explains.
fn from_the_future(f: &FrameRef<'_>, now_unix_us: u64) -> bool {
    match f.incarnation_us {
        Some(us) => us > now_unix_us.saturating_add(FUTURE_SLACK_US),
        None => {
            let now_tenths = now_unix_us.saturating_sub(EPOCH_2024_US) / 100_000;
            u64::from(f.incarnation) > now_tenths + FUTURE_SLACK_TENTHS
        }
    }
}

fn unix_us_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{decode, encode, Frame};

    const HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const OTHER_HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn judge_frame(rival: &mut Option<Box<Rival>>, f: &Frame, order: Ordering, t: &Tracked, now: u64) -> Verdict {
        let mut buf = Vec::new();
        encode(f, None, &mut buf).unwrap();
        let r = decode(&buf, None).unwrap();
        judge(rival, &r, OTHER_HOST, order, t, false, now)
    }

    #[test]
    fn the_future_is_bounded_in_both_resolutions() {
        let now = 1_800_000_000_000_000;
        let mut f = Frame::beat("a");
        f.incarnation_us = Some(now + FUTURE_SLACK_US);
        let mut buf = Vec::new();
        encode(&f, None, &mut buf).unwrap();
        assert!(!from_the_future(&decode(&buf, None).unwrap(), now));
        f.incarnation_us = Some(now + FUTURE_SLACK_US + 1);
        buf.clear();
        encode(&f, None, &mut buf).unwrap();
        assert!(from_the_future(&decode(&buf, None).unwrap(), now));
        f.incarnation_us = None;
        f.incarnation = u32::MAX;
        buf.clear();
        encode(&f, None, &mut buf).unwrap();
        assert!(from_the_future(&decode(&buf, None).unwrap(), now));
    }

    #[test]
    fn a_claim_waits_for_the_tracked_process_to_go_quiet() {
        let mut rival = None;
        let t = Tracked { live: true, last_heard_ns: 1_000 * MS, interval_ns: 100 * MS, ip: HOST };
        let mut f = Frame::beat("a");
        f.incarnation_us = Some(unix_us_now());
        // Heard 50 ms ago: held off, no conflict yet (not heard since the claim began).
        let v = judge_frame(&mut rival, &f, Ordering::Greater, &t, 1_050 * MS);
        assert_eq!(v, Verdict::HoldOff { report: false });
        // The tracked process beats again: now both are heard.
        let t = Tracked { last_heard_ns: 1_100 * MS, ..t };
        assert!(tracked_heard(&mut rival, &t, 1_100 * MS));
        // Reported once per REPORT_EVERY_NS, not per frame.
        assert!(!tracked_heard(&mut rival, &Tracked { last_heard_ns: 1_200 * MS, ..t }, 1_200 * MS));
        // Quiet for two intervals: the claim takes over.
        assert_eq!(judge_frame(&mut rival, &f, Ordering::Greater, &t, 1_300 * MS), Verdict::TakeOver);
        assert!(rival.is_none());
    }

    #[test]
    fn an_older_incarnation_is_a_conflict_only_when_it_lasts() {
        let mut rival = None;
        let f = Frame::beat("a");
        let t = Tracked { live: true, last_heard_ns: 1_000 * MS, interval_ns: 100 * MS, ip: HOST };
        assert_eq!(judge_frame(&mut rival, &f, Ordering::Less, &t, 1_010 * MS), Verdict::HoldOff { report: false });
        // The last beat of the old process, in flight across a restart: no conflict.
        assert!(!tracked_heard(&mut rival, &Tracked { last_heard_ns: 1_050 * MS, ..t }, 1_050 * MS));
        // Still beating an interval later: a second process holds the id.
        let t = Tracked { last_heard_ns: 1_150 * MS, ..t };
        assert_eq!(judge_frame(&mut rival, &f, Ordering::Less, &t, 1_160 * MS), Verdict::HoldOff { report: true });
        // With a key an older incarnation is a replay, whatever else.
        let mut buf = Vec::new();
        encode(&f, None, &mut buf).unwrap();
        let r = decode(&buf, None).unwrap();
        assert_eq!(
            judge(&mut rival, &r, HOST, Ordering::Less, &t, true, 1_160 * MS),
            Verdict::Refuse("stale_incarnation")
        );
    }

    #[test]
    fn a_restart_on_the_same_host_takes_over_at_once() {
        let t = Tracked { live: true, last_heard_ns: 1_000 * MS, interval_ns: 100 * MS, ip: HOST };
        let mut f = Frame::beat("a");
        f.incarnation_us = Some(unix_us_now());
        let mut buf = Vec::new();
        encode(&f, None, &mut buf).unwrap();
        let r = decode(&buf, None).unwrap();
        assert_eq!(judge(&mut None, &r, HOST, Ordering::Greater, &t, false, 1_010 * MS), Verdict::TakeOver);
        // Not with an incarnation from the far future, though.
        f.incarnation_us = Some(u64::MAX);
        buf.clear();
        encode(&f, None, &mut buf).unwrap();
        let r = decode(&buf, None).unwrap();
        let v = judge(&mut None, &r, HOST, Ordering::Greater, &t, false, 1_010 * MS);
        assert_eq!(v, Verdict::Refuse("future_incarnation"));
    }

    #[test]
    fn a_quiet_live_process_keeps_its_id_from_the_future() {
        let t = Tracked { live: true, last_heard_ns: 1_000 * MS, interval_ns: 100 * MS, ip: HOST };
        let mut f = Frame::beat("a");
        f.incarnation = u32::MAX;
        // Quiet for ten intervals (a stalled host), still alive: the far future is refused...
        assert_eq!(
            judge_frame(&mut None, &f, Ordering::Greater, &t, 2_000 * MS),
            Verdict::Refuse("future_incarnation")
        );
        // ...and once it is dead, any claimant may have the id.
        let dead = Tracked { live: false, ..t };
        assert_eq!(judge_frame(&mut None, &f, Ordering::Greater, &dead, 2_000 * MS), Verdict::TakeOver);
    }

    #[test]
    fn dead_and_left_processes_hold_no_claim() {
        let mut rival = None;
        let t = Tracked { live: false, last_heard_ns: 1_000 * MS, interval_ns: 100 * MS, ip: HOST };
        assert_eq!(judge_frame(&mut rival, &Frame::beat("a"), Ordering::Less, &t, 1_001 * MS), Verdict::TakeOver);
    }
}
