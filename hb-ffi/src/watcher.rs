//! `hb_watcher`: watches an etcd prefix — the live set of registered instances.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use hb_core::Watcher;

use crate::boundary::Handle;
use crate::callback::{self, hb_drop_user_data, hb_event_callback, UserData};
use crate::config::hb_config;
use crate::error::hb_error;
use crate::event::hb_event;
use crate::peers::hb_peers;
use crate::status::hb_status;

/// A watcher: lists and watches the registrations under the config's `etcd://…/prefix`.
///
/// Owned by the caller: `hb_watcher_new` → `hb_watcher_start` → … → `hb_watcher_free`.
/// All functions may be called from any thread concurrently.
#[cfg_attr(all(), repr(C))] // repr(C): `tag` first (boundary.rs); cfg_attr: opaque to cbindgen
pub struct hb_watcher {
    tag: u64,
    // Arc: the engine's tasks may still hold the watcher while C frees its handle.
    inner: Arc<Watcher>,
}
handle_tag!(hb_watcher, "hb_watcher", 0x6862_7761_7463_6801);

/// Creates a watcher from `config` (copied; its endpoint is `etcd://host:port/prefix`). Does not
/// start it. On success `*out` receives a watcher owned by the caller (`hb_watcher_free`).
#[no_mangle]
pub unsafe extern "C" fn hb_watcher_new(
    config: *const hb_config,
    out: *mut *mut hb_watcher,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let config = arg!(config);
        nonnull!(out);
        let watcher = Watcher::new(&config.snapshot())?;
        let handle = Box::new(hb_watcher { tag: <hb_watcher as Handle>::TAG, inner: Arc::new(watcher) });
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Lists the prefix, then watches from that revision.
///
/// Errors: `HB_STATUS_CONNECT`, `HB_STATUS_PERMISSION_DENIED`, `HB_STATUS_STOPPED`,
/// `HB_STATUS_INVALID_STATE` (already started), `HB_STATUS_FORKED`.
#[no_mangle]
pub unsafe extern "C" fn hb_watcher_start(watcher: *const hb_watcher, err: *mut *mut hb_error) -> hb_status {
    ffi_try!(err, { crate::engine::start(&arg!(watcher).inner) })
}

/// Stops watching. Idempotent. After it returns no callback runs any more and
/// `drop_user_data` has been called — except when called from this watcher's own
/// callback: then it does not wait for the delivery thread; the current call of the
/// callback finishes, no further call is made (queued events are dropped and counted),
/// then `drop_user_data` runs on the delivery thread. Never deadlocks.
#[no_mangle]
pub unsafe extern "C" fn hb_watcher_stop(watcher: *const hb_watcher, err: *mut *mut hb_error) -> hb_status {
    ffi_try!(err, {
        let watcher = arg!(watcher);
        Ok(watcher.inner.stop()?)
    })
}

/// Stops the watcher and frees it. `hb_watcher_free(NULL)` does nothing. From inside the
/// watcher's own callback it is allowed: the handle is freed at once (never touch the
/// pointer again) and the callback's release is deferred, as for `hb_watcher_stop`.
#[no_mangle]
pub unsafe extern "C" fn hb_watcher_free(watcher: *mut hb_watcher) {
    ffi_value!((), {
        if let Some(watcher) = unsafe { crate::boundary::take(watcher) } {
            let _ = watcher.inner.stop();
        }
    })
}

/// Where the HTTP API listens (`http_addr`), as `ip:port` (the bound port when 0 was asked
/// for). On success `*out` receives a string owned by the caller (`hb_string_free`), or NULL
/// when the watcher serves no HTTP API (no `http_addr`, not started, or stopped).
/// Errors: `HB_STATUS_FORKED`.
#[no_mangle]
pub unsafe extern "C" fn hb_watcher_http_addr(
    watcher: *const hb_watcher,
    out: *mut *mut c_char,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let watcher = arg!(watcher);
        nonnull!(out);
        unsafe { out.write(crate::event::optional_c_string(watcher.inner.http_addr()?.map(|a| a.to_string()))) };
        Ok(())
    })
}

/// A snapshot of every registration the watcher knows. On success `*out` receives a snapshot owned
/// by the caller (`hb_peers_free`). Errors: `HB_STATUS_STOPPED`.
#[no_mangle]
pub unsafe extern "C" fn hb_watcher_peers(
    watcher: *const hb_watcher,
    out: *mut *mut hb_peers,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let watcher = arg!(watcher);
        nonnull!(out);
        let peers = watcher.inner.peers()?;
        unsafe { out.write(crate::peers::snapshot(peers)) };
        Ok(())
    })
}

/// Delivers registration events to `callback(user_data, event)` on the watcher's delivery thread.
/// Same contract as `hb_client_set_callback` (`drop_user_data` exactly once, also on failure).
#[no_mangle]
pub unsafe extern "C" fn hb_watcher_set_callback(
    watcher: *const hb_watcher,
    callback: hb_event_callback,
    user_data: *mut c_void,
    drop_user_data: hb_drop_user_data,
    err: *mut *mut hb_error,
) -> hb_status {
    let user = UserData::new(user_data, drop_user_data);
    ffi_try!(err, {
        let watcher = arg!(watcher);
        callback::set_callback(&*watcher.inner, callback, user)
    })
}

/// Polls the next registration event. Same contract as `hb_client_next_event`
/// (`HB_STATUS_TIMEOUT`, with neither `*out` nor `*err` written, when none came within
/// `timeout_ms`; `HB_STATUS_STOPPED` at the end of the stream after stop).
#[no_mangle]
pub unsafe extern "C" fn hb_watcher_next_event(
    watcher: *const hb_watcher,
    timeout_ms: u32,
    out: *mut *mut hb_event,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try_status!(err, {
        let watcher = arg!(watcher);
        nonnull!(out);
        callback::next_event(&*watcher.inner, timeout_ms, out)
    })
}
