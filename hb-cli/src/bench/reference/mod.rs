//! Reference failure detectors from the literature, written for the detection frontier
//! (`bench detection`): each is a plain struct fed the trace's arrivals, with one
//! threshold that the bench sweeps. They are binary (trust or suspect), so their one
//! deadline is both "suspect" and "dead". Not used by the monitor.
//!
//! - [`FixedTimeout`]: suspect after `T` of silence.
//! - [`AkkaPhi`]: Akka's phi accrual (normal CDF over a sliding window of intervals).
//! - [`ChenNfdE`]: Chen, Toueg, Aguilera's NFD-E (expected arrival + constant margin α).
//! - [`Bertier`]: Chen's expected arrival + a Jacobson-style dynamic margin.

mod akka_phi;
mod bertier;
mod chen;
mod timeout;
mod window;

pub use akka_phi::AkkaPhi;
pub use bertier::Bertier;
pub use chen::ChenNfdE;
pub use timeout::FixedTimeout;

/// Samples kept by the sliding windows (Akka's max-sample-size, Chen's n).
pub const WINDOW: usize = 1000;

/// Adds a float span to an absolute time, saturating at both ends.
fn at(base_ns: f64, span_ns: f64) -> u64 {
    let t = base_ns + span_ns;
    if t.is_nan() || t <= 0.0 {
        0
    } else {
        t.min(u64::MAX as f64) as u64
    }
}
