//! Watching an etcd prefix: the live set of registered instances.

use std::sync::Arc;

use crate::config::{Config, Options, Role};
use crate::error::{Error, Result};
use crate::events::EventHub;
use crate::peers::PeerInfo;

pub struct Watcher {
    config: Config,
    events: Arc<EventHub>,
}

impl Watcher {
    pub fn new(options: &Options) -> Result<Watcher> {
        Watcher::from_config(Config::resolve(options, Role::Watcher)?)
    }

    pub fn from_config(config: Config) -> Result<Watcher> {
        let events = EventHub::new(config.event_capacity);
        Ok(Watcher { config, events })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Lists the prefix, then watches from that revision.
    pub fn start(&self) -> Result<()> {
        Err(Error::Internal("Watcher::start not implemented yet".into()))
    }

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
