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
//!
//! Only the first pause after a peer's last beat excuses the whole silence before it; each
//! later one moves the deadline by its own lateness. So a host that stays overloaded (one
//! late sweep after another) delays a dead peer's conviction by the time it lost, not for
//! ever: each pause ending "now" would otherwise judge every silent peer as heard now.

/// The shortest slack is taken over the last one or two windows of this length, so a
/// short-deadline peer that left stops lowering the threshold within 20 s.
const SLACK_WINDOW_NS: u64 = 10_000_000_000;

/// Pauses remembered for `after_pause`: a peer silent through more of them than this is
/// judged by the lateness of those kept only.
const PAUSES_KEPT: usize = 32;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pause {
    end_ns: u64,
    lateness_ns: u64,
    /// `lost_ns` once this pause was counted.
    lost_after_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseGuard {
    min_lateness_ns: u64,
    max_lateness_ns: u64,
    /// Shortest slack seen in the current and in the previous window.
    slack_ns: [u64; 2],
    window_start_ns: u64,
    /// When the last detected pause ended (0: none yet).
    pause_end_ns: u64,
    /// Own time lost to pauses so far (the sum of their lateness).
    lost_ns: u64,
    /// The last `PAUSES_KEPT` pauses, a ring; `next` is the oldest once it is full.
    pauses: [Pause; PAUSES_KEPT],
    next: usize,
    /// When the newest pause that fell out of the ring ended (0: none has).
    forgotten_end_ns: u64,
}

impl PauseGuard {
    /// A sweep half the shortest slack late, but at least `min_lateness_ns` and at most
    /// `max_lateness_ns`, is a pause.
    pub fn new(min_lateness_ns: u64, max_lateness_ns: u64) -> Self {
        PauseGuard {
            min_lateness_ns,
            max_lateness_ns,
            slack_ns: [u64::MAX; 2],
            window_start_ns: 0,
            pause_end_ns: 0,
            lost_ns: 0,
            pauses: [Pause::default(); PAUSES_KEPT],
            next: 0,
            forgotten_end_ns: 0,
        }
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
        let lateness_ns = now_ns.saturating_sub(scheduled_ns);
        let paused = lateness_ns >= self.threshold_ns();
        if paused {
            self.pause_end_ns = self.pause_end_ns.max(now_ns);
            self.lost_ns = self.lost_ns.saturating_add(lateness_ns);
            let slot = &mut self.pauses[self.next];
            self.forgotten_end_ns = self.forgotten_end_ns.max(slot.end_ns);
            *slot = Pause { end_ns: now_ns, lateness_ns, lost_after_ns: self.lost_ns };
            self.next = (self.next + 1) % PAUSES_KEPT;
        }
        paused
    }

    /// When the last pause ended (0 if there was none).
    pub fn pause_end_ns(&self) -> u64 {
        self.pause_end_ns
    }

    /// `deadline_ns` of a peer last heard at `last_heard_ns`, judged as if it had been
    /// heard when the first pause since then ended (the same span, from then on), and
    /// later by the lateness of each pause after that one.
    pub fn after_pause(&self, deadline_ns: u64, last_heard_ns: u64) -> u64 {
        if self.pause_end_ns <= last_heard_ns {
            return deadline_ns;
        }
        let kept = self.pauses.iter().filter(|p| p.end_ns != 0);
        let shift = if self.forgotten_end_ns <= last_heard_ns {
            // The first pause since the peer was last heard is in the ring.
            let first = kept.filter(|p| p.end_ns > last_heard_ns).min_by_key(|p| p.end_ns);
            first.map_or(0, |p| (p.end_ns - last_heard_ns) + (self.lost_ns - p.lost_after_ns))
        } else {
            // Silent through more pauses than are kept: the lateness of those kept.
            let oldest = kept.min_by_key(|p| p.end_ns);
            oldest.map_or(0, |p| self.lost_ns - (p.lost_after_ns - p.lateness_ns))
        };
        deadline_ns.saturating_add(shift)
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

    #[test]
    fn later_pauses_move_a_deadline_by_their_own_lateness_only() {
        let mut g = PauseGuard::new(20 * MS, 250 * MS);
        g.observe_slack(100 * MS, 0);
        // Last heard at 1 s, deadline 1.3 s; a 400 ms pause ends at 2 s: judged from 2 s.
        assert!(g.on_sweep(1_600 * MS, 2 * S));
        assert_eq!(g.after_pause(1_300 * MS, S), 2_300 * MS);
        // Then the host stays overloaded: a sweep 60 ms late every 100 ms.
        let mut at = 2 * S;
        let mut overloaded = |g: &mut PauseGuard, sweeps: usize| {
            for _ in 0..sweeps {
                at += 100 * MS;
                assert!(g.on_sweep(at - 60 * MS, at));
            }
            at
        };
        overloaded(&mut g, 20);
        // The deadline moved by those 20 × 60 ms, not to "heard at 4 s".
        assert_eq!(g.after_pause(1_300 * MS, S), 2_300 * MS + 1_200 * MS);
        // A peer heard at 3.95 s is judged from the one pause since (4 s).
        assert_eq!(g.after_pause(4_250 * MS, 3_950 * MS), 4_300 * MS);
        let now = overloaded(&mut g, 80);
        assert!(g.after_pause(1_300 * MS, S) < now, "a dead peer is convicted while the overload goes on");
        assert_eq!(g.after_pause(1_300 * MS, S), 1_300 * MS + PAUSES_KEPT as u64 * 60 * MS);
    }
}
