//! A Client's etcd registration: grant(TTL), put-with-lease, keepalive every TTL/3 (on the
//! process's keepalive slots, `schedule`) over the connection's shared keepalive stream,
//! re-registration with a higher epoch after a lost lease, a watch on our own key, and a
//! graceful leave (mark `leaving`, then revoke).
//!
//! The own-key watch is what keeps fencing honest when etcd deletes the key before our
//! TTL arithmetic says it may: a key deleted by hand, or a lease revoked while we kept it
//! alive (etcd 3.4's old leader does this after a pause, etcd-io/etcd#15247). `check()`
//! fails the moment the deletion reaches us, and we register again with a new epoch.
//!
//! It never gives up (go-kratos/kratos#3883): every failure is retried with jittered
//! backoff for as long as the Client runs. Health and fencing follow from what etcd
//! acknowledged, on our own monotonic clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, PutOptions, WatchOptions};
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::client::shared::{ClientShared, Transport};
use crate::error::{Error, Result};
use crate::events::{Reason, State};

use super::connect::{is_token_error, join_hosts, Connection};
use super::keepalive::Answer;
use super::schedule::Slots;
use super::value::{self, RegistrationValue, STATE_LEAVING, STATE_UP};

/// What a registration writes under its lease. A Client's record is its registration
/// value at a fixed key; an election candidate's key names its lease (`election::key`).
pub(crate) trait Record: Send + Sync + 'static {
    /// The key for a registration under `lease`.
    fn key(&self, lease: i64) -> String;
    /// The value of registration `epoch`.
    fn value(&self, epoch: u64) -> Vec<u8>;
    /// The value that marks a graceful leave before the revoke, if the record has one.
    fn leaving(&self, epoch: u64) -> Option<Vec<u8>>;
}

/// A Client's registration value at `prefix/service/instance-id`.
struct ClientRecord {
    key: String,
    shared: Arc<ClientShared>,
    started_unix_ms: u64,
}

impl ClientRecord {
    fn value_in(&self, epoch: u64, state: &str) -> Vec<u8> {
        let config = &self.shared.config;
        RegistrationValue {
            id: config.instance_id.clone(),
            service: config.service.clone(),
            labels: config.labels.clone(),
            incarnation: self.shared.incarnation,
            epoch,
            started_unix_ms: self.started_unix_ms,
            state: state.to_string(),
        }
        .to_json()
    }
}

impl Record for ClientRecord {
    fn key(&self, _lease: i64) -> String {
        self.key.clone()
    }
    fn value(&self, epoch: u64) -> Vec<u8> {
        self.value_in(epoch, STATE_UP)
    }
    fn leaving(&self, epoch: u64) -> Option<Vec<u8>> {
        Some(self.value_in(epoch, STATE_LEAVING))
    }
}

/// One registration as made: for whoever builds on it (an election campaigns with it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Made {
    pub lease: i64,
    pub key: String,
    /// The revision of the put (the key's creation revision when the key names the lease).
    pub revision: i64,
    pub epoch: u64,
}

/// Waits longer than this are as good as unlimited (`Duration::MAX` from the Rust API);
/// capping them keeps `now + timeout` from overflowing.
const NO_LIMIT: Duration = Duration::from_secs(30 * 365 * 86_400);

