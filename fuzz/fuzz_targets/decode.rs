//! The wire decoder (hb-core/src/proto/decode.rs): decoded frames round-trip. Body: `hb_fuzz::targets::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hb_fuzz::targets::decode(data));
