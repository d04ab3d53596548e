//! The watching side: listens on udp/tcp, tracks every peer with its own detector and
//! reports transitions.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, Options, Role};
use crate::error::{Error, Result};
use crate::events::EventHub;
use crate::peers::PeerInfo;

pub struct Monitor {
    config: Config,
    events: Arc<EventHub>,
}

impl Monitor {
    pub fn new(options: &Options) -> Result<Monitor> {
        Monitor::from_config(Config::resolve(options, Role::Monitor)?)
    }

    pub fn from_config(config: Config) -> Result<Monitor> {
        let events = EventHub::new(config.event_capacity);
        Ok(Monitor { config, events })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Binds every listen endpoint and starts tracking.
    pub fn start(&self) -> Result<()> {
        Err(Error::Internal("Monitor::start not implemented yet".into()))
    }

    /// The bound addresses as `udp://ip:port` / `tcp://ip:port` (useful with port 0).
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        Vec::new()
    }

    /// Stops listening; no event is delivered after it returns. Idempotent.
    pub fn stop(&self) -> Result<()> {
        self.events.close();
        Ok(())
    }

    pub fn peers(&self) -> Vec<PeerInfo> {
        Vec::new()
    }

    pub fn events(&self) -> &Arc<EventHub> {
        &self.events
    }
}
