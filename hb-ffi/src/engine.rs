//! What the client, monitor and watcher handles share behind their `_start` exports.

use std::sync::Arc;

use hb_core::{Client, EventHub, Monitor, Watcher};

use crate::boundary::FfiResult;
use crate::callback;

/// An engine object a C handle owns through an `Arc`.
pub(crate) trait Engine: Send + Sync + 'static {
    /// The error for starting it after it was stopped.
    const STOPPED: &'static str;
    fn events(&self) -> &Arc<EventHub>;
    fn start(&self) -> hb_core::Result<()>;
}

/// Starts `engine` through a reference of our own: events start flowing before `start`
/// returns, and the handle's callback may free the handle (allowed) while we are in here.
pub(crate) fn start<E: Engine>(engine: &Arc<E>) -> FfiResult<()> {
    let engine = Arc::clone(engine);
    callback::ensure_running(engine.events(), E::STOPPED)?;
    Ok(engine.start()?)
}

impl Engine for Client {
    const STOPPED: &'static str = "client is stopped; create a new one";
    fn events(&self) -> &Arc<EventHub> {
        Client::events(self)
    }
    fn start(&self) -> hb_core::Result<()> {
        Client::start(self)
    }
}

impl Engine for Monitor {
    const STOPPED: &'static str = "monitor is stopped; create a new one";
    fn events(&self) -> &Arc<EventHub> {
        Monitor::events(self)
    }
    fn start(&self) -> hb_core::Result<()> {
        Monitor::start(self)
    }
}

impl Engine for Watcher {
    const STOPPED: &'static str = "watcher is stopped; create a new one";
    fn events(&self) -> &Arc<EventHub> {
        Watcher::events(self)
    }
    fn start(&self) -> hb_core::Result<()> {
        Watcher::start(self)
    }
}
