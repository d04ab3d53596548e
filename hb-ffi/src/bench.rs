//! Callback-cost benchmark (run `cargo run --release -p hb-ffi --example bench_callback`).
//! Not part of the C ABI: nothing here is `extern "C"`.
//!
//! Measures, on one monitor handle, the time from the engine's `emit` (a state change) to
//! the C callback running — through the real path: EventHub → delivery thread → `hb_event`
//! conversion → `extern "C"` function — against a plain Rust callback on the same hub as
//! the reference; and the cost of one `hb_monitor_next_event` call.

use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hb_core::{Event, EventHub, Reason, State};

use crate::callback::{self, UserData};
use crate::event::hb_event;

/// Latency percentiles in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

fn percentiles(mut v: Vec<u64>) -> Percentiles {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Percentiles { p50: at(0.50), p99: at(0.99), max: *v.last().unwrap_or(&0) }
}

struct Samples {
    base: Instant,
    latencies: Mutex<Vec<u64>>,
}

// The emit time travels in the event itself (`epoch` = ns since `base`).
fn stamp(base: Instant, i: u32) -> Event {
    let mut e = Event::new(format!("peer-{}", i % 64), "bench", State::Alive, State::Suspect, Reason::Timeout);
    e.labels.insert("zone".into(), "a".into());
    e.epoch = base.elapsed().as_nanos() as u64;
    e
}

unsafe extern "C" fn c_callback(user_data: *mut c_void, event: *const hb_event) {
    // SAFETY: user_data is the `Samples` kept alive by `run_hub` until the hub is closed.
    let samples = unsafe { &*(user_data as *const Samples) };
    let sent = unsafe { crate::event::hb_event_epoch(event) };
    let now = samples.base.elapsed().as_nanos() as u64;
    samples.latencies.lock().unwrap().push(now.saturating_sub(sent));
}

/// A bare hub as an `EventSource` (no process guard: the benchmark never forks).
struct Hub(Arc<EventHub>);

impl hb_core::EventSource for Hub {
    fn events(&self) -> &Arc<EventHub> {
        &self.0
    }
    fn same_process(&self) -> hb_core::Result<()> {
        Ok(())
    }
}

fn run_hub(n: u32, gap: Duration, through_c: bool) -> Percentiles {
    let hub = EventHub::new(4096);
    let samples = Arc::new(Samples { base: Instant::now(), latencies: Mutex::new(Vec::with_capacity(n as usize)) });
    if through_c {
        let user = UserData::new(Arc::as_ptr(&samples) as *mut c_void, None);
        callback::set_callback(&Hub(Arc::clone(&hub)), Some(c_callback), user).expect("set callback");
    } else {
        let s = samples.clone();
        hub.set_callback(Box::new(move |e| {
            let now = s.base.elapsed().as_nanos() as u64;
            s.latencies.lock().unwrap().push(now.saturating_sub(e.epoch));
        }))
        .expect("set callback");
    }
    for i in 0..n {
        hub.emit(stamp(samples.base, i));
        // Spaced emits: measure hand-off and wake-up, not queueing behind earlier events.
        // Sleeping (not spinning) leaves the CPU to the delivery thread on small machines.
        std::thread::sleep(gap);
    }
    hub.close();
    let v = std::mem::take(&mut *samples.latencies.lock().unwrap());
    percentiles(v)
}

/// Results of one run.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub events: u32,
    pub c_callback: Percentiles,
    pub rust_callback: Percentiles,
    /// `hb_monitor_next_event` with an event ready (conversion + copy out + free).
    pub poll_ready_ns: f64,
    /// `hb_monitor_next_event(timeout 0)` on an empty handle (returns HB_STATUS_TIMEOUT).
    pub poll_empty_ns: f64,
}

pub fn run(n: u32) -> Report {
    let gap = Duration::from_micros(500);
    let c_callback = run_hub(n, gap, true);
    let rust_callback = run_hub(n, gap, false);
    let (poll_ready_ns, poll_empty_ns) = poll_cost(n);
    Report { events: n, c_callback, rust_callback, poll_ready_ns, poll_empty_ns }
}

fn poll_cost(n: u32) -> (f64, f64) {
    let config = crate::config::hb_config_new();
    let mut monitor = std::ptr::null_mut();
    unsafe {
        crate::config::hb_config_set_endpoint(
            config,
            c"udp://127.0.0.1:9".as_ptr(), /* never started: nothing is bound */
            std::ptr::null_mut(),
        );
        assert_eq!(crate::monitor::hb_monitor_new(config, &mut monitor, std::ptr::null_mut()), crate::hb_status::Ok);
        crate::config::hb_config_free(config);
    }
    let hub = unsafe { (*monitor).inner.events().clone() };
    let base = Instant::now();
    let mut ready = Duration::ZERO;
    for i in 0..n {
        hub.emit(stamp(base, i));
        let t = Instant::now();
        let mut ev = std::ptr::null_mut();
        let s = unsafe { crate::monitor::hb_monitor_next_event(monitor, 0, &mut ev, std::ptr::null_mut()) };
        unsafe { crate::event::hb_event_free(ev) };
        ready += t.elapsed();
        assert_eq!(s, crate::hb_status::Ok);
    }
    let t = Instant::now();
    for _ in 0..n {
        let mut ev = std::ptr::null_mut();
        let mut err = std::ptr::null_mut();
        let s = unsafe { crate::monitor::hb_monitor_next_event(monitor, 0, &mut ev, &mut err) };
        unsafe { crate::error::hb_error_free(err) };
        assert_eq!(s, crate::hb_status::Timeout);
    }
    let empty = t.elapsed();
    unsafe { crate::monitor::hb_monitor_free(monitor) };
    (ready.as_nanos() as f64 / n as f64, empty.as_nanos() as f64 / n as f64)
}
