//! `hb_election`: leader election over etcd, fenced by the client's lease engine
//! (docs/election.md). Conversions only: every rule is hb-core's `Election`.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use hb_core::Election;

use crate::boundary::Handle;
use crate::callback::{self, hb_drop_user_data, hb_event_callback, UserData};
use crate::config::hb_config;
use crate::error::hb_error;
use crate::event::hb_event;
use crate::status::hb_status;

/// A candidate in one election on an `etcd://host:port[,host:port]/prefix` endpoint.
///
/// Owned by the caller: `hb_election_new` → `hb_election_campaign` → … →
/// `hb_election_free`. All functions may be called from any thread concurrently.
#[cfg_attr(all(), repr(C))] // repr(C): `tag` first (boundary.rs); cfg_attr: opaque to cbindgen
pub struct hb_election {
    tag: u64,
    inner: Arc<Election>,
}
handle_tag!(hb_election, "hb_election", 0x6862_656c_6563_7401);

/// Creates a candidate in election `name` with the `value_len` bytes at `value` (NULL
/// when `value_len` is 0), from `config` (copied; its endpoint must be one `etcd://`). Does
/// not campaign yet. On success `*out` receives an election owned by the caller.
///
/// Errors: `HB_STATUS_NULL_ARGUMENT`, `HB_STATUS_INVALID_UTF8`, `HB_STATUS_CONFIG` (the
/// endpoint, the name, another option).
#[no_mangle]
pub unsafe extern "C" fn hb_election_new(
    config: *const hb_config,
    name: *const c_char,
    value: *const u8,
    value_len: usize,
    out: *mut *mut hb_election,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let config = arg!(config);
        let name = str_arg!(name);
        nonnull!(out);
        let value: &[u8] = if value_len == 0 {
            &[]
        } else {
            nonnull!(value);
            // SAFETY: the caller passes `value_len` readable bytes at `value`.
            unsafe { std::slice::from_raw_parts(value, value_len) }
        };
        let election = Election::new(&config.snapshot(), name, value)?;
        let handle = Box::new(hb_election { tag: <hb_election as Handle>::TAG, inner: Arc::new(election) });
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Campaigns (becoming a candidate if not one yet) and waits up to `timeout_ms`
/// (`HB_WAIT_FOREVER`: no limit) to lead; on success writes the term's fencing token.
///
/// Errors: `HB_STATUS_TIMEOUT` (still a candidate: `elected` comes later; unlike a
/// `next_event` timeout, `*err` is written), `HB_STATUS_CONNECT`, `HB_STATUS_PERMISSION_DENIED`,
/// `HB_STATUS_NOT_HOLDER` (the candidacy ended: a loss without recampaign),
/// `HB_STATUS_STOPPED`, `HB_STATUS_FORKED`.
#[no_mangle]
pub unsafe extern "C" fn hb_election_campaign(
    election: *const hb_election,
    timeout_ms: u32,
    revision: *mut i64,
    lease_id: *mut i64,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let election = arg!(election);
        nonnull!(revision);
        nonnull!(lease_id);
        let token = election.inner.campaign(wait(timeout_ms))?;
        unsafe { write_token(Some(token), revision, lease_id) };
        Ok(())
    })
}

/// Steps down and withdraws the candidacy within `timeout_ms` (0: the configured
/// `stop_timeout`): `check` fails from here, and the next candidate leads without waiting
/// for the TTL. Idempotent.
#[no_mangle]
pub unsafe extern "C" fn hb_election_resign(
    election: *const hb_election,
    timeout_ms: u32,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let election = arg!(election);
        Ok(election.inner.resign(stop_timeout(&election.inner, timeout_ms))?)
    })
}

/// Whether a lost term is followed by a new campaign (non-zero, the default) or withdraws.
#[no_mangle]
pub unsafe extern "C" fn hb_election_set_recampaign(
    election: *const hb_election,
    on: i32,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        arg!(election).inner.set_recampaign(on != 0);
        Ok(())
    })
}

/// `HB_STATUS_OK` while we lead and our lease is valid; `HB_STATUS_NOT_HOLDER` otherwise,
/// `HB_STATUS_STOPPED` once stopped.
/// Asks nobody: cheap enough for every write.
#[no_mangle]
pub unsafe extern "C" fn hb_election_check(election: *const hb_election, err: *mut *mut hb_error) -> hb_status {
    ffi_try!(err, { Ok(arg!(election).inner.check()?) })
}

/// How long, in milliseconds, we may still act as the leader (0: not the leader).
#[no_mangle]
pub unsafe extern "C" fn hb_election_remaining_ms(
    election: *const hb_election,
    out: *mut u64,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let election = arg!(election);
        nonnull!(out);
        let ms = u64::try_from(election.inner.remaining()?.as_millis()).unwrap_or(u64::MAX);
        unsafe { out.write(ms) };
        Ok(())
    })
}

