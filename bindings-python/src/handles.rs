//! The native handles: `Client`, `Monitor`, `Watcher`, `Election`. Each wraps its hb-core handle and
//! releases the GIL for everything that can block. The lifecycle (what each call returns
//! before start, after stop, in a forked child) is hb-core's (`hb_core::lifecycle`); this
//! layer only converts its answers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hb_core::EventSource;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::errors::IntoPyResult;
use crate::{events, options};

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    if (0.0..1e9).contains(&value) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(PyValueError::new_err(format!("{name} must be a finite number of seconds >= 0, got {value}")))
    }
}

/// Drops an hb-core handle with the GIL released. Its `Drop` stops it (unless in a forked
/// child, where hb-core leaves the parent's threads alone) and so joins the delivery thread,
/// whose callback may be waiting for the GIL: holding the GIL here would deadlock.
fn drop_detached<T: Send + Sync + 'static>(inner: Option<Arc<T>>) {
    let mut inner = Some(inner);
    // Deallocation runs attached; during interpreter shutdown try_attach declines.
    let _ = Python::try_attach(|py| {
        let inner = inner.take();
        py.detach(move || drop(inner));
    });
    drop(inner);
}

fn check_callable(callback: &Bound<'_, PyAny>) -> PyResult<()> {
    if callback.is_callable() {
        Ok(())
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "callback must be callable, got {}",
            callback.get_type().name()?
        )))
    }
}

/// One `#[pymethods]` block per class (pyo3 allows only one): the class's own methods
/// plus the methods every handle has (`phase` is the handles with a start: all but the
/// election, which campaigns instead).
macro_rules! handle_methods {
    ($ty:ident { $($own:tt)* }) => {
        event_methods!($ty {
            $($own)*

            /// Where the handle is in its life: idle, starting, running, stopped, forked.
            #[getter]
            fn phase(&self) -> &'static str {
                self.inner().phase().as_str()
            }
        });
    };
}

/// The class's own methods plus the event methods of every hb-core `EventSource`.
macro_rules! event_methods {
    ($ty:ident { $($own:tt)* }) => {
        #[pymethods]
        impl $ty {
            $($own)*

            /// The next event as a dict, waiting up to `timeout` seconds (`None`: until one
            /// comes). Returns `None` on timeout; raises StoppedError at the end of the stream
            /// (stopped and drained): the facade turns that into `None`.
            #[pyo3(signature = (timeout=None))]
            fn next_event<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyDict>>> {
                events::next_event(py, self.inner(), timeout)
            }

            /// Delivers every event to `callback(dict)` on a delivery thread of its own.
            fn set_callback(&self, callback: Bound<'_, PyAny>) -> PyResult<()> {
                check_callable(&callback)?;
                let cb = events::callback(callback.unbind(), Arc::clone(&self.callback_errors));
                self.inner().set_callback(cb).py()
            }

            /// Events lost because nobody consumed them fast enough.
            #[getter]
            fn dropped_events(&self) -> u64 {
                self.inner().events().dropped()
            }

            /// How many times this handle's callback raised.
            #[getter]
            fn callback_errors(&self) -> u64 {
                self.callback_errors.load(Ordering::Relaxed)
            }
        }

        impl $ty {
            fn inner(&self) -> &Arc<hb_core::$ty> {
                self.inner.as_ref().expect("set until dropped")
            }
        }

        impl Drop for $ty {
            fn drop(&mut self) {
                drop_detached(self.inner.take());
            }
        }
    };
}

#[pyclass(module = "heartbeater._heartbeater", frozen)]
pub struct Client {
    inner: Option<Arc<hb_core::Client>>,
    callback_errors: Arc<AtomicU64>,
}

