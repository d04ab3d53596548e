//! One error type for the whole engine. Every binding maps these variants to its own
//! idiom (C status code, Go sentinel, Python exception class), so keep them few and stable.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A configuration value was rejected. `field` names the option, `value` is what was
    /// given, `expected` the accepted form: `endpoint "etcd//x": expected scheme://host:port[/prefix]`.
    #[error("{field} {value:?}: expected {expected}")]
    Config { field: String, value: String, expected: String },

    /// A server (etcd, a monitor) could not be reached.
    #[error("cannot reach {what} at {addr}: {detail}")]
    Connect { what: &'static str, addr: String, detail: String },

    /// The server answered but refused our credentials.
    #[error("permission denied by {what} at {addr}: {detail}")]
    PermissionDenied { what: &'static str, addr: String, detail: String },

    /// Fencing: this process can no longer be sure it holds its registration.
    #[error("not the holder: {0}")]
    NotHolder(String),

    /// The handle was stopped (or never started) and cannot do this.
    #[error("{0}")]
    Stopped(&'static str),

    /// The handle was made by another process before a fork.
    #[error("handle was created in process {parent} and used in forked child {child}; create a new one in the child")]
    Forked { parent: u32, child: u32 },

    /// The call is not allowed in the handle's current situation (e.g. started twice).
    #[error("{0}")]
    InvalidState(String),

    /// A bounded wait ran out.
    #[error("timed out after {after_ms} ms: {what}")]
    Timeout { what: String, after_ms: u64 },

    /// An operating-system level failure (bind, socket options, thread spawn).
    #[error("{context}: {detail}")]
    Io { context: String, detail: String },

    /// A bug in heartbeater, reported rather than crashing the host process.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn config(field: impl Into<String>, value: impl fmt::Display, expected: impl Into<String>) -> Error {
        Error::Config { field: field.into(), value: value.to_string(), expected: expected.into() }
    }

    pub fn io(context: impl Into<String>, err: impl fmt::Display) -> Error {
        Error::Io { context: context.into(), detail: err.to_string() }
    }

    /// The same error, naming `field` as the caller called it (`listen` for a monitor's
    /// `endpoint`).
    pub fn for_field(self, field: &str) -> Error {
        match self {
            Error::Config { value, expected, .. } => Error::Config { field: field.to_string(), value, expected },
            other => other,
        }
    }

    /// A short stable name for the variant, used by bindings and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config { .. } => "config",
            Error::Connect { .. } => "connect",
            Error::PermissionDenied { .. } => "permission_denied",
            Error::NotHolder(_) => "not_holder",
            Error::Stopped(_) => "stopped",
            Error::Forked { .. } => "forked",
            Error::InvalidState(_) => "invalid_state",
            Error::Timeout { .. } => "timeout",
            Error::Io { .. } => "io",
            Error::Internal(_) => "internal",
        }
    }
}
