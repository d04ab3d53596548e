//! A bounded history of one handle's events, each with an id that increases by one, so that a
//! reader that lost its connection (the HTTP event stream, `Last-Event-ID`) can ask for
//! exactly what came after the last one it saw, and learn when that is no longer kept.
//!
//! Recording is O(1) under a short lock and never waits for a reader: a reader that falls
//! more than `capacity` behind is told it missed events (a gap) instead of holding memory.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::events::Event;

/// Events kept by default: a few minutes of transitions for a busy monitor.
pub const DEFAULT_HISTORY: usize = 4096;

pub struct History {
    capacity: usize,
    ring: Mutex<VecDeque<(u64, Arc<Event>)>>,
    /// The id of the newest event (0: none yet); readers wait for it to change.
    latest: tokio::sync::watch::Sender<u64>,
}

/// What a reader gets after the id it has seen.
#[derive(Debug, PartialEq)]
pub struct Since {
    /// Events after the reader's id were dropped from the history before it asked: it must
    /// take a fresh snapshot (`peers()`) before trusting the events that follow.
    pub gap: bool,
    /// In id order, consecutive.
    pub events: Vec<(u64, Arc<Event>)>,
}

impl History {
    pub fn new(capacity: usize) -> History {
        History {
            capacity: capacity.max(1),
            ring: Mutex::new(VecDeque::new()),
            latest: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Records one event and returns its id (the first is 1).
    pub fn record(&self, event: Event) -> u64 {
        let id = {
            let mut ring = self.ring.lock();
            let id = ring.back().map_or(1, |(id, _)| id + 1);
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back((id, Arc::new(event)));
            id
        };
        self.latest.send_replace(id);
        id
    }

    /// The id of the newest event recorded (0 when none).
    pub fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Up to `max` events with an id above `after`. An `after` that this history never gave
    /// out (above the newest: the reader saw an earlier run) counts as a gap, and the reader
    /// gets everything kept.
    pub fn since(&self, after: u64, max: usize) -> Since {
        let ring = self.ring.lock();
        let newest = ring.back().map_or(0, |(id, _)| *id);
        let oldest = ring.front().map_or(newest + 1, |(id, _)| *id);
        // Above the newest: an id from an earlier run; below the oldest - 1: dropped since.
        let gap = after > newest || after + 1 < oldest;
        let from = if gap { oldest } else { after + 1 };
        let skip = (from - oldest) as usize;
        Since { gap, events: ring.iter().skip(skip).take(max).cloned().collect() }
    }

    /// A receiver that wakes when an event is recorded.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.latest.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Reason, State};

    fn ev(n: u32) -> Event {
        let mut e = Event::new("p", "s", State::Unknown, State::Alive, Reason::Registered);
        e.incarnation = n;
        e
    }

    fn ids(s: &Since) -> Vec<u64> {
        s.events.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn ids_are_consecutive_and_resume_exactly_after_the_one_seen() {
        let h = History::new(8);
        assert_eq!(h.since(0, 10), Since { gap: false, events: vec![] });
        for i in 1..=5 {
            assert_eq!(h.record(ev(i)), u64::from(i));
        }
        assert_eq!(h.latest(), 5);
        let all = h.since(0, 10);
        assert!(!all.gap);
        assert_eq!(ids(&all), vec![1, 2, 3, 4, 5]);
        assert_eq!(all.events[2].1.incarnation, 3);
        assert_eq!(ids(&h.since(3, 10)), vec![4, 5]);
        assert_eq!(ids(&h.since(3, 1)), vec![4]);
        assert_eq!(h.since(5, 10), Since { gap: false, events: vec![] });
    }

    #[test]
    fn a_reader_behind_the_bound_is_told_of_the_gap() {
        let h = History::new(4);
        for i in 1..=10 {
            h.record(ev(i));
        }
        // 7..=10 kept; having seen 6 is exactly enough, 5 is not.
        let s = h.since(6, 10);
        assert!(!s.gap);
        assert_eq!(ids(&s), vec![7, 8, 9, 10]);
        let s = h.since(5, 10);
        assert!(s.gap);
        assert_eq!(ids(&s), vec![7, 8, 9, 10]);
        // An id from an earlier run (above the newest) is a gap too.
        let s = h.since(99, 10);
        assert!(s.gap);
        assert_eq!(ids(&s), vec![7, 8, 9, 10]);
    }

    #[test]
    fn subscribers_wake_on_record() {
        let h = History::new(4);
        let mut rx = h.subscribe();
        assert!(!rx.has_changed().unwrap());
        h.record(ev(1));
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 1);
    }
}
