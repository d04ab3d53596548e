//! The native handles: `Client`, `Monitor`, `Watcher`. Each wraps its hb-core handle,
//! remembers the process that made it (a forked child gets `ForkedError`), and releases the
//! GIL for everything that can block.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hb_core::runtime::ProcessGuard;
use hb_core::EventHub;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::IntoPyResult;
use crate::{events, options};

/// What every handle shares: the fork guard and its callback error count.
struct Common {
    guard: ProcessGuard,
    callback_errors: Arc<AtomicU64>,
}

impl Common {
    fn new() -> Common {
        Common { guard: ProcessGuard::new(), callback_errors: Arc::new(AtomicU64::new(0)) }
    }

    fn check(&self) -> PyResult<()> {
        self.guard.check().py()
    }

    fn next_event<'py>(
        &self,
        py: Python<'py>,
        hub: &Arc<EventHub>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.check()?;
        events::next_event(py, hub, timeout)
    }

    fn set_callback(&self, hub: &Arc<EventHub>, callback: Bound<'_, PyAny>) -> PyResult<()> {
        self.check()?;
        if !callback.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "callback must be callable, got {}",
                callback.get_type().name()?
            )));
        }
        events::set_callback(hub, callback.unbind(), Arc::clone(&self.callback_errors)).py()
    }

    fn callback_errors(&self) -> u64 {
        self.callback_errors.load(Ordering::Relaxed)
    }
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    if value.is_finite() && value >= 0.0 && value < 1e9 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(PyValueError::new_err(format!("{name} must be a finite number of seconds >= 0, got {value}")))
    }
}

/// A handle made before a fork lives on in the child's memory without any of the
/// parent's threads: stopping it there would wait for threads that do not exist. It is
/// leaked in the child instead; otherwise it is stopped with the GIL released, so a
/// callback waiting for the GIL can finish.
fn release<T: Send + Sync + 'static>(guard: &ProcessGuard, inner: Option<Arc<T>>, stop: impl FnOnce(&T) + Send) {
    let Some(inner) = inner else { return };
    if guard.is_forked() {
        std::mem::forget(inner);
        return;
    }
    let run = move || {
        stop(&inner);
        drop(inner);
    };
    // Deallocation runs attached; during interpreter shutdown try_attach declines.
    let mut run = Some(run);
    let _ = Python::try_attach(|py| {
        if let Some(run) = run.take() {
            py.detach(run);
        }
    });
    if let Some(run) = run.take() {
        run();
    }
}

/// One `#[pymethods]` block per class (pyo3 allows only one): the class's own methods
/// plus the event methods every handle has.
macro_rules! handle_methods {
    ($ty:ident { $($own:tt)* }) => {
        #[pymethods]
        impl $ty {
            $($own)*

            /// The next event as a dict, waiting up to `timeout` seconds (`None`: until one
            /// comes). Returns `None` on timeout; raises StoppedError once stopped and drained.
            #[pyo3(signature = (timeout=None))]
            fn next_event<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyDict>>> {
                self.common.next_event(py, self.inner().events(), timeout)
            }

            /// Delivers every event to `callback(dict)` on a delivery thread of its own.
            fn set_callback(&self, callback: Bound<'_, PyAny>) -> PyResult<()> {
                self.common.set_callback(self.inner().events(), callback)
            }

            /// Events lost because nobody consumed them fast enough.
            #[getter]
            fn dropped_events(&self) -> u64 {
                self.inner().events().dropped()
            }

            /// How many times this handle's callback raised.
            #[getter]
            fn callback_errors(&self) -> u64 {
                self.common.callback_errors()
            }
        }
    };
}

#[pyclass(module = "heartbeater._heartbeater", frozen)]
pub struct Client {
    inner: Option<Arc<hb_core::Client>>,
    common: Common,
}

impl Client {
    fn inner(&self) -> &Arc<hb_core::Client> {
        self.inner.as_ref().expect("set until dropped")
    }
}

