//! How the CLI prints values: every duration goes through hb-core's `format_duration`.

use std::time::Duration;

/// A duration as a person writes it (`250ms`, `15s`, `1.5s`). Values of a millisecond or
/// more are rounded to the millisecond first: a derived figure such as ttl/3 = 666.666666ms
/// reads `667ms`. Shorter ones keep their precision (`500µs`).
pub fn duration(d: Duration) -> String {
    let shown = if d >= Duration::from_millis(1) {
        let ms = (d.as_nanos() + 500_000) / 1_000_000;
        Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    } else {
        d
    };
    hb_core::config::format_duration(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_typed_and_derived_ones_are_rounded_to_the_millisecond() {
        assert_eq!(duration(Duration::from_secs(2) / 3), "667ms");
        assert_eq!(duration(Duration::from_secs(5) / 3), "1.667s");
        assert_eq!(duration(Duration::from_secs(15)), "15s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(Duration::from_millis(200)), "200ms");
        assert_eq!(duration(Duration::ZERO), "0ms");
        assert_eq!(duration(Duration::from_micros(500)), "500µs");
    }
}
