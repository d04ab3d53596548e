//! The Watcher against a real etcd: joined / updated / left / expired, and resynchronising
//! after a disconnect (history replayed), a compaction (listed again and diffed) and an
//! etcd restart, with the view equal to `etcdctl get --prefix` afterwards.

mod etcd_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_support::{drain, options, start_client, wait_event, wait_for, Etcd};
use hb_core::registry::RegistrationValue;
use hb_core::Client;
use hb_core::{Event, Reason, State, Watcher};

fn member(endpoint: &str, id: &str, ttl: &str) -> Client {
    start_client(&options(&[("endpoint", endpoint), ("service", "svc"), ("instance_id", id), ("ttl", ttl)]))
        .unwrap_or_else(|e| panic!("start {id}: {e}"))
}

fn watcher(endpoint: &str) -> Watcher {
    let w = Watcher::new(&options(&[("endpoint", endpoint), ("connect_timeout", "3s")])).unwrap();
    w.start().unwrap();
    w
}

fn value(id: &str, epoch: u64, state: &str) -> String {
    let v = RegistrationValue {
        id: id.into(),
        service: "svc".into(),
        labels: Default::default(),
        incarnation: 1,
        epoch,
        started_unix_ms: 1,
        state: state.into(),
    };
    String::from_utf8(v.to_json()).unwrap()
}

fn view_ids(w: &Watcher) -> BTreeSet<String> {
    w.peers().unwrap().into_iter().map(|p| format!("/services/{}/{}", p.service, p.id)).collect()
}

fn etcd_ids(etcd: &Etcd) -> BTreeSet<String> {
    etcd.keys("/services/").into_iter().collect()
}

fn event_for(events: &[Event], id: &str) -> Vec<(State, Reason)> {
    events.iter().filter(|e| e.peer == id).map(|e| (e.to, e.reason)).collect()
}

#[test]
fn joined_updated_left_and_expired_are_told_apart() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    let url = etcd.url("/services");
    let early = member(&url, "early", "3s");
    let w = watcher(&url);
    let ev = wait_event(w.events(), Duration::from_secs(2), "early joined", |e| e.peer == "early");
    assert_eq!(
        (ev.from, ev.to, ev.reason, ev.epoch, ev.service.as_str()),
        (State::Unknown, State::Joined, Reason::Registered, 1, "svc")
    );

    let a = member(&url, "a", "3s");
    let ev = wait_event(w.events(), Duration::from_secs(3), "a joined", |e| e.peer == "a");
    assert_eq!((ev.to, ev.reason, ev.incarnation), (State::Joined, Reason::Registered, a.incarnation().unwrap()));

    etcd.etcdctl(&["put", "/services/svc/manual", &value("manual", 1, "up")]);
    wait_event(w.events(), Duration::from_secs(3), "manual joined", |e| e.peer == "manual" && e.to == State::Joined);
    etcd.etcdctl(&["put", "/services/svc/manual", &value("manual", 2, "up")]);
    let ev = wait_event(w.events(), Duration::from_secs(3), "manual updated", |e| e.peer == "manual");
    assert_eq!((ev.from, ev.to, ev.reason, ev.epoch), (State::Joined, State::Updated, Reason::Updated, 2));

    // Graceful stop: left, and nothing after it for that peer.
    a.stop(Duration::from_secs(2)).unwrap();
    let ev = wait_event(w.events(), Duration::from_secs(3), "a left", |e| e.peer == "a");
    assert_eq!((ev.to, ev.reason), (State::Left, Reason::Left));

    // Crashed (no goodbye): the key vanishes by TTL → expired.
    early.crash_for_test();
    drop(early);
    let ev = wait_event(w.events(), Duration::from_secs(6), "early expired", |e| e.peer == "early");
    assert_eq!((ev.to, ev.reason), (State::Expired, Reason::LeaseExpired));

    std::thread::sleep(Duration::from_millis(300));
    assert!(event_for(&drain(w.events()), "a").is_empty(), "no event after left");
    assert_eq!(view_ids(&w), etcd_ids(&etcd));
    let peers = w.peers().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!((peers[0].id.as_str(), peers[0].state, peers[0].epoch), ("manual", State::Alive, 2));
    w.stop().unwrap();
    assert!(w.events().next_event(Some(Duration::ZERO)).is_err(), "closed after stop");
}

