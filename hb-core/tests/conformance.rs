//! The Rust driver of the conformance suite (`tests/conformance/README.md`): runs every
//! scenario file, the same files the C, C++, Go and Python drivers run.
//!
//! One test runs them all in turn: the `fork` step forks this process, which is only sound
//! while no other test thread is in the middle of an engine call.

mod etcd_support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_core::{Client, Election, Error, Event, EventSource, Monitor, Options, Reason, State, Watcher};
use parking_lot::{Condvar, Mutex};
use serde_json::Value;

fn suite_dir() -> PathBuf {
    match std::env::var_os("HB_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance"),
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Clone)]
enum Handle {
    Client(Arc<Client>),
    Monitor(Arc<Monitor>),
    Watcher(Arc<Watcher>),
    Election(Arc<Election>),
}

impl Handle {
    fn source(&self) -> &dyn EventSource {
        match self {
            Handle::Client(c) => c.as_ref(),
            Handle::Monitor(m) => m.as_ref(),
            Handle::Watcher(w) => w.as_ref(),
            Handle::Election(e) => e.as_ref(),
        }
    }
}

/// Events recorded for one handle, by callback or by polling.
#[derive(Default)]
struct Log {
    events: Mutex<Vec<Event>>,
    grew: Condvar,
}

impl Log {
    fn push(&self, ev: Event) {
        self.events.lock().push(ev);
        self.grew.notify_all();
    }
}

type Handles = Arc<Mutex<HashMap<String, Handle>>>;

struct Driver {
    vars: BTreeMap<String, String>,
    handles: Handles,
    logs: HashMap<String, Arc<Log>>,
    with_callback: Vec<String>,
    procs: HashMap<String, Child>,
    names: Value,
    /// Election tokens kept by `token` steps with `save`, by name.
    tokens: HashMap<String, hb_core::election::Token>,
}

type Outcome = Result<(), String>;

impl Driver {
    fn new(run: &str, etcd: Option<&str>, names: Value) -> Driver {
        let mut vars = BTreeMap::new();
        vars.insert("run".to_string(), run.to_string());
        if let Some(e) = etcd {
            vars.insert("etcd".to_string(), e.to_string());
        }
        Driver {
            vars,
            handles: Arc::default(),
            logs: HashMap::new(),
            with_callback: Vec::new(),
            procs: HashMap::new(),
            names,
            tokens: HashMap::new(),
        }
    }

    fn subst(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (k, v) in &self.vars {
            out = out.replace(&format!("${{{k}}}"), v);
        }
        out
    }

