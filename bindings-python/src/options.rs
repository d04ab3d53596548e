//! Python arguments → `hb_core::Options`, through `Options::set`, the one parse path every
//! language shares, so a bad value gets the same precise error as in Rust, C, Go and the CLI.

use std::collections::BTreeMap;

use hb_core::Options;

/// Labels and the auth key are set as values (a label value may hold commas, a key may be
/// arbitrary bytes), then `pairs` — `(option key, text)` — in order: the facade's keyword
/// arguments, then the caller's generic `options`, so that the latter have the last word.
pub fn build(
    pairs: &[(String, String)],
    labels: Option<BTreeMap<String, String>>,
    auth_key: Option<Vec<u8>>,
) -> hb_core::Result<Options> {
    let mut options = Options::new();
    if let Some(labels) = labels {
        options.set_labels(labels)?;
    }
    if let Some(key) = auth_key {
        options.set_auth_key(&key)?;
    }
    for (key, value) in pairs {
        options.set(key, value)?;
    }
    Ok(options)
}
