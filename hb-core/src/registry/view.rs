//! The watcher's node view: registrations by key, and the events that changes to it make.
//!
//! Pure (no I/O), so the event rules are tested without etcd:
//! - a new key → `joined` (reason `registered`), or `left` if it is already marked leaving;
//! - a changed value → `updated` (reason `updated`); marked leaving → `left` (reason `left`);
//! - a key gone after `leaving` → nothing more (the departure was already reported);
//! - a key gone without `leaving` → `expired` (reason `lease_expired`);
//! - a value that is not a registration's JSON → `invalid` (reason `malformed_value`): never
//!   a member, not in `peers()`; its deletion reports nothing more.

use std::collections::BTreeMap;

use crate::events::{unix_ms_now, Event, Reason, State};
use crate::peers::PeerInfo;

use super::value::{split_key, RegistrationValue};

#[derive(Clone, Debug)]
struct Entry {
    info: PeerInfo,
    leaving: bool,
    /// The value is not a registration: reported `invalid`, not a member.
    malformed: bool,
    value: Vec<u8>,
    /// The `to` of the last event reported for this key.
    last: State,
}

#[derive(Debug, Default)]
pub(crate) struct View {
    prefix: String,
    entries: BTreeMap<String, Entry>,
}

impl View {
    pub fn new(prefix: &str) -> View {
        View { prefix: prefix.trim_end_matches('/').to_string(), entries: BTreeMap::new() }
    }

    pub fn peers(&self) -> Vec<PeerInfo> {
        self.entries.values().filter(|e| !e.malformed).map(|e| e.info.clone()).collect()
    }

    pub fn value_of(&self, key: &str) -> Option<&[u8]> {
        self.entries.get(key).map(|e| e.value.as_slice())
    }

    #[cfg(test)]
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    /// A key was written with `value`.
    pub fn put(&mut self, key: &str, value: &[u8]) -> Option<Event> {
        let (key_service, key_id) = split_key(&self.prefix, key)?;
        let parsed = RegistrationValue::parse(value);
        let malformed = parsed.is_none();
        let leaving = parsed.as_ref().is_some_and(RegistrationValue::is_leaving);
        let mut info = PeerInfo {
            id: key_id.to_string(),
            service: key_service.to_string(),
            labels: BTreeMap::new(),
            state: if malformed {
                State::Invalid
            } else if leaving {
                State::Left
            } else {
                State::Alive
            },
            last_seen_unix_ms: unix_ms_now(),
            incarnation: 0,
            epoch: 0,
            interval_ms: 0,
            rtt_us: None,
            addr: None,
        };
        if let Some(v) = &parsed {
            info.labels = v.labels.clone();
            info.incarnation = v.incarnation;
            info.epoch = v.epoch;
        }
        let (from, to, reason) = match self.entries.get(key) {
            Some(old) if old.value == value => return None,
            old if malformed => (old.map_or(State::Unknown, |o| o.last), State::Invalid, Reason::MalformedValue),
            None if leaving => (State::Unknown, State::Left, Reason::Left),
            None => (State::Unknown, State::Joined, Reason::Registered),
            Some(old) if old.malformed => (old.last, State::Joined, Reason::Registered),
            Some(old) if leaving && !old.leaving => (old.last, State::Left, Reason::Left),
            Some(old) => (old.last, State::Updated, Reason::Updated),
        };
        let event = event_for(&info, from, to, reason);
        self.entries.insert(key.to_string(), Entry { info, leaving, malformed, value: value.to_vec(), last: to });
        Some(event)
    }

    /// A key was deleted (lease revoked or expired, or removed by hand).
    pub fn delete(&mut self, key: &str) -> Option<Event> {
        let old = self.entries.remove(key)?;
        if old.leaving || old.malformed {
            return None;
        }
        Some(event_for(&old.info, old.last, State::Expired, Reason::LeaseExpired))
    }

    /// Replaces the view with a fresh listing, reporting exactly the differences.
    pub fn resync(&mut self, listing: &[(String, Vec<u8>)]) -> Vec<Event> {
        let listed: BTreeMap<&str, &[u8]> = listing.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let gone: Vec<String> = self.entries.keys().filter(|k| !listed.contains_key(k.as_str())).cloned().collect();
        let mut events: Vec<Event> = gone.iter().filter_map(|k| self.delete(k)).collect();
        events.extend(listing.iter().filter_map(|(k, v)| self.put(k, v)));
        events
    }
}