    /// `value` with `subst` applied to every string in it.
    fn subst_all(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.subst(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.subst_all(v)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), self.subst_all(v))).collect()),
            other => other.clone(),
        }
    }

    fn s(&self, step: &Value, field: &str) -> Result<String, String> {
        step[field].as_str().map(|t| self.subst(t)).ok_or_else(|| format!("step has no string field {field:?}"))
    }

    fn handle(&self, step: &Value) -> Result<Handle, String> {
        let name = self.s(step, "h")?;
        self.handles.lock().get(&name).cloned().ok_or_else(|| format!("no handle {name:?}"))
    }

    fn log(&mut self, name: &str) -> Arc<Log> {
        Arc::clone(self.logs.entry(name.to_string()).or_default())
    }

    fn run_steps(&mut self, steps: &[Value]) -> Outcome {
        for (i, step) in steps.iter().enumerate() {
            self.step(step).map_err(|e| format!("step {i} ({}): {e}", step["do"]))?;
        }
        Ok(())
    }

    fn step(&mut self, step: &Value) -> Outcome {
        let expect = &self.subst_all(&step["expect"]);
        match step["do"].as_str().unwrap_or("") {
            kind @ ("monitor" | "client" | "watcher") => self.make(kind, step),
            "start" => {
                let r = match self.handle(step)? {
                    Handle::Client(c) => c.start(),
                    Handle::Monitor(m) => m.start().map(|_| self.learn_addrs(step)),
                    Handle::Watcher(w) => w.start(),
                    Handle::Election(_) => return Err("an election has no start (campaign)".into()),
                };
                judge(r, expect, |_| Ok(()))
            }
            "stop" => {
                let r = match self.handle(step)? {
                    Handle::Client(c) => c.stop(c.config().stop_timeout),
                    Handle::Monitor(m) => m.stop(),
                    Handle::Watcher(w) => w.stop(),
                    Handle::Election(e) => e.stop(e.config().stop_timeout),
                };
                judge(r, expect, |_| Ok(()))
            }
            "free" => {
                let name = self.s(step, "h")?;
                let gone = self.handles.lock().remove(&name);
                drop(gone.ok_or_else(|| format!("no handle {name:?}"))?);
                Ok(())
            }
            "state" => judge(self.client(step)?.state(), expect, |s| same(&Value::from(s.as_str()), &expect["value"])),
            "check" => match self.handle(step)? {
                Handle::Election(e) => judge(e.check(), expect, |_| Ok(())),
                _ => judge(self.client(step)?.check(), expect, |_| Ok(())),
            },
            "fencing_token" => judge(self.client(step)?.fencing_token(), expect, |t| {
                same(&serde_json::json!([t.lease_id, t.epoch]), &expect["value"])
            }),
            "remaining" => {
                let r = match self.handle(step)? {
                    Handle::Election(e) => e.remaining(),
                    _ => self.client(step)?.remaining(),
                };
                judge(r, expect, |d| within(d.as_millis() as u64, expect))
            }
            "election" => self.make_election(step),
            "campaign" => {
                let timeout = Duration::from_millis(step["timeout_ms"].as_u64().unwrap_or(0));
                judge(self.election(step)?.campaign(timeout), expect, |_| Ok(()))
            }
            "resign" => {
                let e = self.election(step)?;
                judge(e.resign(e.config().stop_timeout), expect, |_| Ok(()))
            }
            "token" => {
                let r = self.election(step)?.token();
                if let (Ok(t), Some(name)) = (&r, step["save"].as_str()) {
                    self.tokens.insert(name.to_string(), *t);
                }
                judge(r, expect, |t| match expect["greater_than"].as_str() {
                    Some(name) => {
                        let before = self.tokens.get(name).ok_or(format!("no saved token {name:?}"))?;
                        (t.revision > before.revision)
                            .then_some(())
                            .ok_or(format!("token revision {} not above {name}'s {}", t.revision, before.revision))
                    }
                    None => Ok(()),
                })
            }
            "leader" => {
                // With within_ms, until it matches: the leader is what our watch has seen.
                let e = self.election(step)?;
                let until = Instant::now() + Duration::from_millis(step["within_ms"].as_u64().unwrap_or(0));
                loop {
                    let r = judge(e.leader(), expect, |l| {
                        let got = l.as_ref().map(|l| Value::from(String::from_utf8_lossy(&l.value).into_owned()));
                        let got = got.unwrap_or(Value::Null);
                        match expect.get("value") {
                            Some(want) if *want != got => Err(format!("leader {got}, expected {want}")),
                            _ => Ok(()),
                        }
                    });
                    match r {
                        Err(_) if Instant::now() <= until => std::thread::sleep(Duration::from_millis(20)),
                        done => return done,
                    }
                }
            }
            "wait_event" => self.wait_event(step),
            "incarnation" => judge(self.client(step)?.incarnation(), expect, |_| Ok(())),
            "peers" => {
                // With within_ms, until the list matches: a watcher's list follows etcd a
                // round trip after the event that announced the change.
                let until = Instant::now() + Duration::from_millis(step["within_ms"].as_u64().unwrap_or(0));
                loop {
                    match self.peers_once(step, expect) {
                        Err(_) if Instant::now() <= until => std::thread::sleep(Duration::from_millis(20)),
                        done => return done,
                    }
                }
            }
            "http_addr" => {
                let r = match self.handle(step)? {
                    Handle::Monitor(m) => m.http_addr(),
                    Handle::Watcher(w) => w.http_addr(),
                    Handle::Client(_) | Handle::Election(_) => return Err("http_addr of a client or election".into()),
                };
                judge(r, expect, |addr| {
                    let got = match addr {
                        Some(a) if a.port() != 0 => "serving",
                        Some(_) => "port 0",
                        None => "none",
                    };
                    same(&Value::from(got), &expect["value"])
                })
            }
            "http_peers" => {
                // Until the API and peers() agree on what was expected: the two reads are
                // not one snapshot.
                let until = Instant::now() + Duration::from_millis(step["within_ms"].as_u64().unwrap_or(2_000));
                loop {
                    match self.http_peers_once(step, expect) {
                        Err(_) if Instant::now() <= until => std::thread::sleep(Duration::from_millis(20)),
                        done => return done,
                    }
                }
            }
            "next_event" => {
                let timeout = Duration::from_millis(step["timeout_ms"].as_u64().unwrap_or(0));
                let got = self.handle(step)?.source().next_event(Some(timeout));
                match (got, expect) {
                    (Ok(None), Value::String(s)) if s == "timeout" => Ok(()),
                    (Err(Error::Stopped(_)), Value::String(s)) if s == "end" => Ok(()),
                    (Ok(Some(ev)), Value::Object(o)) if o.contains_key("event") => {
                        self.matches(&ev, &expect["event"]).map_err(|e| format!("event {ev}: {e}"))
                    }
                    (Err(e), Value::Object(o)) if o.contains_key("error") => expected_error(&e, expect),
                    (got, _) => Err(format!("got {got:?}, expected {expect}")),
                }
            }
            "on_event" => self.on_event(step),
            "events" => self.events(step),
            "no_events" => {
                let name = self.s(step, "h")?;
                let peer = self.s(step, "peer")?;
                let until = Instant::now() + Duration::from_millis(step["for_ms"].as_u64().unwrap_or(0));
                while Instant::now() < until {
                    self.poll(&name, Duration::from_millis(20))?;
                }
                let log = self.log(&name);
                let n = log.events.lock().iter().filter(|e| e.peer == peer).count();
                (n == 0).then_some(()).ok_or(format!("{n} events for {peer}"))
            }
            "wait_state" => {
                let c = self.client(step)?;
                let want = self.s(step, "value")?;
                let until = Instant::now() + Duration::from_millis(step["within_ms"].as_u64().unwrap_or(10_000));
                loop {
                    match c.state() {
                        Ok(s) if s.as_str() == want => return Ok(()),
                        Ok(s) if Instant::now() > until => return Err(format!("state {s}, expected {want}")),
                        Err(e) => return Err(format!("state: {e}")),
                        _ => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
            "beat" => {
                let args: Vec<String> = step["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| self.subst(a.as_str().unwrap_or("")))
                    .collect();
                let child = Command::new(heartbeater_bin())
                    .arg("beat")
                    .args(&args)
                    .stdout(Stdio::null())
                    .spawn()
                    .map_err(|e| format!("spawn heartbeater beat: {e}"))?;
                self.procs.insert(self.s(step, "as")?, child);
                Ok(())
            }
            "kill" => {
                let name = self.s(step, "p")?;
                let mut child = self.procs.remove(&name).ok_or(format!("no process {name:?}"))?;
                let sig = if step["signal"] == "TERM" { libc::SIGTERM } else { libc::SIGKILL };
                // SAFETY: signalling a child we spawned and have not reaped.
                unsafe { libc::kill(child.id() as i32, sig) };
                child.wait().map(|_| ()).map_err(|e| e.to_string())
            }
            "fork" => self.fork(step),
            "names" => self.check_names(),
            other => Err(format!("unknown step {other:?}")),
        }
    }

    fn election(&self, step: &Value) -> Result<Arc<Election>, String> {
        match self.handle(step)? {
            Handle::Election(e) => Ok(e),
            _ => Err("not an election".into()),
        }
    }

    fn make_election(&mut self, step: &Value) -> Outcome {
        let name = self.s(step, "as")?;
        let made = (|| {
            let mut o = Options::new();
            for pair in step["options"].as_array().into_iter().flatten() {
                o.set(pair[0].as_str().unwrap_or(""), &self.subst(pair[1].as_str().unwrap_or("")))?;
            }
            let value = self.subst(step["value"].as_str().unwrap_or(""));
            Election::new(&o, &self.subst(step["name"].as_str().unwrap_or("")), value.as_bytes()).map(Arc::new)
        })();
        judge(made, &step["expect"], |e| {
            self.handles.lock().insert(name.clone(), Handle::Election(Arc::clone(e)));
            Ok(())
        })
    }

    fn client(&self, step: &Value) -> Result<Arc<Client>, String> {
        match self.handle(step)? {
            Handle::Client(c) => Ok(c),
            _ => Err("not a client".into()),
        }
    }

    fn make(&mut self, kind: &str, step: &Value) -> Outcome {
        let name = self.s(step, "as")?;
        let made = (|| {
            let mut o = Options::new();
            for pair in step["options"].as_array().into_iter().flatten() {
                o.set(pair[0].as_str().unwrap_or(""), &self.subst(pair[1].as_str().unwrap_or("")))?;
            }
            Ok::<_, Error>(match kind {
                "client" => Handle::Client(Arc::new(Client::new(&o)?)),
                "monitor" => Handle::Monitor(Arc::new(Monitor::new(&o)?)),
                _ => Handle::Watcher(Arc::new(Watcher::new(&o)?)),
            })
        })();
        judge(made, &step["expect"], |h| {
            self.handles.lock().insert(name.clone(), h.clone());
            Ok(())
        })
    }

    /// One look at a monitor's or watcher's peers, against `expect.ids`.
    fn peers_once(&self, step: &Value, expect: &Value) -> Result<(), String> {
        let r = match self.handle(step)? {
            Handle::Monitor(m) => m.peers(),
            Handle::Watcher(w) => w.peers(),
            Handle::Client(_) | Handle::Election(_) => return Err("peers of a client or election".into()),
        };
        let want: Vec<String> = match expect["ids"].as_array() {
            Some(ids) => ids.iter().map(|v| self.subst(v.as_str().unwrap_or(""))).collect(),
            None => Vec::new(),
        };
        judge(r, expect, |peers| {
            let mut ids: Vec<String> = peers.iter().map(|p| p.id.clone()).collect();
            ids.sort();
            (ids == want).then_some(()).ok_or(format!("peers {ids:?}, expected {want:?}"))
        })
    }

    fn http_addr(&self, step: &Value) -> Result<Option<std::net::SocketAddr>, String> {
        match self.handle(step)? {
            Handle::Monitor(m) => m.http_addr().map_err(|e| e.to_string()),
            Handle::Watcher(w) => w.http_addr().map_err(|e| e.to_string()),
            Handle::Client(_) | Handle::Election(_) => Err("http_addr of a client or election".into()),
        }
    }

    /// `GET /v1/peers` against `expect.ids` and against this language's own `peers()`.
    fn http_peers_once(&self, step: &Value, expect: &Value) -> Result<(), String> {
        let addr = self.http_addr(step)?.ok_or("not serving HTTP")?;
        let body = http_get(addr, "/v1/peers")?;
        let api: Vec<Value> =
            body["peers"].as_array().ok_or(format!("no peers in {body}"))?.iter().map(peer_fields).collect();
        let own = match self.handle(step)? {
            Handle::Monitor(m) => m.peers(),
            Handle::Watcher(w) => w.peers(),
            Handle::Client(_) | Handle::Election(_) => return Err("peers of a client or election".into()),
        }
        .map_err(|e| format!("peers(): {e}"))?;
        let own: Vec<Value> = own
            .iter()
            .map(|p| {
                serde_json::json!({"id": p.id, "service": p.service, "labels": p.labels,
                                   "state": p.state.as_str(), "incarnation": p.incarnation})
            })
            .collect();
        let mut ids: Vec<String> = api.iter().map(|p| p["id"].as_str().unwrap_or("").to_string()).collect();
        ids.sort();
        let want: Vec<String> =
            expect["ids"].as_array().into_iter().flatten().map(|v| self.subst(v.as_str().unwrap_or(""))).collect();
        if ids != want {
            return Err(format!("GET /v1/peers ids {ids:?}, expected {want:?}"));
        }
        (sorted(api.clone()) == sorted(own.clone()))
            .then_some(())
            .ok_or(format!("GET /v1/peers {api:?}, peers() {own:?}"))
    }

    fn learn_addrs(&mut self, step: &Value) {
        let name = self.subst(step["h"].as_str().unwrap_or(""));
        if let Ok(Handle::Monitor(m)) = self.handle(step) {
            for (url, _) in m.local_addrs().unwrap_or_default() {
                let scheme = url.split("://").next().unwrap_or("").to_string();
                self.vars.insert(format!("{name}.{scheme}"), url);
            }
        }
    }

    fn on_event(&mut self, step: &Value) -> Outcome {
        let name = self.s(step, "h")?;
        let then = self.s(step, "then")?;
        let log = self.log(&name);
        let handles = Arc::clone(&self.handles);
        let mut first = true;
        let own = name.clone();
        let callback = Box::new(move |ev: &Event| {
            log.push(ev.clone());
            if !std::mem::take(&mut first) {
                return;
            }
            match then.as_str() {
                "stop" => {
                    let h = handles.lock().get(&own).cloned();
                    match h {
                        Some(Handle::Client(c)) => drop(c.stop(c.config().stop_timeout)),
                        Some(Handle::Monitor(m)) => drop(m.stop()),
                        Some(Handle::Watcher(w)) => drop(w.stop()),
                        Some(Handle::Election(e)) => drop(e.stop(e.config().stop_timeout)),
                        None => {}
                    }
                }
                // Takes the driver's reference; the last one may be dropped right here.
                "free" => drop(handles.lock().remove(&own)),
                "raise" => panic!("conformance: a callback that panics"),
                _ => {}
            }
        });
        self.with_callback.push(name);
        self.handle(step)?.source().set_callback(callback).map_err(|e| e.to_string())
    }

    /// Polls a handle without a callback into its log.
    fn poll(&mut self, name: &str, wait: Duration) -> Outcome {
        let log = self.log(name);
        if self.with_callback.iter().any(|n| n == name) {
            let mut events = log.events.lock();
            log.grew.wait_for(&mut events, wait);
            return Ok(());
        }
        let handle = self.handles.lock().get(name).cloned();
        let Some(handle) = handle else { return Ok(()) };
        match handle.source().next_event(Some(wait)) {
            Ok(Some(ev)) => log.push(ev),
            Ok(None) | Err(Error::Stopped(_)) => {}
            Err(e) => return Err(format!("next_event: {e}")),
        }
        Ok(())
    }

    /// Until an event of any peer matches `expect`; consumes it and every event before it.
    fn wait_event(&mut self, step: &Value) -> Outcome {
        let name = self.s(step, "h")?;
        let until = Instant::now() + Duration::from_millis(step["within_ms"].as_u64().unwrap_or(10_000));
        let log = self.log(&name);
        loop {
            let found = log.events.lock().iter().position(|e| self.matches(e, &step["expect"]).is_ok());
            if let Some(i) = found {
                log.events.lock().drain(..=i);
                return Ok(());
            }
            if Instant::now() > until {
                let seen: Vec<String> = log.events.lock().iter().map(|e| e.to_string()).collect();
                return Err(format!("no event {} within the time; recorded: {seen:?}", step["expect"]));
            }
            self.poll(&name, Duration::from_millis(50))?;
        }
    }

    fn events(&mut self, step: &Value) -> Outcome {
        let name = self.s(step, "h")?;
        let peer = self.s(step, "peer")?;
        let want = step["expect"].as_array().cloned().unwrap_or_default();
        let until = Instant::now() + Duration::from_millis(step["within_ms"].as_u64().unwrap_or(10_000));
        let log = self.log(&name);
        loop {
            let have = log.events.lock().iter().filter(|e| e.peer == peer).count();
            if have >= want.len() {
                break;
            }
            if Instant::now() > until {
                let seen: Vec<String> = log.events.lock().iter().map(|e| e.to_string()).collect();
                return Err(format!("{have} of {} events for {peer} within the time; recorded: {seen:?}", want.len()));
            }
            self.poll(&name, Duration::from_millis(50))?;
        }
        let mut events = log.events.lock();
        let mut taken = Vec::new();
        events.retain(|e| {
            if e.peer == peer && taken.len() < want.len() {
                taken.push(e.clone());
                false
            } else {
                true
            }
        });
        drop(events);
        for (ev, w) in taken.iter().zip(&want) {
            self.matches(ev, w).map_err(|e| {
                format!("{e}; events were {:?}", taken.iter().map(|e| e.to_string()).collect::<Vec<_>>())
            })?;
        }
        Ok(())
    }

    fn matches(&self, ev: &Event, want: &Value) -> Outcome {
        for (field, got) in [("from", ev.from.as_str()), ("to", ev.to.as_str()), ("reason", ev.reason.as_str())] {
            if let Some(w) = want[field].as_str() {
                if w != got {
                    return Err(format!("{field} {got}, expected {w}"));
                }
            }
        }
        if let Some(p) = want["peer"].as_str() {
            if self.subst(p) != ev.peer {
                return Err(format!("peer {}, expected {p}", ev.peer));
            }
        }
        Ok(())
    }

    fn fork(&mut self, step: &Value) -> Outcome {
        let steps = step["steps"].as_array().cloned().unwrap_or_default();
        // SAFETY: the child runs only engine calls (which begin with the fork check, before
        // any lock a parent thread could hold) and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err("fork failed".into());
        }
        if pid == 0 {
            let code = match self.run_steps(&steps) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("forked child: {e}");
                    1
                }
            };
            // SAFETY: ends the child without running the parent's destructors or atexit.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child we just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
            .then_some(())
            .ok_or(format!("forked child failed (status {status})"))
    }

    fn check_names(&self) -> Outcome {
        let list = |key: &str| -> Vec<String> {
            self.names[key].as_array().into_iter().flatten().map(|v| v.as_str().unwrap_or("").to_string()).collect()
        };
        let states: Vec<String> = State::ALL.iter().map(|s| s.as_str().to_string()).collect();
        let reasons: Vec<String> = Reason::ALL.iter().map(|r| r.as_str().to_string()).collect();
        let phases: Vec<String> = [
            hb_core::Phase::Idle,
            hb_core::Phase::Starting,
            hb_core::Phase::Running,
            hb_core::Phase::Stopped,
            hb_core::Phase::Forked,
        ]
        .iter()
        .map(|p| p.as_str().to_string())
        .collect();
        let kinds: Vec<String> = [
            Error::config("f", "v", "e"),
            Error::Connect { what: "x", addr: String::new(), detail: String::new() },
            Error::PermissionDenied { what: "x", addr: String::new(), detail: String::new() },
            Error::NotHolder(String::new()),
            Error::Stopped(""),
            Error::Forked { parent: 0, child: 0 },
            Error::InvalidState(String::new()),
            Error::Timeout { what: String::new(), after_ms: 0 },
            Error::io("", ""),
            Error::Internal(String::new()),
        ]
        .iter()
        .map(|e| e.kind().to_string())
        .collect();
        for (key, ours) in [("states", states), ("reasons", reasons), ("error_kinds", kinds), ("phases", phases)] {
            if list(key) != ours {
                return Err(format!("names.json {key} {:?}, the engine has {ours:?}", list(key)));
            }
        }
        Ok(())
    }

    fn finish(&mut self) {
        for (_, mut child) in self.procs.drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.handles.lock().clear();
    }
}

/// Compares a result with a step's `expect`: absent (or a value check) means success.
/// The fields every language's peer has, taken from the HTTP API's JSON peer.
fn peer_fields(p: &Value) -> Value {
    serde_json::json!({"id": p["id"], "service": p["service"], "labels": p["labels"],
                       "state": p["state"], "incarnation": p["incarnation"]})
}

fn sorted(mut peers: Vec<Value>) -> Vec<Value> {
    peers.sort_by_key(|p| (p["service"].to_string(), p["id"].to_string()));
    peers
}

/// A plain HTTP/1.0 GET (the server closes after the answer); the body as JSON if 200.
fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<Value, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| format!("GET {path}: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| format!("GET {path}: {e}"))?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or(format!("GET {path}: no header end in {text:?}"))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")));
    }
    serde_json::from_str(body).map_err(|e| format!("GET {path}: {e} in {body:?}"))
}

