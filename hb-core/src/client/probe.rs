//! The client's reply handling without sockets, for the fuzz targets and their corpus
//! replay (`fuzz/src/targets.rs`): a real [`Beater`] (the code the UDP and TCP tasks run)
//! on a hand-moved clock, fed beats' replies as bytes. Not for applications.

use std::sync::Arc;

use crate::clock::{Clock, ManualClock};
use crate::config::{Config, Options, Role};
use crate::error::Result;
use crate::events::State;
use crate::proto::NackReason;

use super::beater::{Beater, Heard};
use super::shared::ClientShared;

/// What the beater made of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// Not a reply to anything outstanding (undecodable, unknown seq, a duplicate...).
    Ignored,
    Acked,
    Refused(NackReason),
}

#[doc(hidden)]
pub struct ReplyProbe {
    beater: Beater,
    shared: Arc<ClientShared>,
    clock: ManualClock,
}

impl ReplyProbe {
    /// A client of `instance_id` `probe`, service `fuzz`, asking for ACKs, at `interval`
    /// (e.g. `100ms..10s`) and `ttl`.
    pub fn new(interval: &str, ttl: &str) -> Result<ReplyProbe> {
        let mut o = Options::new();
        for (k, v) in [
            ("endpoint", "udp://127.0.0.1:9"),
            ("instance_id", "probe"),
            ("service", "fuzz"),
            ("interval", interval),
            ("ttl", ttl),
            ("ack", "true"),
        ] {
            o.set(k, v)?;
        }
        let config = Config::resolve_with_env(&o, Role::Client, &|_| None)?;
        let clock = ManualClock::new(1_000_000_000);
        let shared = Arc::new(ClientShared::new(config, Arc::new(clock.clone())));
        let beater = Beater::new(Arc::clone(&shared), 0, clock.now_ns())?;
        Ok(ReplyProbe { beater, shared, clock })
    }

    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    pub fn advance_ns(&mut self, ns: u64) {
        self.clock.advance_ns(ns);
    }

    /// Moves the clock to the next wake-up and runs the timer: the beat it sent, if any.
    pub fn next_beat(&mut self) -> Option<Vec<u8>> {
        self.clock.set_ns(self.beater.next_wakeup_ns().max(self.clock.now_ns()));
        let mut out = Vec::new();
        self.beater.on_timer(self.clock.now_ns(), &mut out).then_some(out)
    }

    /// The LEAVE a stopping client sends.
    pub fn leave(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.beater.leave(self.clock.now_ns(), &mut out);
        out
    }

    /// A datagram or TCP frame from the monitor, handled as the client handles it.
    pub fn reply(&mut self, bytes: &[u8]) -> ReplyOutcome {
        match self.beater.on_frame(bytes, self.clock.now_ns()) {
            Heard::Nothing => ReplyOutcome::Ignored,
            Heard::Acked => ReplyOutcome::Acked,
            Heard::Refused(reason) => ReplyOutcome::Refused(reason),
        }
    }

    pub fn leave_acked(&self) -> bool {
        self.beater.leave_acked()
    }

    pub fn interval_ns(&self) -> u64 {
        self.beater.interval_ns()
    }

    pub fn rto_ns(&self) -> u64 {
        self.beater.rto_ns()
    }

    pub fn health(&self) -> State {
        self.shared.health.lock().state()
    }

    /// Whether `check()` would pass now.
    pub fn check(&self) -> bool {
        self.shared.health.lock().check(self.clock.now_ns()).is_ok()
    }
}
