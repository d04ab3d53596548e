//! The one sweeper task: it sleeps until the timing wheel's earliest deadline (at most the
//! pause guard's threshold, 250 ms or less, so that its own lateness measures a stall),
//! drains the due peers, and plans again. A listener that schedules an earlier deadline
//! wakes it to re-plan. So an idle monitor wakes four times a second, a busy one at most
//! once per wheel tick.
//!
//! Lateness is measured on the runtime's real timer against the wake-up it planned (our own
//! scheduling), while deadlines use the monitor's clock, so an injected test clock cannot be
//! mistaken for a pause. A pause that spans a planned wake-up makes that sweep late, and the
//! pause guard holds convictions; one that ends before it leaves the listeners time to
//! drain what queued up, which is what the guard protects.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep_until, Instant};

use super::Ingest;

/// Longest sleep between sweeps. Deadlines come from the wheel; this bounds how long a
/// monitor with nothing due sleeps (and how long a test's hand-moved clock waits for a pass).
pub const IDLE_SWEEP: Duration = Duration::from_secs(1);

pub(super) async fn run(ingest: Arc<Ingest>) {
    loop {
        let now = ingest.clock.now_ns();
        let at = ingest.table.lock().plan_sweep(now, IDLE_SWEEP.as_nanos() as u64);
        let planned = Instant::now() + Duration::from_nanos(at.saturating_sub(now));
        tokio::select! {
            _ = sleep_until(planned) => {}
            // An earlier deadline was scheduled: plan again (nothing is due before it).
            _ = ingest.sweep_sooner.notified() => continue,
        }
        let late_ns = Instant::now().saturating_duration_since(planned).as_nanos() as u64;
        let now = ingest.clock.now_ns();
        ingest.table.lock().sweep(now.saturating_sub(late_ns), now);
        ingest.stats.sweeps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
