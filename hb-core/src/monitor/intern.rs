//! Shared peer metadata: 100k peers of one service with the same labels hold one copy of
//! the service name and label set, and each peer costs one thin pointer for both.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// A service name and a label set (as received; clients send labels sorted by key).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Meta {
    pub service: Box<str>,
    pub labels: Box<[(Box<str>, Box<str>)]>,
}

impl Meta {
    /// True when this is exactly `service` and `labels` (the per-beat check: no allocation).
    pub fn matches<'a>(&self, service: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        *self.service == *service && same_labels(&self.labels, labels)
    }
}

pub struct Interner {
    metas: HashSet<Arc<Meta>>,
}

impl Interner {
    pub fn new() -> Interner {
        Interner { metas: HashSet::new() }
    }

    pub fn meta<'a>(&mut self, service: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) -> Arc<Meta> {
        let meta =
            Meta { service: Box::from(service), labels: labels.map(|(k, v)| (Box::from(k), Box::from(v))).collect() };
        if let Some(m) = self.metas.get(&meta) {
            return Arc::clone(m);
        }
        let m = Arc::new(meta);
        self.metas.insert(Arc::clone(&m));
        m
    }

    /// Forgets entries no peer uses any more (called after reaping).
    pub fn purge_unused(&mut self) {
        self.metas.retain(|m| Arc::strong_count(m) > 1);
    }

    /// Number of distinct entries held, used or not.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.metas.len()
    }

    /// Purges when unused entries may outnumber the used ones by a wide margin: a peer
    /// that changes its labels on every beat (spoofed, without an auth key) leaves one
    /// unused entry per beat. After a purge at most `peers` entries remain, so the next
    /// one comes at least `peers + 1024` replacements later: amortized O(1) per beat.
    pub fn purge_if_bloated(&mut self, peers: usize) {
        if self.metas.len() > peers.saturating_mul(2).saturating_add(1024) {
            self.purge_unused();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        let metas: usize = self
            .metas
            .iter()
            .map(|m| 64 + m.service.len() + m.labels.iter().map(|(k, v)| 32 + k.len() + v.len()).sum::<usize>())
            .sum();
        metas + self.metas.capacity() * 9
    }
}

fn same_labels<'a>(set: &[(Box<str>, Box<str>)], mut labels: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    for (k, v) in set.iter() {
        match labels.next() {
            Some((k2, v2)) if **k == *k2 && **v == *v2 => {}
            _ => return false,
        }
    }
    labels.next().is_none()
}

pub fn to_map(set: &[(Box<str>, Box<str>)]) -> BTreeMap<String, String> {
    set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_shares_and_purges() {
        let mut i = Interner::new();
        let a = i.meta("api", [("zone", "a")].into_iter());
        let b = i.meta("api", [("zone", "a")].into_iter());
        assert!(Arc::ptr_eq(&a, &b));
        let c = i.meta("api", std::iter::empty());
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(a.matches("api", [("zone", "a")].into_iter()));
        assert!(!a.matches("web", [("zone", "a")].into_iter()));
        assert!(!a.matches("api", [("zone", "b")].into_iter()));
        assert!(!a.matches("api", [("zone", "a"), ("x", "y")].into_iter()));
        assert!(!a.matches("api", std::iter::empty()));
        drop((a, b, c));
        i.purge_unused();
        assert!(i.metas.is_empty());
    }
}
