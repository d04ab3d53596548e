//! heartbeater engine.
//!
//! Everything with behaviour lives here; the C ABI, the Go and Python bindings and the CLI
//! are thin layers over this crate. See `docs/` and the design notes for the picture.

pub mod backoff;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod detect;
pub mod election;
pub mod error;
pub mod events;
pub mod fencing;
pub mod history;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod peers;
pub mod proto;
pub mod runtime;
mod tls;

pub mod client;
pub mod monitor;
pub mod registry;

pub use client::Client;
pub use config::{Config, Endpoint, Options, Role};
pub use detect::DetectorKind;
pub use election::Election;
pub use error::{Error, Result};
pub use events::{Event, EventHub, Reason, State};
pub use fencing::FencingToken;
pub use lifecycle::{EventSource, Phase};
pub use monitor::Monitor;
pub use peers::PeerInfo;
pub use registry::Watcher;

/// The library version (Cargo package version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
