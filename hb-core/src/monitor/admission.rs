//! Who gets a place in a full or flooded peer table.
//!
//! Without a key anyone can make up ids, one datagram each. The table keeps its places for
//! peers that beat more than once: it remembers which peers are unconfirmed (heard once)
//! and which are gone (dead or left), oldest first, so that a full table evicts those
//! before it refuses anyone. It counts unconfirmed peers per source host: past its share a
//! host's new ids go on probation (not reported until their second beat, so a flood makes
//! no event flood), and a full table evicts from the host holding the most, so a flood from
//! one host churns its own peers while a newcomer from elsewhere keeps its place. Entries
//! are checked when popped (`still`): a peer confirmed since, or a slot reused, is skipped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

/// Unconfirmed peers one host may hold before its new ids go on probation: 1/64 of the
/// table, at least 1,024 (a host starting many handles at once is normal).
pub fn host_quota(max_peers: usize) -> usize {
    (max_peers / 64).max(1024)
}

#[derive(Default)]
pub struct Admission {
    unconfirmed: VecDeque<u32>,
    gone: VecDeque<u32>,
    by_host: HashMap<IpAddr, Host>,
    /// The host that held the most unconfirmed peers when last counted up (kept lazily:
    /// finding the true maximum would scan every host on every eviction).
    heaviest: Option<IpAddr>,
}

#[derive(Default)]
struct Host {
    unconfirmed: usize,
    slots: VecDeque<u32>,
}

impl Admission {
    /// A new peer, unconfirmed, from `ip`.
    pub fn inserted(&mut self, slot: u32, ip: IpAddr, peers: usize, still: impl Fn(u32) -> bool) {
        remember(&mut self.unconfirmed, slot, peers, &still);
        let host = self.by_host.entry(ip).or_default();
        host.unconfirmed += 1;
        host.slots.push_back(slot);
        let count = host.unconfirmed;
        let heavier = match self.heaviest {
            Some(h) if h != ip => self.by_host.get(&h).map_or(true, |h| h.unconfirmed < count),
            _ => true,
        };
        if heavier {
            self.heaviest = Some(ip);
        }
        let host = self.by_host.get_mut(&ip).expect("just counted");
        if host.slots.len() > 2 * host.unconfirmed + 16 {
            let mut seen = HashSet::new();
            host.slots.retain(|&s| still(s) && seen.insert(s));
        }
    }

    /// A peer from `ip` stopped being unconfirmed (a second beat, or it was removed).
    pub fn no_longer_unconfirmed(&mut self, ip: IpAddr) {
        if let Some(host) = self.by_host.get_mut(&ip) {
            host.unconfirmed = host.unconfirmed.saturating_sub(1);
            if host.unconfirmed == 0 {
                self.by_host.remove(&ip);
                if self.heaviest == Some(ip) {
                    self.heaviest = None;
                }
            }
        }
    }

    /// A peer went dead or left.
    pub fn gone(&mut self, slot: u32, peers: usize, still: impl Fn(u32) -> bool) {
        remember(&mut self.gone, slot, peers, still);
    }

    /// True when `ip` holds its whole share of unconfirmed peers.
    pub fn host_full(&self, ip: IpAddr, quota: usize) -> bool {
        self.by_host.get(&ip).is_some_and(|h| h.unconfirmed >= quota)
    }

    /// The host holding the most unconfirmed peers, if it holds more than one.
    pub fn heaviest_host(&self) -> Option<IpAddr> {
        self.heaviest.filter(|h| self.by_host.get(h).is_some_and(|h| h.unconfirmed > 1))
    }

    /// The oldest unconfirmed peer from `ip`.
    pub fn oldest_of_host(&mut self, ip: IpAddr, still: impl Fn(u32) -> bool) -> Option<u32> {
        let host = self.by_host.get_mut(&ip)?;
        pop_valid(&mut host.slots, still)
    }

    /// The oldest unconfirmed peer.
    pub fn oldest_unconfirmed(&mut self, still: impl Fn(u32) -> bool) -> Option<u32> {
        pop_valid(&mut self.unconfirmed, still)
    }

    /// The oldest dead or left peer.
    pub fn oldest_gone(&mut self, still: impl Fn(u32) -> bool) -> Option<u32> {
        pop_valid(&mut self.gone, still)
    }
}

fn pop_valid(queue: &mut VecDeque<u32>, still: impl Fn(u32) -> bool) -> Option<u32> {
    while let Some(slot) = queue.pop_front() {
        if still(slot) {
            return Some(slot);
        }
    }
    None
}

/// Queues a candidate; once stale entries outnumber the peers, keeps only those `still`
/// candidates, one per slot, so a queue stays in proportion to the table.
fn remember(queue: &mut VecDeque<u32>, slot: u32, peers: usize, still: impl Fn(u32) -> bool) {
    queue.push_back(slot);
    if queue.len() > 2 * peers + 1024 {
        let mut seen = HashSet::new();
        queue.retain(|&s| still(s) && seen.insert(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_host_is_full_at_its_quota_and_gives_its_oldest_first() {
        let mut adm = Admission::default();
        for slot in 0..16 {
            adm.inserted(slot, A, 100, |_| true);
        }
        adm.inserted(99, B, 100, |_| true);
        assert!(adm.host_full(A, 16));
        assert_eq!(adm.heaviest_host(), Some(A));
        assert_eq!(adm.oldest_of_host(A, |s| s != 0), Some(1), "slot 0 was confirmed since");
        adm.no_longer_unconfirmed(A);
        assert!(!adm.host_full(A, 16));
    }

    #[test]
    fn stale_entries_do_not_pile_up() {
        let mut adm = Admission::default();
        for slot in 0..100_000 {
            adm.inserted(slot % 10, A, 10, |s| s == slot % 10);
            adm.no_longer_unconfirmed(A);
        }
        assert!(adm.unconfirmed.len() <= 2 * 10 + 1024 + 1);
        assert!(adm.by_host.is_empty());
    }
}
