//! The "frames rejected by reason" counters, resolved once: counting a rejected frame is
//! one atomic add, not a label hash and a lock per datagram — a flood of bad frames is
//! exactly when this runs most.

use std::sync::OnceLock;

use prometheus::IntCounter;

use crate::metrics;
use crate::proto::DecodeError;

/// Reasons the monitor itself gives, besides the decoder's (`DecodeError::REASONS`).
pub const MONITOR_REASONS: [&str; 17] = [
    "replay",
    "stale_incarnation",
    "stale_leave",
    "too_many_peers",
    "unexpected_kind",
    "too_many_connections",
    "conflict",
    "future_incarnation",
    "implausible_seq",
    "outside_window",
    // tls:// (monitor/tls.rs): a handshake that failed, then the client-certificate checks.
    "tls_handshake",
    "id_mismatch",
    "cert_required",
    "cert_untrusted",
    "cert_expired",
    "cert_not_yet_valid",
    "cert_invalid",
];

/// Counts a dropped frame by reason.
pub fn reject(reason: &str) {
    match counters().iter().find(|(r, _)| *r == reason) {
        Some((_, c)) => c.inc(),
        // Not a known reason (a new one not added above): still counted, the slow way.
        None => metrics::get().frames_rejected.with_label_values(&[reason]).inc(),
    }
}

fn counters() -> &'static [(&'static str, IntCounter)] {
    static COUNTERS: OnceLock<Vec<(&'static str, IntCounter)>> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        let family = &metrics::get().frames_rejected;
        DecodeError::REASONS
            .iter()
            .chain(MONITOR_REASONS.iter())
            .map(|&r| (r, family.with_label_values(&[r])))
            .collect()
    })
}

/// Resolves the counters now (a monitor's start), so every reason is exported from 0.
pub fn preregister() {
    counters();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_preresolved_and_counts_in_its_series() {
        preregister();
        let text = metrics::text();
        for r in DecodeError::REASONS.iter().chain(MONITOR_REASONS.iter()) {
            assert!(counters().iter().any(|(known, _)| known == r), "{r} not pre-resolved");
            assert!(text.contains(&format!("heartbeater_frames_rejected_total{{reason=\"{r}\"}}")), "{r} not exported");
            let series = metrics::get().frames_rejected.with_label_values(&[r]);
            let before = series.get();
            reject(r);
            assert!(series.get() > before, "{r} not counted in its series");
        }
    }
}
