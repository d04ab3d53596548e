//! `hb_event` and the `hb_state` / `hb_reason` enums that mirror hb-core's.

use std::ffi::{c_char, CStr, CString};

use hb_core::{Event, Reason, State};

use crate::boundary::Handle;
use crate::error::hb_error;
use crate::status::hb_status;

/// Where a peer, a registration or a client stands (mirrors hb-core's `State`).
/// Explicit values, never reused; new states may be added at the end.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum hb_state {
    /// Not known yet (the `from` of a first event).
    Unknown = 0,
    /// Monitor: the peer beats.
    Alive = 1,
    /// Monitor: the peer is late; not yet declared dead.
    Suspect = 2,
    /// Monitor: the detector convicted the peer.
    Dead = 3,
    /// Monitor: the peer said goodbye.
    Left = 4,
    /// Client: beats are acknowledged, the registration is held.
    Healthy = 5,
    /// Client: acknowledgements are late; still the holder.
    Degraded = 6,
    /// Client: the registration may be gone; not the holder.
    Lost = 7,
    /// Watcher: a registration appeared.
    Joined = 8,
    /// Watcher: a registration's value changed.
    Updated = 9,
    /// Watcher: a registration vanished by TTL.
    Expired = 10,
    /// A client registered again with a new lease (epoch increased).
    Reregistered = 11,
    /// The handle was stopped.
    Stopped = 12,
    /// Watcher: a key under the prefix whose value is not a registration.
    Invalid = 13,
    /// Election: we lead (a new term, with a new token).
    Elected = 14,
    /// Election: another candidate leads now, as observed.
    LeaderChanged = 15,
}

/// Why a transition happened (mirrors hb-core's `Reason`). Explicit values, never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum hb_reason {
    /// First heard / key appeared / first registration.
    Registered = 0,
    /// Heard again after being suspected or declared dead.
    Recovered = 1,
    /// The detector convicted the peer: nothing heard within its bound.
    Timeout = 2,
    /// A graceful goodbye.
    Left = 3,
    /// A higher incarnation: the process restarted.
    Restarted = 4,
    /// The key or lease vanished by TTL.
    LeaseExpired = 5,
    /// etcd answered that our lease does not exist.
    LeaseNotFound = 6,
    /// Our own clock says the lease must have expired.
    LeaseDeadline = 7,
    /// A stopped client removed its registration.
    Deregistered = 8,
    /// A registration's value changed.
    Updated = 9,
    /// A beat went unacknowledged within the retransmission timeout.
    AckTimeout = 10,
    /// A beat or keepalive was acknowledged again.
    Acked = 11,
    /// The transport failed.
    ConnectFailed = 12,
    /// A keepalive to etcd failed.
    KeepaliveFailed = 13,
    /// The monitor rejected our beat.
    Rejected = 14,
    /// Held in suspect by flap damping.
    Flapping = 15,
    /// The handle was stopped.
    Stopped = 16,
    /// Two processes beat under one id; the tracked one keeps it.
    Conflict = 17,
    /// Forgotten to make room in a full monitor table; reported dead.
    Evicted = 18,
    /// A graceful stop could not write the `leaving` mark: watchers see `expired`.
    LeaveFailed = 19,
    /// Our own key was deleted (by hand, or its lease revoked) while we kept it alive.
    KeyDeleted = 20,
    /// A value under the prefix is not a registration's JSON.
    MalformedValue = 21,
    /// Election: the leader stepped down (resign).
    Resigned = 22,
}

impl From<State> for hb_state {
    fn from(s: State) -> hb_state {
        match s {
            State::Unknown => hb_state::Unknown,
            State::Alive => hb_state::Alive,
            State::Suspect => hb_state::Suspect,
            State::Dead => hb_state::Dead,
            State::Left => hb_state::Left,
            State::Healthy => hb_state::Healthy,
            State::Degraded => hb_state::Degraded,
            State::Lost => hb_state::Lost,
            State::Joined => hb_state::Joined,
            State::Updated => hb_state::Updated,
            State::Expired => hb_state::Expired,
            State::Reregistered => hb_state::Reregistered,
            State::Stopped => hb_state::Stopped,
            State::Invalid => hb_state::Invalid,
            State::Elected => hb_state::Elected,
            State::LeaderChanged => hb_state::LeaderChanged,
        }
    }
}

