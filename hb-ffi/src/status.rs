//! `hb_status`: the result code of every fallible function.

use std::ffi::c_char;

/// Result of every fallible heartbeater function.
///
/// Values are explicit and never reused; new codes may be added at the end, so treat an
/// unknown value like `HB_STATUS_INTERNAL`. `hb_status_str` names a code; the optional
/// `hb_error **err` out-parameter carries the detailed message.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum hb_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL (the message names it).
    NullArgument = 1,
    /// A string argument was not valid UTF-8 (the message names it and the byte offset).
    InvalidUtf8 = 2,
    /// A configuration value was rejected (the message names the option, the value and the accepted form).
    Config = 3,
    /// A server (etcd, a monitor) could not be reached.
    Connect = 4,
    /// The server refused our credentials.
    PermissionDenied = 5,
    /// Fencing: this process can no longer be sure it holds its registration.
    NotHolder = 6,
    /// The handle was stopped (or the call needs a started handle).
    Stopped = 7,
    /// The handle was created in another process before a fork.
    Forked = 8,
    /// Not allowed in the handle's current situation (e.g. started twice, poll while a callback is set).
    InvalidState = 9,
    /// A bounded wait ran out. From `hb_*_next_event` it is not a failure (no event came in
    /// time; `*err` is not written): the one such status besides `HB_STATUS_OK`.
    Timeout = 10,
    /// An operating-system failure (bind, socket, thread spawn).
    Io = 11,
    /// A bug in heartbeater, reported instead of crashing.
    Internal = 12,
    /// A Rust panic was caught at the C boundary (a bug in heartbeater).
    Panic = 13,
    /// A handle argument is not a live handle of the expected type (freed, or wrong type).
    BadHandle = 14,
    /// An index argument is past the end.
    OutOfRange = 15,
}

impl hb_status {
    /// The 1:1 mapping from hb-core's error variants.
    pub(crate) fn from_core(e: &hb_core::Error) -> hb_status {
        use hb_core::Error as E;
        match e {
            E::Config { .. } => hb_status::Config,
            E::Connect { .. } => hb_status::Connect,
            E::PermissionDenied { .. } => hb_status::PermissionDenied,
            E::NotHolder(_) => hb_status::NotHolder,
            E::Stopped(_) => hb_status::Stopped,
            E::Forked { .. } => hb_status::Forked,
            E::InvalidState(_) => hb_status::InvalidState,
            E::Timeout { .. } => hb_status::Timeout,
            E::Io { .. } => hb_status::Io,
            E::Internal(_) => hb_status::Internal,
        }
    }

    pub(crate) const ALL: &'static [hb_status] = &[
        hb_status::Ok,
        hb_status::NullArgument,
        hb_status::InvalidUtf8,
        hb_status::Config,
        hb_status::Connect,
        hb_status::PermissionDenied,
        hb_status::NotHolder,
        hb_status::Stopped,
        hb_status::Forked,
        hb_status::InvalidState,
        hb_status::Timeout,
        hb_status::Io,
        hb_status::Internal,
        hb_status::Panic,
        hb_status::BadHandle,
        hb_status::OutOfRange,
    ];

    pub(crate) fn name(self) -> &'static std::ffi::CStr {
        match self {
            hb_status::Ok => c"ok",
            hb_status::NullArgument => c"null_argument",
            hb_status::InvalidUtf8 => c"invalid_utf8",
            hb_status::Config => c"config",
            hb_status::Connect => c"connect",
            hb_status::PermissionDenied => c"permission_denied",
            hb_status::NotHolder => c"not_holder",
            hb_status::Stopped => c"stopped",
            hb_status::Forked => c"forked",
            hb_status::InvalidState => c"invalid_state",
            hb_status::Timeout => c"timeout",
            hb_status::Io => c"io",
            hb_status::Internal => c"internal",
            hb_status::Panic => c"panic",
            hb_status::BadHandle => c"bad_handle",
            hb_status::OutOfRange => c"out_of_range",
        }
    }
}

/// The short name of a status (`"ok"`, `"config"`, `"stopped"`, …; the same names as
/// hb-core's `Error::kind`), or `"unknown"` for a value this library does not know.
///
/// `status` is an `hb_status` value (taken as `uint32_t` so any integer is safe to pass).
/// The returned string is static: never free it. Callable from any thread and from callbacks.
#[no_mangle]
pub extern "C" fn hb_status_str(status: u32) -> *const c_char {
    ffi_value!(c"unknown".as_ptr(), {
        hb_status::ALL.iter().find(|s| **s as u32 == status).map_or(c"unknown", |s| s.name()).as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_core_kinds() {
        let samples = [
            hb_core::Error::config("f", "v", "e"),
            hb_core::Error::NotHolder("x".into()),
            hb_core::Error::Stopped("x"),
            hb_core::Error::InvalidState("x".into()),
            hb_core::Error::Timeout { what: "x".into(), after_ms: 1 },
            hb_core::Error::io("x", "y"),
            hb_core::Error::Internal("x".into()),
            hb_core::Error::Forked { parent: 1, child: 2 },
        ];
        for e in samples {
            assert_eq!(hb_status::from_core(&e).name().to_str().unwrap(), e.kind());
        }
        for (i, s) in hb_status::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "values are dense and explicit");
        }
    }
}
