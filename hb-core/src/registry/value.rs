//! The JSON value stored under `prefix/<service>/<instance-id>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub(crate) const STATE_UP: &str = "up";
pub(crate) const STATE_LEAVING: &str = "leaving";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationValue {
    pub id: String,
    pub service: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub incarnation: u32,
    #[serde(default)]
    pub epoch: u64,
    #[serde(default)]
    pub started_unix_ms: u64,
    /// `up`, or `leaving` once a graceful stop has begun.
    pub state: String,
}

impl RegistrationValue {
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Option<RegistrationValue> {
        serde_json::from_slice(bytes).ok()
    }

    pub fn is_leaving(&self) -> bool {
        self.state == STATE_LEAVING
    }
}

/// `prefix/<service>/<instance-id>`.
pub(crate) fn key(prefix: &str, service: &str, id: &str) -> String {
    format!("{}/{service}/{id}", prefix.trim_end_matches('/'))
}

/// The (service, id) a key names under `prefix`, if it has that shape.
pub(crate) fn split_key<'k>(prefix: &str, key: &'k str) -> Option<(&'k str, &'k str)> {
    let rest = key.strip_prefix(prefix.trim_end_matches('/'))?.strip_prefix('/')?;
    let (service, id) = rest.split_once('/')?;
    (!service.is_empty() && !id.is_empty() && !id.contains('/')).then_some((service, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_round_trips_and_keys_split() {
        let v = RegistrationValue {
            id: "a".into(),
            service: "svc".into(),
            labels: [("zone".to_string(), "z1".to_string())].into(),
            incarnation: 7,
            epoch: 2,
            started_unix_ms: 1,
            state: STATE_UP.into(),
        };
        assert_eq!(RegistrationValue::parse(&v.to_json()), Some(v.clone()));
        assert!(RegistrationValue::parse(b"not json").is_none());
        assert_eq!(key("/services/", "svc", "a"), "/services/svc/a");
        assert_eq!(split_key("/services", "/services/svc/a"), Some(("svc", "a")));
        assert_eq!(split_key("/services", "/servicesx/svc/a"), None);
        assert_eq!(split_key("/services", "/services/svc"), None);
    }
}