fn event_for(info: &PeerInfo, from: State, to: State, reason: Reason) -> Event {
    let mut ev = Event::new(&info.id, &info.service, from, to, reason);
    ev.incarnation = info.incarnation;
    ev.epoch = info.epoch;
    ev.labels = info.labels.clone();
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::value::{STATE_LEAVING, STATE_UP};

    fn value(id: &str, epoch: u64, state: &str) -> Vec<u8> {
        RegistrationValue {
            id: id.into(),
            service: "svc".into(),
            labels: [("zone".to_string(), "z1".to_string())].into(),
            incarnation: 3,
            epoch,
            started_unix_ms: 1,
            state: state.into(),
        }
        .to_json()
    }

    fn kinds(events: &[Event]) -> Vec<(String, State, Reason)> {
        events.iter().map(|e| (e.peer.clone(), e.to, e.reason)).collect()
    }

    #[test]
    fn joined_updated_left_expired() {
        let mut v = View::new("/p");
        let e = v.put("/p/svc/a", &value("a", 1, STATE_UP)).unwrap();
        assert_eq!((e.from, e.to, e.reason, e.epoch), (State::Unknown, State::Joined, Reason::Registered, 1));
        assert_eq!(e.labels["zone"], "z1");
        assert_eq!(v.put("/p/svc/a", &value("a", 1, STATE_UP)), None);
        let e = v.put("/p/svc/a", &value("a", 2, STATE_UP)).unwrap();
        assert_eq!((e.from, e.to, e.reason), (State::Joined, State::Updated, Reason::Updated));
        let e = v.put("/p/svc/a", &value("a", 2, STATE_LEAVING)).unwrap();
        assert_eq!((e.to, e.reason), (State::Left, Reason::Left));
        assert_eq!(v.peers()[0].state, State::Left);
        assert_eq!(v.delete("/p/svc/a"), None);
        v.put("/p/svc/b", &value("b", 1, STATE_UP));
        let e = v.delete("/p/svc/b").unwrap();
        assert_eq!((e.from, e.to, e.reason), (State::Joined, State::Expired, Reason::LeaseExpired));
        assert!(v.peers().is_empty());
        assert_eq!(v.put("/other/svc/x", b"{}"), None);
    }

    #[test]
    fn a_value_that_is_not_a_registration_is_invalid_never_a_member() {
        let mut v = View::new("/p");
        let e = v.put("/p/svc/x", b"not json").unwrap();
        assert_eq!(
            (e.peer.as_str(), e.from, e.to, e.reason),
            ("x", State::Unknown, State::Invalid, Reason::MalformedValue)
        );
        assert!(v.peers().is_empty(), "not a member");
        assert_eq!(v.put("/p/svc/x", b"not json"), None);
        // A member whose value turns into garbage stops being one.
        v.put("/p/svc/a", &value("a", 1, STATE_UP));
        let e = v.put("/p/svc/a", b"{\"id\":1}").unwrap();
        assert_eq!((e.from, e.to, e.reason), (State::Joined, State::Invalid, Reason::MalformedValue));
        assert!(v.peers().is_empty());
        // ...and becomes one again with a valid value; the deletion of garbage says nothing.
        let e = v.put("/p/svc/a", &value("a", 2, STATE_UP)).unwrap();
        assert_eq!((e.from, e.to, e.reason), (State::Invalid, State::Joined, Reason::Registered));
        assert_eq!(v.delete("/p/svc/x"), None);
        assert_eq!(v.peers().len(), 1);
    }

    #[test]
    fn resync_reports_only_differences() {
        let mut v = View::new("/p");
        v.put("/p/svc/a", &value("a", 1, STATE_UP));
        v.put("/p/svc/b", &value("b", 1, STATE_UP));
        v.put("/p/svc/c", &value("c", 1, STATE_LEAVING));
        let listing = vec![
            ("/p/svc/a".to_string(), value("a", 1, STATE_UP)),
            ("/p/svc/b".to_string(), value("b", 1, STATE_LEAVING)),
            ("/p/svc/d".to_string(), value("d", 1, STATE_UP)),
        ];
        let events = v.resync(&listing);
        assert_eq!(
            kinds(&events),
            vec![("b".to_string(), State::Left, Reason::Left), ("d".to_string(), State::Joined, Reason::Registered),]
        );
        assert_eq!(v.keys().cloned().collect::<Vec<_>>(), vec!["/p/svc/a", "/p/svc/b", "/p/svc/d"]);
        assert!(v.resync(&listing).is_empty());
        let events = v.resync(&[]);
        assert_eq!(
            kinds(&events),
            vec![
                ("a".to_string(), State::Expired, Reason::LeaseExpired),
                ("d".to_string(), State::Expired, Reason::LeaseExpired)
            ]
        );
    }
}
