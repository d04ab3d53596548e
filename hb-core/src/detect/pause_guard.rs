//! Cassandra's local-pause rule. If our own sweeper ran late (GC, VM steal, a stopped
//! process), the silence we measured is partly ours: heartbeats may sit unread in the
//! socket. So after a late sweep nobody is convicted until every peer has had a chance to
//! be heard again.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PauseGuard {
    max_lateness_ns: u64,
    hold_ns: u64,
    /// Convictions are allowed from this time on.
    resume_at_ns: u64,
}

impl PauseGuard {
    /// A sweep more than `max_lateness_ns` late blocks convictions for `hold_ns` after it;
    /// `hold_ns` starts equal to `max_lateness_ns` (as Cassandra does), see [`Self::set_hold_ns`].
    pub fn new(max_lateness_ns: u64) -> Self {
        PauseGuard { max_lateness_ns, hold_ns: max_lateness_ns, resume_at_ns: 0 }
    }

    /// Builder form of [`Self::set_hold_ns`].
    pub fn with_hold(mut self, hold_ns: u64) -> Self {
        self.hold_ns = hold_ns;
        self
    }

    /// How long to hold after a pause. "Every peer heard again" means at least the longest
    /// announced interval plus its jitter; the monitor updates this as peers come and go.
    pub fn set_hold_ns(&mut self, hold_ns: u64) {
        self.hold_ns = hold_ns;
    }

    /// Called at each sweep with the time it was scheduled for and the actual now; returns
    /// true if convictions are allowed now. A late sweep blocks (and keeps blocking while
    /// sweeps stay late, since each one restarts the hold).
    pub fn on_sweep(&mut self, scheduled_ns: u64, now_ns: u64) -> bool {
        if now_ns.saturating_sub(scheduled_ns) > self.max_lateness_ns {
            let resume = now_ns.saturating_add(self.hold_ns);
            self.resume_at_ns = self.resume_at_ns.max(resume);
        }
        self.allows_conviction(now_ns)
    }

    pub fn allows_conviction(&self, now_ns: u64) -> bool {
        now_ns >= self.resume_at_ns
    }

    /// When convictions are allowed again (the sweeper schedules a pass for it).
    pub fn resume_at_ns(&self) -> u64 {
        self.resume_at_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    #[test]
    fn on_time_sweeps_allow_convictions() {
        let mut g = PauseGuard::new(500 * MS);
        for i in 0..100 {
            let scheduled = i * 100 * MS;
            assert!(g.on_sweep(scheduled, scheduled + 499 * MS));
        }
        // A sweep that runs early (clock granularity) is not a pause either.
        assert!(g.on_sweep(10 * S, 10 * S - MS));
    }

    #[test]
    fn late_sweep_blocks_then_reallows() {
        let mut g = PauseGuard::new(500 * MS).with_hold(3 * S);
        assert!(g.allows_conviction(0));
        // Scheduled at 10 s, ran at 12 s: we were paused for ~2 s.
        assert!(!g.on_sweep(10 * S, 12 * S));
        assert_eq!(g.resume_at_ns(), 15 * S);
        // Punctual sweeps during the hold still do not convict.
        assert!(!g.on_sweep(13 * S, 13 * S));
        assert!(!g.allows_conviction(15 * S - 1));
        assert!(g.on_sweep(15 * S, 15 * S));
        assert!(g.allows_conviction(20 * S));
    }

    #[test]
    fn repeated_pauses_extend_the_hold_and_default_hold_is_the_lateness_bound() {
        let mut g = PauseGuard::new(S);
        assert!(!g.on_sweep(0, 2 * S));
        assert_eq!(g.resume_at_ns(), 3 * S);
        assert!(!g.on_sweep(2 * S, 4 * S));
        assert_eq!(g.resume_at_ns(), 5 * S);
        g.set_hold_ns(0);
        assert!(g.on_sweep(5 * S, 5 * S));
    }
}
