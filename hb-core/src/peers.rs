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

impl PeerInfo {
    /// The one JSON shape of a peer: the HTTP API's, with the keys of the bindings' native
    /// peer (Python's dict, the C accessors `hb_peer_*`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "service": self.service,
            "labels": self.labels,
            "state": self.state.as_str(),
            "last_seen_unix_ms": self.last_seen_unix_ms,
            "incarnation": self.incarnation,
            "epoch": self.epoch,
            "interval_ms": self.interval_ms,
            "rtt_us": self.rtt_us,
            "addr": self.addr,
        })
    }
}
