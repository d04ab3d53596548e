//! Version, metrics text and strings handed out by the library.

use std::ffi::{c_char, CString};

use crate::error::hb_error;
use crate::status::hb_status;

/// Major version of this header (Cargo package version of hb-ffi). A test checks these
/// match Cargo.toml and `hb_version()`.
pub const HB_VERSION_MAJOR: u32 = 0;
/// Minor version of this header.
pub const HB_VERSION_MINOR: u32 = 1;
/// Patch version of this header.
pub const HB_VERSION_PATCH: u32 = 0;
/// The version as text; in C, `HB_VERSION` is built from the three numbers above
/// (cbindgen cannot emit string constants).
#[cfg(test)]
pub(crate) const VERSION_TEXT: &str = "0.1.0";
/// Bumped on any incompatible change to this ABI (removal, signature or layout change).
pub const HB_ABI_VERSION: u32 = 1;

/// The library's version (`"major.minor.patch"`), to compare with `HB_VERSION` when
/// linking dynamically. Static: never free it.
#[no_mangle]
pub extern "C" fn hb_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The library's ABI version, to compare with `HB_ABI_VERSION`.
#[no_mangle]
pub extern "C" fn hb_abi_version() -> u32 {
    HB_ABI_VERSION
}

/// The process-wide metrics in Prometheus text format. On success `*out` receives a string
/// owned by the caller: free it with `hb_string_free`.
#[no_mangle]
pub unsafe extern "C" fn hb_metrics_text(out: *mut *mut c_char, err: *mut *mut hb_error) -> hb_status {
    ffi_try!(err, {
        nonnull!(out);
        let text = crate::event::c_string(&hb_core::metrics::text());
        unsafe { out.write(text.into_raw()) };
        Ok(())
    })
}

/// Frees a string the library handed out (`hb_metrics_text`, `hb_monitor_local_addr`).
/// `hb_string_free(NULL)` does nothing. Never pass other strings (borrowed ones, or ones
/// from `malloc`).
#[no_mangle]
pub unsafe extern "C" fn hb_string_free(s: *mut c_char) {
    ffi_value!((), {
        if !s.is_null() {
            // SAFETY: made by `CString::into_raw` in this library (header contract).
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

/// Frees bytes the library handed out (`hb_election_leader_value`), with the length it
/// gave. `hb_bytes_free(NULL, 0)` does nothing.
#[no_mangle]
pub unsafe extern "C" fn hb_bytes_free(bytes: *mut u8, len: usize) {
    ffi_value!((), {
        if !bytes.is_null() {
            // SAFETY: made by `bytes_into_raw` with this length (header contract).
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(bytes, len)) });
        }
    })
}

/// A copy of `bytes` for the caller to free with `hb_bytes_free`; NULL for no bytes.
pub(crate) fn bytes_into_raw(bytes: &[u8]) -> (*mut u8, usize) {
    if bytes.is_empty() {
        return (std::ptr::null_mut(), 0);
    }
    let boxed: Box<[u8]> = bytes.into();
    let len = boxed.len();
    (Box::into_raw(boxed).cast::<u8>(), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_cargo_toml() {
        assert_eq!(VERSION_TEXT, env!("CARGO_PKG_VERSION"));
        assert_eq!(HB_VERSION_MAJOR.to_string(), env!("CARGO_PKG_VERSION_MAJOR"));
        assert_eq!(HB_VERSION_MINOR.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
        assert_eq!(HB_VERSION_PATCH.to_string(), env!("CARGO_PKG_VERSION_PATCH"));
        assert_eq!(hb_core::VERSION, VERSION_TEXT);
        assert_eq!(VERSION_TEXT, format!("{HB_VERSION_MAJOR}.{HB_VERSION_MINOR}.{HB_VERSION_PATCH}"));
    }
}
