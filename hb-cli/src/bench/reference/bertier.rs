//! Bertier, Marin, Sens (DSN 2002): Chen's expected arrival plus a dynamic margin
//! estimated like Jacobson's RTO. On each beat k:
//! error = A_k − EA_k − delay; delay += γ·error; var += γ·(|error| − var);
//! τ = EA(k+1) + β·delay + φ·var. Defaults in the paper: β = 1, φ = 4, γ = 0.1.
//! The variation starts at a quarter of the announced interval (Akka's first estimate):
//! starting at 0, the second beat of every peer would be a mistake whatever φ.

use super::window::ExpectedArrival;
use crate::bench::trace::Arrival;

pub const BETA: f64 = 1.0;
pub const GAMMA: f64 = 0.1;

#[derive(Clone, Debug)]
pub struct Bertier {
    ea: ExpectedArrival,
    phi: f64,
    delay_ns: f64,
    var_ns: f64,
}

impl Bertier {
    pub fn new(first: &Arrival, phi: f64) -> Bertier {
        Bertier { ea: ExpectedArrival::new(first), phi, delay_ns: 0.0, var_ns: first.interval_ns as f64 / 4.0 }
    }

    pub fn heartbeat(&mut self, a: &Arrival) {
        // The error of the estimate made before this beat arrived.
        let expected = self.ea.expected(a.seq);
        if self.ea.push(a) {
            let error = a.t_ns as f64 - expected - self.delay_ns;
            self.delay_ns += GAMMA * error;
            self.var_ns += GAMMA * (error.abs() - self.var_ns);
        }
    }

    pub fn deadline(&self) -> u64 {
        let margin = BETA * self.delay_ns + self.phi * self.var_ns;
        let tau = super::at(self.ea.expected(self.ea.last_seq.wrapping_add(1)), margin);
        tau.max(self.ea.last_ns)
    }
}
