//! etcd registration values (hb-core/src/registry/value.rs). Body: `hb_fuzz::targets::registry_value`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hb_fuzz::targets::registry_value(data));
