//! etcd: lease registration, keepalive, re-registration, the watcher's node view, fencing.

mod watcher;

pub use watcher::Watcher;