impl From<Reason> for hb_reason {
    fn from(r: Reason) -> hb_reason {
        match r {
            Reason::Registered => hb_reason::Registered,
            Reason::Recovered => hb_reason::Recovered,
            Reason::Timeout => hb_reason::Timeout,
            Reason::Left => hb_reason::Left,
            Reason::Restarted => hb_reason::Restarted,
            Reason::LeaseExpired => hb_reason::LeaseExpired,
            Reason::LeaseNotFound => hb_reason::LeaseNotFound,
            Reason::LeaseDeadline => hb_reason::LeaseDeadline,
            Reason::Deregistered => hb_reason::Deregistered,
            Reason::Updated => hb_reason::Updated,
            Reason::AckTimeout => hb_reason::AckTimeout,
            Reason::Acked => hb_reason::Acked,
            Reason::ConnectFailed => hb_reason::ConnectFailed,
            Reason::KeepaliveFailed => hb_reason::KeepaliveFailed,
            Reason::Rejected => hb_reason::Rejected,
            Reason::Flapping => hb_reason::Flapping,
            Reason::Stopped => hb_reason::Stopped,
            Reason::Conflict => hb_reason::Conflict,
            Reason::Evicted => hb_reason::Evicted,
            Reason::LeaveFailed => hb_reason::LeaveFailed,
            Reason::KeyDeleted => hb_reason::KeyDeleted,
            Reason::MalformedValue => hb_reason::MalformedValue,
            Reason::Resigned => hb_reason::Resigned,
        }
    }
}

/// Static NUL-terminated copies of hb-core's names, made once.
fn static_name(name: &'static str) -> *const c_char {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<&'static str, &'static CStr>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    names.entry(name).or_insert_with(|| Box::leak(CString::new(name).unwrap_or_default().into_boxed_c_str())).as_ptr()
}

/// The name of a state (`"alive"`, `"left"`, …, the same text as every binding and the
/// CLI), or `"unknown"` for a value this library does not know. `state` is an `hb_state`
/// value. Static: never free it.
#[no_mangle]
pub extern "C" fn hb_state_str(state: u32) -> *const c_char {
    ffi_value!(c"unknown".as_ptr(), {
        match State::ALL.iter().find(|s| hb_state::from(**s) as u32 == state) {
            Some(s) => static_name(s.as_str()),
            None => c"unknown".as_ptr(),
        }
    })
}

/// The name of a reason (`"registered"`, `"timeout"`, …), or `"unknown"` for a value this
/// library does not know. `reason` is an `hb_reason` value. Static: never free it.
#[no_mangle]
pub extern "C" fn hb_reason_str(reason: u32) -> *const c_char {
    ffi_value!(c"unknown".as_ptr(), {
        match Reason::ALL.iter().find(|r| hb_reason::from(**r) as u32 == reason) {
            Some(r) => static_name(r.as_str()),
            None => c"unknown".as_ptr(),
        }
    })
}

pub(crate) fn c_string(s: &str) -> CString {
    // Names are validated without NUL, but never trust that at the boundary.
    CString::new(s.replace('\0', "\u{fffd}")).unwrap_or_default()
}

/// An owned C string for the caller to free (`hb_string_free`), or NULL for `None`.
pub(crate) fn optional_c_string(s: Option<String>) -> *mut c_char {
    s.map_or(std::ptr::null_mut(), |s| c_string(&s).into_raw())
}

pub(crate) fn c_labels(labels: &std::collections::BTreeMap<String, String>) -> Vec<(CString, CString)> {
    labels.iter().map(|(k, v)| (c_string(k), c_string(v))).collect()
}

/// One transition of a peer, a registration or a client.
///
/// In a callback the event is borrowed for the duration of the call only (copy what you
/// keep). From `hb_*_next_event` it is owned by the caller: free it with `hb_event_free`.
/// Strings returned by the accessors are borrowed from the event and valid until it is
/// freed (or the callback returns). Accessors may be called from any thread.
#[cfg_attr(all(), repr(C))] // repr(C): `tag` first (boundary.rs); cfg_attr: opaque to cbindgen
pub struct hb_event {
    tag: u64,
    event: Event,
    peer: CString,
    service: CString,
    labels: Vec<(CString, CString)>,
    traceparent: Option<CString>,
}
handle_tag!(hb_event, "hb_event", 0x6862_6576_656e_7401);

impl hb_event {
    pub(crate) fn new(event: &Event) -> hb_event {
        hb_event {
            tag: <hb_event as Handle>::TAG,
            peer: c_string(&event.peer),
            service: c_string(&event.service),
            labels: c_labels(&event.labels),
            traceparent: event.traceparent.as_deref().map(c_string),
            event: event.clone(),
        }
    }
}

fn with_event<T>(ev: *const hb_event, fallback: T, f: impl FnOnce(&hb_event) -> T) -> T {
    // SAFETY: NULL- and tag-checked by `handle`; borrowed per the header contract.
    match unsafe { crate::boundary::handle(ev, "event") } {
        Ok(e) => f(e),
        Err(_) => fallback,
    }
}

