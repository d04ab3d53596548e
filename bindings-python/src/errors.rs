//! `hb_core::Error` → the exception classes defined in `heartbeater.errors`.
//!
//! The classes live in Python so that they can use multiple inheritance
//! (`HeartbeaterTimeoutError` is also a builtin `TimeoutError`) and carry documented
//! attributes; the native layer looks them up by name once.

use hb_core::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// Every `Error::kind()` and the class of `heartbeater.errors` that stands for it. Exported
/// as `ERROR_CLASSES`; tests check the kinds against the engine's (conformance names.json)
/// and that every class exists in errors.py.
pub const CLASSES: &[(&str, &str)] = &[
    ("config", "ConfigError"),
    ("connect", "ConnectError"),
    ("permission_denied", "PermissionDeniedError"),
    ("not_holder", "NotHolderError"),
    ("stopped", "StoppedError"),
    ("forked", "ForkedError"),
    ("invalid_state", "InvalidStateError"),
    ("timeout", "HeartbeaterTimeoutError"),
    ("io", "HeartbeaterIOError"),
    ("internal", "InternalError"),
];

fn class_name(err: &Error) -> &'static str {
    let kind = err.kind();
    // A kind missing here is caught by the tests; at run time it is still a HeartbeaterError.
    CLASSES.iter().find(|(k, _)| *k == kind).map_or("HeartbeaterError", |(_, class)| class)
}

/// Builds the Python exception for `err`. Never fails: if the facade module cannot be
/// imported (the native module used on its own), a RuntimeError with the same text is raised.
pub fn to_py(err: Error) -> PyErr {
    Python::attach(|py| match build(py, &err) {
        Ok(e) => e,
        Err(_) => PyRuntimeError::new_err(err.to_string()),
    })
}

fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let module = ERRORS_MODULE.get_or_try_init(py, || py.import("heartbeater.errors").map(Bound::unbind))?;
    let class = module.bind(py).getattr(class_name(err))?;
    let kwargs = PyDict::new(py);
    match err {
        Error::Config { field, value, expected } => {
            kwargs.set_item("field", field)?;
            kwargs.set_item("value", value)?;
            kwargs.set_item("expected", expected)?;
        }
        Error::Connect { addr, .. } | Error::PermissionDenied { addr, .. } => kwargs.set_item("addr", addr)?,
        _ => {}
    }
    let instance = class.call((err.to_string(),), Some(&kwargs))?;
    Ok(PyErr::from_value(instance))
}

/// `?`-friendly conversion for hb-core results.
pub trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for hb_core::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
