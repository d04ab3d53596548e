//! Leader election against a real etcd (tests/harness/etcd.py): one of two candidates
//! leads, resign hands over at once, a revoked lease ends the term (`lost`, `check()`
//! fails) and the candidate campaigns again with a larger token.

mod etcd_support;

use std::time::{Duration, Instant};

use etcd_support::{options, wait_event, Etcd};
use hb_core::{Election, Error, Reason, State};

fn candidate(etcd: &Etcd, value: &str) -> Election {
    let o = options(&[("endpoint", &etcd.url("/svc")), ("ttl", "5s")]);
    Election::new(&o, "db", value.as_bytes()).unwrap()
}

#[test]
fn one_of_two_leads_and_resign_hands_over_without_waiting_for_the_ttl() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    let a = candidate(&etcd, "a");
    let b = candidate(&etcd, "b");
    let first = a.campaign(Duration::from_secs(10)).unwrap();
    a.check().unwrap();
    assert!(a.remaining().unwrap() > Duration::from_secs(3));
    // b's key is behind a's: b is a candidate, not the leader.
    assert!(matches!(b.campaign(Duration::from_millis(500)), Err(Error::Timeout { .. })));
    assert!(matches!(b.check(), Err(Error::NotHolder(_))));
    assert_eq!(b.remaining().unwrap(), Duration::ZERO);
    let seen = b.leader().unwrap().expect("b observes a leader");
    assert_eq!((seen.value.as_slice(), seen.token), (b"a".as_slice(), first));
    assert_eq!(etcd.keys("/svc/election/db/").len(), 2);
    assert_eq!(etcd.keys("/svc/election/db/")[0], format!("/svc/election/db/{:x}", first.lease_id));

    let resigned = Instant::now();
    a.resign(Duration::from_secs(2)).unwrap();
    assert!(a.check().is_err(), "check() fails as soon as resign returns");
    let second = b.campaign(Duration::from_secs(10)).unwrap();
    let handover = resigned.elapsed();
    assert!(handover < Duration::from_secs(2), "handed over in {handover:?}, not after the 5 s TTL");
    assert!(second > first && second.revision > first.revision, "{second:?} after {first:?}");
    b.check().unwrap();
    let lost = wait_event(a.events(), Duration::from_secs(5), "a's lost", |e| e.to == State::Lost);
    assert_eq!((lost.reason, lost.epoch), (Reason::Resigned, first.revision as u64));
    wait_event(b.events(), Duration::from_secs(5), "b's elected", |e| e.to == State::Elected);
    eprintln!("handover after resign: {handover:?}");
}

#[test]
fn a_revoked_lease_ends_the_term_at_once_and_the_candidate_campaigns_again() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    let a = candidate(&etcd, "a");
    let first = a.campaign(Duration::from_secs(10)).unwrap();
    a.check().unwrap();
    etcd.etcdctl(&["lease", "revoke", &format!("{:x}", first.lease_id)]);
    let lost = wait_event(a.events(), Duration::from_secs(5), "lost", |e| e.to == State::Lost);
    assert!(matches!(lost.reason, Reason::KeyDeleted | Reason::LeaseNotFound), "{lost:?}");
    // A new term, never the old one resumed.
    let again = a.campaign(Duration::from_secs(10)).unwrap();
    assert!(again.revision > first.revision && again.lease_id != first.lease_id, "{again:?} after {first:?}");
    a.check().unwrap();
}

#[test]
fn without_recampaign_a_loss_withdraws_the_candidacy() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    let a = candidate(&etcd, "a");
    a.set_recampaign(false);
    let first = a.campaign(Duration::from_secs(10)).unwrap();
    etcd.etcdctl(&["lease", "revoke", &format!("{:x}", first.lease_id)]);
    wait_event(a.events(), Duration::from_secs(5), "lost", |e| e.to == State::Lost);
    assert!(a.check().is_err());
    etcd_support::wait_for(Duration::from_secs(5), "no candidate key left", || {
        etcd.keys("/svc/election/db/").is_empty().then_some(())
    });
    // Asked to, it campaigns again.
    assert!(a.campaign(Duration::from_secs(10)).unwrap() > first);
}

#[test]
fn bad_input_is_named() {
    let o = options(&[("endpoint", "udp://127.0.0.1:9")]);
    let e = Election::new(&o, "db", b"").err().unwrap().to_string();
    assert!(e.contains("endpoint") && e.contains("udp://127.0.0.1:9"), "{e}");
    let o = options(&[("endpoint", "etcd://127.0.0.1:9/p")]);
    let e = Election::new(&o, "a/b", b"").err().unwrap().to_string();
    assert!(e.contains("name") && e.contains("a/b"), "{e}");
}
