//! C ABI over hb-core: `libheartbeater.a` / `libheartbeater.so` and `include/heartbeater.h`.
//!
//! Thin by design: every `extern "C"` function checks and converts its arguments, calls
//! hb-core, and converts the `Result` back into an `hb_status` (plus an optional owned
//! `hb_error`). Behaviour lives in hb-core. See `docs/c-abi.md`.
//!
//! Conventions (rustls-ffi style):
//! - every body runs inside `ffi_try!` / `ffi_value!` (panic boundary, one place);
//! - every pointer goes through `arg!` / `str_arg!` / `nonnull!` (NULL check, one place);
//! - out-parameters are written only on success.
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)] // Safety is documented per function in the header.

#[macro_use]
mod boundary;

pub mod callback;
pub mod client;
pub mod config;
pub mod election;
mod engine;
pub mod error;
pub mod event;
pub mod misc;
pub mod monitor;
pub mod peers;
pub mod status;
pub mod watcher;

#[doc(hidden)]
pub mod bench;

#[cfg(test)]
mod tests;

pub use status::hb_status;
