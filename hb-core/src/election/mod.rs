//! Leader election over etcd, fenced by the Client's own lease engine.
//!
//! A candidate registers `<prefix>/election/<name>/<lease hex>` under its lease (`key`);
//! the candidate whose key was created first leads (`view`), which each candidacy's task
//! decides from one watch of the election directory and from its lease's health
//! (`campaign`). The lease is kept alive, failed over between members and fenced exactly
//! like a Client's registration: `check()` fails before etcd can have expired the lease,
//! and at once when the lease or key is gone. docs/election.md has the picture.

mod campaign;
mod key;
mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::shared::{ClientShared, Transport};
use crate::clock::MonotonicClock;
use crate::config::{Config, Options, Role};
use crate::error::{Error, Result};
use crate::events::{Event, EventHub, Reason, State};
use crate::lifecycle::EventSource;
use crate::registry::connect::Connection;
use crate::registry::registration::Registration;
use crate::runtime::ProcessGuard;

pub use key::{Leader, Token};

/// One candidate (or observer) of one election. See the module docs.
pub struct Election {
    config: Config,
    value: Vec<u8>,
    inner: Arc<Inner>,
    guard: ProcessGuard,
    candidacy: Mutex<Option<Running>>,
    stopped: AtomicBool,
}

/// A candidacy that runs: its lease (health, registration) and its task.
struct Running {
    lease: Arc<ClientShared>,
    registration: Arc<Registration>,
    task: JoinHandle<()>,
}

/// What the handle and its candidacy's task share.
pub(crate) struct Inner {
    name: String,
    dir: String,
    recampaign: AtomicBool,
    events: Arc<EventHub>,
    status: Mutex<Status>,
    changed: Condvar,
}

#[derive(Default)]
struct Status {
    /// The leader as last observed.
    leader: Option<Leader>,
    /// Our term, while we lead.
    leading: Option<Token>,
    /// A candidacy runs (false after resign, stop, or a loss without recampaign).
    campaigning: bool,
}

