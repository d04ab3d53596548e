//! Rust side of the one etcd test helper (`tests/harness/etcd.py`): start etcd on free
//! loopback ports with a temp data dir, restart it on the same ports, stop it by PID.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/harness/etcd.py")
}

/// Whether etcd is installed; a test returns early (skips) when it is not. With
/// HEARTBEATER_REQUIRE_ALL=1 (scripts/test-all sets it) a missing etcd panics instead:
/// there everything is installed, so a skip would hide an untested feature.
pub fn etcd_installed() -> bool {
    let ok = Path::new("/usr/bin/etcd").exists() || which("etcd");
    if !ok {
        let why = "etcd is not installed (apt-get install etcd-server etcd-client)";
        if std::env::var_os("HEARTBEATER_REQUIRE_ALL").is_some_and(|v| v == "1") {
            panic!("{why} (a failure, not a skip, because HEARTBEATER_REQUIRE_ALL=1)");
        }
        eprintln!("SKIP: {why}");
    }
    ok
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(name).exists())).unwrap_or(false)
}

pub struct Etcd {
    pub pid: u32,
    pub client_port: u16,
    pub peer_port: u16,
    pub metrics_port: u16,
    pub tls_dir: Option<PathBuf>,
    pub dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
        Etcd::start_with(None)
    }

    pub fn start_with(tls_dir: Option<&Path>) -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let info = run_start(dir.path(), tls_dir, None);
        Etcd {
            pid: info["pid"].as_u64().unwrap() as u32,
            client_port: info["client_port"].as_u64().unwrap() as u16,
            peer_port: info["peer_port"].as_u64().unwrap() as u16,
            metrics_port: info["metrics_port"].as_u64().unwrap() as u16,
            tls_dir: tls_dir.map(Path::to_path_buf),
            dir,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `etcd://127.0.0.1:P/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("etcd://{}{}", self.endpoint(), prefix)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn kill(&mut self) {
        let status =
            Command::new("python3").arg(harness()).args(["stop", &self.pid.to_string(), "--kill"]).status().unwrap();
        assert!(status.success());
    }

    /// Starts again on the same ports and data dir (emptied first when `wipe`).
    pub fn start_again(&mut self, wipe: bool) {
        if wipe {
            let _ = std::fs::remove_dir_all(self.data_dir().join("member-data"));
        }
        let ports = (self.client_port, self.peer_port, self.metrics_port);
        let info = run_start(self.dir.path(), self.tls_dir.as_deref(), Some(ports));
        self.pid = info["pid"].as_u64().unwrap() as u32;
    }

    pub fn restart(&mut self, wipe: bool) {
        self.kill();
        self.start_again(wipe);
    }

    /// Runs etcdctl (API v3) against this etcd; panics with its output on failure.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        self.etcdctl_as(None, args).expect("etcdctl")
    }

    pub fn etcdctl_as(&self, user: Option<&str>, args: &[&str]) -> Result<String, String> {
        let scheme = if self.tls_dir.is_some() { "https" } else { "http" };
        let mut cmd = Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3").arg(format!("--endpoints={scheme}://{}", self.endpoint()));
        if let Some(d) = &self.tls_dir {
            cmd.arg(format!("--cacert={}", d.join("ca.pem").display()));
            cmd.arg(format!("--cert={}", d.join("client.pem").display()));
            cmd.arg(format!("--key={}", d.join("client-key.pem").display()));
        }
        if let Some(u) = user {
            cmd.arg(format!("--user={u}"));
        }
        let out = cmd.args(args).output().expect("run etcdctl");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(text)
        }
    }

    /// Keys under `prefix` with their values.
    pub fn get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let out = self.etcdctl(&["get", "--prefix", prefix]);
        let lines: Vec<&str> = out.lines().collect();
        lines.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].to_string(), c[1].to_string())).collect()
    }

    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.get_prefix(prefix).into_iter().map(|(k, _)| k).collect()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = Command::new("python3").arg(harness()).args(["stop", &self.pid.to_string(), "--kill"]).status();
    }
}

fn run_start(dir: &Path, tls_dir: Option<&Path>, ports: Option<(u16, u16, u16)>) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.arg(harness()).arg("start").arg("--data-dir").arg(dir.join("data"));
    if let Some(t) = tls_dir {
        cmd.arg("--tls-dir").arg(t);
    }
    if let Some((c, p, m)) = ports {
        cmd.args(["--client-port", &c.to_string(), "--peer-port", &p.to_string(), "--metrics-port", &m.to_string()]);
    }
    let out = cmd.output().expect("run tests/harness/etcd.py");
    let line = String::from_utf8_lossy(&out.stdout);
    let info: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("harness output {line:?} ({e}); stderr {}", String::from_utf8_lossy(&out.stderr)));
    assert!(info.get("error").is_none(), "etcd did not start: {}", info["error"]);
    info
}

/// Polls `f` until it returns Some, or panics after `timeout` naming `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn options(pairs: &[(&str, &str)]) -> hb_core::Options {
    let mut o = hb_core::Options::new();
    for (k, v) in pairs {
        o.set(k, v).unwrap_or_else(|e| panic!("option {k}={v}: {e}"));
    }
    o
}

/// Every event currently queued on `hub`.
pub fn drain(hub: &hb_core::EventHub) -> Vec<hb_core::Event> {
    let mut out = Vec::new();
    while let Ok(Some(ev)) = hub.next_event(Some(Duration::ZERO)) {
        out.push(ev);
    }
    out
}

/// Waits for an event matching `pred` on `hub`, returning it (and dropping earlier ones).
pub fn wait_event(
    hub: &hb_core::EventHub,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&hb_core::Event) -> bool,
) -> hb_core::Event {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out after {timeout:?} waiting for {what}; saw {seen:#?}");
        if let Ok(Some(ev)) = hub.next_event(Some(left.min(Duration::from_millis(100)))) {
            if pred(&ev) {
                return ev;
            }
            seen.push(ev.to_string());
        }
    }
}

/// Makes and starts a Client (with etcd, start waits for the first registration).
pub fn start_client(options: &hb_core::Options) -> hb_core::Result<hb_core::Client> {
    let client = hb_core::Client::new(options)?;
    client.start()?;
    Ok(client)
}

/// `(lease id, epoch)`, `(0, 0)` before the first registration.
pub fn token(client: &hb_core::Client) -> (i64, u64) {
    client.fencing_token().map(|t| (t.lease_id, t.epoch)).unwrap_or((0, 0))
}
