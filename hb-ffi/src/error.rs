//! `hb_error`: the detailed error handed to the caller through the `hb_error **err`
//! out-parameter. Owned by the caller; no thread-local "last error" (a Go goroutine may
//! change OS thread between two C calls).

use std::ffi::{c_char, CString};

use crate::boundary::{FfiError, Handle};
use crate::status::hb_status;

/// An error's status and message. Obtained through the optional `hb_error **err` last
/// argument of a fallible function; owned by the caller, who frees it with `hb_error_free`.
#[cfg_attr(all(), repr(C))] // repr(C): `tag` first (boundary.rs); cfg_attr: opaque to cbindgen
pub struct hb_error {
    tag: u64,
    status: hb_status,
    message: CString,
}

handle_tag!(hb_error, "hb_error", 0x6862_6572_726f_7201);

impl hb_error {
    pub(crate) fn boxed(e: FfiError) -> *mut hb_error {
        let message = CString::new(e.message.replace('\0', "\u{fffd}")).unwrap_or_default();
        Box::into_raw(Box::new(hb_error { tag: <Self as Handle>::TAG, status: e.status, message }))
    }
}

/// The error's message: one line naming what was wrong, e.g.
/// `endpoint "udp//x": expected scheme://host:port[/prefix] ...`.
///
/// Borrowed: valid until `hb_error_free(error)`. Returns NULL when `error` is NULL.
#[no_mangle]
pub unsafe extern "C" fn hb_error_message(error: *const hb_error) -> *const c_char {
    ffi_value!(std::ptr::null(), {
        // SAFETY: NULL-checked and tag-checked by `handle`.
        match unsafe { crate::boundary::handle(error, "error") } {
            Ok(e) => e.message.as_ptr(),
            Err(_) => std::ptr::null(),
        }
    })
}

/// The error's status (never `HB_STATUS_OK`). `HB_STATUS_NULL_ARGUMENT` when `error` is NULL.
#[no_mangle]
pub unsafe extern "C" fn hb_error_status(error: *const hb_error) -> hb_status {
    ffi_value!(hb_status::Panic, {
        match unsafe { crate::boundary::handle(error, "error") } {
            Ok(e) => e.status,
            Err(e) => e.status,
        }
    })
}

/// Frees an error. `hb_error_free(NULL)` does nothing.
#[no_mangle]
pub unsafe extern "C" fn hb_error_free(error: *mut hb_error) {
    ffi_value!((), {
        drop(unsafe { crate::boundary::take(error) });
    })
}
