//! The etcd registration on its own, without the `Client` facade, so the registry's tests
//! and examples exercise exactly this transport. Applications use `hb_core::Client`.

use std::sync::Arc;
use std::time::Duration;

use crate::client::shared::{ClientShared, Transport};
use crate::clock::MonotonicClock;
use crate::config::{Config, Options, Role};
use crate::error::{Error, Result};
use crate::events::{EventHub, State};

use super::registration::Registration;

#[doc(hidden)]
pub struct EtcdMember {
    shared: Arc<ClientShared>,
    registration: Registration,
}

impl EtcdMember {
    /// Registers (waiting for the first registration, bounded by connect_timeout).
    pub fn start(options: &Options) -> Result<EtcdMember> {
        let config = Config::resolve(options, Role::Client)?;
        if config.etcd_endpoint().is_none() {
            return Err(Error::config("endpoint", "", "an etcd://host:port/prefix endpoint"));
        }
        let shared = Arc::new(ClientShared::new(config, Arc::new(MonotonicClock)));
        let registration = Registration::start(Arc::clone(&shared))?;
        Ok(EtcdMember { shared, registration })
    }

    pub fn stop(&self, timeout: Duration) -> Result<()> {
        let result = self.registration.stop(timeout);
        self.shared.events.close();
        result
    }

    pub fn state(&self) -> State {
        self.shared.health.lock().state()
    }

    /// (lease id, epoch).
    pub fn fencing_token(&self) -> (i64, u64) {
        let h = self.shared.health.lock();
        (h.lease_id(), h.epoch())
    }

    pub fn check(&self) -> Result<()> {
        let now = self.shared.now_ns();
        self.shared.health.lock().check(now)
    }

    pub fn remaining(&self) -> Duration {
        let now = self.shared.now_ns();
        Duration::from_nanos(self.shared.health.lock().remaining_ns(now))
    }

    pub fn incarnation(&self) -> u32 {
        self.shared.incarnation
    }

    pub fn events(&self) -> &Arc<EventHub> {
        &self.shared.events
    }
}
