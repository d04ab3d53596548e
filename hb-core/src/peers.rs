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
        serde_json::to_value(self).expect("a peer is plain data")
    }
}

/// `to_json`'s shape, written straight out (a page of 10k peers builds no `Value` tree).
/// Keys in the alphabetical order that `to_json`'s map had before it was this.
impl serde::Serialize for PeerInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("PeerInfo", 10)?;
        m.serialize_field("addr", &self.addr)?;
        m.serialize_field("epoch", &self.epoch)?;
        m.serialize_field("id", &self.id)?;
        m.serialize_field("incarnation", &self.incarnation)?;
        m.serialize_field("interval_ms", &self.interval_ms)?;
        m.serialize_field("labels", &self.labels)?;
        m.serialize_field("last_seen_unix_ms", &self.last_seen_unix_ms)?;
        m.serialize_field("rtt_us", &self.rtt_us)?;
        m.serialize_field("service", &self.service)?;
        m.serialize_field("state", self.state.as_str())?;
        m.end()
    }
}
