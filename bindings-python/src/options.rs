//! Python arguments → `hb_core::Options`, through `Options::set`, the one parse path every
//! language shares, so a bad value gets the same precise error as in Rust, C, Go and the CLI.

use std::collections::BTreeMap;

use hb_core::{Error, Options};

/// `pairs` are `(option key, text)` as the facade formatted them; labels and the auth key
/// are set as values (a label value may hold commas, a key may be arbitrary bytes).
pub fn build(
    pairs: &[(String, String)],
    labels: Option<BTreeMap<String, String>>,
    auth_key: Option<Vec<u8>>,
) -> hb_core::Result<Options> {
    let mut options = Options::new();
    for (key, value) in pairs {
        options.set(key, value).map_err(|e| rename_field(e, key))?;
    }
    if let Some(labels) = labels {
        options.set_labels(labels)?;
    }
    if let Some(key) = auth_key {
        options.set_auth_key(&key)?;
    }
    Ok(options)
}

/// The endpoint parser names its field `endpoint`; a Monitor's argument is `listen`.
fn rename_field(err: Error, key: &str) -> Error {
    match err {
        Error::Config { field, value, expected } if key == "listen" && field == "endpoint" => {
            Error::Config { field: key.to_string(), value, expected }
        }
        other => other,
    }
}
