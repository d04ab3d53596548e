//! `hb_client`: keeps this process registered as alive (direct beats or an etcd lease).

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use hb_core::Client;

use crate::boundary::Handle;
use crate::callback::{self, hb_drop_user_data, hb_event_callback, UserData};
use crate::config::hb_config;
use crate::error::hb_error;
use crate::event::{hb_event, hb_state};
use crate::status::hb_status;

/// A client: beats to a monitor (`udp://`, `tcp://`) or holds an etcd lease (`etcd://`).
///
/// Owned by the caller: `hb_client_new` → `hb_client_start` → … → `hb_client_stop` →
/// `hb_client_free`. All functions may be called from any thread concurrently.
#[cfg_attr(all(), repr(C))] // repr(C): `tag` first (boundary.rs); cfg_attr: opaque to cbindgen
pub struct hb_client {
    tag: u64,
    // Arc: the engine's tasks may still hold the client while C frees its handle.
    inner: Arc<Client>,
}
handle_tag!(hb_client, "hb_client", 0x6862_636c_6965_6e01);

/// Creates a client from `config` (copied; `config` may be freed afterwards). Does not
/// start it. On success `*out` receives a client owned by the caller (`hb_client_free`).
///
/// Errors: `HB_STATUS_NULL_ARGUMENT`, `HB_STATUS_CONFIG` (missing or invalid option).
#[no_mangle]
pub unsafe extern "C" fn hb_client_new(
    config: *const hb_config,
    out: *mut *mut hb_client,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let config = arg!(config);
        nonnull!(out);
        let client = Client::new(&config.snapshot())?;
        let handle = Box::new(hb_client { tag: <hb_client as Handle>::TAG, inner: Arc::new(client) });
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Starts beating. With etcd, waits (bounded by `connect_timeout`) for the first
/// registration, so an unreachable etcd or refused credentials are reported here. A stop
/// that comes while it runs (also `hb_client_stop` or `hb_client_free` from the client's
/// own callback on its first event, which can come before this returns) wins: the start
/// still returns `HB_STATUS_OK` and the client ends stopped.
///
/// Errors: `HB_STATUS_STOPPED` (stopped handles cannot restart: create a new one),
/// `HB_STATUS_INVALID_STATE` (already started), `HB_STATUS_CONNECT`,
/// `HB_STATUS_PERMISSION_DENIED`, `HB_STATUS_IO`, `HB_STATUS_FORKED`.
#[no_mangle]
pub unsafe extern "C" fn hb_client_start(client: *const hb_client, err: *mut *mut hb_error) -> hb_status {
    ffi_try!(err, { crate::engine::start(&arg!(client).inner) })
}

/// Says goodbye (LEAVE / deregister) and stops; returns within `timeout_ms` even if
/// nothing answers (0: the configured `stop_timeout`, default 2000). Idempotent.
///
/// After it returns no callback runs any more and `drop_user_data` has been called —
/// except when called from this client's own callback: then it does not wait for the
/// delivery thread; the current call of the callback finishes, no further call is made
/// (queued events are dropped and counted), then `drop_user_data` runs on the delivery
/// thread. Never deadlocks.
#[no_mangle]
pub unsafe extern "C" fn hb_client_stop(
    client: *const hb_client,
    timeout_ms: u32,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let client = arg!(client);
        let timeout = match timeout_ms {
            0 => client.inner.config().stop_timeout,
            ms => Duration::from_millis(ms.into()),
        };
        Ok(client.inner.stop(timeout)?)
    })
}

/// Stops the client (as `hb_client_stop(client, 0, NULL)`) and frees it.
/// `hb_client_free(NULL)` does nothing. The pointer is invalid afterwards.
///
/// From inside this client's own callback: allowed; the release of the callback is
/// deferred — the client stops and is freed at once (never touch the pointer again, also
/// not in the rest of this call of the callback), no further call is made, then
/// `drop_user_data` runs on the delivery thread.
#[no_mangle]
pub unsafe extern "C" fn hb_client_free(client: *mut hb_client) {
    ffi_value!((), {
        if let Some(client) = unsafe { crate::boundary::take(client) } {
            let _ = client.inner.stop(client.inner.config().stop_timeout);
        }
    })
}

