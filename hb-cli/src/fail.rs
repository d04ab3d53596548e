//! How a command fails: a message and an exit code (2 for bad input, 1 otherwise).

use hb_core::Error;

#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

pub type CmdResult<T = i32> = Result<T, Failure>;

/// Bad input (a flag value the library or the CLI rejected): exit 2.
pub fn usage(message: impl Into<String>) -> Failure {
    Failure { code: 2, message: message.into() }
}

/// Something failed while running: exit 1.
pub fn runtime(message: impl Into<String>) -> Failure {
    Failure { code: 1, message: message.into() }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Config { .. } => usage(e.to_string()),
            other => runtime(other.to_string()),
        }
    }
}

/// Applies `key=value` through hb-core's one string-keyed setter, so the error is the
/// library's precise one.
pub fn set(options: &mut hb_core::Options, key: &str, value: &str) -> CmdResult<()> {
    options.set(key, value).map_err(Failure::from)
}
