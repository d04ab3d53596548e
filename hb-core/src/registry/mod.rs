//! etcd: lease registration, keepalive, re-registration, the watcher's node view, fencing.

pub(crate) mod registration;
mod watcher;

pub use watcher::Watcher;
