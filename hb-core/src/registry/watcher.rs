//! Watching an etcd prefix: the live set of registered instances.
//!
//! Start: a consistent `get --prefix`, then a watch from that revision + 1, so nothing falls
//! between the two. After a disconnect the watch resumes from the last revision seen, so
//! etcd replays exactly what was missed; when that history is gone (compacted, or etcd's
//! data was wiped and its revisions went backwards) the prefix is listed again and diffed
//! against the view, which reports exactly the differences. Retries go on for ever.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::config::{Config, Options, Role};
use crate::error::{Error, Result};
use crate::events::EventHub;
use crate::http::HttpServer;
use crate::lifecycle::{EventSource, HandleKind, Lifecycle, Phase, Started};
use crate::peers::PeerInfo;

use super::connect::{is_token_error, join_hosts, Connection};
use super::value::split_key;
use super::view::View;

pub struct Watcher {
    config: Config,
    events: Arc<EventHub>,
    view: Arc<Mutex<View>>,
    life: Lifecycle<Running>,
}

/// What a started watcher owns: the watch task and, with `http_addr`, the HTTP API.
struct Running {
    task: JoinHandle<()>,
    http: Option<HttpServer>,
}

impl Watcher {
    pub fn new(options: &Options) -> Result<Watcher> {
        Watcher::from_config(Config::resolve(options, Role::Watcher)?)
    }

