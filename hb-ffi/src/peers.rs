//! `hb_peers`: a snapshot of the peers a monitor or watcher knows.

use std::ffi::{c_char, CString};

use hb_core::PeerInfo;

use crate::boundary::Handle;
use crate::error::hb_error;
use crate::event::{c_labels, c_string, hb_state};
use crate::status::hb_status;

/// A snapshot of peers taken by `hb_monitor_peers` / `hb_watcher_peers`, sorted by
/// service then id. Owned by the caller: free with `hb_peers_free`. Immutable, so it may
/// be read from any thread; it does not change when the handle learns more.
#[cfg_attr(all(), repr(C))] // repr(C): `tag` first (boundary.rs); cfg_attr: opaque to cbindgen
pub struct hb_peers {
    tag: u64,
    peers: Vec<hb_peer>,
}
handle_tag!(hb_peers, "hb_peers", 0x6862_7065_6572_7301);

/// One peer in an `hb_peers` snapshot. Borrowed from the snapshot (valid until
/// `hb_peers_free`); strings from its accessors likewise.
#[cfg_attr(all(), repr(C))] // repr(C): `tag` first (boundary.rs); cfg_attr: opaque to cbindgen
pub struct hb_peer {
    tag: u64,
    info: PeerInfo,
    id: CString,
    service: CString,
    labels: Vec<(CString, CString)>,
    addr: Option<CString>,
}
handle_tag!(hb_peer, "hb_peer", 0x6862_7065_6572_0001);

pub(crate) fn snapshot(mut infos: Vec<PeerInfo>) -> *mut hb_peers {
    infos.sort_by(|a, b| (&a.service, &a.id).cmp(&(&b.service, &b.id)));
    let peers = infos
        .into_iter()
        .map(|info| hb_peer {
            tag: <hb_peer as Handle>::TAG,
            id: c_string(&info.id),
            service: c_string(&info.service),
            labels: c_labels(&info.labels),
            addr: info.addr.as_deref().map(c_string),
            info,
        })
        .collect();
    Box::into_raw(Box::new(hb_peers { tag: <hb_peers as Handle>::TAG, peers }))
}

fn with_peer<T>(p: *const hb_peer, fallback: T, f: impl FnOnce(&hb_peer) -> T) -> T {
    // SAFETY: NULL- and tag-checked; borrowed from a live snapshot per the header contract.
    match unsafe { crate::boundary::handle(p, "peer") } {
        Ok(p) => f(p),
        Err(_) => fallback,
    }
}

/// Number of peers in the snapshot (0 if `peers` is NULL).
#[no_mangle]
pub unsafe extern "C" fn hb_peers_len(peers: *const hb_peers) -> usize {
    ffi_value!(0, {
        match unsafe { crate::boundary::handle(peers, "peers") } {
            Ok(p) => p.peers.len(),
            Err(_) => 0,
        }
    })
}

/// Peer `index` (0-based), borrowed from the snapshot; NULL when `index >= hb_peers_len(peers)`
/// or `peers` is NULL.
#[no_mangle]
pub unsafe extern "C" fn hb_peers_get(peers: *const hb_peers, index: usize) -> *const hb_peer {
    ffi_value!(std::ptr::null(), {
        match unsafe { crate::boundary::handle(peers, "peers") } {
            Ok(p) => p.peers.get(index).map_or(std::ptr::null(), |p| p as *const hb_peer),
            Err(_) => std::ptr::null(),
        }
    })
}

/// Frees a snapshot and every `hb_peer` in it. `hb_peers_free(NULL)` does nothing.
#[no_mangle]
pub unsafe extern "C" fn hb_peers_free(peers: *mut hb_peers) {
    ffi_value!((), {
        if let Some(mut p) = unsafe { crate::boundary::take(peers) } {
            for peer in &mut p.peers {
                // Borrowed peers of a freed snapshot are detectable too (until reuse).
                unsafe { std::ptr::write_volatile(&mut peer.tag, crate::boundary::DEAD_TAG) };
            }
        }
    })
}

/// The peer's instance id. Borrowed. NULL if `peer` is NULL.
#[no_mangle]
pub unsafe extern "C" fn hb_peer_id(peer: *const hb_peer) -> *const c_char {
    ffi_value!(std::ptr::null(), { with_peer(peer, std::ptr::null(), |p| p.id.as_ptr()) })
}

/// The peer's service. Borrowed. NULL if `peer` is NULL.
#[no_mangle]
pub unsafe extern "C" fn hb_peer_service(peer: *const hb_peer) -> *const c_char {
    ffi_value!(std::ptr::null(), { with_peer(peer, std::ptr::null(), |p| p.service.as_ptr()) })
}

/// Where the peer's beats come from (`udp://ip:port`), or NULL when unknown (etcd). Borrowed.
#[no_mangle]
pub unsafe extern "C" fn hb_peer_addr(peer: *const hb_peer) -> *const c_char {
    ffi_value!(std::ptr::null(), {
        with_peer(peer, std::ptr::null(), |p| p.addr.as_ref().map_or(std::ptr::null(), |a| a.as_ptr()))
    })
}

/// The peer's state when the snapshot was taken.
#[no_mangle]
pub unsafe extern "C" fn hb_peer_state(peer: *const hb_peer) -> hb_state {
    ffi_value!(hb_state::Unknown, { with_peer(peer, hb_state::Unknown, |p| p.info.state.into()) })
}

/// When the peer was last heard from, milliseconds since the Unix epoch.
#[no_mangle]
pub unsafe extern "C" fn hb_peer_last_seen_unix_ms(peer: *const hb_peer) -> u64 {
    ffi_value!(0, { with_peer(peer, 0, |p| p.info.last_seen_unix_ms) })
}

/// The peer's incarnation.
#[no_mangle]
pub unsafe extern "C" fn hb_peer_incarnation(peer: *const hb_peer) -> u32 {
    ffi_value!(0, { with_peer(peer, 0, |p| p.info.incarnation) })
}

/// The registration epoch (etcd); 0 for direct beats.
#[no_mangle]
pub unsafe extern "C" fn hb_peer_epoch(peer: *const hb_peer) -> u64 {
    ffi_value!(0, { with_peer(peer, 0, |p| p.info.epoch) })
}

/// The beat interval the peer announced, in milliseconds (0 when unknown).
#[no_mangle]
pub unsafe extern "C" fn hb_peer_interval_ms(peer: *const hb_peer) -> u32 {
    ffi_value!(0, { with_peer(peer, 0, |p| p.info.interval_ms) })
}

/// The peer's last reported round-trip time in microseconds, or -1 when unknown.
#[no_mangle]
pub unsafe extern "C" fn hb_peer_rtt_us(peer: *const hb_peer) -> i64 {
    ffi_value!(-1, { with_peer(peer, -1, |p| p.info.rtt_us.map_or(-1, i64::from)) })
}

/// The number of labels (sorted by key).
#[no_mangle]
pub unsafe extern "C" fn hb_peer_label_count(peer: *const hb_peer) -> usize {
    ffi_value!(0, { with_peer(peer, 0, |p| p.labels.len()) })
}

/// Label `index` (sorted by key): `*key` and `*value` are borrowed from the snapshot.
/// `HB_STATUS_OUT_OF_RANGE` when `index >= hb_peer_label_count(peer)`.
#[no_mangle]
pub unsafe extern "C" fn hb_peer_label_at(
    peer: *const hb_peer,
    index: usize,
    key: *mut *const c_char,
    value: *mut *const c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let peer = arg!(peer);
        nonnull!(key);
        nonnull!(value);
        crate::event::label_at(&peer.labels, index, key, value)
    })
}
