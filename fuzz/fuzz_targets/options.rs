//! Options::set (hb-core/src/config.rs): never panics, errors name the field. Body: `hb_fuzz::targets::options`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hb_fuzz::targets::options(data));
