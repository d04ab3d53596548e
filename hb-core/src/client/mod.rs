//! The beating side: keeps one process registered as alive, over direct (udp/tcp) beats to
//! a Monitor or an etcd lease, and tracks its own health for fencing.

mod beater;
mod direct;
pub mod health;
pub(crate) mod shared;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::MonotonicClock;
use crate::config::{Config, Options, Role};
use crate::error::{Error, Result};
use crate::events::{EventHub, State};
use crate::runtime::ProcessGuard;

use shared::{ClientShared, Transport};

/// `(lease id, epoch)`: pass it to downstream compare-and-set so that a stale holder's
/// writes are refused. The epoch increases with every re-registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FencingToken {
    /// etcd lease id; 0 for direct beats.
    pub lease_id: i64,
    pub epoch: u64,
}

enum Life {
    Idle,
    /// `start` is making the transport, outside the lock.
    Starting,
    Running(Box<dyn Transport>),
    Stopped,
}

pub struct Client {
    shared: Arc<ClientShared>,
    guard: ProcessGuard,
    life: Mutex<Life>,
}

impl Client {
    /// Resolves `options` (explicit > environment > defaults) and validates them.
    pub fn new(options: &Options) -> Result<Client> {
        Client::from_config(Config::resolve(options, Role::Client)?)
    }

    pub fn from_config(config: Config) -> Result<Client> {
        let shared = Arc::new(ClientShared::new(config, Arc::new(MonotonicClock)));
        Ok(Client { shared, guard: ProcessGuard::new(), life: Mutex::new(Life::Idle) })
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Starts beating. With etcd, waits (bounded by connect_timeout) for the first
    /// registration, so an unreachable etcd or refused credentials surface here. Direct
    /// beats return at once; the state becomes `healthy` with the first ACK. A `stop` that
    /// comes while this runs (also from the client's own callback) wins: start still
    /// returns `Ok`, and the client ends stopped, having said goodbye.
    pub fn start(&self) -> Result<()> {
        self.guard.check()?;
        {
            let mut life = self.life.lock();
            match *life {
                Life::Idle => *life = Life::Starting,
                Life::Starting | Life::Running(_) => {
                    return Err(Error::InvalidState("client is already started".into()))
                }
                Life::Stopped => return Err(Error::Stopped("client was stopped; create a new one")),
            }
        }
        // Registering with etcd can take up to connect_timeout: not under the lock, so that a
        // concurrent stop is not held up by it.
        let made: Result<Box<dyn Transport>> = if self.shared.config.endpoints.iter().any(|e| e.is_etcd()) {
            crate::registry::registration::Registration::start(Arc::clone(&self.shared))
                .map(|t| Box::new(t) as Box<dyn Transport>)
        } else {
            direct::DirectTransport::start(Arc::clone(&self.shared)).map(|t| Box::new(t) as Box<dyn Transport>)
        };
        let mut life = self.life.lock();
        match (made, &*life) {
            (Ok(transport), Life::Starting) => {
                crate::metrics::get().clients.inc();
                *life = Life::Running(transport);
                Ok(())
            }
            (Ok(transport), _) => {
                // A stop came while we were starting, e.g. from this client's own callback
                // on its first event, which can fire before we get here. The start did its
                // work and the stop wins: say goodbye at once and report the start as done.
                drop(life);
                let _ = transport.stop(self.shared.config.stop_timeout);
                Ok(())
            }
            (Err(e), _) => {
                if matches!(*life, Life::Starting) {
                    *life = Life::Idle;
                }
                Err(e)
            }
        }
    }

    /// Says goodbye (LEAVE / mark leaving + revoke) and stops; returns within `timeout`
    /// even if nothing answers. No event is delivered after it returns, also when called
    /// from this client's own callback. Idempotent.
    pub fn stop(&self, timeout: Duration) -> Result<()> {
        self.guard.check()?;
        // Taken out under the lock, stopped outside it: a concurrent stop (e.g. from the
        // callback) must not wait for this one.
        let running = std::mem::replace(&mut *self.life.lock(), Life::Stopped);
        let result = match running {
            Life::Running(transport) => {
                let r = transport.stop(timeout);
                crate::metrics::get().clients.dec();
                self.shared.update_health(|h| h.stopped());
                r
            }
            Life::Idle | Life::Starting | Life::Stopped => Ok(()),
        };
        self.shared.events.close();
        result
    }

    /// Tests only: stops beating without a LEAVE, as if the process had crashed. The
    /// monitor will declare this client dead after its detection time.
    #[doc(hidden)]
    pub fn crash_for_test(&self) {
        if let Life::Running(transport) = std::mem::replace(&mut *self.life.lock(), Life::Stopped) {
            transport.crash();
            crate::metrics::get().clients.dec();
        }
    }

    /// Own health: `healthy`, `degraded`, `lost` (or `unknown` before the first ACK,
    /// `stopped` after stop).
    pub fn state(&self) -> State {
        self.shared.health.lock().state()
    }

    pub fn events(&self) -> &Arc<EventHub> {
        &self.shared.events
    }

    /// `(lease id, epoch)`; lease id 0 and epoch 1 for direct beats once acknowledged.
    pub fn fencing_token(&self) -> Result<FencingToken> {
        self.guard.check()?;
        let h = self.shared.health.lock();
        if h.epoch() == 0 {
            return Err(Error::NotHolder("not registered yet: no acknowledgement received".into()));
        }
        Ok(FencingToken { lease_id: h.lease_id(), epoch: h.epoch() })
    }

    /// Fails with `NotHolder` once `remaining()` is zero, without asking anyone.
    pub fn check(&self) -> Result<()> {
        self.guard.check()?;
        let now = self.shared.now_ns();
        self.shared.health.lock().check(now)
    }

    /// Conservative time this process may still act as the holder.
    pub fn remaining(&self) -> Duration {
        let now = self.shared.now_ns();
        Duration::from_nanos(self.shared.health.lock().remaining_ns(now))
    }

    /// This process start's incarnation (sent in every beat and stored in etcd).
    pub fn incarnation(&self) -> u32 {
        self.shared.incarnation
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if !self.guard.is_forked() {
            let timeout = self.shared.config.stop_timeout;
            let _ = self.stop(timeout);
        }
    }
}
