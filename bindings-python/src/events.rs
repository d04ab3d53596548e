//! Events and peers as Python dicts, pulling with the GIL released, and Python callbacks
//! on hb-core's delivery thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_core::events::Callback;
use hb_core::{Event, EventSource, PeerInfo};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::IntoPyResult;

static CALLBACK_ERRORS: AtomicU64 = AtomicU64::new(0);

pub fn callback_errors_total() -> u64 {
    CALLBACK_ERRORS.load(Ordering::Relaxed)
}

pub fn event_to_dict<'py>(py: Python<'py>, ev: &Event) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("peer", &ev.peer)?;
    d.set_item("service", &ev.service)?;
    d.set_item("from", ev.from.as_str())?;
    d.set_item("to", ev.to.as_str())?;
    d.set_item("reason", ev.reason.as_str())?;
    d.set_item("at_unix_ms", ev.at_unix_ms)?;
    d.set_item("incarnation", ev.incarnation)?;
    d.set_item("epoch", ev.epoch)?;
    d.set_item("labels", &ev.labels)?;
    d.set_item("traceparent", &ev.traceparent)?;
    Ok(d)
}

pub fn peer_to_dict<'py>(py: Python<'py>, p: &PeerInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &p.id)?;
    d.set_item("service", &p.service)?;
    d.set_item("labels", &p.labels)?;
    d.set_item("state", p.state.as_str())?;
    d.set_item("last_seen_unix_ms", p.last_seen_unix_ms)?;
    d.set_item("incarnation", p.incarnation)?;
    d.set_item("epoch", p.epoch)?;
    d.set_item("interval_ms", p.interval_ms)?;
    d.set_item("rtt_us", p.rtt_us)?;
    d.set_item("addr", &p.addr)?;
    Ok(d)
}

/// Waiting happens in short slices with the GIL released; between slices pending signals
/// are handled, so Ctrl-C interrupts a blocked `for ev in client.events()`.
pub const SLICE: Duration = Duration::from_millis(100);

/// The next event as a dict; `None` when `timeout` (seconds) ran out; StoppedError once the
/// handle is stopped and its queue drained (the engine's end of stream), ForkedError in a
/// forked child.
pub fn next_event<'py, H: EventSource + Send + Sync + 'static>(
    py: Python<'py>,
    handle: &Arc<H>,
    timeout: Option<f64>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let deadline = match timeout {
        Some(t) if !(t.is_finite() && t >= 0.0) => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "timeout must be a finite number >= 0, got {t}"
            )))
        }
        Some(t) => Some(Instant::now() + Duration::from_secs_f64(t)),
        None => None,
    };
    loop {
        let slice = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            None => SLICE,
        };
        let h = Arc::clone(handle);
        let got = py.detach(move || h.next_event(Some(slice))).py()?;
        if let Some(ev) = got {
            return event_to_dict(py, &ev).map(Some);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        py.check_signals()?;
    }
}

/// The engine callback that calls `callback(dict)` with the GIL (`Python::attach`) on
/// hb-core's delivery thread, where the hub holds no lock. An exception is logged to
/// `logging.getLogger("heartbeater")` with its traceback and counted, then delivery goes
/// on: it never reaches the engine.
pub fn callback(callback: Py<PyAny>, errors: Arc<AtomicU64>) -> Callback {
    Box::new(move |ev: &Event| {
        // During interpreter shutdown there is nobody left to call: drop the event.
        let _ = Python::try_attach(|py| {
            let result = event_to_dict(py, ev).and_then(|d| callback.call1(py, (d,)));
            if let Err(err) = result {
                errors.fetch_add(1, Ordering::Relaxed);
                CALLBACK_ERRORS.fetch_add(1, Ordering::Relaxed);
                hb_core::metrics::get().callback_panics.inc();
                log_callback_error(py, &callback, err);
            }
        });
    })
}

fn log_callback_error(py: Python<'_>, callback: &Py<PyAny>, err: PyErr) {
    let logged = py.import("logging").and_then(|logging| {
        let logger = logging.call_method1("getLogger", ("heartbeater",))?;
        // The (type, value, traceback) triple: before Python 3.12 a fetched exception's
        // value does not carry its traceback, so passing the value alone would lose it.
        let exc_info = (err.get_type(py), err.value(py), err.traceback(py));
        let kwargs = PyDict::new(py);
        kwargs.set_item("exc_info", exc_info)?;
        logger.call_method(
            "error",
            ("heartbeater event callback %r raised; delivery goes on", callback),
            Some(&kwargs),
        )?;
        Ok(())
    });
    if logged.is_err() {
        // Logging itself failed (e.g. during shutdown): fall back to stderr.
        err.print(py);
    }
}
