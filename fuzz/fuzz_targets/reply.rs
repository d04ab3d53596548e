//! The client's ACK/NACK handling (hb-core/src/client/beater.rs, via client::probe). Body: `hb_fuzz::targets::reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hb_fuzz::targets::reply(data));