fn judge<T>(r: hb_core::Result<T>, expect: &Value, on_ok: impl FnOnce(&T) -> Outcome) -> Outcome {
    match r {
        Err(e) => expected_error(&e, expect),
        Ok(v) if expect.get("error").is_some() => {
            drop(v);
            Err(format!("succeeded, expected {expect}"))
        }
        Ok(v) => on_ok(&v),
    }
}

fn expected_error(e: &Error, expect: &Value) -> Outcome {
    let Some(kind) = expect["error"].as_str() else { return Err(format!("failed: {} ({e})", e.kind())) };
    let text = e.to_string();
    if e.kind() != kind {
        return Err(format!("error {} ({text}), expected {kind}", e.kind()));
    }
    if let Some(m) = expect["message"].as_str() {
        if m != text {
            return Err(format!("message {text:?}, expected {m:?}"));
        }
    }
    if let Some(m) = expect["contains"].as_str() {
        if !text.contains(m) {
            return Err(format!("message {text:?} lacks {m:?}"));
        }
    }
    Ok(())
}

fn same(got: &Value, want: &Value) -> Outcome {
    if want.is_null() || got == want {
        Ok(())
    } else {
        Err(format!("value {got}, expected {want}"))
    }
}

fn within(ms: u64, expect: &Value) -> Outcome {
    let lo = expect["value_min"].as_u64().unwrap_or(0);
    let hi = expect["value_max"].as_u64().unwrap_or(u64::MAX);
    (lo..=hi).contains(&ms).then_some(()).ok_or(format!("value {ms}, expected {lo}..={hi}"))
}

