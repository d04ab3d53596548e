//! One etcd connection per (endpoints, credentials) in the process, shared by every Client
//! and Watcher that uses them, with one keepalive stream for all of their leases.
//!
//! Errors are classified here once: "cannot reach etcd at H:P" (`Error::Connect`) versus
//! "permission denied" (`Error::PermissionDenied`), so `start()` can tell them apart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use parking_lot::Mutex;

use crate::config::{Config, HostPort};
use crate::error::{Error, Result};

use super::keepalive::KeepaliveMux;

/// What makes two connections interchangeable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PoolKey {
    hosts: Vec<HostPort>,
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    username: Option<String>,
    password: Option<Vec<u8>>,
}

impl PoolKey {
    fn of(config: &Config, hosts: &[HostPort]) -> PoolKey {
        let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
        PoolKey {
            hosts: hosts.to_vec(),
            ca_file: path(&config.etcd.ca_file),
            cert_file: path(&config.etcd.cert_file),
            key_file: path(&config.etcd.key_file),
            username: config.etcd.username.clone(),
            password: config.etcd.password.as_ref().map(|s| s.0.clone()),
        }
    }
}

static POOL: Mutex<Option<Pool<Connection>>> = Mutex::new(None);

/// The process's connections, keyed by what makes them interchangeable, and the pid they
/// belong to. After a fork the parent's connections still look alive in the child (its
/// Clients' memory was copied) but their channels and keepalive task ran on the parent's
/// runtime, whose threads do not exist here: the child must open its own.
struct Pool<T> {
    pid: u32,
    conns: HashMap<PoolKey, Weak<T>>,
}

impl<T> Pool<T> {
    /// The pool of process `pid`: a pool left by another (parent) process is forgotten.
    fn of(slot: &mut Option<Pool<T>>, pid: u32) -> &mut Pool<T> {
        if slot.as_ref().is_some_and(|p| p.pid != pid) {
            // Leaked, not dropped: nothing of the parent's may run or be freed here.
            std::mem::forget(slot.take());
        }
        slot.get_or_insert_with(|| Pool { pid, conns: HashMap::new() })
    }

    fn get(&self, key: &PoolKey) -> Option<Arc<T>> {
        self.conns.get(key).and_then(Weak::upgrade)
    }

    /// Keeps `conn` unless another task put a live one under `key` meanwhile; returns
    /// the one to use.
    fn insert(&mut self, key: PoolKey, conn: Arc<T>) -> Arc<T> {
        self.conns.retain(|_, weak| weak.strong_count() > 0);
        if let Some(existing) = self.get(&key) {
            return existing;
        }
        self.conns.insert(key, Arc::downgrade(&conn));
        conn
    }
}

/// A shared etcd connection. Dropped (and its keepalive stream closed) when the last user
/// lets go of it.
pub(crate) struct Connection {
    client: Mutex<Client>,
    /// Where we connect, for error messages: `127.0.0.1:2379` or `a:1,b:2`.
    pub addr: String,
    pub keepalive: KeepaliveMux,
    urls: Vec<String>,
    options: ConnectOptions,
    has_user: bool,
    /// One client per member (made on first use), for the streams that must not stay on a
    /// frozen member: the balanced channel cannot tell a stopped process from a slow one,
    /// and may keep handing it new streams.
    members: Vec<Mutex<Option<Client>>>,
    /// The member those streams go to now; moved on when one of them stalls.
    preferred: AtomicUsize,
}

impl Connection {
    /// The pooled connection for `config`'s etcd endpoint, made (and authenticated) if needed.
    pub async fn get(config: &Config) -> Result<Arc<Connection>> {
        let (hosts, _) = config
            .etcd_endpoint()
            .ok_or_else(|| Error::Internal("etcd connection requested without an etcd endpoint".into()))?;
        let key = PoolKey::of(config, hosts);
        if let Some(conn) = Pool::of(&mut POOL.lock(), std::process::id()).get(&key) {
            return Ok(conn);
        }
        let conn = Connection::open(config, hosts).await?;
        // Another task may have opened the same connection meanwhile: keep the first.
        Ok(Pool::of(&mut POOL.lock(), std::process::id()).insert(key, conn))
    }