/// A TCP proxy the test can cut (closing every connection and refusing new ones) and
/// restore, to disconnect the watcher alone while etcd goes on.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    generation: Arc<std::sync::atomic::AtomicU64>,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up2, gen2) = (up.clone(), generation.clone());
        rt.spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: connection closed at once
                }
                let (up3, gen3) = (up2.clone(), gen2.clone());
                let born = gen3.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let cut = async {
                        while up3.load(Ordering::SeqCst) && gen3.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, _ = cut => {} }
                });
            }
        });
        Proxy { port, up, generation, _rt: rt }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn disconnect_replays_history_and_compaction_resyncs_by_diff() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    let proxy = Proxy::start(etcd.client_port);
    for id in ["stay", "leaver", "dier", "changer"] {
        etcd.etcdctl(&["put", &format!("/services/svc/{id}"), &value(id, 1, "up")]);
    }
    let w = watcher(&format!("etcd://127.0.0.1:{}/services", proxy.port));
    wait_for(Duration::from_secs(3), "initial view", || (w.peers().unwrap().len() == 4).then_some(()));
    drain(w.events());

    // 1. Disconnected, history kept: every change is replayed, so a leave stays a leave.
    proxy.cut();
    etcd.etcdctl(&["put", "/services/svc/leaver", &value("leaver", 1, "leaving")]);
    etcd.etcdctl(&["del", "/services/svc/leaver"]);
    etcd.etcdctl(&["del", "/services/svc/dier"]);
    etcd.etcdctl(&["put", "/services/svc/new1", &value("new1", 1, "up")]);
    std::thread::sleep(Duration::from_millis(300));
    proxy.restore();
    wait_for(Duration::from_secs(10), "view after replay", || (view_ids(&w) == etcd_ids(&etcd)).then_some(()));
    std::thread::sleep(Duration::from_millis(200));
    let events = drain(w.events());
    assert_eq!(event_for(&events, "leaver"), vec![(State::Left, Reason::Left)]);
    assert_eq!(event_for(&events, "dier"), vec![(State::Expired, Reason::LeaseExpired)]);
    assert_eq!(event_for(&events, "new1"), vec![(State::Joined, Reason::Registered)]);
    assert!(event_for(&events, "stay").is_empty() && event_for(&events, "changer").is_empty());

    // 2. Disconnected across a compaction: the history is gone, so list again and diff.
    proxy.cut();
    etcd.etcdctl(&["put", "/services/svc/changer", &value("changer", 2, "up")]);
    etcd.etcdctl(&["del", "/services/svc/new1"]);
    etcd.etcdctl(&["put", "/services/svc/new2", &value("new2", 1, "up")]);
    etcd.etcdctl(&["put", "/services/svc/new2", &value("new2", 2, "up")]);
    let status = etcd.etcdctl(&["endpoint", "status", "-w", "json"]);
    let rev = serde_json::from_str::<serde_json::Value>(&status).unwrap()[0]["Status"]["header"]["revision"]
        .as_i64()
        .unwrap();
    etcd.etcdctl(&["compact", &rev.to_string()]);
    proxy.restore();
    wait_for(Duration::from_secs(10), "view after compaction", || (view_ids(&w) == etcd_ids(&etcd)).then_some(()));
    wait_for(Duration::from_secs(3), "changer epoch 2", || {
        w.peers().unwrap().iter().any(|p| p.id == "changer" && p.epoch == 2).then_some(())
    });
    std::thread::sleep(Duration::from_millis(200));
    let events = drain(w.events());
    assert_eq!(event_for(&events, "changer"), vec![(State::Updated, Reason::Updated)]);
    assert_eq!(event_for(&events, "new1"), vec![(State::Expired, Reason::LeaseExpired)]);
    // Joined once, with its latest value: nothing invented for the intermediate write.
    assert_eq!(event_for(&events, "new2"), vec![(State::Joined, Reason::Registered)]);
    assert!(event_for(&events, "stay").is_empty());
    w.stop().unwrap();
}

