//! `bench delivery`: what slow callbacks cost the other handles on the shared pool of
//! delivery threads. `--handles` hubs with a callback each get one event every `--period`;
//! in each row, the first `--slow K` of them sleep `--slow-for` in every callback. Printed:
//! the latency from emit to callback of the other handles' events (p50, p99, max) and the
//! pool's threads. Rows run one after another in this process, so a row starts with the
//! threads the previous one left (idle ones leave after 10 s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_core::events::{Event, EventHub, Reason, State};
use parking_lot::Mutex;

use crate::cli::DeliveryArgs;
use crate::fail::CmdResult;

struct Row {
    slow: u64,
    delivered: usize,
    p50_us: f64,
    p99_us: f64,
    max_ms: f64,
    threads_start: usize,
    threads_max: usize,
}

pub fn run(a: DeliveryArgs) -> CmdResult {
    let slow_counts = super::list("slow", &a.slow)?;
    let slow_for = crate::impair::duration("slow-for", &a.slow_for)?;
    let period = crate::impair::duration("period", &a.period)?;
    let window = crate::impair::duration("duration", &a.duration)?;
    let mut rows = Vec::new();
    for &slow in &slow_counts {
        let row = one_row(a.handles, slow, slow_for, period, window);
        eprintln!(
            "  {slow} slow: {} events to the others, p50 {:.0} µs, p99 {:.0} µs, max {:.1} ms, threads {} -> {}",
            row.delivered, row.p50_us, row.p99_us, row.max_ms, row.threads_start, row.threads_max
        );
        rows.push(row);
    }
    println!(
        "{} handles, one event each every {:?}; slow callbacks sleep {:?}; latency of the other handles' events",
        a.handles, period, slow_for
    );
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>10} {:>16}",
        "slow", "events", "p50 µs", "p99 µs", "max ms", "pool threads"
    );
    let mut json_rows = Vec::new();
    for r in &rows {
        println!(
            "{:>6} {:>10} {:>10.0} {:>10.0} {:>10.1} {:>16}",
            r.slow,
            r.delivered,
            r.p50_us,
            r.p99_us,
            r.max_ms,
            format!("{} -> {}", r.threads_start, r.threads_max)
        );
        json_rows.push(serde_json::json!({
            "slow": r.slow, "events": r.delivered, "p50_us": r.p50_us, "p99_us": r.p99_us,
            "max_ms": r.max_ms, "threads_start": r.threads_start, "threads_max": r.threads_max,
        }));
    }
    super::write_json(
        a.json.as_deref(),
        &serde_json::json!({
            "handles": a.handles, "period_s": period.as_secs_f64(), "slow_for_s": slow_for.as_secs_f64(),
            "rows": json_rows,
        }),
    )?;
    Ok(0)
}

fn one_row(handles: usize, slow: u64, slow_for: Duration, period: Duration, window: Duration) -> Row {
    let threads_start = hb_core::delivery::threads();
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let hubs: Vec<Arc<EventHub>> = (0..handles)
        .map(|i| {
            let hub = EventHub::new(1024);
            let callback: hb_core::events::Callback = if (i as u64) < slow {
                Box::new(move |_| std::thread::sleep(slow_for))
            } else {
                let latencies = Arc::clone(&latencies);
                // `epoch` carries the emit time here (monotonic ns): a bench-only use.
                Box::new(move |ev| latencies.lock().push(hb_core::clock::monotonic_ns() - ev.epoch))
            };
            hub.set_callback(callback).expect("a new hub takes a callback");
            hub
        })
        .collect();
    let mut threads_max = threads_start;
    let t0 = Instant::now();
    let mut next = t0;
    while t0.elapsed() < window {
        for hub in &hubs {
            let mut ev = Event::new("bench", "delivery", State::Alive, State::Alive, Reason::Registered);
            ev.epoch = hb_core::clock::monotonic_ns();
            hub.emit(ev);
        }
        threads_max = threads_max.max(hb_core::delivery::threads());
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    for hub in &hubs {
        hub.close();
    }
    let mut l = std::mem::take(&mut *latencies.lock());
    l.sort_unstable();
    let at = |q: f64| l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(0);
    Row {
        slow,
        delivered: l.len(),
        p50_us: at(0.50) as f64 / 1e3,
        p99_us: at(0.99) as f64 / 1e3,
        max_ms: l.last().copied().unwrap_or(0) as f64 / 1e6,
        threads_start,
        threads_max,
    }
}