handle_methods!(Client {
    #[new]
    #[pyo3(signature = (options, labels=None, auth_key=None))]
    fn new(options: Vec<(String, String)>, labels: Option<BTreeMap<String, String>>, auth_key: Option<Vec<u8>>) -> PyResult<Self> {
        let opts = options::build(&options, labels, auth_key).py()?;
        let inner = hb_core::Client::new(&opts).py()?;
        Ok(Client { inner: Some(Arc::new(inner)), callback_errors: Arc::default() })
    }

    /// Starts beating; with etcd, waits (GIL released) for the first registration.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let c = Arc::clone(self.inner());
        py.detach(move || c.start()).py()
    }

    /// Says goodbye and stops, within `timeout` seconds (`None`: the configured
    /// stop_timeout). Idempotent.
    #[pyo3(signature = (timeout=None))]
    fn stop(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let timeout = match timeout {
            Some(t) => seconds("timeout", t)?,
            None => self.inner().config().stop_timeout,
        };
        let c = Arc::clone(self.inner());
        py.detach(move || c.stop(timeout)).py()
    }

    #[getter]
    fn state(&self) -> PyResult<&'static str> {
        Ok(self.inner().state().py()?.as_str())
    }

    fn fencing_token(&self) -> PyResult<(i64, u64)> {
        let t = self.inner().fencing_token().py()?;
        Ok((t.lease_id, t.epoch))
    }

    fn check(&self) -> PyResult<()> {
        self.inner().check().py()
    }

    fn remaining(&self) -> PyResult<f64> {
        Ok(self.inner().remaining().py()?.as_secs_f64())
    }

    /// `"ip:port"` of the client's `/healthz` (`health_addr`), None when not serving.
    fn health_addr(&self) -> Option<String> {
        self.inner().health_addr().map(|a| a.to_string())
    }

    #[getter]
    fn incarnation(&self) -> PyResult<u32> {
        self.inner().incarnation().py()
    }

    #[getter]
    fn instance_id(&self) -> String {
        self.inner().config().instance_id.clone()
    }

    #[getter]
    fn service(&self) -> String {
        self.inner().config().service.clone()
    }
});

#[pyclass(module = "heartbeater._heartbeater", frozen)]
pub struct Monitor {
    inner: Option<Arc<hb_core::Monitor>>,
    callback_errors: Arc<AtomicU64>,
}

handle_methods!(Monitor {
    #[new]
    #[pyo3(signature = (options, auth_key=None))]
    fn new(options: Vec<(String, String)>, auth_key: Option<Vec<u8>>) -> PyResult<Self> {
        let opts = options::build(&options, None, auth_key).py()?;
        let inner = hb_core::Monitor::new(&opts).py()?;
        Ok(Monitor { inner: Some(Arc::new(inner)), callback_errors: Arc::default() })
    }

    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let m = Arc::clone(self.inner());
        py.detach(move || m.start()).py()
    }

    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let m = Arc::clone(self.inner());
        py.detach(move || m.stop()).py()
    }

    /// `[(scheme or url, "ip:port"), ...]` for every bound listener.
    fn local_addrs(&self) -> PyResult<Vec<(String, String)>> {
        Ok(self.inner().local_addrs().py()?.into_iter().map(|(name, addr)| (name, addr.to_string())).collect())
    }

    /// `"ip:port"` of the HTTP API (`http_addr`), None when not serving.
    fn http_addr(&self) -> PyResult<Option<String>> {
        Ok(self.inner().http_addr().py()?.map(|a| a.to_string()))
    }

    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let m = Arc::clone(self.inner());
        let peers = py.detach(move || m.peers()).py()?;
        let dicts = peers.iter().map(|p| events::peer_to_dict(py, p)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, dicts)
    }
});

#[pyclass(module = "heartbeater._heartbeater", frozen)]
pub struct Watcher {
    inner: Option<Arc<hb_core::Watcher>>,
    callback_errors: Arc<AtomicU64>,
}

handle_methods!(Watcher {
    #[new]
    #[pyo3(signature = (options,))]
    fn new(options: Vec<(String, String)>) -> PyResult<Self> {
        let opts = options::build(&options, None, None).py()?;
        let inner = hb_core::Watcher::new(&opts).py()?;
        Ok(Watcher { inner: Some(Arc::new(inner)), callback_errors: Arc::default() })
    }

    /// Lists the prefix and starts watching (GIL released while etcd answers).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let w = Arc::clone(self.inner());
        py.detach(move || w.start()).py()
    }

    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let w = Arc::clone(self.inner());
        py.detach(move || w.stop()).py()
    }

    /// `"ip:port"` of the HTTP API (`http_addr`), None when not serving.
    fn http_addr(&self) -> PyResult<Option<String>> {
        Ok(self.inner().http_addr().py()?.map(|a| a.to_string()))
    }

    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let w = Arc::clone(self.inner());
        let peers = py.detach(move || w.peers()).py()?;
        let dicts = peers.iter().map(|p| events::peer_to_dict(py, p)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, dicts)
    }
});