    async fn open(config: &Config, hosts: &[HostPort]) -> Result<Arc<Connection>> {
        let addr = join_hosts(hosts);
        let tls = tls_options(config)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let urls: Vec<String> = hosts.iter().map(|h| format!("{scheme}://{h}")).collect();
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            // HTTP/2 pings find a dead or blackholed server even while nothing is sent.
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true);
        if let Some(tls) = tls {
            options = options.with_tls(tls);
        }
        if let (Some(user), Some(password)) = (&config.etcd.username, &config.etcd.password) {
            options = options.with_user(user.clone(), String::from_utf8_lossy(&password.0).into_owned());
        }
        let client = connect(&urls, &options, &addr, config.connect_timeout).await?;
        Ok(Arc::new_cyclic(|weak: &Weak<Connection>| Connection {
            client: Mutex::new(client),
            keepalive: KeepaliveMux::spawn(weak.clone()),
            addr,
            members: urls.iter().map(|_| Mutex::new(None)).collect(),
            preferred: AtomicUsize::new(0),
            urls,
            options,
            has_user: config.etcd.username.is_some(),
        }))
    }

    /// A handle on the current client (cheap: channels are shared).
    pub fn client(&self) -> Client {
        self.client.lock().clone()
    }

    /// The preferred member and a client that talks to it alone, connected (and
    /// authenticated) within `timeout` if it is the first use.
    pub async fn member(&self, timeout: Duration) -> Result<(usize, Client)> {
        let index = self.preferred.load(Ordering::SeqCst) % self.members.len();
        if let Some(client) = self.members[index].lock().clone() {
            return Ok((index, client));
        }
        let url = &self.urls[index];
        let client = connect(std::slice::from_ref(url), &self.options, url, timeout).await?;
        *self.members[index].lock() = Some(client.clone());
        Ok((index, client))
    }

    /// A stream on member `index` stalled or failed: streams move to the next member
    /// (unless another stream has already moved them).
    pub fn member_failed(&self, index: usize) {
        let next = (index + 1) % self.members.len();
        let _ = self.preferred.compare_exchange(index, next, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Like `member_failed`, for the member preferred right now.
    pub fn member_failed_now(&self) {
        self.member_failed(self.preferred.load(Ordering::SeqCst) % self.members.len());
    }

    /// Authenticates again: an etcd restart forgets the simple auth tokens it handed out.
    pub async fn reauthenticate(&self, timeout: Duration) -> Result<()> {
        if self.has_user {
            let client = connect(&self.urls, &self.options, &self.addr, timeout).await?;
            *self.client.lock() = client;
            // The members' clients log in again on their next use.
            for member in &self.members {
                member.lock().take();
            }
        }
        Ok(())
    }

    /// Turns an etcd-client error into ours, naming this connection's address.
    pub fn error(&self, what: &str, e: &etcd_client::Error) -> Error {
        classify(&self.addr, what, e)
    }
}

/// `a:1,b:2`: how etcd endpoints are named in errors.
pub(crate) fn join_hosts(hosts: &[HostPort]) -> String {
    hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",")
}

async fn connect(urls: &[String], options: &ConnectOptions, addr: &str, timeout: Duration) -> Result<Client> {
    match tokio::time::timeout(timeout, Client::connect(urls, Some(options.clone()))).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(classify(addr, "connect", &e)),
        Err(_) => Err(Error::Connect {
            what: "etcd",
            addr: addr.to_string(),
            detail: format!("no answer within {} ms", timeout.as_millis()),
        }),
    }
}

