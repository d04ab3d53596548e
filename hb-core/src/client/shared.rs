//! State one Client shares with its transport (direct beats or an etcd registration):
//! the resolved config, the event hub, health/fencing, and the incarnation.

use std::sync::atomic::{AtomicU32, Ordering};
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
    pub incarnation: u32,
    pub clock: Arc<dyn Clock>,
}

impl ClientShared {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> ClientShared {
        ClientShared {
            events: crate::events::EventHub::new(config.event_capacity),
            // One failure count per endpoint: redundant monitors are judged one by one.
            health: Mutex::new(Health::with_endpoints(config.ttl, config.endpoints.len())),
            incarnation: next_incarnation(),
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

/// Incarnations must grow across process restarts without storage: tenths of a second
/// since 2024-01-01 (a u32 lasts until 2037), and strictly increasing within the process (a
/// Client stopped and made again is a new incarnation too). Whole seconds were too coarse: a
/// process restarted within the same second looked like the old one replaying its beats.
pub fn next_incarnation() -> u32 {
    const EPOCH_2024_MS: u64 = 1_704_067_200_000;
    static LAST: AtomicU32 = AtomicU32::new(0);
    let wall = (crate::events::unix_ms_now().saturating_sub(EPOCH_2024_MS) / 100) as u32;
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = wall.max(prev.wrapping_add(1));
        match LAST.compare_exchange(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incarnations_increase() {
        let a = next_incarnation();
        let b = next_incarnation();
        assert!(b > a);
        // Tenths of a second since 2024: well above a 2026 floor, below the u32 limit.
        assert!(a > 10 * 86_400 * 365 * 2);
    }
}
