//! The fencing token a holder hands downstream.

/// `(lease id, epoch)`: pass it to downstream compare-and-set so that a stale holder's
/// writes are refused. The epoch increases with every re-registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FencingToken {
    /// etcd lease id; 0 for direct beats.
    pub lease_id: i64,
    pub epoch: u64,
}
