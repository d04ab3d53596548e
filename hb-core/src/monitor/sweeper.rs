//! The one sweeper task: every tick it drains the timing wheel's due peers. Lateness is
//! measured on the runtime's real timer (our own scheduling), while deadlines use the
//! monitor's clock, so an injected test clock cannot be mistaken for a pause.

use std::sync::Arc;

use tokio::time::{sleep_until, Instant};

use super::wheel::TICK_NS;
use super::Ingest;

pub(super) async fn run(ingest: Arc<Ingest>) {
    let period = std::time::Duration::from_nanos(TICK_NS);
    let mut next = Instant::now() + period;
    loop {
        sleep_until(next).await;
        let late_ns = Instant::now().saturating_duration_since(next).as_nanos() as u64;
        let now = ingest.clock.now_ns();
        ingest.table.lock().sweep(now.saturating_sub(late_ns), now);
        // Skip missed ticks rather than running them back to back.
        next = Instant::now() + period;
    }
}
