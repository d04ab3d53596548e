//! The snapshot of one peer that Monitor and Watcher hand out (`peers()`).

use std::collections::BTreeMap;

use crate::events::State;

#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// Instance id.
    pub id: String,
    pub service: String,
    pub labels: BTreeMap<String, String>,
    pub state: State,
    /// Wall-clock time the peer was last heard from (beat, or etcd revision seen).
    pub last_seen_unix_ms: u64,
    pub incarnation: u32,
    /// Registration epoch (etcd); 0 for direct beats.
    pub epoch: u64,
    /// Interval the peer announced in its last beat (0 when unknown, e.g. etcd).
    pub interval_ms: u32,
    /// The peer's last reported round-trip time, when known.
    pub rtt_us: Option<u32>,
    /// Where the peer's beats come from (`udp://ip:port`), when known.
    pub addr: Option<String>,
}