handle_methods!(Client {
    #[new]
    #[pyo3(signature = (options, labels=None, auth_key=None))]
    fn new(options: Vec<(String, String)>, labels: Option<BTreeMap<String, String>>, auth_key: Option<Vec<u8>>) -> PyResult<Self> {
        let opts = options::build(&options, labels, auth_key).py()?;
        let inner = hb_core::Client::new(&opts).py()?;
        Ok(Client { inner: Some(Arc::new(inner)), common: Common::new() })
    }

    /// Starts beating; with etcd, waits (GIL released) for the first registration.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.common.check()?;
        let c = Arc::clone(self.inner());
        py.detach(move || c.start()).py()
    }

    /// Says goodbye and stops, within `timeout` seconds. Idempotent.
    fn stop(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        self.common.check()?;
        let timeout = seconds("timeout", timeout)?;
        let c = Arc::clone(self.inner());
        py.detach(move || c.stop(timeout)).py()
    }

    #[getter]
    fn state(&self) -> PyResult<&'static str> {
        self.common.check()?;
        Ok(self.inner().state().py()?.as_str())
    }

    fn fencing_token(&self) -> PyResult<(i64, u64)> {
        self.common.check()?;
        let t = self.inner().fencing_token().py()?;
        Ok((t.lease_id, t.epoch))
    }

    fn check(&self) -> PyResult<()> {
        self.common.check()?;
        self.inner().check().py()
    }

    fn remaining(&self) -> PyResult<f64> {
        self.common.check()?;
        Ok(self.inner().remaining().py()?.as_secs_f64())
    }

    #[getter]
    fn incarnation(&self) -> PyResult<u32> {
        self.common.check()?;
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

impl Drop for Client {
    fn drop(&mut self) {
        let inner = self.inner.take();
        let timeout = inner.as_ref().map(|c| c.config().stop_timeout).unwrap_or_default();
        release(&self.common.guard, inner, move |c| {
            let _ = c.stop(timeout);
        });
    }
}

#[pyclass(module = "heartbeater._heartbeater", frozen)]
pub struct Monitor {
    inner: Option<Arc<hb_core::Monitor>>,
    common: Common,
}

impl Monitor {
    fn inner(&self) -> &Arc<hb_core::Monitor> {
        self.inner.as_ref().expect("set until dropped")
    }
}

handle_methods!(Monitor {
    #[new]
    #[pyo3(signature = (options, auth_key=None))]
    fn new(options: Vec<(String, String)>, auth_key: Option<Vec<u8>>) -> PyResult<Self> {
        let opts = options::build(&options, None, auth_key).py()?;
        let inner = hb_core::Monitor::new(&opts).py()?;
        Ok(Monitor { inner: Some(Arc::new(inner)), common: Common::new() })
    }

    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.common.check()?;
        let m = Arc::clone(self.inner());
        py.detach(move || m.start()).py()
    }

    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.common.check()?;
        let m = Arc::clone(self.inner());
        py.detach(move || m.stop()).py()
    }

    /// `[(scheme or url, "ip:port"), ...]` for every bound listener.
    fn local_addrs(&self) -> PyResult<Vec<(String, String)>> {
        self.common.check()?;
        Ok(self.inner().local_addrs().py()?.into_iter().map(|(name, addr)| (name, addr.to_string())).collect())
    }

    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.common.check()?;
        let m = Arc::clone(self.inner());
        let peers = py.detach(move || m.peers()).py()?;
        let dicts = peers.iter().map(|p| events::peer_to_dict(py, p)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, dicts)
    }
});

impl Drop for Monitor {
    fn drop(&mut self) {
        release(&self.common.guard, self.inner.take(), |m| {
            let _ = m.stop();
        });
    }
}

#[pyclass(module = "heartbeater._heartbeater", frozen)]
pub struct Watcher {
    inner: Option<Arc<hb_core::Watcher>>,
    common: Common,
}

impl Watcher {
    fn inner(&self) -> &Arc<hb_core::Watcher> {
        self.inner.as_ref().expect("set until dropped")
    }
}

handle_methods!(Watcher {
    #[new]
    #[pyo3(signature = (options,))]
    fn new(options: Vec<(String, String)>) -> PyResult<Self> {
        let opts = options::build(&options, None, None).py()?;
        let inner = hb_core::Watcher::new(&opts).py()?;
        Ok(Watcher { inner: Some(Arc::new(inner)), common: Common::new() })
    }

    /// Lists the prefix and starts watching (GIL released while etcd answers).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.common.check()?;
        let w = Arc::clone(self.inner());
        py.detach(move || w.start()).py()
    }

    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.common.check()?;
        let w = Arc::clone(self.inner());
        py.detach(move || w.stop()).py()
    }

    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.common.check()?;
        let w = Arc::clone(self.inner());
        let peers = py.detach(move || w.peers()).py()?;
        let dicts = peers.iter().map(|p| events::peer_to_dict(py, p)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, dicts)
    }
});

impl Drop for Watcher {
    fn drop(&mut self) {
        release(&self.common.guard, self.inner.take(), |w| {
            let _ = w.stop();
        });
    }
}
