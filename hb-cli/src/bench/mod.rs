//! Benchmarks: programs that print a table and write JSON. Not timed tests.

pub mod delivery;
pub mod detection;
pub mod flood;
pub mod footprint;
mod frontier;
pub mod ingest;
pub mod ingest_tls;
mod model;
mod record;
mod reference;
mod replay;
mod svg;
mod trace;

use crate::fail::{runtime, usage, CmdResult};

/// Writes `value` pretty-printed to `path` (when given) and says so on stderr.
pub fn write_json(path: Option<&str>, value: &serde_json::Value) -> CmdResult<()> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(value).map_err(|e| runtime(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|e| runtime(format!("write {path}: {e}")))?;
        eprintln!("wrote {path}");
    }
    Ok(())
}

/// `10000,100000` → [10000, 100000].
pub fn list(flag: &str, text: &str) -> CmdResult<Vec<u64>> {
    text.split(',')
        .map(|s| {
            s.trim().parse::<u64>().map_err(|_| {
                usage(format!("{flag} {text:?}: expected whole numbers separated by commas, e.g. 10000,100000"))
            })
        })
        .collect()
}
