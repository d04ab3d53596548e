//! `hb_monitor`: listens for beats and reports peers' transitions.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use hb_core::Monitor;

use crate::boundary::{FfiError, Handle};
use crate::callback::{self, hb_drop_user_data, hb_event_callback, UserData};
use crate::config::hb_config;
use crate::error::hb_error;
use crate::event::{c_string, hb_event};
use crate::peers::hb_peers;
use crate::status::hb_status;

/// A monitor: listens on the config's endpoint list (`udp://127.0.0.1:0,tcp://…`) and
/// tracks every peer that beats to it.
///
/// Owned by the caller: `hb_monitor_new` → `hb_monitor_start` → … → `hb_monitor_free`.
/// All functions may be called from any thread concurrently.
#[cfg_attr(all(), repr(C))] // repr(C): `tag` first (boundary.rs); cfg_attr: opaque to cbindgen
pub struct hb_monitor {
    tag: u64,
    // Arc: the engine's tasks may still hold the monitor while C frees its handle.
    pub(crate) inner: Arc<Monitor>,
}
handle_tag!(hb_monitor, "hb_monitor", 0x6862_6d6f_6e69_7401);

/// Creates a monitor from `config` (copied; its endpoint is the listen list). Does not
/// start it. On success `*out` receives a monitor owned by the caller (`hb_monitor_free`).
#[no_mangle]
pub unsafe extern "C" fn hb_monitor_new(
    config: *const hb_config,
    out: *mut *mut hb_monitor,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let config = arg!(config);
        nonnull!(out);
        let monitor = Monitor::new(&config.snapshot())?;
        let handle = Box::new(hb_monitor { tag: <hb_monitor as Handle>::TAG, inner: Arc::new(monitor) });
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Binds every listen endpoint and starts tracking.
///
/// Errors: `HB_STATUS_IO` (e.g. address in use), `HB_STATUS_STOPPED`,
/// `HB_STATUS_INVALID_STATE` (already started), `HB_STATUS_FORKED`.
#[no_mangle]
pub unsafe extern "C" fn hb_monitor_start(monitor: *const hb_monitor, err: *mut *mut hb_error) -> hb_status {
    ffi_try!(err, { crate::engine::start(&arg!(monitor).inner) })
}

/// Stops listening. Idempotent. After it returns no callback runs any more and
/// `drop_user_data` has been called — except when called from this monitor's own
/// callback: then it does not wait for the delivery thread; the current call of the
/// callback finishes, no further call is made (queued events are dropped and counted),
/// then `drop_user_data` runs on the delivery thread. Never deadlocks.
#[no_mangle]
pub unsafe extern "C" fn hb_monitor_stop(monitor: *const hb_monitor, err: *mut *mut hb_error) -> hb_status {
    ffi_try!(err, {
        let monitor = arg!(monitor);
        Ok(monitor.inner.stop()?)
    })
}

/// Stops the monitor and frees it. `hb_monitor_free(NULL)` does nothing. From inside the
/// monitor's own callback it is allowed: the handle is freed at once (never touch the
/// pointer again) and the callback's release is deferred, as for `hb_monitor_stop`.
#[no_mangle]
pub unsafe extern "C" fn hb_monitor_free(monitor: *mut hb_monitor) {
    ffi_value!((), {
        if let Some(monitor) = unsafe { crate::boundary::take(monitor) } {
            let _ = monitor.inner.stop();
        }
    })
}

/// The number of bound listen addresses (0 before start).
#[no_mangle]
pub unsafe extern "C" fn hb_monitor_local_addr_count(
    monitor: *const hb_monitor,
    out: *mut usize,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let monitor = arg!(monitor);
        nonnull!(out);
        let count = monitor.inner.local_addrs()?.len();
        unsafe { out.write(count) };
        Ok(())
    })
}

/// The `index`-th bound address as `udp://ip:port` or `tcp://ip:port`, in the order of the
/// listen list (useful with port 0). On success `*out` receives a string owned by the
/// caller: free it with `hb_string_free`.
///
/// Errors: `HB_STATUS_OUT_OF_RANGE` (index past the end, or not started), `HB_STATUS_STOPPED`.
#[no_mangle]
pub unsafe extern "C" fn hb_monitor_local_addr(
    monitor: *const hb_monitor,
    index: usize,
    out: *mut *mut c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let monitor = arg!(monitor);
        nonnull!(out);
        let addrs = monitor.inner.local_addrs()?;
        let (name, addr) = addrs.get(index).ok_or_else(|| {
            FfiError::new(
                hb_status::OutOfRange,
                format!(
                    "local address index {index} is out of range (the monitor has {} bound addresses)",
                    addrs.len()
                ),
            )
        })?;
        // hb-core gives (scheme or url, address); always hand out a full url.
        let text = if name.contains("://") { name.clone() } else { format!("{name}://{addr}") };
        unsafe { out.write(c_string(&text).into_raw()) };
        Ok(())
    })
}

/// Where the HTTP API listens (`http_addr`), as `ip:port` (the bound port when 0 was asked
/// for). On success `*out` receives a string owned by the caller (`hb_string_free`), or NULL
/// when the monitor serves no HTTP API (no `http_addr`, not started, or stopped).
/// Errors: `HB_STATUS_FORKED`.
#[no_mangle]
pub unsafe extern "C" fn hb_monitor_http_addr(
    monitor: *const hb_monitor,
    out: *mut *mut c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let monitor = arg!(monitor);
        nonnull!(out);
        unsafe { out.write(crate::event::optional_c_string(monitor.inner.http_addr()?.map(|a| a.to_string()))) };
        Ok(())
    })
}

/// A snapshot of every peer the monitor knows. On success `*out` receives a snapshot owned
/// by the caller (`hb_peers_free`). Errors: `HB_STATUS_STOPPED`.
#[no_mangle]
pub unsafe extern "C" fn hb_monitor_peers(
    monitor: *const hb_monitor,
    out: *mut *mut hb_peers,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let monitor = arg!(monitor);
        nonnull!(out);
        let peers = monitor.inner.peers()?;
        unsafe { out.write(crate::peers::snapshot(peers)) };
        Ok(())
    })
}

/// Delivers peer events to `callback(user_data, event)` on the monitor's delivery thread.
/// Same contract as `hb_client_set_callback` (`drop_user_data` exactly once, also on failure).
#[no_mangle]
pub unsafe extern "C" fn hb_monitor_set_callback(
    monitor: *const hb_monitor,
    callback: hb_event_callback,
    user_data: *mut c_void,
    drop_user_data: hb_drop_user_data,
    err: *mut *mut hb_error,
) -> hb_status {
    let user = UserData::new(user_data, drop_user_data);
    ffi_try!(err, {
        let monitor = arg!(monitor);
        callback::set_callback(&*monitor.inner, callback, user)
    })
}

/// Polls the next peer event. Same contract as `hb_client_next_event`
/// (`HB_STATUS_TIMEOUT`, with neither `*out` nor `*err` written, when none came within
/// `timeout_ms`; `HB_STATUS_STOPPED` at the end of the stream after stop).
#[no_mangle]
pub unsafe extern "C" fn hb_monitor_next_event(
    monitor: *const hb_monitor,
    timeout_ms: u32,
    out: *mut *mut hb_event,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try_status!(err, {
        let monitor = arg!(monitor);
        nonnull!(out);
        callback::next_event(&*monitor.inner, timeout_ms, out)
    })
}
