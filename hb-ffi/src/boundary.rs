//! The one panic boundary and the one argument-check path every export goes through.

use std::any::Any;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::hb_error;
use crate::status::hb_status;

/// An error on its way out through the C ABI: a status plus a message for `hb_error`.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub status: hb_status,
    pub message: String,
}

impl FfiError {
    pub fn new(status: hb_status, message: impl Into<String>) -> FfiError {
        FfiError { status, message: message.into() }
    }

    fn panic(payload: Box<dyn Any + Send>) -> FfiError {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic payload".into());
        FfiError::new(hb_status::Panic, format!("panic inside heartbeater (a bug; please report): {what}"))
    }
}

impl From<hb_core::Error> for FfiError {
    fn from(e: hb_core::Error) -> FfiError {
        FfiError::new(hb_status::from_core(&e), e.to_string())
    }
}

pub(crate) type FfiResult<T> = Result<T, FfiError>;

/// Runs `f` behind the panic boundary; on failure stores an owned `hb_error` in `*err`
/// (when `err` is not NULL) and returns its status.
pub(crate) fn run(err: *mut *mut hb_error, f: impl FnOnce() -> FfiResult<()>) -> hb_status {
    run_status(err, || f().map(|()| hb_status::Ok))
}

/// As `run`, for the one kind of export whose success has more than one status
/// (`hb_*_next_event`: `HB_STATUS_OK` or `HB_STATUS_TIMEOUT`). `*err` is written only on
/// `Err`, never for a status the body returned as success.
pub(crate) fn run_status(err: *mut *mut hb_error, f: impl FnOnce() -> FfiResult<hb_status>) -> hb_status {
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(FfiError::panic(payload)));
    match result {
        Ok(status) => status,
        Err(e) => {
            let status = e.status;
            if !err.is_null() {
                // SAFETY: the caller passes NULL or a valid `hb_error **` (header contract).
                unsafe { err.write(hb_error::boxed(e)) };
            }
            status
        }
    }
}

/// Panic boundary for functions without a status (accessors, `_free`): a panic yields
/// `fallback` instead of unwinding into C.
pub(crate) fn run_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// `ffi_try!(err, { ...; Ok(()) })`: the body of every fallible export.
macro_rules! ffi_try {
    ($err:expr, $body:block) => {
        $crate::boundary::run($err, move || -> $crate::boundary::FfiResult<()> { $body })
    };
}

/// `ffi_try_status!(err, { ...; Ok(status) })`: a fallible export with more than one
/// non-error result (see `run_status`).
macro_rules! ffi_try_status {
    ($err:expr, $body:block) => {
        $crate::boundary::run_status($err, move || -> $crate::boundary::FfiResult<$crate::status::hb_status> { $body })
    };
}

/// `ffi_value!(fallback, { ... })`: the body of every infallible export.
macro_rules! ffi_value {
    ($fallback:expr, $body:block) => {
        $crate::boundary::run_value($fallback, move || $body)
    };
}

/// Every opaque handle carries a tag so that a freed or wrong-typed pointer is detected
/// (when its memory has not been reused) instead of being trusted.
pub(crate) trait Handle {
    const NAME: &'static str;
    const TAG: u64;
    fn tag_mut(&mut self) -> &mut u64;
    fn tag(&self) -> u64;
}

/// Takes ownership back from C for `_free`: `None` for NULL or a pointer that is not a live
/// handle of this type (so a double free is ignored while the memory is not reused). The
/// tag is overwritten first so that later use of the dangling pointer is detectable.
pub(crate) unsafe fn take<T: Handle>(p: *mut T) -> Option<Box<T>> {
    // SAFETY: NULL- and tag-checked by `handle`; the pointer came from `Box::into_raw`.
    unsafe { handle(p as *const T, T::NAME) }.ok()?;
    let mut b = unsafe { Box::from_raw(p) };
    // Volatile: a plain store right before deallocation may be optimised away.
    unsafe { std::ptr::write_volatile(b.tag_mut(), DEAD_TAG) };
    Some(b)
}

