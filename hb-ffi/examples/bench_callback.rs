//! C ABI callback cost: engine emit → C callback (p50/p99), against a plain Rust callback
//! on the same hub, and the cost of one poll call. Prints a table and a JSON line.
//!
//!     cargo run --release -p hb-ffi --example bench_callback [events]

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let r = heartbeater::bench::run(n);
    let us = |ns: u64| ns as f64 / 1000.0;
    println!("C ABI callback cost ({} events, 500 us apart)", r.events);
    println!("{:<44} {:>10} {:>10} {:>10}", "path", "p50 us", "p99 us", "max us");
    println!(
        "{:<44} {:>10.1} {:>10.1} {:>10.1}",
        "emit -> C callback (hb_event_callback)",
        us(r.c_callback.p50),
        us(r.c_callback.p99),
        us(r.c_callback.max)
    );
    println!(
        "{:<44} {:>10.1} {:>10.1} {:>10.1}",
        "emit -> Rust callback (reference)",
        us(r.rust_callback.p50),
        us(r.rust_callback.p99),
        us(r.rust_callback.max)
    );
    println!("{:<44} {:>10.0} ns/call", "hb_monitor_next_event, event ready", r.poll_ready_ns);
    println!("{:<44} {:>10.0} ns/call", "hb_monitor_next_event(0), empty -> TIMEOUT", r.poll_empty_ns);
    println!(
        "{{\"events\":{},\"c_callback_ns\":{{\"p50\":{},\"p99\":{},\"max\":{}}},\"rust_callback_ns\":{{\"p50\":{},\"p99\":{},\"max\":{}}},\"poll_ready_ns\":{:.0},\"poll_empty_ns\":{:.0}}}",
        r.events, r.c_callback.p50, r.c_callback.p99, r.c_callback.max, r.rust_callback.p50, r.rust_callback.p99, r.rust_callback.max, r.poll_ready_ns, r.poll_empty_ns
    );
}