fn heartbeater_bin() -> PathBuf {
    match std::env::var_os("HEARTBEATER_BIN") {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => PathBuf::from(dir).join("debug/heartbeater"),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/heartbeater"),
        },
    }
}

/// What a scenario needs that this driver lacks, from capabilities.json.
fn not_here(scenario: &Value, caps: &Value) -> Option<String> {
    scenario["requires"].as_array().into_iter().flatten().find_map(|c| {
        let c = c.as_str().unwrap_or("");
        match &caps["capabilities"][c]["rust"] {
            Value::Bool(true) => None,
            Value::String(why) => Some(why.clone()),
            _ => Some(format!("capability {c:?} is not declared for rust in capabilities.json")),
        }
    })
}

/// The scenario as run over `transport` (README, "Transports"): `${transport}` replaced in
/// every string, and each list element `${tls.monitor}`, `${tls.client}` (options) or
/// `${tls.beat}` (CLI arguments) replaced by that side's TLS files from `certs`, or by
/// nothing over another transport.
fn over(value: &Value, transport: &str, certs: &Path) -> Value {
    let file = |f: &str| Value::String(certs.join(f).display().to_string());
    let pairs = |side: &str| -> Vec<Value> {
        [
            ("tls_ca_file", "ca.pem".to_string()),
            ("tls_cert_file", format!("{side}.pem")),
            ("tls_key_file", format!("{side}-key.pem")),
        ]
        .into_iter()
        .map(|(k, f)| Value::Array(vec![Value::String(k.into()), file(&f)]))
        .collect()
    };
    let splice = |marker: &str| -> Option<Vec<Value>> {
        let tls = transport == "tls";
        Some(match marker {
            "${tls.monitor}" if tls => pairs("monitor"),
            "${tls.client}" if tls => pairs("client"),
            "${tls.beat}" if tls => {
                ["--tls-ca-file", "ca.pem", "--tls-cert-file", "client.pem", "--tls-key-file", "client-key.pem"]
                    .chunks(2)
                    .flat_map(|kv| [Value::String(kv[0].into()), file(kv[1])])
                    .collect()
            }
            "${tls.monitor}" | "${tls.client}" | "${tls.beat}" => Vec::new(),
            _ => return None,
        })
    };
    match value {
        Value::String(s) => Value::String(s.replace("${transport}", transport)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .flat_map(|v| match v.as_str().and_then(splice) {
                    Some(spliced) => spliced,
                    None => vec![over(v, transport, certs)],
                })
                .collect(),
        ),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), over(v, transport, certs))).collect()),
        other => other.clone(),
    }
}

