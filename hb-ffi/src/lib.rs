//! C ABI over hb-core.