    pub fn from_config(config: Config) -> Result<Watcher> {
        let (_, prefix) = config
            .etcd_endpoint()
            .ok_or_else(|| Error::config("endpoint", "", "one etcd://host:port[,host:port]/prefix"))?;
        let view = Arc::new(Mutex::new(View::new(prefix)));
        let events = EventHub::new(config.event_capacity);
        Ok(Watcher { config, events, view, life: Lifecycle::new(HandleKind::Watcher) })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Lists the prefix, then watches from that revision. Waits for the listing (bounded by
    /// `connect_timeout`): an unreachable etcd or refused credentials surface here.
    pub fn start(&self) -> Result<()> {
        self.life.begin_start()?;
        match self.life.finish_start(self.run())? {
            Started::Running => {}
            Started::StopWon(running) => running.task.abort(),
        }
        Ok(())
    }

    /// Where this handle is in its life (docs/states.md).
    pub fn phase(&self) -> Phase {
        self.life.phase()
    }

    /// Where the HTTP API listens (`http_addr`, useful with port 0): from `start` to `stop`,
    /// None before, after and without `http_addr`; `Forked` in a forked child.
    pub fn http_addr(&self) -> Result<Option<SocketAddr>> {
        self.life.same_process()?;
        Ok(self.life.with_running(|r| r.http.as_ref().map(|h| h.local_addr())).flatten())
    }

    fn run(&self) -> Result<Running> {
        let config = self.config.clone();
        let timeout = config.connect_timeout;
        let prefix = watch_prefix(&config);
        let (conn, revision, listing) = crate::runtime::run(
            async move {
                let conn = Connection::get(&config).await?;
                let (revision, listing) = list(&conn, &prefix).await?;
                Ok::<_, Error>((conn, revision, listing))
            },
            timeout + Duration::from_millis(500),
        )
        .map_err(|e| match e {
            Error::Timeout { .. } => Error::Connect {
                what: "etcd",
                addr: self.config.etcd_endpoint().map(|(h, _)| join_hosts(h)).unwrap_or_default(),
                detail: format!("no answer within {} ms", timeout.as_millis()),
            },
            other => other,
        })??;
        // Served before the listing's events are emitted, so that they are in its history.
        let http = crate::http::serve_view(&self.config, Arc::new(HttpView(Arc::clone(&self.view))), &self.events)?;
        for ev in self.view.lock().resync(&pairs(&listing)) {
            self.events.emit(ev);
        }
        let state = WatchState {
            conn,
            prefix: watch_prefix(&self.config),
            revision,
            view: Arc::clone(&self.view),
            events: Arc::clone(&self.events),
        };
        Ok(Running { task: crate::runtime::handle()?.spawn(state.run()), http })
    }

    /// Stops watching and closes the event stream: no callback runs after this returns.
    /// Idempotent.
    pub fn stop(&self) -> Result<()> {
        if let Some(running) = self.life.begin_stop(self.config.stop_timeout)? {
            running.task.abort();
            drop(running.http);
        }
        self.events.close();
        Ok(())
    }

    /// The current view, ordered by key (service, then id); `Stopped` once stopped.
    pub fn peers(&self) -> Result<Vec<PeerInfo>> {
        self.life.not_stopped()?;
        Ok(self.view.lock().peers())
    }

    pub fn events(&self) -> &Arc<EventHub> {
        &self.events
    }
}

impl EventSource for Watcher {
    fn events(&self) -> &Arc<EventHub> {
        &self.events
    }
    fn same_process(&self) -> Result<()> {
        self.life.same_process()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // In a forked child the parent's task and delivery thread do not exist: leave them.
        if !self.life.is_forked() {
            let _ = self.stop();
        }
    }
}

/// `prefix/`: so that `/services` does not also watch `/services-old`.
fn watch_prefix(config: &Config) -> String {
    let prefix = config.etcd_endpoint().map(|(_, p)| p).unwrap_or("/heartbeater");
    format!("{}/", prefix.trim_end_matches('/'))
}

/// One key as listed.
pub(crate) struct Listed {
    key: String,
    value: Vec<u8>,
    mod_revision: i64,
}

/// A consistent listing: (revision, keys).
async fn list(conn: &Connection, prefix: &str) -> Result<(i64, Vec<Listed>)> {
    let mut client = conn.client();
    let resp = match client.get(prefix, Some(GetOptions::new().with_prefix())).await {
        Ok(resp) => resp,
        Err(e) => {
            if is_token_error(&e) {
                let _ = conn.reauthenticate(Duration::from_secs(2)).await;
            }
            return Err(conn.error(&format!("list {prefix}"), &e));
        }
    };
    let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
    let listing = resp
        .kvs()
        .iter()
        .filter_map(|kv| {
            Some(Listed {
                key: kv.key_str().ok()?.to_string(),
                value: kv.value().to_vec(),
                mod_revision: kv.mod_revision(),
            })
        })
        .collect();
    Ok((revision, listing))
}

fn pairs(listing: &[Listed]) -> Vec<(String, Vec<u8>)> {
    listing.iter().map(|l| (l.key.clone(), l.value.clone())).collect()
}

/// Why a watch stream ended.
enum Ended {
    /// The history we need is gone: list again.
    Compacted,
    /// Broken connection or stream: resume from the last revision if etcd still has it.
    Broken,
}

struct WatchState {
    conn: Arc<Connection>,
    prefix: String,
    /// Every change up to this revision is in the view.
    revision: i64,
    view: Arc<Mutex<View>>,
    events: Arc<EventHub>,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

impl WatchState {
    async fn run(mut self) {
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        loop {
            let relist = match self.watch(&mut backoff).await {
                Ended::Compacted => true,
                Ended::Broken => {
                    tokio::time::sleep(backoff.next()).await;
                    false
                }
            };
            // Resume from our revision when etcd still holds that history; otherwise list
            // again and report the differences. Retries until etcd answers.
            loop {
                match list(&self.conn, &self.prefix).await {
                    Ok((revision, listing)) => {
                        if relist || !self.same_history(revision, &listing) {
                            self.revision = revision;
                            let events = self.view.lock().resync(&pairs(&listing));
                            for ev in events {
                                self.events.emit(ev);
                            }
                        }
                        break;
                    }
                    Err(_) => tokio::time::sleep(backoff.next()).await,
                }
            }
        }
    }

    /// Is etcd's store a continuation of the history our view was built from? Not when its
    /// revision went backwards, nor when a key last written at or before our revision does
    /// not hold the value we have (a wiped etcd that has counted past us again). Keys that
    /// are not `prefix/service/id` are never in the view, so they say nothing either way.
    fn same_history(&self, revision: i64, listing: &[Listed]) -> bool {
        if revision < self.revision {
            return false;
        }
        let view = self.view.lock();
        listing
            .iter()
            .filter(|l| l.mod_revision <= self.revision && split_key(&self.prefix, &l.key).is_some())
            .all(|l| view.value_of(&l.key) == Some(l.value.as_slice()))
    }

    /// Watches from `revision + 1` until the stream ends, applying every event.
    async fn watch(&mut self, backoff: &mut Backoff) -> Ended {
        let mut client = self.conn.client();
        let options = WatchOptions::new().with_prefix().with_start_revision(self.revision + 1);
        let (_watcher, mut stream) = match client.watch(self.prefix.as_str(), Some(options)).await {
            Ok(pair) => pair,
            Err(e) => {
                if is_token_error(&e) {
                    let _ = self.conn.reauthenticate(Duration::from_secs(2)).await;
                }
                return Ended::Broken;
            }
        };
        loop {
            let resp = match stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) | Err(_) => return Ended::Broken,
            };
            if resp.canceled() {
                return if resp.compact_revision() > 0 { Ended::Compacted } else { Ended::Broken };
            }
            backoff.reset();
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                let Ok(key) = kv.key_str() else { continue };
                let reported = {
                    let mut view = self.view.lock();
                    match event.event_type() {
                        EventType::Put => view.put(key, kv.value()),
                        EventType::Delete => view.delete(key),
                    }
                };
                self.revision = self.revision.max(kv.mod_revision());
                if let Some(ev) = reported {
                    self.events.emit(ev);
                }
            }
        }
    }
}

/// What the HTTP API shows of a started watcher: it is served only while the watcher runs.
struct HttpView(Arc<Mutex<View>>);

impl crate::http::PeerView for HttpView {
    fn peers(&self) -> Result<Vec<PeerInfo>> {
        Ok(self.0.lock().peers())
    }
    fn ready(&self) -> std::result::Result<(), String> {
        Ok(())
    }
}
