//! One HTTP listener for monitors and watchers (docs/http.md): a status page (`/`),
//! `/metrics`, the peer view as
//! JSON (`/v1/peers`), the transitions as Server-Sent Events (`/v1/events`), `/healthz` and
//! `/readyz`; for a client, its own `/healthz`.
//!
//! hyper serves the connections and axum routes the requests; nothing here parses HTTP.
//! Each listener runs on a thread of its own (`hb-http`, a current-thread runtime, at a
//! lower priority), so that a client asking for 100k peers every 100 ms, or a slow one,
//! takes no time from the engine's runtime that receives beats. What a client may cost is
//! bounded by [`LIMITS`].

mod auth;
mod events;
mod health;
mod peers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

use crate::config::{Config, Secret};
use crate::error::{Error, Result};
use crate::events::EventHub;
use crate::history::History;
use crate::peers::PeerInfo;

pub use auth::read_token_file;
pub use health::{HealthReport, HealthSource};
pub use peers::{ListQuery, Listed, Page};

/// What one client of the listener may cost.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at once (event streams included); more are closed at once.
    pub max_connections: usize,
    /// The request line and headers must arrive within this; an idle keep-alive connection
    /// is closed after it too (slow-request and idle-connection bound).
    pub header_read_timeout: Duration,
    /// Bytes of request line and headers; more is answered 431.
    pub max_header_bytes: usize,
    /// Number of request headers; more is answered 431.
    pub max_headers: usize,
    /// Request body bytes (no endpoint takes a body); more is answered 413.
    pub max_body_bytes: u64,
    /// A handler must answer within this (an event stream's headers count, not its life).
    pub request_timeout: Duration,
}

pub const LIMITS: Limits = Limits {
    max_connections: 64,
    header_read_timeout: Duration::from_secs(10),
    max_header_bytes: 8 * 1024,
    max_headers: 64,
    max_body_bytes: 1024,
    request_timeout: Duration::from_secs(10),
};

/// What a monitor or watcher shows over HTTP.
pub trait PeerView: Send + Sync + 'static {
    /// The peers tracked now, as `peers()` returns them.
    fn peers(&self) -> Result<Vec<PeerInfo>>;
    /// `Ok` when the view can be trusted (started, listed), else why not.
    fn ready(&self) -> std::result::Result<(), String>;
    /// One page of a list request, and how many peers matched in all.
    fn list(&self, query: &ListQuery) -> Result<Page> {
        let (peers, total) = query.apply(self.peers()?);
        Ok(Page { peers, total, as_of_unix_ms: crate::events::unix_ms_now() })
    }
    /// Which shared copy of the rows `list` answers from now (taking a new one if due);
    /// while it is the same, the same parameters get the same page, so the last body
    /// written is sent again. `None`: every list is taken afresh.
    fn listing_generation(&self) -> Option<u64> {
        None
    }
}

/// A running listener; closes its socket and every connection when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    /// The process that started the thread: a forked child has no such thread to join.
    pid: u32,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            // A forked child has no such thread: leave it alone (glibc's join would return at
            // once, which POSIX does not promise).
            std::mem::forget(self.thread.take());
            return;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The shared state of the view routes.
#[derive(Clone)]
struct ViewState {
    view: Arc<dyn PeerView>,
    history: Arc<History>,
    /// The last `/v1/peers` body: (listing generation, raw query, JSON).
    last_list: Arc<parking_lot::Mutex<Option<peers::CachedList>>>,
}

/// Serves the whole API for `view` (whose events go through `hub`) on `config.http_addr`,
/// with `config.http_token` enforced; `None` when no `http_addr` is configured.
pub fn serve_view(config: &Config, view: Arc<dyn PeerView>, hub: &EventHub) -> Result<Option<HttpServer>> {
    serve_view_with(config, view, hub, LIMITS)
}

