//! RFC 6298 round-trip estimator (Jacobson/Karels) for the client's ACK timeout. Karn's
//! rule is the caller's: feed only samples from ACKs of beats that were sent once.

/// Clock granularity G of RFC 6298: our timers tick in milliseconds at best.
pub const RTT_GRANULARITY_NS: u64 = 1_000_000;
/// RTO before the first sample (RFC 6298 2.1).
pub const RTO_INITIAL_NS: u64 = 1_000_000_000;
/// Lower clamp. The RFC says 1 s; like Linux we use 200 ms, because a 1 s floor would be
/// longer than the 200 ms beat interval it protects.
pub const RTO_MIN_NS: u64 = 200_000_000;
/// Upper clamp (RFC 6298 2.5: at least 60 s).
pub const RTO_MAX_NS: u64 = 60_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttEstimator {
    srtt_ns: Option<u64>,
    rttvar_ns: u64,
    rto_ns: u64,
    min_rto_ns: u64,
    max_rto_ns: u64,
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self::new()
    }
}

impl RttEstimator {
    pub fn new() -> Self {
        Self::with_bounds(RTO_MIN_NS, RTO_MAX_NS)
    }

    /// Custom RTO clamp (`min_rto_ns <= max_rto_ns`; swapped if not).
    pub fn with_bounds(min_rto_ns: u64, max_rto_ns: u64) -> Self {
        let (lo, hi) = (min_rto_ns.min(max_rto_ns), min_rto_ns.max(max_rto_ns));
        RttEstimator {
            srtt_ns: None,
            rttvar_ns: 0,
            rto_ns: RTO_INITIAL_NS.clamp(lo, hi),
            min_rto_ns: lo,
            max_rto_ns: hi,
        }
    }

    /// One RTT measurement (RFC 6298 2.2 and 2.3, alpha = 1/8, beta = 1/4, K = 4).
    /// Also ends any backoff: the RTO is recomputed from the estimate.
    pub fn sample(&mut self, rtt_ns: u64) {
        match self.srtt_ns {
            None => {
                self.srtt_ns = Some(rtt_ns);
                self.rttvar_ns = rtt_ns / 2;
            }
            Some(srtt) => {
                // RTTVAR first: it uses the old SRTT.
                self.rttvar_ns = ((3 * self.rttvar_ns as u128 + srtt.abs_diff(rtt_ns) as u128) / 4) as u64;
                self.srtt_ns = Some(((7 * srtt as u128 + rtt_ns as u128) / 8) as u64);
            }
        }
        let srtt = self.srtt_ns.unwrap_or(rtt_ns);
        let rto = srtt.saturating_add(RTT_GRANULARITY_NS.max(self.rttvar_ns.saturating_mul(4)));
        self.rto_ns = rto.clamp(self.min_rto_ns, self.max_rto_ns);
    }

    pub fn rto_ns(&self) -> u64 {
        self.rto_ns
    }

    pub fn srtt_ns(&self) -> Option<u64> {
        self.srtt_ns
    }

    pub fn rttvar_ns(&self) -> Option<u64> {
        self.srtt_ns.map(|_| self.rttvar_ns)
    }

    /// A retransmission timer expired: double the RTO, up to the max (RFC 6298 5.5).
    pub fn backoff(&mut self) {
        self.rto_ns = self.rto_ns.saturating_mul(2).min(self.max_rto_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn matches_rfc6298_by_hand() {
        let mut r = RttEstimator::with_bounds(MS, RTO_MAX_NS);
        assert_eq!((r.srtt_ns(), r.rttvar_ns(), r.rto_ns()), (None, None, RTO_INITIAL_NS));

        // First: SRTT = R = 100, RTTVAR = R/2 = 50, RTO = 100 + 4·50 = 300 (ms).
        r.sample(100 * MS);
        assert_eq!((r.srtt_ns(), r.rttvar_ns(), r.rto_ns()), (Some(100 * MS), Some(50 * MS), 300 * MS));

        // R = 200: RTTVAR = 3/4·50 + 1/4·|100−200| = 62.5; SRTT = 7/8·100 + 1/8·200 = 112.5;
        // RTO = 112.5 + 250 = 362.5.
        r.sample(200 * MS);
        assert_eq!((r.srtt_ns(), r.rttvar_ns(), r.rto_ns()), (Some(112_500_000), Some(62_500_000), 362_500_000));

        // R = 50: RTTVAR = 3/4·62.5 + 1/4·62.5 = 62.5; SRTT = 7/8·112.5 + 1/8·50 = 104.6875;
        // RTO = 104.6875 + 250 = 354.6875.
        r.sample(50 * MS);
        assert_eq!((r.srtt_ns(), r.rttvar_ns(), r.rto_ns()), (Some(104_687_500), Some(62_500_000), 354_687_500));

        // Backoff doubles; the next sample recomputes.
        r.backoff();
        assert_eq!(r.rto_ns(), 709_375_000);
        r.backoff();
        assert_eq!(r.rto_ns(), 1_418_750_000);
        r.sample(104_687_500);
        // RTTVAR = 3/4·62.5 + 0 = 46.875; SRTT unchanged; RTO = 104.6875 + 187.5 = 292.1875
        assert_eq!(r.rto_ns(), 292_187_500);
    }

    #[test]
    fn clamps_and_granularity() {
        let mut r = RttEstimator::new();
        // Loopback: 50 µs steady. Unclamped RTO would be ~1 ms (G); the floor is 200 ms.
        for _ in 0..50 {
            r.sample(50_000);
        }
        assert_eq!(r.rto_ns(), RTO_MIN_NS);
        let mut r = RttEstimator::with_bounds(0, RTO_MAX_NS);
        for _ in 0..50 {
            r.sample(50_000);
        }
        assert_eq!(r.rto_ns(), 50_000 + RTT_GRANULARITY_NS, "K·RTTVAR below G uses G");
        for _ in 0..100 {
            r.backoff();
        }
        assert_eq!(r.rto_ns(), RTO_MAX_NS);
        assert_eq!(RttEstimator::with_bounds(5 * MS, MS).rto_ns(), 5 * MS, "bounds swapped");
    }
}
