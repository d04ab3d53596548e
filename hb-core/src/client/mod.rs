//! The beating side: keeps one process registered as alive, over direct (udp/tcp) beats to
//! a Monitor or an etcd lease, and tracks its own health for fencing.

pub mod health;
pub(crate) mod shared;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Options, Role};
use crate::error::{Error, Result};
use crate::events::{EventHub, State};

/// `(lease id, epoch)`: pass it to downstream compare-and-set so that a stale holder's
/// writes are refused. The epoch increases with every re-registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FencingToken {
    /// etcd lease id; 0 for direct beats.
    pub lease_id: i64,
    pub epoch: u64,
}

pub struct Client {
    config: Config,
    events: Arc<EventHub>,
}

impl Client {
    /// Resolves `options` (explicit > environment > defaults) and validates them.
    pub fn new(options: &Options) -> Result<Client> {
        Client::from_config(Config::resolve(options, Role::Client)?)
    }

    pub fn from_config(config: Config) -> Result<Client> {
        let events = EventHub::new(config.event_capacity);
        Ok(Client { config, events })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Starts beating. With etcd, waits (bounded by connect_timeout) for the first
    /// registration, so an unreachable etcd or refused credentials surface here.
    pub fn start(&self) -> Result<()> {
        Err(Error::Internal("Client::start not implemented yet".into()))
    }

    /// Says goodbye (LEAVE / mark leaving + revoke) and stops; returns within `timeout`
    /// even if nothing answers. Idempotent.
    pub fn stop(&self, _timeout: Duration) -> Result<()> {
        self.events.close();
        Ok(())
    }

    /// Own health: `healthy`, `degraded`, `lost` (or `unknown` before start, `stopped` after).
    pub fn state(&self) -> State {
        State::Unknown
    }

    pub fn events(&self) -> &Arc<EventHub> {
        &self.events
    }

    pub fn fencing_token(&self) -> Result<FencingToken> {
        Err(Error::NotHolder("not registered".into()))
    }

    /// Fails with `NotHolder` once `remaining()` is zero, without asking anyone.
    pub fn check(&self) -> Result<()> {
        Err(Error::NotHolder("not registered".into()))
    }

    /// Conservative time this process may still act as the holder.
    pub fn remaining(&self) -> Duration {
        Duration::ZERO
    }

    /// This process start's incarnation (sent in every beat and stored in etcd).
    pub fn incarnation(&self) -> u32 {
        0
    }
}