/// `impl Handle` for a struct whose first field is `tag: u64`. The struct must be
/// `#[repr(C)]` (see `handle`: the tag is read at offset 0 of whatever the pointer points
/// to, so a pointer to another handle type is caught); this is asserted at compile time.
///
/// Write the attribute as `#[cfg_attr(all(), repr(C))]`: rustc applies it, while cbindgen
/// (which reads only a literal `#[repr]`) still emits the type as an opaque
/// `typedef struct hb_x hb_x;` instead of trying to print its Rust fields.
macro_rules! handle_tag {
    ($t:ty, $name:literal, $tag:literal) => {
        const _: () = assert!(std::mem::offset_of!($t, tag) == 0, "the tag must be the first field");
        impl $crate::boundary::Handle for $t {
            const NAME: &'static str = $name;
            const TAG: u64 = $tag;
            fn tag_mut(&mut self) -> &mut u64 {
                &mut self.tag
            }
            fn tag(&self) -> u64 {
                // Volatile so the check reads memory even right after a free in the same caller.
                unsafe { std::ptr::read_volatile(&self.tag) }
            }
        }
    };
}

pub(crate) const DEAD_TAG: u64 = 0xdead_dead_dead_dead;

fn null(name: &str) -> FfiError {
    FfiError::new(hb_status::NullArgument, format!("argument `{name}` is NULL"))
}

/// The NULL check for a pointer; every `arg!`/`str_arg!`/`nonnull!` goes through here.
pub(crate) fn not_null<T>(p: *const T, name: &str) -> FfiResult<()> {
    if p.is_null() {
        Err(null(name))
    } else {
        Ok(())
    }
}

/// Borrows a handle after checking it is not NULL and carries the right tag.
pub(crate) unsafe fn handle<'a, T: Handle>(p: *const T, name: &str) -> FfiResult<&'a T> {
    not_null(p, name)?;
    // SAFETY: non-NULL; the caller promises it came from the matching `_new` (header contract).
    let h = unsafe { &*p };
    if h.tag() != T::TAG {
        return Err(FfiError::new(
            hb_status::BadHandle,
            format!("argument `{name}` is not a live {} (already freed, or another type)", T::NAME),
        ));
    }
    Ok(h)
}

/// Borrows a NUL-terminated UTF-8 string argument.
pub(crate) unsafe fn string<'a>(p: *const c_char, name: &str) -> FfiResult<&'a str> {
    not_null(p, name)?;
    // SAFETY: non-NULL, NUL-terminated per the header contract.
    let bytes = unsafe { CStr::from_ptr(p) };
    bytes.to_str().map_err(|e| {
        FfiError::new(
            hb_status::InvalidUtf8,
            format!("argument `{name}` is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// `*const T` or `*mut T`, read-only, so one check serves both.
pub(crate) trait RawPtr {
    type Target;
    fn to_const_ptr(self) -> *const Self::Target;
}
impl<T> RawPtr for *const T {
    type Target = T;
    fn to_const_ptr(self) -> *const T {
        self
    }
}
impl<T> RawPtr for *mut T {
    type Target = T;
    fn to_const_ptr(self) -> *const T {
        self
    }
}

/// `arg!(p)`: a checked `&Handle` from a handle pointer (NULL / freed / wrong type → error).
macro_rules! arg {
    ($p:ident) => {
        unsafe { $crate::boundary::handle($crate::boundary::RawPtr::to_const_ptr($p), stringify!($p)) }?
    };
}

/// `str_arg!(p)`: a checked `&str` from a `const char *`.
macro_rules! str_arg {
    ($p:ident) => {
        unsafe { $crate::boundary::string($p, stringify!($p)) }?
    };
}

/// `nonnull!(p)`: NULL check for a plain pointer (out-parameters: write them last, on success only).
macro_rules! nonnull {
    ($p:ident) => {
        $crate::boundary::not_null($crate::boundary::RawPtr::to_const_ptr($p), stringify!($p))?
    };
}