/// The client's own health: `HB_STATE_UNKNOWN` before start, then `HB_STATE_HEALTHY`,
/// `HB_STATE_DEGRADED` or `HB_STATE_LOST`, and `HB_STATE_STOPPED` after stop.
#[no_mangle]
pub unsafe extern "C" fn hb_client_state(
    client: *const hb_client,
    out: *mut hb_state,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let client = arg!(client);
        nonnull!(out);
        let state = client.inner.state()?;
        unsafe { out.write(state.into()) };
        Ok(())
    })
}

/// The fencing token `(lease_id, epoch)` to pass to downstream compare-and-set writes
/// (`lease_id` is 0 for direct beats; `epoch` grows with every re-registration).
///
/// Errors: `HB_STATUS_NOT_HOLDER` (not registered, or no longer sure to be), `HB_STATUS_STOPPED`.
#[no_mangle]
pub unsafe extern "C" fn hb_client_fencing_token(
    client: *const hb_client,
    lease_id: *mut i64,
    epoch: *mut u64,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let client = arg!(client);
        nonnull!(lease_id);
        nonnull!(epoch);
        let token = client.inner.fencing_token()?;
        unsafe {
            lease_id.write(token.lease_id);
            epoch.write(token.epoch);
        }
        Ok(())
    })
}

/// `HB_STATUS_OK` while this process may still act as the holder; `HB_STATUS_NOT_HOLDER`
/// once the conservative remaining time is zero. Asks nobody: cheap enough for every write.
#[no_mangle]
pub unsafe extern "C" fn hb_client_check(client: *const hb_client, err: *mut *mut hb_error) -> hb_status {
    ffi_try!(err, {
        let client = arg!(client);
        Ok(client.inner.check()?)
    })
}

/// The conservative time, in milliseconds, this process may still act as the holder (0: not).
#[no_mangle]
pub unsafe extern "C" fn hb_client_remaining_ms(
    client: *const hb_client,
    out: *mut u64,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let client = arg!(client);
        nonnull!(out);
        let ms = u64::try_from(client.inner.remaining()?.as_millis()).unwrap_or(u64::MAX);
        unsafe { out.write(ms) };
        Ok(())
    })
}

/// This process start's incarnation (sent in every beat).
#[no_mangle]
pub unsafe extern "C" fn hb_client_incarnation(
    client: *const hb_client,
    out: *mut u32,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let client = arg!(client);
        nonnull!(out);
        let incarnation = client.inner.incarnation()?;
        unsafe { out.write(incarnation) };
        Ok(())
    })
}

/// Delivers the client's own health events to `callback(user_data, event)` on a delivery
/// thread of its own. One callback per handle; polling is then unavailable.
///
/// `drop_user_data` (may be NULL) is called exactly once with `user_data`, after the last
/// callback: during `hb_client_stop`/`hb_client_free`, or before this function returns if
/// it fails (`HB_STATUS_NULL_ARGUMENT`, `HB_STATUS_INVALID_STATE` if a callback is already
/// set, `HB_STATUS_STOPPED`).
#[no_mangle]
pub unsafe extern "C" fn hb_client_set_callback(
    client: *const hb_client,
    callback: hb_event_callback,
    user_data: *mut c_void,
    drop_user_data: hb_drop_user_data,
    err: *mut *mut hb_error,
) -> hb_status {
    let user = UserData::new(user_data, drop_user_data);
    ffi_try!(err, {
        let client = arg!(client);
        callback::set_callback(&*client.inner, callback, user)
    })
}

/// Waits up to `timeout_ms` (`HB_WAIT_FOREVER`: no limit; 0: just look) for the client's
/// next event. On success `*out` receives an event owned by the caller (`hb_event_free`).
///
/// `HB_STATUS_TIMEOUT` when no event came in time: the one status other than
/// `HB_STATUS_OK` that is not a failure of the call — neither `*out` nor `*err` is written
/// (no `hb_error` to free), poll again. Failures (`*err` written when not NULL):
/// `HB_STATUS_STOPPED` once the client is stopped and every event was taken (the end of
/// the stream); `HB_STATUS_INVALID_STATE` when a callback is set; `HB_STATUS_FORKED` in a
/// forked child.
#[no_mangle]
pub unsafe extern "C" fn hb_client_next_event(
    client: *const hb_client,
    timeout_ms: u32,
    out: *mut *mut hb_event,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try_status!(err, {
        let client = arg!(client);
        nonnull!(out);
        callback::next_event(&*client.inner, timeout_ms, out)
    })
}