/// [`serve_view`] with other limits (tests use short timeouts).
#[doc(hidden)]
pub fn serve_view_with(
    config: &Config,
    view: Arc<dyn PeerView>,
    hub: &EventHub,
    limits: Limits,
) -> Result<Option<HttpServer>> {
    let Some(addr) = config.http_addr else { return Ok(None) };
    let state = ViewState { view, history: hub.history(), last_list: Arc::default() };
    let api = Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/v1/peers", get(peers::list))
        .route("/v1/peers/{id}", get(peers::one))
        .route("/v1/events", get(events::stream))
        .with_state(state.clone());
    let probes = Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(state);
    serve(addr, "http_addr", protect(api, config.http_token.clone()).merge(probes), limits).map(Some)
}

/// Serves only `GET /metrics` (the `metrics_addr` option).
pub fn serve_metrics(addr: SocketAddr) -> Result<HttpServer> {
    serve(addr, "metrics_addr", Router::new().route("/metrics", get(metrics)), LIMITS)
}

/// Serves a client's `/healthz` on `config.health_addr`; `None` when none is configured.
pub fn serve_health(config: &Config, source: Arc<dyn HealthSource>) -> Result<Option<HttpServer>> {
    let Some(addr) = config.health_addr else { return Ok(None) };
    serve(addr, "health_addr", health::router(source), LIMITS).map(Some)
}

fn protect(router: Router, token: Option<Secret>) -> Router {
    match token {
        Some(token) => router.route_layer(middleware::from_fn_with_state(Arc::new(token), auth::require_bearer)),
        None => router,
    }
}

async fn metrics() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::text()).into_response()
}

/// The status page: one self-contained file in the binary, live over `/v1/events`.
async fn status_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("status.html"))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<ViewState>) -> Response {
    match s.view.ready() {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response(),
    }
}

/// A JSON error body, `{"error": "..."}`, with `status`.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// No endpoint takes a body: one announced beyond the limit is refused before any of it is
/// read.
async fn refuse_large_bodies(State(max): State<u64>, req: Request, next: Next) -> Response {
    let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max) {
        return error_response(StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {max} bytes"));
    }
    next.run(req).await
}

/// Binds `addr` (errors name `field`), then serves `router` on an `hb-http` thread.
fn serve(addr: SocketAddr, field: &str, router: Router, limits: Limits) -> Result<HttpServer> {
    let router = router.layer(middleware::from_fn_with_state(limits.max_body_bytes, refuse_large_bodies)).layer(
        tower::ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                error_response(StatusCode::SERVICE_UNAVAILABLE, "the request took too long")
            }))
            .timeout(limits.request_timeout),
    );
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| Error::io(format!("listen for {field} on {addr}"), e))?;
    listener.set_nonblocking(true).map_err(|e| Error::io(format!("listen for {field} on {addr}"), e))?;
    let addr = listener.local_addr().map_err(|e| Error::io(format!("{field} listener address"), e))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the HTTP runtime", e))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("hb-http".into())
        .spawn(move || {
            yield_to_the_engine();
            rt.block_on(accept_loop(listener, router, limits, rx))
        })
        .map_err(|e| Error::io("spawn the HTTP thread", e))?;
    Ok(HttpServer { addr, pid: std::process::id(), shutdown: Some(tx), thread: Some(thread) })
}

/// Lowers the calling thread's priority (nice +10): when the CPUs are busy, what a reader
/// of the API costs comes out of its own answers' time, not out of beat ingest and
/// detection (a core's contention then gives this thread about a tenth of it).
fn yield_to_the_engine() {
    // SAFETY: plain syscalls on the calling thread; failure only leaves the priority as is.
    #[cfg(target_os = "linux")]
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    router: Router,
    limits: Limits,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((sock, _)) = accepted else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // Beyond the bound a connection is closed at once rather than queued.
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else { continue };
        let conn = http.serve_connection(TokioIo::new(sock), TowerToHyperService::new(router.clone()));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn serves_metrics_over_http() {
        let server = serve_metrics("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut s = std::net::TcpStream::connect(server.local_addr()).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(body.contains("heartbeater_dropped_events_total"));
        let mut s = std::net::TcpStream::connect(server.local_addr()).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 404"));
    }
}