/// Frees an event from `hb_*_next_event`. `hb_event_free(NULL)` does nothing. Never call
/// it on the event passed to a callback (that one is borrowed).
#[no_mangle]
pub unsafe extern "C" fn hb_event_free(event: *mut hb_event) {
    ffi_value!((), { drop(unsafe { crate::boundary::take(event) }) })
}

/// The peer's instance id (for a client's own health events: this client's id).
/// Borrowed from the event. NULL if `event` is NULL.
#[no_mangle]
pub unsafe extern "C" fn hb_event_peer(event: *const hb_event) -> *const c_char {
    ffi_value!(std::ptr::null(), { with_event(event, std::ptr::null(), |e| e.peer.as_ptr()) })
}

/// The peer's service. Borrowed from the event. NULL if `event` is NULL.
#[no_mangle]
pub unsafe extern "C" fn hb_event_service(event: *const hb_event) -> *const c_char {
    ffi_value!(std::ptr::null(), { with_event(event, std::ptr::null(), |e| e.service.as_ptr()) })
}

/// The state before the transition (`HB_STATE_UNKNOWN` if `event` is NULL).
#[no_mangle]
pub unsafe extern "C" fn hb_event_from(event: *const hb_event) -> hb_state {
    ffi_value!(hb_state::Unknown, { with_event(event, hb_state::Unknown, |e| e.event.from.into()) })
}

/// The state after the transition (`HB_STATE_UNKNOWN` if `event` is NULL).
#[no_mangle]
pub unsafe extern "C" fn hb_event_to(event: *const hb_event) -> hb_state {
    ffi_value!(hb_state::Unknown, { with_event(event, hb_state::Unknown, |e| e.event.to.into()) })
}

/// Why the transition happened (`HB_REASON_REGISTERED` if `event` is NULL).
#[no_mangle]
pub unsafe extern "C" fn hb_event_reason(event: *const hb_event) -> hb_reason {
    ffi_value!(hb_reason::Registered, { with_event(event, hb_reason::Registered, |e| e.event.reason.into()) })
}

/// Wall-clock time of the transition, milliseconds since the Unix epoch (0 if `event` is NULL).
#[no_mangle]
pub unsafe extern "C" fn hb_event_at_unix_ms(event: *const hb_event) -> u64 {
    ffi_value!(0, { with_event(event, 0, |e| e.event.at_unix_ms) })
}

/// The peer's incarnation (changes when its process restarts).
#[no_mangle]
pub unsafe extern "C" fn hb_event_incarnation(event: *const hb_event) -> u32 {
    ffi_value!(0, { with_event(event, 0, |e| e.event.incarnation) })
}

/// The registration epoch (etcd); 0 where it does not apply.
#[no_mangle]
pub unsafe extern "C" fn hb_event_epoch(event: *const hb_event) -> u64 {
    ffi_value!(0, { with_event(event, 0, |e| e.event.epoch) })
}

/// The number of labels (sorted by key; 0 if `event` is NULL).
#[no_mangle]
pub unsafe extern "C" fn hb_event_label_count(event: *const hb_event) -> usize {
    ffi_value!(0, { with_event(event, 0, |e| e.labels.len()) })
}

/// Label `index` (0-based, sorted by key): `*key` and `*value` are borrowed from the
/// event. `HB_STATUS_OUT_OF_RANGE` when `index >= hb_event_label_count(event)`.
#[no_mangle]
pub unsafe extern "C" fn hb_event_label_at(
    event: *const hb_event,
    index: usize,
    key: *mut *const c_char,
    value: *mut *const c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let event = arg!(event);
        nonnull!(key);
        nonnull!(value);
        label_at(&event.labels, index, key, value)
    })
}

pub(crate) fn label_at(
    labels: &[(CString, CString)],
    index: usize,
    key: *mut *const c_char,
    value: *mut *const c_char,
) -> crate::boundary::FfiResult<()> {
    let (k, v) = labels.get(index).ok_or_else(|| {
        crate::boundary::FfiError::new(
            hb_status::OutOfRange,
            format!("label index {index} is out of range (there are {} labels)", labels.len()),
        )
    })?;
    // SAFETY: both NULL-checked by the caller; writable per the header contract.
    unsafe {
        key.write(k.as_ptr());
        value.write(v.as_ptr());
    }
    Ok(())
}

/// The W3C traceparent carried by the peer's last beat, or NULL if none. Borrowed.
#[no_mangle]
pub unsafe extern "C" fn hb_event_traceparent(event: *const hb_event) -> *const c_char {
    ffi_value!(std::ptr::null(), {
        with_event(event, std::ptr::null(), |e| e.traceparent.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()))
    })
}
