//! The fuzz targets' bodies (`targets`), shared by the cargo-fuzz binaries in
//! `fuzz_targets/` and by the stable corpus replay in `hb-core/tests/fuzz_corpus.rs`.

pub mod targets;
