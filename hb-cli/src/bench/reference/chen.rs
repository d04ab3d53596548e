//! Chen, Toueg, Aguilera's NFD-E (IEEE TC 2002): trust until the freshness point
//! τ = EA(s+1) + α, where s is the newest beat received and α a constant safety margin.

use super::window::ExpectedArrival;
use crate::bench::trace::Arrival;

#[derive(Clone, Debug)]
pub struct ChenNfdE {
    ea: ExpectedArrival,
    alpha_ns: f64,
}

impl ChenNfdE {
    pub fn new(first: &Arrival, alpha_ns: f64) -> ChenNfdE {
        ChenNfdE { ea: ExpectedArrival::new(first), alpha_ns }
    }

    pub fn heartbeat(&mut self, a: &Arrival) {
        self.ea.push(a);
    }

    pub fn deadline(&self) -> u64 {
        let tau = super::at(self.ea.expected(self.ea.last_seq.wrapping_add(1)), self.alpha_ns);
        // Never before the newest beat: a late beat restarts trust.
        tau.max(self.ea.last_ns)
    }
}
