//! The candidates of one election as the watch reports them, ordered by creation revision:
//! the first is the leader, and a candidate leads once no key created before its own is
//! left. Pure: fed with listings and watch events.

use std::collections::BTreeMap;

use super::key::{Leader, Token};

#[derive(Default)]
pub(crate) struct View {
    /// Creation revision → (key, value, lease).
    by_revision: BTreeMap<i64, (String, Vec<u8>, i64)>,
    /// Key → creation revision, to remove a deleted key (a delete event carries no
    /// creation revision).
    by_key: BTreeMap<String, i64>,
}

impl View {
    pub fn clear(&mut self) {
        self.by_revision.clear();
        self.by_key.clear();
    }

    pub fn put(&mut self, key: &str, value: &[u8], create_revision: i64, lease: i64) {
        if let Some(old) = self.by_key.insert(key.to_string(), create_revision) {
            self.by_revision.remove(&old);
        }
        self.by_revision.insert(create_revision, (key.to_string(), value.to_vec(), lease));
    }

    pub fn delete(&mut self, key: &str) {
        if let Some(rev) = self.by_key.remove(key) {
            self.by_revision.remove(&rev);
        }
    }

    /// The candidate with the lowest creation revision.
    pub fn leader(&self) -> Option<Leader> {
        self.by_revision.iter().next().map(|(&revision, (key, value, lease))| Leader {
            key: key.clone(),
            value: value.clone(),
            token: Token { revision, lease_id: *lease },
        })
    }

    /// Whether `key` is known and no candidate was created before it.
    pub fn leads(&self, key: &str) -> bool {
        self.by_revision.values().next().is_some_and(|(k, _, _)| k == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_key_leads_and_the_next_takes_over_when_it_goes() {
        let mut v = View::default();
        assert_eq!(v.leader(), None);
        v.put("/e/b", b"B", 7, 2);
        v.put("/e/a", b"A", 5, 1);
        assert!(v.leads("/e/a") && !v.leads("/e/b"));
        assert_eq!(v.leader().unwrap().token, Token { revision: 5, lease_id: 1 });
        // A value rewritten under the same key keeps its place (same creation revision).
        v.put("/e/a", b"A2", 5, 1);
        assert_eq!(v.leader().unwrap().value, b"A2");
        v.delete("/e/a");
        assert!(v.leads("/e/b"));
        v.delete("/e/b");
        assert!(!v.leads("/e/b"));
        assert_eq!(v.leader(), None);
    }
}
