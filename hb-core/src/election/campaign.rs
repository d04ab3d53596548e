//! One candidacy's task: watches the election directory (one listing, then a watch from its
//! revision, like the Watcher), and decides from that view and from the lease's health
//! whether we lead. The lease itself — grant, keepalive with member failover, own-key
//! watch, re-registration — is the Client's registration (`registry::registration`), so
//! `check()` here is exactly as conservative as a Client's.
//!
//! A term ends for good when the lease's health is lost while we lead (the deadline by our
//! clock, the lease or key gone): `lost` is emitted, and the key is revoked so that we
//! campaign again with a new key (a new, higher token) rather than resume the old term.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::client::shared::{ClientShared, Transport};
use crate::events::{Event, Reason, State};
use crate::registry::connect::Connection;
use crate::registry::registration::{Made, Registration};

use super::key::Token;
use super::view::View;
use super::Inner;

/// What the candidacy's task works with.
pub(crate) struct Candidacy {
    pub inner: Arc<Inner>,
    pub lease: Arc<ClientShared>,
    pub registration: Arc<Registration>,
    pub made: watch::Receiver<Option<Made>>,
    /// The lease's own health transitions (its internal event hub, forwarded).
    pub health: mpsc::UnboundedReceiver<Event>,
    pub conn: Arc<Connection>,
}

/// Runs until the candidacy ends (resign, stop, or a loss without recampaign).
pub(crate) async fn run(mut c: Candidacy) {
    let mut local = Local::default();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    while watch_directory(&mut c, &mut local).await == Watched::Broken {
        tokio::time::sleep(backoff.next()).await;
    }
}

/// What the task keeps between watch streams.
#[derive(Default)]
struct Local {
    view: View,
    ended: Ended,
    /// The registration epoch our term was won with: a health event of an older
    /// registration (still queued when the new one won) must not end it.
    term_epoch: u64,
}

/// The lease of a term that ended while its registration still carries it: it must not
/// lead again, and it is revoked (retried until it is, or the registration moved on).
#[derive(Default)]
struct Ended {
    lease: i64,
    revoked: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watched {
    /// The stream broke or stalled: list and watch again.
    Broken,
    /// The candidacy is over.
    Over,
}

/// One listing and one watch stream of the election directory, deciding after each change.
async fn watch_directory(c: &mut Candidacy, local: &mut Local) -> Watched {
    let interval = c.lease.config.ttl / 3;
    let dir = c.inner.dir.clone();
    let Ok((member, mut client)) = c.conn.member(interval).await else {
        return Watched::Broken;
    };
    let listing = tokio::time::timeout(interval, client.get(dir.as_str(), Some(GetOptions::new().with_prefix()))).await;
    let Ok(Ok(resp)) = listing else {
        c.conn.member_failed(member);
        return Watched::Broken;
    };
    local.view.clear();
    for kv in resp.kvs() {
        local.view.put(kv.key_str().unwrap_or_default(), kv.value(), kv.create_revision(), kv.lease());
    }
    let from = resp.header().map_or(0, |h| h.revision()) + 1;
    let options = WatchOptions::new().with_prefix().with_start_revision(from);
    let opened = tokio::time::timeout(interval, client.watch(dir.as_str(), Some(options))).await;
    let Ok(Ok((mut watcher, mut stream))) = opened else {
        c.conn.member_failed(member);
        return Watched::Broken;
    };
    if let Some(term) = decide(c, local) {
        if term_over(c, local, term) == Watched::Over {
            return Watched::Over;
        }
    }
    let mut progress = tokio::time::interval(interval);
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    progress.tick().await;
    let mut asked: Option<Instant> = None;
    let mut revoke_retry = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            msg = stream.message() => {
                let Ok(Some(resp)) = msg else {
                    c.conn.member_failed(member);
                    return Watched::Broken;
                };
                asked = None;
                if resp.canceled() {
                    // Compacted past us or refused: list again.
                    return Watched::Broken;
                }
                for event in resp.events() {
                    let Some(kv) = event.kv() else { continue };
                    let key = kv.key_str().unwrap_or_default();
                    match event.event_type() {
                        EventType::Put => local.view.put(key, kv.value(), kv.create_revision(), kv.lease()),
                        EventType::Delete => local.view.delete(key),
                    }
                }
            }
            changed = c.made.changed() => {
                if changed.is_err() {
                    return Watched::Over;
                }
            }
            health = c.health.recv() => {
                let Some(event) = health else { return Watched::Over };
                let ours = event.to == State::Lost && event.epoch == local.term_epoch;
                if let Some(term) = ours.then(|| c.inner.end_term(event.reason)).flatten() {
                    if term_over(c, local, term) == Watched::Over {
                        return Watched::Over;
                    }
                }
            }
            _ = revoke_retry.tick(), if local.ended.lease != 0 && !local.ended.revoked => {
                let mut client = c.conn.client();
                let revoked = tokio::time::timeout(interval, client.lease_revoke(local.ended.lease)).await;
                local.ended.revoked = matches!(revoked, Ok(Ok(_)));
            }
            _ = progress.tick() => {
                if asked.is_some_and(|at| at.elapsed() >= interval) {
                    // No answer to a progress request within TTL/3: a frozen member.
                    c.conn.member_failed(member);
                    return Watched::Broken;
                }
                if asked.is_none() && watcher.request_progress().await.is_ok() {
                    asked = Some(Instant::now());
                }
            }
        }
        if let Some(term) = decide(c, local) {
            if term_over(c, local, term) == Watched::Over {
                return Watched::Over;
            }
        }
    }
}

/// After our term on `term` ended: its lease is revoked (so that we campaign again with a
/// new key), or, without recampaign, the candidacy is withdrawn.
fn term_over(c: &Candidacy, local: &mut Local, term: Token) -> Watched {
    local.ended = Ended { lease: term.lease_id, revoked: false };
    if c.inner.recampaigns() {
        return Watched::Broken;
    }
    // Withdraw: the registration's stop revokes whatever lease it has now.
    let reg = Arc::clone(&c.registration);
    let timeout = c.lease.config.stop_timeout;
    tokio::task::spawn_blocking(move || reg.stop(timeout));
    c.inner.candidacy_over();
    Watched::Over
}

/// Compares what we see with what we claim: the observed leader, and our own term.
/// Returns the term that ended here, if one did.
fn decide(c: &Candidacy, local: &mut Local) -> Option<Token> {
    let view = &local.view;
    c.inner.observe(view.leader());
    let made = c.made.borrow().clone()?;
    if made.lease != local.ended.lease {
        local.ended = Ended::default();
    }
    let leads = view.leads(&made.key);
    let healthy = c.lease.health.lock().check(c.lease.now_ns()).is_ok();
    match c.inner.leading() {
        // Our key is gone from the directory (the registration will say why, too).
        Some(term) if term.lease_id != made.lease || !leads => return c.inner.end_term(Reason::KeyDeleted),
        Some(_) => {}
        None if leads && healthy && local.ended.lease == 0 => {
            let token = view.leader().map(|l| l.token).filter(|t| t.lease_id == made.lease);
            if let Some(token) = token {
                local.term_epoch = made.epoch;
                c.inner.elect(token);
            }
        }
        None => {}
    }
    None
}