pub(crate) struct Registration {
    shared: Arc<ClientShared>,
    stop: Mutex<Option<oneshot::Sender<Instant>>>,
    finished: crossbeam_channel::Receiver<()>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// What the background task and `stop` share.
struct Ctx {
    shared: Arc<ClientShared>,
    record: Box<dyn Record>,
    /// The key of the current registration.
    key: Mutex<String>,
    /// Every registration made, newest last seen (`None` before the first).
    made: watch::Sender<Option<Made>>,
    conn: Mutex<Option<Arc<Connection>>>,
    /// The lease currently carrying our key (0: none).
    lease: AtomicI64,
    /// (lease, revision of our put) of the current registration, for the own-key watch.
    current: watch::Sender<(i64, i64)>,
    /// A lease whose key etcd deleted: set (under the health lock) by the own-key watch,
    /// so that no keepalive answer for it makes us valid again.
    gone_lease: AtomicI64,
    /// Wakes the keepalive loop to register again once our key is gone.
    key_gone: Notify,
    /// Outcomes of registration attempts, for `start` to wait on.
    attempts: crossbeam_channel::Sender<Result<()>>,
}

impl Registration {
    /// Registers and waits (bounded by `connect_timeout`) for the first registration. An
    /// unreachable etcd gives `Error::Connect`, refused credentials `Error::PermissionDenied`;
    /// in both cases nothing keeps running.
    pub(crate) fn start(shared: Arc<ClientShared>) -> Result<Registration> {
        let config = &shared.config;
        let (_, prefix) = config
            .etcd_endpoint()
            .ok_or_else(|| Error::Internal("etcd registration without an etcd endpoint".into()))?;
        let record = ClientRecord {
            key: value::key(prefix, &config.service, &config.instance_id),
            shared: Arc::clone(&shared),
            started_unix_ms: crate::events::unix_ms_now(),
        };
        Registration::start_with(shared, Box::new(record)).map(|(reg, _)| reg)
    }

