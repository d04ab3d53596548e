//! `heartbeater._heartbeater`: the native half of the Python package.
//!
//! This layer only converts: Python values to `hb_core::Options` (through the one
//! string-keyed setter), `hb_core::Error` to the exception classes of `heartbeater.errors`,
//! events and peers to dicts. Behaviour lives in hb-core; the typed API lives in the
//! pure-Python facade (`python/heartbeater/`).
//!
//! GIL rules kept everywhere here:
//! - anything that can block (start, stop, waiting for an event) runs inside `py.detach`;
//! - callbacks attach on hb-core's delivery thread, never while a Rust lock is held;
//! - a Python exception raised by a callback is logged and counted, never propagated.

mod errors;
mod events;
mod handles;
mod options;

use pyo3::prelude::*;
use pyo3::types::IntoPyDict;

/// The Prometheus text exposition of every heartbeater metric in this process.
#[pyfunction]
fn metrics_text() -> String {
    hb_core::metrics::text()
}

/// How many times a Python event callback raised, process-wide.
#[pyfunction]
fn callback_errors() -> u64 {
    events::callback_errors_total()
}

/// The keys of `Event::to_json()`, the one JSON shape of an event.
fn event_fields() -> Vec<String> {
    let sample =
        hb_core::Event::new("p", "s", hb_core::State::Unknown, hb_core::State::Alive, hb_core::Reason::Registered);
    sample.to_json().as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

#[pymodule]
fn _heartbeater(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", hb_core::VERSION)?;
    m.add_function(wrap_pyfunction!(metrics_text, m)?)?;
    m.add_function(wrap_pyfunction!(callback_errors, m)?)?;
    m.add("STATES", hb_core::State::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>())?;
    m.add("REASONS", hb_core::Reason::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>())?;
    m.add("EVENT_FIELDS", event_fields())?;
    // A dict in the engine's order of kinds (names.json), not sorted.
    m.add("ERROR_CLASSES", errors::CLASSES.iter().copied().into_py_dict(m.py())?)?;
    m.add_class::<handles::Client>()?;
    m.add_class::<handles::Monitor>()?;
    m.add_class::<handles::Watcher>()?;
    m.add_class::<handles::Election>()?;
    Ok(())
}