impl Election {
    /// An election `name` on the etcd endpoint of `options` (`etcd://h:p[,h:p]/prefix`;
    /// ttl, credentials and timeouts as for a Client), campaigning with `value`.
    pub fn new(options: &Options, name: &str, value: &[u8]) -> Result<Election> {
        crate::config::validate_name("name", name)?;
        let config = Config::resolve(options, Role::Client)?;
        let (_, prefix) = config.etcd_endpoint().filter(|_| config.endpoints.len() == 1).ok_or_else(|| {
            Error::config("endpoint", describe_endpoints(&config), "one etcd://host:port/prefix endpoint")
        })?;
        let inner = Arc::new(Inner {
            name: name.to_string(),
            dir: key::dir(prefix, name),
            recampaign: AtomicBool::new(true),
            events: EventHub::new(config.event_capacity),
            status: Mutex::new(Status::default()),
            changed: Condvar::new(),
        });
        Ok(Election {
            value: value.to_vec(),
            inner,
            guard: ProcessGuard::new(),
            candidacy: Mutex::new(None),
            stopped: AtomicBool::new(false),
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether a lost term is followed by a new campaign (default: yes). Without, a loss
    /// withdraws the candidacy, as `resign` does; `campaign` starts a new one.
    pub fn set_recampaign(&self, on: bool) {
        self.inner.recampaign.store(on, Ordering::SeqCst);
    }

    /// Becomes a candidate (if not one yet) and waits up to `timeout` to lead; returns the
    /// term's fencing token. On `Timeout` the candidacy goes on (`elected` comes later);
    /// `resign` withdraws it. Registering is bounded by `connect_timeout` and fails like a
    /// Client's start (`Connect`, `PermissionDenied`).
    pub fn campaign(&self, timeout: Duration) -> Result<Token> {
        self.usable()?;
        let started = Instant::now();
        self.ensure_candidacy()?;
        let deadline = started.checked_add(timeout);
        let mut status = self.inner.status.lock();
        loop {
            if let Some(token) = status.leading {
                return Ok(token);
            }
            if !status.campaigning {
                return Err(Error::NotHolder(format!("the campaign in election {} ended", self.inner.name)));
            }
            match deadline {
                Some(d) if self.inner.changed.wait_until(&mut status, d).timed_out() => {
                    return Err(Error::Timeout {
                        what: format!("campaign in election {} (still a candidate)", self.inner.name),
                        after_ms: timeout.as_millis() as u64,
                    })
                }
                Some(_) => {}
                None => self.inner.changed.wait(&mut status),
            }
        }
    }

    /// Steps down and withdraws: `lost` (reason `resigned`) if we led, `check()` fails from
    /// here, then our key is revoked, so the next candidate leads without waiting for the
    /// TTL. Bounded by `timeout`; idempotent.
    pub fn resign(&self, timeout: Duration) -> Result<()> {
        self.guard.check()?;
        self.withdraw(Reason::Resigned, timeout);
        Ok(())
    }

    /// Resigns, then closes the event stream: no event is delivered after it returns.
    pub fn stop(&self, timeout: Duration) -> Result<()> {
        self.guard.check()?;
        self.stopped.store(true, Ordering::SeqCst);
        self.withdraw(Reason::Stopped, timeout);
        self.inner.events.close();
        Ok(())
    }

    /// The leader as observed while campaigning (`None`: nobody leads, or no candidacy).
    pub fn leader(&self) -> Result<Option<Leader>> {
        self.usable()?;
        Ok(self.inner.status.lock().leader.clone())
    }

    /// Our term's token; `NotHolder` unless we lead. Check `check()` before acting on it.
    pub fn token(&self) -> Result<Token> {
        self.usable()?;
        self.inner.leading().ok_or_else(|| self.not_leader())
    }

    /// Passes only while we lead and our lease is valid by the Client's conservative
    /// arithmetic; fails at once on lease loss, resign or stop (`Stopped` once stopped, as a
    /// Client's). Asks nobody.
    pub fn check(&self) -> Result<()> {
        self.usable()?;
        self.with_term(|health, now| health.check(now)).unwrap_or_else(|| Err(self.not_leader()))
    }

    /// How long we may still act as the leader (zero unless we lead).
    pub fn remaining(&self) -> Result<Duration> {
        self.guard.check()?;
        let left = self.with_term(|health, now| health.check(now).map(|()| health.remaining_ns(now)));
        Ok(Duration::from_nanos(left.and_then(|r| r.ok()).unwrap_or(0)))
    }

    /// `f` on our lease's health while we lead on that lease; `None` when we do not.
    fn with_term<T>(&self, f: impl FnOnce(&crate::client::health::Health, u64) -> T) -> Option<T> {
        let candidacy = self.candidacy.lock();
        let (running, token) = (candidacy.as_ref()?, self.inner.leading()?);
        let health = running.lease.health.lock();
        (health.lease_id() == token.lease_id).then(|| f(&health, running.lease.now_ns()))
    }

    pub fn events(&self) -> &Arc<EventHub> {
        &self.inner.events
    }

    fn usable(&self) -> Result<()> {
        self.guard.check()?;
        if self.stopped.load(Ordering::SeqCst) {
            return Err(Error::Stopped("election is stopped; create a new one"));
        }
        Ok(())
    }

    fn not_leader(&self) -> Error {
        Error::NotHolder(format!("not the leader of election {}", self.inner.name))
    }

    /// Starts a candidacy unless one runs.
    fn ensure_candidacy(&self) -> Result<()> {
        let mut candidacy = self.candidacy.lock();
        if candidacy.is_some() && self.inner.status.lock().campaigning {
            return Ok(());
        }
        if let Some(old) = candidacy.take() {
            // Ended by a loss without recampaign: its stop is already under way.
            old.end(self.config.stop_timeout);
        }
        let lease = Arc::new(ClientShared::new(self.config.clone(), Arc::new(MonotonicClock)));
        // The lease's own transitions drive the task (a loss ends the term).
        let (health_tx, health) = mpsc::unbounded_channel();
        lease.events.set_callback(Box::new(move |ev: &Event| {
            let _ = health_tx.send(ev.clone());
        }))?;
        let record = key::Candidate { dir: self.inner.dir.clone(), value: self.value.clone() };
        let (registration, made) = match Registration::start_with(Arc::clone(&lease), Box::new(record)) {
            Ok(pair) => pair,
            Err(e) => {
                lease.events.close();
                return Err(e);
            }
        };
        let registration = Arc::new(registration);
        let config = self.config.clone();
        let conn = crate::runtime::run(async move { Connection::get(&config).await }, self.config.connect_timeout)
            .and_then(|r| r);
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                registration.stop(self.config.stop_timeout)?;
                lease.events.close();
                return Err(e);
            }
        };
        self.inner.status.lock().campaigning = true;
        let task = crate::runtime::handle()?.spawn(campaign::run(campaign::Candidacy {
            inner: Arc::clone(&self.inner),
            lease: Arc::clone(&lease),
            registration: Arc::clone(&registration),
            made,
            health,
            conn,
        }));
        *candidacy = Some(Running { lease, registration, task });
        Ok(())
    }

    /// Ends the candidacy, if any: the term first (so `check()` fails before the key goes),
    /// then the lease.
    fn withdraw(&self, reason: Reason, timeout: Duration) {
        let running = self.candidacy.lock().take();
        if let Some(running) = running {
            running.task.abort();
            self.inner.end_term(reason);
            self.inner.candidacy_over();
            running.end(timeout);
        }
    }
}

impl Running {
    fn end(self, timeout: Duration) {
        self.task.abort();
        let _ = self.registration.stop(timeout);
        self.lease.events.close();
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        if !self.guard.is_forked() {
            let _ = self.stop(self.config.stop_timeout);
        }
    }
}

impl EventSource for Election {
    fn events(&self) -> &Arc<EventHub> {
        &self.inner.events
    }
    fn same_process(&self) -> Result<()> {
        self.guard.check()
    }
}

impl Inner {
    fn recampaigns(&self) -> bool {
        self.recampaign.load(Ordering::SeqCst)
    }