    /// `start` for any record; also returns the registrations as they are made.
    pub(crate) fn start_with(
        shared: Arc<ClientShared>,
        record: Box<dyn Record>,
    ) -> Result<(Registration, watch::Receiver<Option<Made>>)> {
        let (attempts_tx, attempts) = crossbeam_channel::unbounded();
        let (made, made_rx) = watch::channel(None);
        let ctx = Arc::new(Ctx {
            record,
            key: Mutex::new(String::new()),
            made,
            conn: Mutex::new(None),
            lease: AtomicI64::new(0),
            current: watch::Sender::new((0, 0)),
            gone_lease: AtomicI64::new(0),
            key_gone: Notify::new(),
            attempts: attempts_tx,
            shared: Arc::clone(&shared),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let (finished_tx, finished) = crossbeam_channel::bounded(1);
        let task = crate::runtime::handle()?.spawn(async move {
            let ctx2 = Arc::clone(&ctx);
            tokio::select! {
                _ = keep_registered(&ctx2) => {}
                _ = watch_own_key(&ctx2) => {}
                deadline = stop_rx => {
                    if let Ok(deadline) = deadline {
                        leave(&ctx, deadline).await;
                    }
                }
            }
            let _ = finished_tx.send(());
        });
        let reg = Registration { shared, stop: Mutex::new(Some(stop_tx)), finished, task: Mutex::new(Some(task)) };
        let timeout = reg.shared.config.connect_timeout;
        let deadline = std::time::Instant::now() + timeout.min(NO_LIMIT);
        let mut last: Option<Error> = None;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match attempts.recv_timeout(left) {
                Ok(Ok(())) => return Ok((reg, made_rx)),
                Ok(Err(e @ Error::PermissionDenied { .. })) | Ok(Err(e @ Error::Config { .. })) => {
                    reg.abort();
                    return Err(e);
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => {
                    reg.abort();
                    let addr = reg.shared.config.etcd_endpoint().map(|(h, _)| join_hosts(h)).unwrap_or_default();
                    return Err(match last {
                        Some(Error::Connect { what, addr, detail }) => Error::Connect {
                            what,
                            addr,
                            detail: format!("{detail} (still failing after {} ms)", timeout.as_millis()),
                        },
                        Some(other) => other,
                        None => Error::Connect {
                            what: "etcd",
                            addr,
                            detail: format!("no answer within {} ms", timeout.as_millis()),
                        },
                    });
                }
            }
        }
    }

    fn abort(&self) {
        self.stop.lock().take();
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
    }
}

impl Transport for Registration {
    /// Marks the value `leaving`, then revokes the lease, within `timeout`; if etcd cannot be
    /// reached in that time the key expires by its TTL instead.
    fn stop(&self, timeout: Duration) -> Result<()> {
        let Some(stop) = self.stop.lock().take() else { return Ok(()) };
        let timeout = timeout.min(NO_LIMIT);
        let deadline = Instant::now() + timeout;
        if stop.send(deadline).is_ok() {
            let _ = self.finished.recv_timeout(timeout + Duration::from_millis(100));
        }
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        self.shared.update_health(|h| h.stopped());
        Ok(())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Dropped without stop: no goodbye, the key expires by TTL.
        self.abort();
    }
}

/// First retry delay after a failed registration or keepalive.
const RETRY_MIN: Duration = Duration::from_millis(100);

/// Registers, keeps the lease alive, and registers again whenever the lease is lost.
/// Never returns: stopping drops this future.
async fn keep_registered(ctx: &Ctx) {
    let shared = &ctx.shared;
    let ttl = shared.config.ttl;
    let interval = ttl / 3;
    let mut backoff = Backoff::new(RETRY_MIN, interval.min(Duration::from_secs(3)));
    let mut lost_reason = Reason::LeaseExpired;
    // Keepalives go out on the process's slots for this interval (`schedule`), so that the
    // keepalives of many leases leave together, each lease still exactly every TTL/3.
    let slots = Slots::new(interval);
    let mut next_slot = 0;
    let mut registered = false;
    loop {
        if !registered {
            let sent_ns = shared.now_ns();
            match register(ctx).await {
                Ok((lease, epoch, revision)) => {
                    // Health (so the fencing token) first: a callback handling
                    // `reregistered` must already see the new epoch and pass check().
                    let (again, transition) = {
                        let mut h = shared.health.lock();
                        let again = h.epoch() > 0;
                        (again, h.registered(lease, sent_ns))
                    };
                    if again {
                        crate::metrics::get().reregistrations.inc();
                        shared.emit(State::Lost, State::Reregistered, lost_reason, epoch);
                    }
                    if let Some(t) = transition {
                        shared.emit(t.from, t.to, t.reason, epoch);
                    }
                    ctx.current.send_replace((lease, revision));
                    ctx.made.send_replace(Some(Made { lease, key: ctx.key.lock().clone(), revision, epoch }));
                    let _ = ctx.attempts.send(Ok(()));
                    registered = true;
                    backoff.reset();
                    // The last slot before TTL/3 is up: the first keepalive may be early, never late.
                    next_slot = slots.at_or_before(Instant::now() + interval);
                }
                Err(e) => {
                    let _ = ctx.attempts.send(Err(e));
                    let now = shared.now_ns();
                    shared.update_health(|h| h.failed(now, Reason::ConnectFailed));
                    wait_ticking(shared, Instant::now() + backoff.next()).await;
                }
            }
            continue;
        }

        let lease = ctx.lease.load(Ordering::SeqCst);
        if ctx.gone_lease.load(Ordering::SeqCst) == lease {
            // Our key was deleted (health is already `lost`): register again.
            lost_reason = Reason::KeyDeleted;
            ctx.lease.store(0, Ordering::SeqCst);
            registered = false;
            continue;
        }
        tokio::select! {
            _ = wait_ticking(shared, slots.at(next_slot)) => {}
            _ = ctx.key_gone.notified() => continue,
        }
        let Some(conn) = ctx.conn.lock().clone() else {
            registered = false;
            continue;
        };
        let sent_ns = shared.now_ns();
        let sent = Instant::now();
        match conn.keepalive.keepalive(lease, interval).await {
            Ok(Answer::Alive { .. }) => {
                crate::metrics::get().rtt_seconds.observe(sent.elapsed().as_secs_f64());
                // Not for a lease whose key is gone: that answer must not make us valid again.
                shared.update_health(|h| {
                    (ctx.gone_lease.load(Ordering::SeqCst) != lease).then(|| h.acked(sent_ns)).flatten()
                });
                backoff.reset();
                // Exactly one interval after this keepalive's slot; from the send itself
                // if we woke so late that that slot has passed.
                next_slot += slots.per_interval();
                if slots.at(next_slot) < sent {
                    next_slot = slots.at_or_before(sent + interval);
                }
            }
            Ok(Answer::NotFound) => {
                // Expired while we were cut off or frozen, revoked, or etcd's data wiped.
                lost_reason = Reason::LeaseNotFound;
                shared.update_health(|h| h.lease_lost(Reason::LeaseNotFound));
                ctx.lease.store(0, Ordering::SeqCst);
                registered = false;
            }
            Err(_) => {
                crate::metrics::get().lease_keepalive_failures.inc();
                let now = shared.now_ns();
                let mut deadline_passed = false;
                shared.update_health(|h| {
                    let t = h.failed(now, Reason::KeepaliveFailed);
                    deadline_passed = h.state() == State::Lost;
                    t
                });
                if deadline_passed {
                    lost_reason = Reason::LeaseDeadline;
                }
                next_slot = slots.at_or_after(Instant::now() + backoff.next().min(interval));
            }
        }
    }
}

/// Sleeps until `until`, waking at the fencing deadline on the way so that health turns
/// `lost` on time even while nothing else happens.
async fn wait_ticking(shared: &ClientShared, until: Instant) {
    loop {
        let now_ns = shared.now_ns();
        shared.update_health(|h| h.tick(now_ns));
        let remaining = shared.health.lock().remaining_ns(now_ns);
        let wake = if remaining > 0 { until.min(Instant::now() + Duration::from_nanos(remaining)) } else { until };
        tokio::time::sleep_until(wake).await;
        if Instant::now() >= until {
            let now_ns = shared.now_ns();
            shared.update_health(|h| h.tick(now_ns));
            return;
        }
    }
}

/// Watches our own key for as long as the registration runs: a deletion, or a write by
/// another lease, ends our hold at once. Each registration is watched from the revision of
/// its own put, so a deletion that came before the watch was made is replayed too. The
/// stream goes to one member (`Connection::member`) and asks for progress every TTL/3: a
/// member that does not answer within TTL/3 is left for the next one.
async fn watch_own_key(ctx: &Ctx) {
    let mut current = ctx.current.subscribe();
    let mut backoff = Backoff::new(RETRY_MIN, Duration::from_secs(1));
    loop {
        let (lease, revision) = *current.borrow_and_update();
        let conn = ctx.conn.lock().clone();
        if let (Some(conn), true) = (conn, lease != 0) {
            let mut from = revision + 1;
            tokio::select! {
                ended = watch_key(ctx, &conn, lease, &mut from) => {
                    if ended == Watched::Broken {
                        tokio::time::sleep(backoff.next()).await;
                    } else {
                        backoff.reset();
                    }
                    if ended != Watched::Gone && *current.borrow() == (lease, revision) {
                        // Resume this registration's watch where it stopped.
                        ctx.current.send_replace((lease, from - 1));
                        continue;
                    }
                }
                _ = current.changed() => continue,
            }
        }
        // Nothing to watch until the next registration.
        if current.changed().await.is_err() {
            return;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watched {
    /// The key is gone (or not ours any more): reported.
    Gone,
    /// The stream broke or stalled: watch again from `from`.
    Broken,
}

/// One watch stream on our key from revision `*from`; returns when the key is gone or the
/// stream cannot be trusted. `*from` moves past every revision seen.
async fn watch_key(ctx: &Ctx, conn: &Connection, lease: i64, from: &mut i64) -> Watched {
    let interval = ctx.shared.config.ttl / 3;
    let Ok((member, mut client)) = conn.member(interval).await else {
        return Watched::Broken;
    };
    let options = WatchOptions::new().with_start_revision(*from);
    let key = ctx.key.lock().clone();
    let opened = tokio::time::timeout(interval, client.watch(key, Some(options))).await;
    let Ok(Ok((mut watcher, mut stream))) = opened else {
        conn.member_failed(member);
        return Watched::Broken;
    };
    let mut progress = tokio::time::interval(interval);
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    progress.tick().await;
    let mut asked: Option<Instant> = None;
    loop {
        tokio::select! {
            msg = stream.message() => {
                let resp = match msg {
                    Ok(Some(resp)) => resp,
                    Ok(None) | Err(_) => {
                        conn.member_failed(member);
                        return Watched::Broken;
                    }
                };
                asked = None;
                if resp.canceled() && resp.compact_revision() > 0 {
                    // Compacted past our revision: whether the key is still ours is unknown.
                    key_gone(ctx, lease);
                    return Watched::Gone;
                }
                if resp.canceled() {
                    conn.member_failed(member);
                    return Watched::Broken;
                }
                for event in resp.events() {
                    let Some(kv) = event.kv() else { continue };
                    *from = (*from).max(kv.mod_revision() + 1);
                    if event.event_type() == EventType::Delete || kv.lease() != lease {
                        key_gone(ctx, lease);
                        return Watched::Gone;
                    }
                }
            }
            _ = progress.tick() => {
                if asked.is_some_and(|at| at.elapsed() >= interval) {
                    // No answer to a progress request within TTL/3: a frozen member.
                    conn.member_failed(member);
                    return Watched::Broken;
                }
                if asked.is_none() && watcher.request_progress().await.is_ok() {
                    asked = Some(Instant::now());
                }
            }
        }
    }
}

/// Our key is gone while `lease` still carries our registration: not the holder any more
/// (`check()` fails from here), and the keepalive loop registers again.
fn key_gone(ctx: &Ctx, lease: i64) {
    ctx.shared.update_health(|h| {
        if ctx.lease.load(Ordering::SeqCst) != lease {
            return None;
        }
        ctx.gone_lease.store(lease, Ordering::SeqCst);
        h.lease_lost(Reason::KeyDeleted)
    });
    ctx.key_gone.notify_one();
}

/// grant(TTL), then put-with-lease with the next epoch. Returns (lease, epoch, revision of
/// the put).
async fn register(ctx: &Ctx) -> Result<(i64, u64, i64)> {
    let shared = &ctx.shared;
    let config = &shared.config;
    let existing = ctx.conn.lock().clone();
    let conn = match existing {
        Some(c) => c,
        None => {
            let c = Connection::get(config).await?;
            *ctx.conn.lock() = Some(Arc::clone(&c));
            c
        }
    };
    let budget = config.connect_timeout.max(Duration::from_secs(1));
    // etcd counts whole seconds: round up, so etcd never drops the key before our own
    // (fencing) arithmetic, which uses the configured TTL, says it may be gone.
    let ttl_s = config.ttl.as_secs_f64().ceil().max(2.0) as i64;
    let epoch = shared.health.lock().epoch() + 1;
    let mut client = conn.client();
    let grant = tokio::time::timeout(budget, client.lease_grant(ttl_s, None)).await;
    let lease = match grant {
        Ok(Ok(resp)) => resp.id(),
        Ok(Err(e)) => return Err(failed(&conn, "grant lease", &e).await),
        Err(_) => return Err(timed_out(&conn, "grant lease", budget)),
    };
    ctx.lease.store(lease, Ordering::SeqCst);
    let key = ctx.record.key(lease);
    *ctx.key.lock() = key.clone();
    let value = ctx.record.value(epoch);
    let put =
        tokio::time::timeout(budget, client.put(key.as_str(), value, Some(PutOptions::new().with_lease(lease)))).await;
    match put {
        Ok(Ok(resp)) => Ok((lease, epoch, resp.header().map_or(0, |h| h.revision()))),
        // The granted lease expires by itself; the next attempt grants a fresh one.
        Ok(Err(e)) => Err(failed(&conn, &format!("put {key}"), &e).await),
        Err(_) => Err(timed_out(&conn, &format!("put {key}"), budget)),
    }
}

async fn failed(conn: &Connection, what: &str, e: &etcd_client::Error) -> Error {
    if is_token_error(e) {
        // etcd restarted and forgot our token: log in again before the next attempt.
        if let Err(err) = conn.reauthenticate(Duration::from_secs(2)).await {
            return err;
        }
    }
    conn.error(what, e)
}

fn timed_out(conn: &Connection, what: &str, after: Duration) -> Error {
    Error::Connect {
        what: "etcd",
        addr: conn.addr.clone(),
        detail: format!("{what}: no answer within {} ms", after.as_millis()),
    }
}

/// Graceful goodbye before `deadline`: mark the value `leaving` (same lease, so watchers see
/// a departure), then revoke the lease (the key goes at once). The mark is retried, member
/// after member, for two thirds of the time; if it still failed, the stop is reported with
/// reason `leave_failed`: watchers will see `expired`, not `left`.
async fn leave(ctx: &Ctx, deadline: Instant) {
    let lease = ctx.lease.load(Ordering::SeqCst);
    let conn = ctx.conn.lock().clone();
    let shared = &ctx.shared;
    let mut reason = Reason::Stopped;
    if let (Some(conn), true) = (conn, lease != 0) {
        let epoch = shared.health.lock().epoch();
        let key = ctx.key.lock().clone();
        let marked = match ctx.record.leaving(epoch) {
            Some(value) => {
                // Leave a third of the budget for the revoke even if every put hangs.
                let put_deadline = deadline - deadline.saturating_duration_since(Instant::now()) / 3;
                until_done(&conn, put_deadline, |mut client| {
                    let (key, value) = (key.clone(), value.clone());
                    async move { client.put(key, value, Some(PutOptions::new().with_lease(lease))).await.map(drop) }
                })
                .await
            }
            // Nothing to mark: the revoke alone says goodbye.
            None => true,
        };
        let revoked =
            until_done(&conn, deadline, |mut client| async move { client.lease_revoke(lease).await.map(drop) }).await;
        reason = match (marked, revoked) {
            (true, true) => Reason::Deregistered,
            (true, false) => Reason::Stopped,
            (false, _) => Reason::LeaveFailed,
        };
    }
    let (transition, epoch) = {
        let mut h = shared.health.lock();
        (h.stopped(), h.epoch())
    };
    if let Some(t) = transition {
        shared.emit(t.from, t.to, reason, epoch);
    }
}

/// Runs `op` on the preferred member until it succeeds or `deadline` passes; an attempt
/// gets a third of the time left (at least 100 ms), and a member that failed or did not
/// answer is left for the next. True if it succeeded.
async fn until_done<F, Fut>(conn: &Connection, deadline: Instant, op: F) -> bool
where
    F: Fn(etcd_client::Client) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), etcd_client::Error>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(200));
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt_deadline = (Instant::now() + (left / 3).max(Duration::from_millis(100))).min(deadline);
        let attempt = async {
            let (member, client) = conn.member(left).await.ok()?;
            Some((member, op(client).await))
        };
        match tokio::time::timeout_at(attempt_deadline, attempt).await {
            Ok(Some((_, Ok(())))) => return true,
            Ok(Some((member, Err(_)))) => conn.member_failed(member),
            // Could not reach the member, or no answer in time.
            Ok(None) | Err(_) => conn.member_failed_now(),
        }
        tokio::time::sleep_until((Instant::now() + backoff.next()).min(deadline)).await;
    }
    false
}
