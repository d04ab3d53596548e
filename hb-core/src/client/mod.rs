//! The beating side: keeps one process registered as alive, over direct (udp/tcp) beats to
//! a Monitor or an etcd lease, and tracks its own health for fencing.

mod beater;
mod direct;
pub mod health;
#[doc(hidden)]
pub mod probe;
pub(crate) mod shared;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::MonotonicClock;
use crate::config::{Config, Options, Role};
use crate::error::{Error, Result};
use crate::events::{EventHub, State};
use crate::fencing::FencingToken;
use crate::lifecycle::{EventSource, HandleKind, Lifecycle, Phase, Started};

use shared::{ClientShared, Transport};

pub struct Client {
    shared: Arc<ClientShared>,
    life: Lifecycle<Box<dyn Transport>>,
    /// The `/healthz` listener (`health_addr`), from start to stop.
    health_http: parking_lot::Mutex<Option<crate::http::HttpServer>>,
}

/// What a client's `/healthz` reads.
struct HealthView(Arc<ClientShared>);

impl crate::http::HealthSource for HealthView {
    fn report(&self) -> crate::http::HealthReport {
        let now = self.0.now_ns();
        let h = self.0.health.lock();
        let fencing_token = (h.epoch() != 0).then(|| FencingToken { lease_id: h.lease_id(), epoch: h.epoch() });
        crate::http::HealthReport { state: h.state(), fencing_token, remaining_ms: h.remaining_ns(now) / 1_000_000 }
    }
}

impl Client {
    /// Resolves `options` (explicit > environment > defaults) and validates them.
    pub fn new(options: &Options) -> Result<Client> {
        Client::from_config(Config::resolve(options, Role::Client)?)
    }

    pub fn from_config(config: Config) -> Result<Client> {
        let shared = Arc::new(ClientShared::new(config, Arc::new(MonotonicClock)));
        Ok(Client { shared, life: Lifecycle::new(HandleKind::Client), health_http: parking_lot::Mutex::new(None) })
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Where this handle is in its life (docs/states.md).
    pub fn phase(&self) -> Phase {
        self.life.phase()
    }

    /// Starts beating. With etcd, waits (bounded by connect_timeout) for the first
    /// registration, so an unreachable etcd or refused credentials surface here. Direct
    /// beats return at once; the state becomes `healthy` with the first ACK. A `stop` that
    /// comes while this runs (also from the client's own callback) wins: start still
    /// returns `Ok`, and the client ends stopped, having said goodbye.
    pub fn start(&self) -> Result<()> {
        self.life.begin_start()?;
        // Bound first, so that a port in use fails the start before anything is registered.
        let health = crate::http::serve_health(&self.shared.config, Arc::new(HealthView(Arc::clone(&self.shared))));
        let health = match health {
            Ok(h) => h,
            Err(e) => return self.life.finish_start(Err(e)).map(|_| ()),
        };
        // Registering with etcd can take up to connect_timeout: not under a lock, so that a
        // concurrent stop can wait for it within its own timeout.
        let made: Result<Box<dyn Transport>> = if self.shared.config.endpoints.iter().any(|e| e.is_etcd()) {
            crate::registry::registration::Registration::start(Arc::clone(&self.shared))
                .map(|t| Box::new(t) as Box<dyn Transport>)
        } else {
            direct::DirectTransport::start(Arc::clone(&self.shared)).map(|t| Box::new(t) as Box<dyn Transport>)
        };
        match self.life.finish_start(made)? {
            Started::Running => {
                crate::metrics::get().clients.inc();
                *self.health_http.lock() = health;
            }
            // The stop gave up waiting for us: the goodbye is ours to say.
            Started::StopWon(transport) => {
                let _ = transport.stop(self.shared.config.stop_timeout);
                self.shared.update_health(|h| h.stopped());
            }
        }
        Ok(())
    }

    /// Says goodbye (LEAVE / mark leaving + revoke) and stops; returns within `timeout`
    /// even if nothing answers. No event is delivered after it returns, also when called
    /// from this client's own callback. A start under way is waited for (within
    /// `timeout`), so that it says goodbye too. Idempotent.
    pub fn stop(&self, timeout: Duration) -> Result<()> {
        let t0 = std::time::Instant::now();
        let running = self.life.begin_stop(timeout)?;
        let result = match running {
            Some(transport) => {
                let r = transport.stop(timeout.saturating_sub(t0.elapsed()));
                crate::metrics::get().clients.dec();
                self.shared.update_health(|h| h.stopped());
                r
            }
            None => Ok(()),
        };
        // After the goodbye: until then the probe reports what the client still is.
        self.health_http.lock().take();
        self.shared.events.close();
        result
    }

    /// Where `/healthz` is served (`health_addr`, useful with port 0); None when not.
    pub fn health_addr(&self) -> Option<std::net::SocketAddr> {
        self.health_http.lock().as_ref().map(|s| s.local_addr())
    }

    /// Tests only: stops beating without a LEAVE, as if the process had crashed. The
    /// monitor will declare this client dead after its detection time.
    #[doc(hidden)]
    pub fn crash_for_test(&self) {
        if let Some(transport) = self.life.take_running() {
            transport.crash();
            crate::metrics::get().clients.dec();
        }
    }

    /// Own health: `healthy`, `degraded`, `lost` (or `unknown` before the first ACK,
    /// `stopped` once stopped).
    pub fn state(&self) -> Result<State> {
        self.life.same_process()?;
        if self.life.phase() == Phase::Stopped {
            return Ok(State::Stopped);
        }
        Ok(self.shared.health.lock().state())
    }

    pub fn events(&self) -> &Arc<EventHub> {
        &self.shared.events
    }

    /// `(lease id, epoch)`; lease id 0 and epoch 1 for direct beats once acknowledged.
    /// `Stopped` once stopped: the registration is gone.
    pub fn fencing_token(&self) -> Result<FencingToken> {
        self.life.not_stopped()?;
        let h = self.shared.health.lock();
        if h.epoch() == 0 {
            return Err(Error::NotHolder("not registered yet: no acknowledgement received".into()));
        }
        Ok(FencingToken { lease_id: h.lease_id(), epoch: h.epoch() })
    }

    /// Fails with `NotHolder` once `remaining()` is zero, without asking anyone; with
    /// `Stopped` once stopped.
    pub fn check(&self) -> Result<()> {
        self.life.not_stopped()?;
        let now = self.shared.now_ns();
        self.shared.health.lock().check(now)
    }

    /// Conservative time this process may still act as the holder: until no monitor that
    /// acknowledged it (or etcd) could report it dead yet, from the promises in their
    /// acknowledgements (docs/states.md, Fencing); zero once stopped.
    pub fn remaining(&self) -> Result<Duration> {
        self.life.same_process()?;
        if self.life.phase() == Phase::Stopped {
            return Ok(Duration::ZERO);
        }
        let now = self.shared.now_ns();
        Ok(Duration::from_nanos(self.shared.health.lock().remaining_ns(now)))
    }

    /// This process start's incarnation (sent in every beat and stored in etcd).
    pub fn incarnation(&self) -> Result<u32> {
        self.life.same_process()?;
        Ok(self.shared.incarnation)
    }
}

impl EventSource for Client {
    fn events(&self) -> &Arc<EventHub> {
        &self.shared.events
    }
    fn same_process(&self) -> Result<()> {
        self.life.same_process()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if !self.life.is_forked() {
            let timeout = self.shared.config.stop_timeout;
            let _ = self.stop(timeout);
        }
    }
}
