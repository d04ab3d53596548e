//! Event delivery shared by client, monitor and watcher: callbacks with a user-data
//! destructor (zenoh-c style) and polling.

use std::ffi::c_void;
use std::time::Duration;

use hb_core::EventSource;

use crate::boundary::{FfiError, FfiResult};
use crate::event::hb_event;
use crate::status::hb_status;

/// Pass as `timeout_ms` to `hb_*_next_event` to wait until an event comes or the handle stops.
pub const HB_WAIT_FOREVER: u32 = u32::MAX;

/// Called with each event, on a thread of the process's shared delivery pool (`hb-events`,
/// 1 to 16 threads), one event at a time, in order, never on two threads at once for one
/// handle.
///
/// `user_data` is the pointer given to `hb_*_set_callback`. `event` is borrowed for the
/// duration of the call only: copy what you keep, never free it. The callback must not
/// unwind (no C++ exception, no longjmp) out of itself. A slow callback delays only later
/// events of the same handle (queued up to `event_capacity`, then the oldest are dropped
/// and counted); it never delays heartbeats.
pub type hb_event_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const hb_event)>;

/// Destructor for a callback's `user_data`; called exactly once, after the last callback.
pub type hb_drop_user_data = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// The user's pointer and its destructor. Dropping it calls the destructor, so every path
/// (success, error, panic) runs it exactly once.
pub(crate) struct UserData {
    ptr: *mut c_void,
    drop_fn: hb_drop_user_data,
}

// SAFETY: the header contract says user_data is used from the delivery thread; the caller
// makes it safe to use there (as with any C callback registration).
unsafe impl Send for UserData {}

impl UserData {
    pub fn new(ptr: *mut c_void, drop_fn: hb_drop_user_data) -> UserData {
        UserData { ptr, drop_fn }
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(f) = self.drop_fn.take() {
            // SAFETY: the caller's destructor for its own pointer, called once.
            unsafe { f(self.ptr) }
        }
    }
}

/// Sets the callback through hb-core's `EventSource` (the fork rule and "stopped" are its).
pub(crate) fn set_callback<S: EventSource + ?Sized>(
    source: &S,
    callback: hb_event_callback,
    user: UserData,
) -> FfiResult<()> {
    let callback = callback.ok_or_else(|| FfiError::new(hb_status::NullArgument, "argument `callback` is NULL"))?;
    source.set_callback(Box::new(move |event| {
        // Names the whole `user` so the closure owns it (and drops it after the last call).
        let user = &user;
        let event = hb_event::new(event);
        // SAFETY: the caller's function with its own pointer; the event outlives the call.
        unsafe { callback(user.ptr, &event) }
    }))?;
    Ok(())
}

/// One poll through hb-core's `EventSource`: `HB_STATUS_OK` with `*out` written, or
/// `HB_STATUS_TIMEOUT` with nothing written (a timeout is not a failure of the call, so no
/// `hb_error` is made for it), or an error.
pub(crate) fn next_event<S: EventSource + ?Sized>(
    source: &S,
    timeout_ms: u32,
    out: *mut *mut hb_event,
) -> FfiResult<hb_status> {
    let timeout = (timeout_ms != HB_WAIT_FOREVER).then(|| Duration::from_millis(timeout_ms.into()));
    match source.next_event(timeout)? {
        Some(event) => {
            // SAFETY: NULL-checked by the caller; writable per the header contract.
            unsafe { out.write(Box::into_raw(Box::new(hb_event::new(&event)))) };
            Ok(hb_status::Ok)
        }
        None => Ok(hb_status::Timeout),
    }
}