fn tls_options(config: &Config) -> Result<Option<TlsOptions>> {
    let etcd = &config.etcd;
    if etcd.ca_file.is_none() && etcd.cert_file.is_none() {
        return Ok(None);
    }
    let read = |field: &str, path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|e| Error::config(field, path.display(), format!("a readable PEM file ({e})")))
    };
    let mut tls = TlsOptions::new();
    if let Some(ca) = &etcd.ca_file {
        tls = tls.ca_certificate(Certificate::from_pem(read("etcd_ca_file", ca)?));
    }
    if let (Some(cert), Some(key)) = (&etcd.cert_file, &etcd.key_file) {
        tls = tls.identity(Identity::from_pem(read("etcd_cert_file", cert)?, read("etcd_key_file", key)?));
    }
    Ok(Some(tls))
}

/// Is this a refusal of our credentials (rather than a transport problem)?
pub(crate) fn is_auth_error(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            let msg = s.message();
            matches!(s.code() as i32, GRPC_PERMISSION_DENIED | GRPC_UNAUTHENTICATED)
                || msg.contains("authentication failed")
                || msg.contains("user name is empty")
                || msg.contains("permission denied")
                || msg.contains("invalid auth token")
        }
        _ => false,
    }
}

/// An expired or forgotten auth token: authenticating again fixes it.
pub(crate) fn is_token_error(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("invalid auth token") || s.code() as i32 == GRPC_UNAUTHENTICATED)
}

/// etcd answered that a lease does not exist (revoked, expired, or the data was wiped).
pub(crate) fn is_lease_not_found(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => s.message().contains("requested lease not found"),
        etcd_client::Error::LeaseKeepAliveError(m) => m.contains("lease not found"),
        _ => false,
    }
}

// gRPC status codes (stable numbers of the gRPC spec).
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_UNAUTHENTICATED: i32 = 16;

pub(crate) fn classify(addr: &str, what: &str, e: &etcd_client::Error) -> Error {
    let detail = describe(e);
    if is_auth_error(e) && !is_token_error(e) {
        return Error::PermissionDenied { what: "etcd", addr: addr.to_string(), detail: format!("{what}: {detail}") };
    }
    Error::Connect { what: "etcd", addr: addr.to_string(), detail: format!("{what}: {detail}") }
}

/// The most useful words of an etcd-client error, including the transport's source chain
/// ("connection refused", "certificate unknown").
pub(crate) fn describe(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => with_sources(format!("{:?}: {}", s.code(), s.message()), s),
        other => with_sources(other.to_string(), other),
    }
}

/// `text` followed by each source of `e` that it does not already say.
fn with_sources(mut text: String, e: &dyn std::error::Error) -> String {
    let mut source = e.source();
    while let Some(inner) = source {
        let t = inner.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> PoolKey {
        PoolKey {
            hosts: vec![HostPort { host: "127.0.0.1".into(), port }],
            ca_file: None,
            cert_file: None,
            key_file: None,
            username: None,
            password: None,
        }
    }

    #[test]
    fn pool_shares_within_a_process_and_forgets_a_parents_connections() {
        let mut slot: Option<Pool<String>> = None;
        let parent = Arc::new("parent's connection".to_string());
        assert!(Arc::ptr_eq(&Pool::of(&mut slot, 100).insert(key(1), Arc::clone(&parent)), &parent));
        let second = Arc::new("opened concurrently".to_string());
        assert!(Arc::ptr_eq(&Pool::of(&mut slot, 100).insert(key(1), second), &parent), "first one kept");
        assert!(Arc::ptr_eq(&Pool::of(&mut slot, 100).get(&key(1)).unwrap(), &parent));
        // Forked: the parent's handle still upgrades (its memory was copied), but it must not
        // be handed out in the child.
        assert!(Pool::of(&mut slot, 101).get(&key(1)).is_none());
        let child = Arc::new("child's connection".to_string());
        Pool::of(&mut slot, 101).insert(key(1), Arc::clone(&child));
        assert!(Arc::ptr_eq(&Pool::of(&mut slot, 101).get(&key(1)).unwrap(), &child));
        // A dropped connection is not handed out either.
        drop(child);
        assert!(Pool::of(&mut slot, 101).get(&key(1)).is_none());
    }
}