    fn leading(&self) -> Option<Token> {
        self.status.lock().leading
    }

    /// We lead from here, with `token`.
    fn elect(&self, token: Token) {
        let mut status = self.status.lock();
        if status.leading.is_some() || !status.campaigning {
            return;
        }
        status.leading = Some(token);
        drop(status);
        self.changed.notify_all();
        self.emit(State::Elected, Reason::Registered, token);
    }

    /// Our term ends (if we led): `lost` with `reason`. The term's token if we led.
    fn end_term(&self, reason: Reason) -> Option<Token> {
        let token = self.status.lock().leading.take()?;
        self.changed.notify_all();
        self.emit(State::Lost, reason, token);
        Some(token)
    }

    /// No candidacy runs: nothing watches the election, so no leader is shown (a stale one
    /// could be ourselves).
    fn candidacy_over(&self) {
        let mut status = self.status.lock();
        status.campaigning = false;
        status.leader = None;
        drop(status);
        self.changed.notify_all();
    }

    /// The leader as the watch now shows it: `leader_changed` when it is another one.
    fn observe(&self, leader: Option<Leader>) {
        let mut status = self.status.lock();
        if status.leader.as_ref().map(|l| l.token) == leader.as_ref().map(|l| l.token) {
            status.leader = leader;
            return;
        }
        status.leader = leader.clone();
        drop(status);
        if let Some(l) = leader {
            self.emit(State::LeaderChanged, Reason::Registered, l.token);
        }
    }

    /// An election event: `peer` is the lease (hex) of the term, `epoch` its revision.
    fn emit(&self, to: State, reason: Reason, token: Token) {
        let from = match to {
            State::Lost => State::Elected,
            _ => State::Unknown,
        };
        let mut ev = Event::new(format!("{:x}", token.lease_id), &self.name, from, to, reason);
        ev.epoch = token.revision as u64;
        self.events.emit(ev);
    }
}

fn describe_endpoints(config: &Config) -> String {
    config.endpoints.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(",")
}