#[test]
fn a_foreign_key_under_the_prefix_does_not_turn_a_leave_into_an_expiry() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    let proxy = Proxy::start(etcd.client_port);
    // Not `prefix/service/id`: never in the view, and must not look like lost history.
    etcd.etcdctl(&["put", "/services/junk", "not a registration"]);
    etcd.etcdctl(&["put", "/services/svc/a/deeper", "nor this"]);
    for id in ["stay", "leaver"] {
        etcd.etcdctl(&["put", &format!("/services/svc/{id}"), &value(id, 1, "up")]);
    }
    let w = watcher(&format!("etcd://127.0.0.1:{}/services", proxy.port));
    wait_for(Duration::from_secs(3), "initial view", || (w.peers().unwrap().len() == 2).then_some(()));
    drain(w.events());

    // Reconnecting resumes from our revision (history replayed), so the leave stays a
    // leave; a relist would only see the key gone and report it expired.
    proxy.cut();
    etcd.etcdctl(&["put", "/services/svc/leaver", &value("leaver", 1, "leaving")]);
    etcd.etcdctl(&["del", "/services/svc/leaver"]);
    std::thread::sleep(Duration::from_millis(300));
    proxy.restore();
    wait_for(Duration::from_secs(10), "leaver gone from the view", || (w.peers().unwrap().len() == 1).then_some(()));
    std::thread::sleep(Duration::from_millis(200));
    let events = drain(w.events());
    assert_eq!(event_for(&events, "leaver"), vec![(State::Left, Reason::Left)]);
    assert!(event_for(&events, "stay").is_empty(), "{events:#?}");
    w.stop().unwrap();
}

#[test]
fn etcd_restart_and_wipe_keep_the_view_equal_to_etcd() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let mut etcd = Etcd::start();
    let url = etcd.url("/services");
    let members: Vec<Client> = (0..5).map(|i| member(&url, &format!("n{i}"), "2s")).collect();
    let w = watcher(&url);
    wait_for(Duration::from_secs(3), "5 peers", || (w.peers().unwrap().len() == 5).then_some(()));

    etcd.restart(false);
    etcd.etcdctl(&["put", "/services/svc/extra", &value("extra", 1, "up")]);
    wait_for(Duration::from_secs(10), "view after restart", || {
        (view_ids(&w) == etcd_ids(&etcd) && w.peers().unwrap().len() == 6).then_some(())
    });

    // A wiped etcd counts revisions from 1 again: the watcher must notice and list.
    drain(w.events());
    etcd.restart(true);
    wait_for(Duration::from_secs(15), "members re-registered after wipe", || {
        (etcd_ids(&etcd).len() == 5 && w.peers().unwrap().iter().filter(|p| p.epoch == 2).count() == 5).then_some(())
    });
    wait_for(Duration::from_secs(5), "view after wipe", || (view_ids(&w) == etcd_ids(&etcd)).then_some(()));
    let events = drain(w.events());
    assert!(events.iter().any(|e| e.peer == "extra" && e.to == State::Expired), "{events:#?}");
    for m in &members {
        m.stop(Duration::from_secs(2)).unwrap();
    }
    wait_for(Duration::from_secs(5), "empty view", || w.peers().unwrap().is_empty().then_some(()));
    w.stop().unwrap();
}

#[test]
fn a_value_that_is_not_a_registration_is_reported_invalid_not_joined() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    etcd.etcdctl(&["put", "/services/svc/garbage", "not json"]);
    let w = watcher(&etcd.url("/services"));
    let ev = wait_event(w.events(), Duration::from_secs(3), "garbage reported", |e| e.peer == "garbage").clone();
    assert_eq!((ev.from, ev.to, ev.reason), (State::Unknown, State::Invalid, Reason::MalformedValue));
    assert!(w.peers().unwrap().is_empty(), "not a member");
    // A member whose value is overwritten with garbage stops being one.
    etcd.etcdctl(&["put", "/services/svc/m", &value("m", 1, "up")]);
    wait_event(w.events(), Duration::from_secs(3), "m joined", |e| e.peer == "m" && e.to == State::Joined);
    etcd.etcdctl(&["put", "/services/svc/m", "{\"id\":"]);
    let ev = wait_event(w.events(), Duration::from_secs(3), "m invalid", |e| e.peer == "m").clone();
    assert_eq!((ev.from, ev.to, ev.reason), (State::Joined, State::Invalid, Reason::MalformedValue));
    assert!(w.peers().unwrap().is_empty());
    w.stop().unwrap();
}
