//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets'
//! own bodies (`fuzz/src/targets.rs`) on stable: every input a fuzzer kept, and every
//! crash once fixed, stays a regression test where nightly and cargo-fuzz are missing.

#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_committed_fuzz_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (name, body) in targets::TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        inputs.sort();
        assert!(inputs.len() >= 10, "{}: only {} seed inputs", dir.display(), inputs.len());
        for path in inputs {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if std::panic::catch_unwind(|| body(&data)).is_err() {
                panic!("fuzz target {name} fails on {}", path.display());
            }
        }
    }
}
