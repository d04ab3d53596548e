//! Shared service names and label sets: 100k peers of one service with the same labels
//! hold one copy of each, and a peer costs a pointer per field.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Labels as received (clients send them sorted by key).
pub type LabelSet = Arc<[(Box<str>, Box<str>)]>;

pub struct Interner {
    services: HashSet<Arc<str>>,
    label_sets: HashSet<LabelSet>,
    empty: LabelSet,
}

impl Interner {
    pub fn new() -> Interner {
        Interner { services: HashSet::new(), label_sets: HashSet::new(), empty: Arc::from(Vec::new()) }
    }

    pub fn service(&mut self, name: &str) -> Arc<str> {
        if let Some(s) = self.services.get(name) {
            return Arc::clone(s);
        }
        let s: Arc<str> = Arc::from(name);
        self.services.insert(Arc::clone(&s));
        s
    }

    pub fn labels<'a>(&mut self, labels: impl Iterator<Item = (&'a str, &'a str)>) -> LabelSet {
        let set: Vec<(Box<str>, Box<str>)> = labels.map(|(k, v)| (Box::from(k), Box::from(v))).collect();
        if set.is_empty() {
            return Arc::clone(&self.empty);
        }
        if let Some(s) = self.label_sets.get(set.as_slice()) {
            return Arc::clone(s);
        }
        let s: LabelSet = Arc::from(set);
        self.label_sets.insert(Arc::clone(&s));
        s
    }

    /// Forgets entries no peer uses any more (called after reaping).
    pub fn purge_unused(&mut self) {
        self.services.retain(|s| Arc::strong_count(s) > 1);
        self.label_sets.retain(|s| Arc::strong_count(s) > 1);
    }

    pub fn heap_bytes(&self) -> usize {
        let services: usize = self.services.iter().map(|s| s.len() + 16).sum();
        let labels: usize = self
            .label_sets
            .iter()
            .map(|s| 16 + s.iter().map(|(k, v)| 32 + k.len() + v.len()).sum::<usize>())
            .sum();
        services + labels + (self.services.capacity() + self.label_sets.capacity()) * 17
    }
}

/// True when `set` holds exactly `labels`, in order (the per-beat check: no allocation).
pub fn same_labels<'a>(set: &LabelSet, mut labels: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    for (k, v) in set.iter() {
        match labels.next() {
            Some((k2, v2)) if **k == *k2 && **v == *v2 => {}
            _ => return false,
        }
    }
    labels.next().is_none()
}

pub fn to_map(set: &LabelSet) -> BTreeMap<String, String> {
    set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_shares_and_purges() {
        let mut i = Interner::new();
        let a = i.service("api");
        let b = i.service("api");
        assert!(Arc::ptr_eq(&a, &b));
        let l1 = i.labels([("zone", "a")].into_iter());
        let l2 = i.labels([("zone", "a")].into_iter());
        assert!(Arc::ptr_eq(&l1, &l2));
        assert!(same_labels(&l1, [("zone", "a")].into_iter()));
        assert!(!same_labels(&l1, [("zone", "b")].into_iter()));
        assert!(!same_labels(&l1, [("zone", "a"), ("x", "y")].into_iter()));
        assert!(!same_labels(&l1, std::iter::empty()));
        drop((a, b, l1, l2));
        i.purge_unused();
        assert!(i.services.is_empty() && i.label_sets.is_empty());
    }
}
