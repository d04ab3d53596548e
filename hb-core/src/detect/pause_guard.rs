//! The own-pause guard (after Cassandra's local-pause rule). If our own sweeper ran late
//! (GC, VM steal, a stopped process), the silence we measured is partly ours: heartbeats
//! may sit unread in the socket. So after a late sweep every peer not heard since is judged
//! as if last heard when the pause ended: nobody is convicted for our own pause, and a
//! peer that really died is still convicted one deadline after it.
//!
//! "Late" is relative to the peers' slack, not a fixed bound: a stall shorter than every
//! live peer's slack (the time between a peer's expected next beat and its suspect
//! deadline) cannot convict anyone falsely, since each beat it delayed was due before the
//! stall began. A stall is seen as the lateness of the first sweep after it, which is the
//! stall minus however long before the planned wake-up it began. So the sweeper wakes at
//! least every `threshold_ns` (half the shortest slack seen lately, floored at
//! `min_lateness_ns` for timer noise and capped at `max_lateness_ns`), and lateness of at
//! least that is a pause: every stall as long as a peer's slack is then caught.

/// The shortest slack is taken over the last one or two windows of this length, so a
/// short-deadline peer that left stops lowering the threshold within 20 s.
const SLACK_WINDOW_NS: u64 = 10_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PauseGuard {
    min_lateness_ns: u64,
    max_lateness_ns: u64,
    /// Shortest slack seen in the current and in the previous window.
    slack_ns: [u64; 2],
    window_start_ns: u64,
    /// When the last detected pause ended (0: none yet).
    pause_end_ns: u64,
}

impl PauseGuard {
    /// A sweep half the shortest slack late, but at least `min_lateness_ns` and at most
    /// `max_lateness_ns`, is a pause.
    pub fn new(min_lateness_ns: u64, max_lateness_ns: u64) -> Self {
        PauseGuard { min_lateness_ns, max_lateness_ns, slack_ns: [u64::MAX; 2], window_start_ns: 0, pause_end_ns: 0 }
    }

    /// A live peer was just heard; `slack_ns` is how late its next beat may be before it
    /// is suspected.
    pub fn observe_slack(&mut self, slack_ns: u64, now_ns: u64) {
        self.roll(now_ns);
        self.slack_ns[0] = self.slack_ns[0].min(slack_ns);
    }

    fn roll(&mut self, now_ns: u64) {
        if now_ns.saturating_sub(self.window_start_ns) >= SLACK_WINDOW_NS {
            self.slack_ns = [u64::MAX, self.slack_ns[0]];
            self.window_start_ns = now_ns;
        }
    }

    /// How late a sweep may run before it counts as our own pause, and the longest the
    /// sweeper may sleep (so that lateness measures a stall to within this much).
    pub fn threshold_ns(&self) -> u64 {
        (self.slack_ns[0].min(self.slack_ns[1]) / 2).clamp(self.min_lateness_ns, self.max_lateness_ns)
    }

    /// Called at each sweep with the time it was scheduled for and the actual now; true
    /// if it ran late enough to be a pause (which then ends now). An early sweep (clock
    /// granularity) is not a pause.
    pub fn on_sweep(&mut self, scheduled_ns: u64, now_ns: u64) -> bool {
        self.roll(now_ns);
        let paused = now_ns.saturating_sub(scheduled_ns) >= self.threshold_ns();
        if paused {
            self.pause_end_ns = self.pause_end_ns.max(now_ns);
        }
        paused
    }

    /// When the last pause ended (0 if there was none).
    pub fn pause_end_ns(&self) -> u64 {
        self.pause_end_ns
    }

    /// `deadline_ns` of a peer last heard at `last_heard_ns`, judged as if it had been
    /// heard when the last pause ended, if that is later: the same span, from then on.
    pub fn after_pause(&self, deadline_ns: u64, last_heard_ns: u64) -> u64 {
        match self.pause_end_ns.checked_sub(last_heard_ns) {
            Some(shift) if shift > 0 => deadline_ns.saturating_add(shift),
            _ => deadline_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    #[test]
    fn the_threshold_follows_the_shortest_slack_within_its_bounds() {
        let mut g = PauseGuard::new(20 * MS, 250 * MS);
        assert_eq!(g.threshold_ns(), 250 * MS, "no peer: the cap");
        g.observe_slack(2 * S, S);
        assert_eq!(g.threshold_ns(), 250 * MS);
        g.observe_slack(240 * MS, S);
        assert_eq!(g.threshold_ns(), 120 * MS, "half the shortest slack");
        g.observe_slack(MS, S);
        assert_eq!(g.threshold_ns(), 20 * MS, "the floor: timer noise is not a pause");
        // The short-slack peer is gone: after two windows its figure is forgotten.
        g.observe_slack(300 * MS, 12 * S);
        assert_eq!(g.threshold_ns(), 20 * MS, "still in the previous window");
        g.observe_slack(300 * MS, 23 * S);
        assert_eq!(g.threshold_ns(), 150 * MS);
    }

    #[test]
    fn sweeps_within_the_threshold_are_on_time() {
        let mut g = PauseGuard::new(20 * MS, 250 * MS);
        g.observe_slack(200 * MS, 0);
        for i in 0..100 {
            let scheduled = i * 10 * MS;
            assert!(!g.on_sweep(scheduled, scheduled + 99 * MS));
        }
        assert!(!g.on_sweep(10 * S, 10 * S - MS), "an early sweep is not a pause");
        assert_eq!(g.pause_end_ns(), 0);
    }

    #[test]
    fn a_pause_moves_the_deadlines_of_peers_not_heard_since() {
        let mut g = PauseGuard::new(20 * MS, 250 * MS);
        g.observe_slack(100 * MS, 0);
        // Scheduled at 10 s, ran at 10.45 s: 450 ms is more than any peer's slack.
        assert!(g.on_sweep(10 * S, 10_450 * MS));
        assert_eq!(g.pause_end_ns(), 10_450 * MS);
        // Last heard at 10.1 s with a deadline at 10.3 s: the same 200 ms from 10.45 s.
        assert_eq!(g.after_pause(10_300 * MS, 10_100 * MS), 10_650 * MS);
        // Heard after the pause ended: its own deadline.
        assert_eq!(g.after_pause(10_700 * MS, 10_500 * MS), 10_700 * MS);
        // A longer pause later moves the end; an earlier one never moves it back.
        assert!(g.on_sweep(20 * S, 23 * S));
        assert_eq!(g.pause_end_ns(), 23 * S);
        assert_eq!(g.after_pause(u64::MAX - 1, 0), u64::MAX, "saturates");
    }
}
