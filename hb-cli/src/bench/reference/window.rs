//! Chen's expected-arrival estimate, shared by NFD-E and Bertier.
//!
//! EA(s) = (1/n) Σ (A_i − η·s_i) + η·s over the last n received beats (seq s_i, arrival
//! A_i). Chen assumes the sender's period η is known exactly; a real sender's period is a
//! little off its nominal value (timer granularity), and over n = 1000 beats that drift
//! would bias the estimate by many periods. So η is estimated over the window, as the
//! slope between its oldest and newest beat (the announced interval until there are two).

use std::collections::VecDeque;

use super::WINDOW;
use crate::bench::trace::Arrival;

#[derive(Clone, Debug)]
pub struct ExpectedArrival {
    /// (seq, arrival) of the last `WINDOW` beats, in seq order.
    beats: VecDeque<(f64, f64)>,
    sum_seq: f64,
    sum_t: f64,
    announced_ns: f64,
    pub last_seq: u32,
    pub last_ns: u64,
}

impl ExpectedArrival {
    pub fn new(first: &Arrival) -> ExpectedArrival {
        let mut w = ExpectedArrival {
            beats: VecDeque::with_capacity(WINDOW),
            sum_seq: 0.0,
            sum_t: 0.0,
            announced_ns: first.interval_ns as f64,
            last_seq: first.seq,
            last_ns: first.t_ns,
        };
        w.push(first);
        w
    }

    /// Returns false for a stale beat (a seq not above the last one): ignored.
    pub fn push(&mut self, a: &Arrival) -> bool {
        if !self.beats.is_empty() && a.seq <= self.last_seq {
            return false;
        }
        if self.beats.len() == WINDOW {
            let (s, t) = self.beats.pop_front().expect("full");
            self.sum_seq -= s;
            self.sum_t -= t;
        }
        let (s, t) = (f64::from(a.seq), a.t_ns as f64);
        self.beats.push_back((s, t));
        self.sum_seq += s;
        self.sum_t += t;
        (self.last_seq, self.last_ns) = (a.seq, a.t_ns);
        self.announced_ns = a.interval_ns as f64;
        true
    }

    fn period_ns(&self) -> f64 {
        match (self.beats.front(), self.beats.back()) {
            (Some(&(s0, t0)), Some(&(s1, t1))) if s1 > s0 => (t1 - t0) / (s1 - s0),
            _ => self.announced_ns,
        }
    }

    /// Expected arrival time (ns) of the beat numbered `seq`.
    pub fn expected(&self, seq: u32) -> f64 {
        let n = self.beats.len() as f64;
        self.sum_t / n + self.period_ns() * (f64::from(seq) - self.sum_seq / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(seq: u32, t_ns: u64) -> Arrival {
        Arrival { t_ns, peer: 0, seq, interval_ns: 1_000, stalled: false, sent_ns: 0 }
    }

    #[test]
    fn expects_the_next_beat_one_period_on_despite_losses_and_drift() {
        // Period 1010 ns (not the announced 1000), beat 3 lost, constant delay 50.
        let mut w = ExpectedArrival::new(&beat(1, 1010 + 50));
        for s in [2, 4, 5, 6] {
            assert!(w.push(&beat(s, u64::from(s) * 1010 + 50)));
        }
        assert!(!w.push(&beat(5, 99_999)), "stale seq ignored");
        assert!((w.expected(7) - (7.0 * 1010.0 + 50.0)).abs() < 1e-6, "{}", w.expected(7));
    }
}
