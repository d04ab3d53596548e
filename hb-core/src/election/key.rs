//! Where candidates live in etcd: `<prefix>/election/<name>/<lease id in hex>`, the value
//! being the candidate's own bytes. Naming the key after the lease (as etcd's
//! `concurrency.Election` does) makes every campaign a new key, so its creation revision
//! is new too: that revision orders the candidates and is the fencing token.

use crate::registry::registration::Record;

/// The directory of election `name` under `prefix`, with a trailing `/`.
pub(crate) fn dir(prefix: &str, name: &str) -> String {
    format!("{}/election/{name}/", prefix.trim_end_matches('/'))
}

/// One candidate's record: its key under the election directory, its value.
pub(crate) struct Candidate {
    pub dir: String,
    pub value: Vec<u8>,
}

impl Record for Candidate {
    fn key(&self, lease: i64) -> String {
        format!("{}{lease:x}", self.dir)
    }
    fn value(&self, _epoch: u64) -> Vec<u8> {
        self.value.clone()
    }
    /// A candidate has no leaving mark: the revoke deletes its key, which is what hands over.
    fn leaving(&self, _epoch: u64) -> Option<Vec<u8>> {
        None
    }
}

/// The fencing token of a term: the leader key's creation revision, then its lease id.
/// Revisions only grow in etcd, and every term is a new key, so a later term always has a
/// larger `revision`: a downstream store that keeps the largest revision it accepted
/// refuses a deposed leader's writes (docs/election.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    pub revision: i64,
    pub lease_id: i64,
}

/// Who leads, as observed through the election's watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    pub key: String,
    pub value: Vec<u8>,
    pub token: Token,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_lease_in_hex_under_the_election_directory() {
        let c = Candidate { dir: dir("/svc/", "db"), value: b"a".to_vec() };
        assert_eq!(c.key(0x694d_77c1_ab12), "/svc/election/db/694d77c1ab12");
        assert_eq!(dir("/svc", "db"), "/svc/election/db/");
        assert_eq!(c.leaving(1), None);
        assert!(Token { revision: 2, lease_id: 1 } > Token { revision: 1, lease_id: 9 });
    }
}
