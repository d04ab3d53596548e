//! A Client's etcd registration: grant(TTL), put-with-lease, keepalive every TTL/3 over the
//! connection's shared keepalive stream, re-registration with a higher epoch after a lost
//! lease, and a graceful leave (mark `leaving`, then revoke).
//!
//! It never gives up (go-kratos/kratos#3883): every failure is retried with jittered
//! backoff for as long as the Client runs. Health and fencing follow from what etcd
//! acknowledged, on our own monotonic clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::PutOptions;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::client::shared::{ClientShared, Transport};
use crate::error::{Error, Result};
use crate::events::{Reason, State};

use super::connect::{is_token_error, join_hosts, Connection};
use super::keepalive::Answer;
use super::value::{self, RegistrationValue, STATE_LEAVING, STATE_UP};

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
    key: String,
    started_unix_ms: u64,
    conn: Mutex<Option<Arc<Connection>>>,
    /// The lease currently carrying our key (0: none).
    lease: AtomicI64,
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
        let (attempts_tx, attempts) = crossbeam_channel::unbounded();
        let ctx = Arc::new(Ctx {
            key: value::key(prefix, &config.service, &config.instance_id),
            started_unix_ms: crate::events::unix_ms_now(),
            conn: Mutex::new(None),
            lease: AtomicI64::new(0),
            attempts: attempts_tx,
            shared: Arc::clone(&shared),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let (finished_tx, finished) = crossbeam_channel::bounded(1);
        let task = crate::runtime::handle()?.spawn(async move {
            let ctx2 = Arc::clone(&ctx);
            tokio::select! {
                _ = keep_registered(&ctx2) => {}
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
                Ok(Ok(())) => return Ok(reg),
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
    let mut next_keepalive = Instant::now();
    let mut registered = false;
    loop {
        if !registered {
            let sent_ns = shared.now_ns();
            match register(ctx).await {
                Ok((lease, _)) => {
                    // Health (so the fencing token) first: a callback handling
                    // `reregistered` must already see the new epoch and pass check().
                    let (again, transition, epoch) = {
                        let mut h = shared.health.lock();
                        let again = h.epoch() > 0;
                        let t = h.registered(lease, sent_ns);
                        (again, t, h.epoch())
                    };
                    if again {
                        crate::metrics::get().reregistrations.inc();
                        shared.emit(State::Lost, State::Reregistered, lost_reason, epoch);
                    }
                    if let Some(t) = transition {
                        shared.emit(t.from, t.to, t.reason, epoch);
                    }
                    let _ = ctx.attempts.send(Ok(()));
                    registered = true;
                    backoff.reset();
                    next_keepalive = Instant::now() + interval;
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

        wait_ticking(shared, next_keepalive).await;
        let Some(conn) = ctx.conn.lock().clone() else {
            registered = false;
            continue;
        };
        let lease = ctx.lease.load(Ordering::SeqCst);
        let sent_ns = shared.now_ns();
        let sent = Instant::now();
        match conn.keepalive.keepalive(lease, interval).await {
            Ok(Answer::Alive { .. }) => {
                crate::metrics::get().rtt_seconds.observe(sent.elapsed().as_secs_f64());
                shared.update_health(|h| h.acked(sent_ns));
                backoff.reset();
                next_keepalive = sent + interval;
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
                next_keepalive = Instant::now() + backoff.next().min(interval);
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

/// grant(TTL), then put-with-lease with the next epoch. Returns (lease, epoch).
async fn register(ctx: &Ctx) -> Result<(i64, u64)> {
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
    let value = registration_value(ctx, epoch, STATE_UP);
    let put =
        tokio::time::timeout(budget, client.put(ctx.key.as_str(), value, Some(PutOptions::new().with_lease(lease))))
            .await;
    match put {
        Ok(Ok(_)) => Ok((lease, epoch)),
        // The granted lease expires by itself; the next attempt grants a fresh one.
        Ok(Err(e)) => Err(failed(&conn, &format!("put {}", ctx.key), &e).await),
        Err(_) => Err(timed_out(&conn, &format!("put {}", ctx.key), budget)),
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

fn registration_value(ctx: &Ctx, epoch: u64, state: &str) -> Vec<u8> {
    let config = &ctx.shared.config;
    RegistrationValue {
        id: config.instance_id.clone(),
        service: config.service.clone(),
        labels: config.labels.clone(),
        incarnation: ctx.shared.incarnation,
        epoch,
        started_unix_ms: ctx.started_unix_ms,
        state: state.to_string(),
    }
    .to_json()
}

/// Graceful goodbye before `deadline`: mark the value `leaving` (same lease, so watchers see
/// a departure), then revoke the lease (the key goes at once).
async fn leave(ctx: &Ctx, deadline: Instant) {
    let lease = ctx.lease.load(Ordering::SeqCst);
    let conn = ctx.conn.lock().clone();
    let shared = &ctx.shared;
    let mut revoked = false;
    if let (Some(conn), true) = (conn, lease != 0) {
        let mut client = conn.client();
        let epoch = shared.health.lock().epoch();
        let value = registration_value(ctx, epoch, STATE_LEAVING);
        let put = client.put(ctx.key.as_str(), value, Some(PutOptions::new().with_lease(lease)));
        // Leave a little of the budget for the revoke even if the put hangs.
        let put_deadline = deadline - deadline.saturating_duration_since(Instant::now()) / 3;
        let _ = tokio::time::timeout_at(put_deadline, put).await;
        revoked = matches!(tokio::time::timeout_at(deadline, client.lease_revoke(lease)).await, Ok(Ok(_)));
    }
    let reason = if revoked { Reason::Deregistered } else { Reason::Stopped };
    let (transition, epoch) = {
        let mut h = shared.health.lock();
        (h.stopped(), h.epoch())
    };
    if let Some(t) = transition {
        shared.emit(t.from, t.to, reason, epoch);
    }
}
