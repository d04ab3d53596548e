//! The process-wide engine runtime: one small tokio runtime created on first use, threads
//! named `hb-*`, and fork detection.
//!
//! A forked child inherits the parent's memory but none of its threads, so the parent's
//! runtime is dead there. Handles remember the pid that made them and refuse to work in a
//! child (`Error::Forked`); the first handle made in the child gets a fresh runtime.

use std::future::Future;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, Result};

pub const WORKER_THREADS_VAR: &str = "HEARTBEATER_WORKER_THREADS";
const WORKER_PREFIX: &str = "hb-worker";

static RUNTIME: Mutex<Option<(u32, Runtime)>> = Mutex::new(None);

/// The engine runtime for this process, created on first call.
pub fn handle() -> Result<Handle> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock();
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return Ok(rt.handle().clone());
        }
    }
    if let Some((_, stale)) = slot.take() {
        // Its threads do not exist in this (forked) process: dropping it would wait for them.
        std::mem::forget(stale);
    }
    let rt = build()?;
    let handle = rt.handle().clone();
    *slot = Some((pid, rt));
    Ok(handle)
}

fn build() -> Result<Runtime> {
    let workers = worker_threads()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(4)
        .thread_name(WORKER_PREFIX)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the heartbeater runtime", e))
}

fn worker_threads() -> Result<usize> {
    match std::env::var(WORKER_THREADS_VAR) {
        Err(_) => Ok(1),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => Err(Error::config(WORKER_THREADS_VAR, v, "a whole number from 1 to 64")),
        },
    }
}

/// True on one of the engine's own worker threads, where blocking would stall the engine.
pub fn on_engine_thread() -> bool {
    std::thread::current().name().is_some_and(|n| n.starts_with(WORKER_PREFIX))
}

/// Runs `fut` on the engine and waits for it from any thread (also from inside another
/// tokio runtime, where `block_on` would panic). Gives up after `timeout`; the future is
/// then aborted.
pub fn run<F>(fut: F, timeout: Duration) -> Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if on_engine_thread() {
        return Err(Error::InvalidState("blocking heartbeater call made on an engine thread".into()));
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let task = handle()?.spawn(async move {
        let _ = tx.send(fut.await);
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => Ok(out),
        Err(_) => {
            task.abort();
            Err(Error::Timeout { what: "engine call".into(), after_ms: timeout.as_millis() as u64 })
        }
    }
}

/// Remembers which process made a handle.
#[derive(Clone, Copy, Debug)]
pub struct ProcessGuard {
    pid: u32,
}

impl ProcessGuard {
    pub fn new() -> ProcessGuard {
        ProcessGuard { pid: std::process::id() }
    }

    pub fn check(&self) -> Result<()> {
        let now = std::process::id();
        if now == self.pid {
            Ok(())
        } else {
            Err(Error::Forked { parent: self.pid, child: now })
        }
    }

    pub fn is_forked(&self) -> bool {
        self.check().is_err()
    }
}

impl Default for ProcessGuard {
    fn default() -> Self {
        ProcessGuard::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_futures_and_times_out() {
        assert_eq!(run(async { 7 }, Duration::from_secs(5)).unwrap(), 7);
        let err =
            run(async { tokio::time::sleep(Duration::from_secs(5)).await }, Duration::from_millis(20)).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }));
    }

    #[test]
    fn engine_threads_are_named() {
        let name = run(async { std::thread::current().name().map(str::to_string) }, Duration::from_secs(5)).unwrap();
        assert!(name.unwrap().starts_with("hb-"));
    }

    #[test]
    fn guard_passes_in_same_process() {
        assert!(ProcessGuard::new().check().is_ok());
    }
}
