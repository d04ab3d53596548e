//! A single-level timing wheel of peer slots: the sweeper's only timer, however many peers.
//!
//! Deadlines are lazy: a beat moves a peer's deadline later without touching the wheel.
//! When a peer's bucket comes due, the table recomputes the real deadline and, if it is
//! still in the future, puts the peer back. So each peer costs one wheel insert per
//! deadline period, never one per beat, and no per-peer tokio timer exists.
//! Deadlines beyond the horizon go into the farthest bucket and are re-checked there.

/// Bucket width.
pub const TICK_NS: u64 = 10_000_000;
/// Buckets: 4096 × 10 ms ≈ 41 s of horizon.
const BUCKETS: usize = 4096;

pub struct TimingWheel {
    buckets: Vec<Vec<u32>>,
    /// Entries held (stale ones included), so an empty wheel is known without a scan.
    len: usize,
    /// The next tick not yet drained.
    cursor: u64,
    /// Ticks are reported relative to this, so they fit a u32 (497 days of monitor uptime).
    origin: u64,
}

impl TimingWheel {
    pub fn new(now_ns: u64) -> TimingWheel {
        TimingWheel {
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            len: 0,
            cursor: now_ns / TICK_NS,
            origin: now_ns / TICK_NS,
        }
    }

    /// Schedules `slot` for the tick containing `at_ns` (or the earliest undrained tick,
    /// or the horizon); returns the (relative) tick it was put in, for the owner to
    /// recognise stale entries later.
    pub fn insert(&mut self, slot: u32, at_ns: u64) -> u32 {
        let tick = (at_ns / TICK_NS).clamp(self.cursor, self.cursor + BUCKETS as u64 - 1);
        self.buckets[(tick % BUCKETS as u64) as usize].push(slot);
        self.len += 1;
        self.relative(tick)
    }

    /// When the tick `relative_tick` (as `insert` returned it) starts: the earliest time a
    /// drain takes its entries.
    pub fn start_ns(&self, relative_tick: u32) -> u64 {
        (self.origin + u64::from(relative_tick)) * TICK_NS
    }

    /// When the earliest non-empty bucket comes due, or `None` if the wheel is empty.
    /// Scans at most one lap of buckets, so call it once per sweep, not per beat.
    pub fn next_due_ns(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        (self.cursor..self.cursor + BUCKETS as u64)
            .find(|tick| !self.buckets[(tick % BUCKETS as u64) as usize].is_empty())
            .map(|tick| tick * TICK_NS)
    }

    /// The relative tick `at_ns` falls in (for comparing with what `insert` returned).
    pub fn tick_of(&self, at_ns: u64) -> u32 {
        self.relative((at_ns / TICK_NS).max(self.origin))
    }

    fn relative(&self, tick: u64) -> u32 {
        (tick - self.origin) as u32
    }

    /// Moves every slot whose tick is ≤ `now_ns` into `out` with that tick.
    pub fn drain_due(&mut self, now_ns: u64, out: &mut Vec<(u32, u32)>) {
        let now_tick = now_ns / TICK_NS;
        if now_tick < self.cursor {
            return;
        }
        // Every entry's tick lies in [cursor, cursor + BUCKETS), so after a long pause one
        // lap drains everything, each bucket reporting the exact tick its entries have.
        let last = now_tick.min(self.cursor + BUCKETS as u64 - 1);
        for tick in self.cursor..=last {
            let rel = self.relative(tick);
            let b = &mut self.buckets[(tick % BUCKETS as u64) as usize];
            self.len -= b.len();
            out.extend(b.drain(..).map(|s| (s, rel)));
        }
        self.cursor = now_tick + 1;
    }

    /// Entries currently held (including stale ones).
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        debug_assert_eq!(self.len, self.buckets.iter().map(Vec::len).sum::<usize>());
        self.len
    }

    pub fn heap_bytes(&self) -> usize {
        self.buckets.iter().map(|b| b.capacity() * 4).sum::<usize>() + self.buckets.capacity() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn slots_come_due_in_their_tick_and_not_before() {
        let mut w = TimingWheel::new(0);
        let t1 = w.insert(1, 25 * MS);
        let t2 = w.insert(2, 5 * MS);
        let mut out = Vec::new();
        w.drain_due(9 * MS, &mut out);
        assert_eq!(out, vec![(2, t2)]);
        out.clear();
        w.drain_due(19 * MS, &mut out);
        assert!(out.is_empty());
        w.drain_due(29 * MS, &mut out);
        assert_eq!(out, vec![(1, t1)]);
    }

    #[test]
    fn past_and_far_deadlines_are_clamped() {
        let mut w = TimingWheel::new(1_000 * MS);
        let t = w.insert(7, 0);
        assert_eq!(t, 0);
        let far = w.insert(8, 1_000_000 * MS);
        assert_eq!(far, BUCKETS as u32 - 1);
        let mut out = Vec::new();
        w.drain_due(1_000 * MS, &mut out);
        assert_eq!(out, vec![(7, 0)]);
    }

    #[test]
    fn next_due_is_the_earliest_non_empty_bucket() {
        let mut w = TimingWheel::new(1_000 * MS);
        assert_eq!(w.next_due_ns(), None);
        let t = w.insert(1, 1_234 * MS);
        w.insert(2, 5_000 * MS);
        assert_eq!(w.next_due_ns(), Some(1_230 * MS));
        assert_eq!(w.start_ns(t), 1_230 * MS);
        let mut out = Vec::new();
        w.drain_due(1_230 * MS, &mut out);
        assert_eq!(w.next_due_ns(), Some(5_000 * MS));
        w.drain_due(5_000 * MS, &mut out);
        assert_eq!((w.next_due_ns(), w.entries()), (None, 0));
    }

    #[test]
    fn a_long_pause_drains_everything_once() {
        let mut w = TimingWheel::new(0);
        for i in 0..100 {
            w.insert(i, i as u64 * 300 * MS);
        }
        let mut out = Vec::new();
        w.drain_due(10_000_000 * MS, &mut out);
        assert_eq!(out.len(), 100);
        assert_eq!(w.entries(), 0);
    }
}
