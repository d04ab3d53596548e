//! heartbeater engine.
//!
//! Everything with behaviour lives here; the C ABI, the Go and Python bindings and the CLI
//! are thin layers over this crate. See `../shared/DESIGN.md` for the picture.

pub mod proto;
pub mod detect;
