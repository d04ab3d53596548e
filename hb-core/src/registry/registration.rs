//! A Client's etcd registration: grant, put-with-lease, keepalive at TTL/3, re-registration
//! after a lost lease, graceful leave. (Being built on the `registry` branch.)

use std::sync::Arc;
use std::time::Duration;

use crate::client::shared::{ClientShared, Transport};
use crate::error::{Error, Result};

pub(crate) struct Registration {
    _shared: Arc<ClientShared>,
}

impl Registration {
    /// Registers and waits (bounded by `connect_timeout`) for the first registration.
    pub(crate) fn start(shared: Arc<ClientShared>) -> Result<Registration> {
        let _ = &shared;
        Err(Error::Internal("etcd registration not implemented yet".into()))
    }
}

impl Transport for Registration {
    fn stop(&self, _timeout: Duration) -> Result<()> {
        Ok(())
    }
}
