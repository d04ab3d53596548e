//! The monitor's peer table (hb-core/src/monitor/table.rs) as a state machine. Body: `hb_fuzz::targets::table`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hb_fuzz::targets::table(data));
