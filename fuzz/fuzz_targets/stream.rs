//! The TCP stream decoder (hb-core/src/proto/stream.rs) against a one-shot read. Body: `hb_fuzz::targets::stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hb_fuzz::targets::stream(data));
