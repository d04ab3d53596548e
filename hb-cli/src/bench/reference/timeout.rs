//! The fixed timeout: what a `ttl` or a BFD detect multiplier does.

use crate::bench::trace::Arrival;

#[derive(Clone, Debug)]
pub struct FixedTimeout {
    timeout_ns: u64,
    last_ns: u64,
}

impl FixedTimeout {
    pub fn new(first: &Arrival, timeout_ns: u64) -> FixedTimeout {
        FixedTimeout { timeout_ns, last_ns: first.t_ns }
    }

    pub fn heartbeat(&mut self, a: &Arrival) {
        self.last_ns = self.last_ns.max(a.t_ns);
    }

    pub fn deadline(&self) -> u64 {
        self.last_ns.saturating_add(self.timeout_ns)
    }
}
