//! State one Client shares with its transport (direct beats or an etcd registration):
//! the resolved config, the event hub, health/fencing, and the incarnation.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::Result;
use crate::events::{Event, EventHub, Reason, State};

use super::health::{Health, Transition};

pub(crate) struct ClientShared {
    pub config: Config,
    pub events: Arc<EventHub>,
    pub health: Mutex<Health>,
    /// This start's incarnation in tenths of a second (the header field; what events show).
    pub incarnation: u32,
    /// The same start in µs (the `incarnation_us` extension; what a monitor orders by).
    pub incarnation_us: u64,
    pub clock: Arc<dyn Clock>,
}

impl ClientShared {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> ClientShared {
        let Incarnation { tenths, us } = next_incarnation();
        ClientShared {
            events: crate::events::EventHub::new(config.event_capacity),
            // One failure count per endpoint: redundant monitors are judged one by one.
            health: Mutex::new(Health::with_endpoints(config.ttl, config.endpoints.len())),
            incarnation: tenths,
            incarnation_us: us,
            clock,
            config,
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Runs `f` on the health state and emits the transition it reports, if any. The lock
    /// is released before emitting.
    pub fn update_health(&self, f: impl FnOnce(&mut Health) -> Option<Transition>) {
        let (transition, epoch) = {
            let mut h = self.health.lock();
            let t = f(&mut h);
            (t, h.epoch())
        };
        if let Some(t) = transition {
            self.emit(t.from, t.to, t.reason, epoch);
        }
    }

    /// Emits an event about this client itself.
    pub fn emit(&self, from: State, to: State, reason: Reason, epoch: u64) {
        crate::metrics::get().transitions.with_label_values(&[reason.as_str()]).inc();
        let mut ev = Event::new(&self.config.instance_id, &self.config.service, from, to, reason);
        ev.incarnation = self.incarnation;
        ev.epoch = epoch;
        ev.labels = self.config.labels.clone();
        ev.traceparent = self.config.traceparent.clone();
        self.events.emit(ev);
    }
}

/// What a Client runs on once started: direct beats or an etcd registration.
pub(crate) trait Transport: Send + Sync {
    /// Graceful goodbye, bounded by `timeout`; the background work has ended when it returns.
    fn stop(&self, timeout: Duration) -> Result<()>;

    /// Tests only: end the background work at once without any goodbye, as a crash would.
    fn crash(&self) {}
}

/// One process start's incarnation, in the two resolutions a beat carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incarnation {
    /// Tenths of a second since 2024-01-01 (a u32 lasts until 2037): the frame header's
    /// field, which is all a monitor older than the `incarnation_us` extension reads.
    pub tenths: u32,
    /// µs since the Unix epoch: the `incarnation_us` extension. Fine enough that processes
    /// started one after another always differ (a restart within 100 ms shares `tenths`),
    /// and a u64 never wraps, so a peer alive for weeks and then restarted is still newer.
    pub us: u64,
}

/// 2024-01-01T00:00:00Z in µs since the Unix epoch.
const EPOCH_2024_US: u64 = 1_704_067_200_000_000;

/// The incarnation of a process started at `unix_us`, before the in-process bump of
/// `next_incarnation` (which only ever raises it).
pub fn incarnation_at(unix_us: u64) -> Incarnation {
    let tenths = (unix_us.saturating_sub(EPOCH_2024_US) / 100_000).min(u64::from(u32::MAX)) as u32;
    Incarnation { tenths, us: unix_us }
}

/// Incarnations must grow across process restarts without storage, so they come from the
/// wall clock; and they are strictly increasing within the process, in both resolutions (a
/// Client stopped and made again is a new incarnation too). Both must grow across
/// processes as far as the wall clock does: the header for monitors that predate the
/// extension (whole seconds were too coarse there: a restart within the same second looked
/// like the old process replaying its beats; tenths still are within 100 ms), the µs value
/// for the rest. A wall clock stepped back between two starts can make the later one look
/// older (`stale_incarnation`) until the old entry is reaped.
pub fn next_incarnation() -> Incarnation {
    static LAST_TENTHS: AtomicU32 = AtomicU32::new(0);
    static LAST_US: AtomicU64 = AtomicU64::new(0);
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let wall = incarnation_at(now_us);
    let tenths = bump32(&LAST_TENTHS, wall.tenths);
    let us = bump64(&LAST_US, wall.us);
    Incarnation { tenths, us }
}

/// `max(wall, last + 1)`, stored as the new last.
fn bump32(last: &AtomicU32, wall: u32) -> u32 {
    let mut prev = last.load(Ordering::Relaxed);
    loop {
        let next = wall.max(prev.wrapping_add(1));
        match last.compare_exchange(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// `max(wall, last + 1)`, stored as the new last.
fn bump64(last: &AtomicU64, wall: u64) -> u64 {
    let mut prev = last.load(Ordering::Relaxed);
    loop {
        let next = wall.max(prev.saturating_add(1));
        match last.compare_exchange(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incarnations_increase_in_both_resolutions() {
        let a = next_incarnation();
        let b = next_incarnation();
        assert!(b.tenths > a.tenths && b.us > a.us, "{a:?} {b:?}");
        // Tenths of a second since 2024: well above a 2026 floor, below the u32 limit.
        assert!(a.tenths > 10 * 86_400 * 365 * 2);
        // µs since 1970: after 2026-01-01.
        assert!(a.us > 1_767_225_600_000_000);
    }

    #[test]
    fn starts_a_millisecond_apart_share_the_header_but_not_the_us_value() {
        // 2026-01-01T00:00:00.010Z and 1 ms later: the same tenth of a second.
        let t = 1_767_225_600_010_000;
        let (a, b) = (incarnation_at(t), incarnation_at(t + 1_000));
        assert_eq!(a.tenths, b.tenths);
        assert!(b.us > a.us);
        assert_eq!(incarnation_at(EPOCH_2024_US + 100_000).tenths, 1);
    }
}
