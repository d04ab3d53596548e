//! etcd: lease registration, keepalive, re-registration, the watcher's node view, fencing.
//!
//! One connection per (endpoints, credentials) in the process (`connect`), one keepalive
//! stream on it for every lease (`keepalive`), the stored value (`value`), a Client's
//! registration (`registration`), and the Watcher with its pure node view (`view`).

pub(crate) mod connect;
mod keepalive;
pub(crate) mod registration;
mod schedule;
pub mod value;
mod view;
mod watcher;

pub use value::RegistrationValue;
pub use watcher::Watcher;