/// Runs `tls-certs` (the helper every driver shares) for the scenario's `tls_ids`.
fn make_certs(dir: &Path, driver: &Driver, scenario: &Value) -> Outcome {
    let ids: Vec<String> = scenario["tls_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .map(|v| driver.subst(v))
        .collect();
    let status = Command::new(suite_dir().join("tls-certs"))
        .arg(dir)
        .args(&ids)
        .status()
        .map_err(|e| format!("run tests/conformance/tls-certs: {e}"))?;
    status.success().then_some(()).ok_or(format!("tests/conformance/tls-certs {ids:?}: {status}"))
}

fn needs(scenario: &Value, var: &str) -> bool {
    scenario.to_string().contains(&format!("${{{var}}}"))
}

#[test]
fn every_scenario() {
    let dir = suite_dir();
    let caps = read_json(&dir.join("capabilities.json"));
    let names = read_json(&dir.join("names.json"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("scenarios"))
        .expect("tests/conformance/scenarios")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {}", dir.display());

    let scenarios: Vec<Value> = files.iter().map(|f| read_json(f)).collect();
    let beats = scenarios.iter().any(|s| s.to_string().contains("\"beat\""));
    assert!(
        !beats || heartbeater_bin().exists(),
        "{} is missing: build it with `cargo build -p hb-cli` (or set HEARTBEATER_BIN)",
        heartbeater_bin().display()
    );
    let own_etcd;
    let etcd = match std::env::var("HB_CONFORMANCE_ETCD") {
        Ok(e) => Some(e),
        Err(_) if scenarios.iter().any(|s| needs(s, "etcd")) && etcd_support::etcd_installed() => {
            own_etcd = etcd_support::Etcd::start();
            Some(own_etcd.endpoint())
        }
        Err(_) => None,
    };

    let mut failed = Vec::new();
    for (i, (file, scenario)) in files.iter().zip(&scenarios).enumerate() {
        let name = scenario["name"].as_str().unwrap_or("?").to_string();
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        assert_eq!(name, stem, "{}: the name must be the file's", file.display());
        if let Some(why) = not_here(scenario, &caps) {
            println!("n/a {name} ({why})");
            continue;
        }
        if etcd.is_none() && needs(scenario, "etcd") {
            println!("skip {name} (etcd is not installed)");
            continue;
        }
        // Without `transports`, the scenario runs once as written.
        let transports: Vec<Option<&str>> = match scenario["transports"].as_array() {
            Some(list) => list.iter().map(Value::as_str).collect(),
            None => vec![None],
        };
        for (j, transport) in transports.into_iter().enumerate() {
            let run = format!("rs{}x{i}t{j}", std::process::id());
            let mut driver = Driver::new(&run, etcd.as_deref(), names.clone());
            let certs = tempfile::tempdir().unwrap();
            let (label, scenario) = match transport {
                Some(t) => (format!("{name} over {t}"), over(scenario, t, certs.path())),
                None => (name.clone(), scenario.clone()),
            };
            let t0 = Instant::now();
            let outcome = match transport {
                Some("tls") => make_certs(certs.path(), &driver, &scenario),
                _ => Ok(()),
            }
            .and_then(|()| driver.run_steps(scenario["steps"].as_array().map_or(&[][..], Vec::as_slice)));
            driver.finish();
            match outcome {
                Ok(()) => println!("ok {label} ({} ms)", t0.elapsed().as_millis()),
                Err(e) => {
                    println!("FAIL {label}: {e}");
                    failed.push(format!("{label}: {e}"));
                }
            }
        }
    }
    assert!(failed.is_empty(), "conformance failures:\n{}", failed.join("\n"));
}
