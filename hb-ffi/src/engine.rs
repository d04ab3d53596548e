//! What the client, monitor and watcher handles share behind their `_start` exports.

use std::sync::Arc;

use hb_core::{Client, EventSource, Monitor, Watcher};

use crate::boundary::FfiResult;

/// An engine object a C handle owns through an `Arc`. The lifecycle rules (started twice,
/// started after stop, forked child) are hb-core's: nothing is checked here.
pub(crate) trait Engine: EventSource + Send + Sync + 'static {
    fn start(&self) -> hb_core::Result<()>;
}

/// Starts `engine` through a reference of our own: events start flowing before `start`
/// returns, and the handle's callback may free the handle (allowed) while we are in here.
pub(crate) fn start<E: Engine>(engine: &Arc<E>) -> FfiResult<()> {
    let engine = Arc::clone(engine);
    Ok(engine.start()?)
}

impl Engine for Client {
    fn start(&self) -> hb_core::Result<()> {
        Client::start(self)
    }
}

impl Engine for Monitor {
    fn start(&self) -> hb_core::Result<()> {
        Monitor::start(self)
    }
}

impl Engine for Watcher {
    fn start(&self) -> hb_core::Result<()> {
        Watcher::start(self)
    }
}