/// Our term's fencing token (`revision` grows from term to term: compare it downstream).
///
/// Errors: `HB_STATUS_NOT_HOLDER` (not the leader), `HB_STATUS_STOPPED`.
#[no_mangle]
pub unsafe extern "C" fn hb_election_token(
    election: *const hb_election,
    revision: *mut i64,
    lease_id: *mut i64,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let election = arg!(election);
        nonnull!(revision);
        nonnull!(lease_id);
        let token = election.inner.token()?;
        unsafe { write_token(Some(token), revision, lease_id) };
        Ok(())
    })
}

/// The leader's token as observed while campaigning; `revision` 0 when nobody leads (or we
/// are not campaigning).
#[no_mangle]
pub unsafe extern "C" fn hb_election_leader(
    election: *const hb_election,
    revision: *mut i64,
    lease_id: *mut i64,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let election = arg!(election);
        nonnull!(revision);
        nonnull!(lease_id);
        let token = election.inner.leader()?.map(|l| l.token);
        unsafe { write_token(token, revision, lease_id) };
        Ok(())
    })
}

/// The leader as observed while campaigning, with its value: `revision` 0, `*value` NULL
/// and `*value_len` 0 when nobody leads (or we are not campaigning). `*value` (NULL when
/// the value is empty) is owned by the caller: free it with `hb_bytes_free(*value,
/// *value_len)`. The token and the value are of the same observation.
#[no_mangle]
pub unsafe extern "C" fn hb_election_leader_value(
    election: *const hb_election,
    revision: *mut i64,
    lease_id: *mut i64,
    value: *mut *mut u8,
    value_len: *mut usize,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let election = arg!(election);
        nonnull!(revision);
        nonnull!(lease_id);
        nonnull!(value);
        nonnull!(value_len);
        let leader = election.inner.leader()?;
        let (ptr, len) = crate::misc::bytes_into_raw(leader.as_ref().map_or(&[][..], |l| &l.value[..]));
        unsafe {
            write_token(leader.map(|l| l.token), revision, lease_id);
            value.write(ptr);
            value_len.write(len);
        }
        Ok(())
    })
}

/// Resigns, then stops within `timeout_ms` (0: the configured `stop_timeout`): no event is
/// delivered after it returns (the callback's `drop_user_data` has run). Afterwards
/// `campaign`, `token`, `leader` and `check` are `HB_STATUS_STOPPED`, `remaining` is 0;
/// `resign` and `stop` succeed. Idempotent.
#[no_mangle]
pub unsafe extern "C" fn hb_election_stop(
    election: *const hb_election,
    timeout_ms: u32,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try!(err, {
        let election = arg!(election);
        Ok(election.inner.stop(stop_timeout(&election.inner, timeout_ms))?)
    })
}

/// Election events (`HB_STATE_ELECTED`, `HB_STATE_LOST`, `HB_STATE_LEADER_CHANGED`) to
/// `callback(user_data, event)` on a delivery thread; as `hb_client_set_callback`.
#[no_mangle]
pub unsafe extern "C" fn hb_election_set_callback(
    election: *const hb_election,
    callback: hb_event_callback,
    user_data: *mut c_void,
    drop_user_data: hb_drop_user_data,
    err: *mut *mut hb_error,
) -> hb_status {
    let user = UserData::new(user_data, drop_user_data);
    ffi_try!(err, { callback::set_callback(&*arg!(election).inner, callback, user) })
}

/// The next election event, waiting up to `timeout_ms`; as `hb_client_next_event`.
#[no_mangle]
pub unsafe extern "C" fn hb_election_next_event(
    election: *const hb_election,
    timeout_ms: u32,
    out: *mut *mut hb_event,
    err: *mut *mut hb_error,
) -> hb_status {
    ffi_try_status!(err, {
        let election = arg!(election);
        nonnull!(out);
        callback::next_event(&*election.inner, timeout_ms, out)
    })
}

/// Resigns, stops (no event is delivered after it returns) and frees the election.
/// `hb_election_free(NULL)` does nothing. The pointer is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn hb_election_free(election: *mut hb_election) {
    ffi_value!((), {
        if let Some(election) = unsafe { crate::boundary::take(election) } {
            let _ = election.inner.stop(election.inner.config().stop_timeout);
        }
    })
}

/// Writes `token` (zeros for `None`) to the two out-parameters.
///
/// # Safety
/// Both pointers are non-NULL and writable (checked by the caller with `nonnull!`).
unsafe fn write_token(token: Option<hb_core::election::Token>, revision: *mut i64, lease_id: *mut i64) {
    unsafe {
        revision.write(token.map_or(0, |t| t.revision));
        lease_id.write(token.map_or(0, |t| t.lease_id));
    }
}

fn wait(timeout_ms: u32) -> Duration {
    match timeout_ms {
        crate::callback::HB_WAIT_FOREVER => Duration::MAX,
        ms => Duration::from_millis(ms.into()),
    }
}

fn stop_timeout(election: &Election, timeout_ms: u32) -> Duration {
    match timeout_ms {
        0 => election.config().stop_timeout,
        ms => Duration::from_millis(ms.into()),
    }
}