/// `Election.leader()` for the facade: `(revision, lease_id, value, key)`.
type LeaderTuple<'py> = (i64, i64, Bound<'py, PyBytes>, String);

#[pyclass(module = "heartbeater._heartbeater", frozen)]
pub struct Election {
    inner: Option<Arc<hb_core::Election>>,
    callback_errors: Arc<AtomicU64>,
}

event_methods!(Election {
    #[new]
    #[pyo3(signature = (options, name, value))]
    fn new(options: Vec<(String, String)>, name: &str, value: Vec<u8>) -> PyResult<Self> {
        let opts = options::build(&options, None, None).py()?;
        let inner = hb_core::Election::new(&opts, name, &value).py()?;
        Ok(Election { inner: Some(Arc::new(inner)), callback_errors: Arc::default() })
    }

    /// Campaigns and waits to lead (GIL released): up to `timeout` seconds in one wait, or
    /// (`None`) without limit in slices between which pending signals are handled, so that
    /// Ctrl-C interrupts it. Returns the token as `(revision, lease_id)`.
    #[pyo3(signature = (timeout=None))]
    fn campaign(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<(i64, i64)> {
        if let Some(t) = timeout {
            let (e, t) = (Arc::clone(self.inner()), seconds("timeout", t)?);
            let token = py.detach(move || e.campaign(t)).py()?;
            return Ok((token.revision, token.lease_id));
        }
        loop {
            let e = Arc::clone(self.inner());
            match py.detach(move || e.campaign(events::SLICE)) {
                Ok(token) => return Ok((token.revision, token.lease_id)),
                Err(hb_core::Error::Timeout { .. }) => py.check_signals()?,
                Err(e) => return Err(e).py(),
            }
        }
    }

    /// Steps down and withdraws within `timeout` seconds (`None`: the configured
    /// stop_timeout). Idempotent.
    #[pyo3(signature = (timeout=None))]
    fn resign(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let timeout = self.stop_timeout(timeout)?;
        let e = Arc::clone(self.inner());
        py.detach(move || e.resign(timeout)).py()
    }

    /// Resigns, then closes the events, within `timeout` seconds (`None`: the configured
    /// stop_timeout). Idempotent.
    #[pyo3(signature = (timeout=None))]
    fn stop(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let timeout = self.stop_timeout(timeout)?;
        let e = Arc::clone(self.inner());
        py.detach(move || e.stop(timeout)).py()
    }

    fn set_recampaign(&self, on: bool) {
        self.inner().set_recampaign(on);
    }

    fn check(&self) -> PyResult<()> {
        self.inner().check().py()
    }

    fn remaining(&self) -> PyResult<f64> {
        Ok(self.inner().remaining().py()?.as_secs_f64())
    }

    fn token(&self) -> PyResult<(i64, i64)> {
        let t = self.inner().token().py()?;
        Ok((t.revision, t.lease_id))
    }

    /// `(revision, lease_id, value, key)` of the leader as observed, None when nobody leads.
    fn leader<'py>(&self, py: Python<'py>) -> PyResult<Option<LeaderTuple<'py>>> {
        Ok(self.inner().leader().py()?.map(|l| (l.token.revision, l.token.lease_id, PyBytes::new(py, &l.value), l.key)))
    }

    #[getter]
    fn name(&self) -> String {
        self.inner().name().to_string()
    }
});

impl Election {
    fn stop_timeout(&self, timeout: Option<f64>) -> PyResult<Duration> {
        match timeout {
            Some(t) => seconds("timeout", t),
            None => Ok(self.inner().config().stop_timeout),
        }
    }
}
