//! The life of a handle (Client, Monitor, Watcher), written once: every binding translates
//! these results and adds no rule of its own. The table of what each call returns in each
//! phase is in docs/states.md; `tests/conformance/` checks it from every language.
//!
//! ```text
//!   idle ──start──▶ starting ──(made)──▶ running ──stop──▶ stopped
//!     │                 │  └─(failed)─▶ idle                  ▲
//!     └──────stop───────┴──────────────stop (waits for start)─┘
//!   any phase, in a forked child: every call fails with `Forked`
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::events::{Callback, Event, EventHub};
use crate::runtime::ProcessGuard;

/// Which kind of handle, for the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleKind {
    Client,
    Monitor,
    Watcher,
}

impl HandleKind {
    fn started(self) -> &'static str {
        match self {
            HandleKind::Client => "client is already started",
            HandleKind::Monitor => "monitor is already started",
            HandleKind::Watcher => "watcher is already started",
        }
    }

    fn stopped(self) -> &'static str {
        match self {
            HandleKind::Client => "client is stopped; create a new one",
            HandleKind::Monitor => "monitor is stopped; create a new one",
            HandleKind::Watcher => "watcher is stopped; create a new one",
        }
    }
}

/// Where a handle is in its life. `Forked` is not stored: it is what every phase looks like
/// from a forked child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Starting,
    Running,
    Stopped,
    Forked,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopped => "stopped",
            Phase::Forked => "forked",
        }
    }
}

enum Slot<R> {
    Idle,
    Starting,
    Running(R),
    Stopped,
}

/// The phase of one handle, holding what runs it (`R`) while it runs.
pub(crate) struct Lifecycle<R> {
    kind: HandleKind,
    guard: ProcessGuard,
    slot: Mutex<Slot<R>>,
    /// Signalled when a start finishes (made or failed), for a stop that waits for it.
    start_done: Condvar,
}

/// What `finish_start` found.
pub(crate) enum Started<R> {
    /// Installed: the handle runs.
    Running,
    /// A stop came while starting (e.g. from the handle's own first callback) and timed out
    /// waiting: the caller must stop `R` itself. The start still did its work and succeeds.
    StopWon(R),
}

impl<R> Lifecycle<R> {
    pub fn new(kind: HandleKind) -> Lifecycle<R> {
        Lifecycle { kind, guard: ProcessGuard::new(), slot: Mutex::new(Slot::Idle), start_done: Condvar::new() }
    }

    /// `Forked` in a child process, else Ok. Every public call of a handle begins here.
    pub fn same_process(&self) -> Result<()> {
        self.guard.check()
    }

    pub fn is_forked(&self) -> bool {
        self.guard.is_forked()
    }

    pub fn phase(&self) -> Phase {
        if self.guard.is_forked() {
            return Phase::Forked;
        }
        match *self.slot.lock() {
            Slot::Idle => Phase::Idle,
            Slot::Starting => Phase::Starting,
            Slot::Running(_) => Phase::Running,
            Slot::Stopped => Phase::Stopped,
        }
    }

    /// idle → starting; `InvalidState` when starting or running, `Stopped` when stopped.
    pub fn begin_start(&self) -> Result<()> {
        self.same_process()?;
        let mut slot = self.slot.lock();
        match *slot {
            Slot::Idle => {
                *slot = Slot::Starting;
                Ok(())
            }
            Slot::Starting | Slot::Running(_) => Err(Error::InvalidState(self.kind.started().into())),
            Slot::Stopped => Err(Error::Stopped(self.kind.stopped())),
        }
    }

    /// Ends a start: running on success, back to idle on failure (it may be started again).
    pub fn finish_start(&self, made: Result<R>) -> Result<Started<R>> {
        let mut slot = self.slot.lock();
        let out = match (made, &*slot) {
            (Ok(r), Slot::Starting) => {
                *slot = Slot::Running(r);
                Ok(Started::Running)
            }
            (Ok(r), _) => Ok(Started::StopWon(r)),
            (Err(e), Slot::Starting) => {
                *slot = Slot::Idle;
                Err(e)
            }
            (Err(e), _) => Err(e),
        };
        self.start_done.notify_all();
        out
    }

    /// → stopped, returning what ran (if it ran). A start under way is waited for, up to
    /// `wait`, so that its goodbye is said here; past that the start stops it itself.
    /// Idempotent: `Ok(None)` when already stopped.
    pub fn begin_stop(&self, wait: Duration) -> Result<Option<R>> {
        self.same_process()?;
        // An unlimited stop (Duration::MAX) waits for the start without a deadline.
        let deadline = Instant::now().checked_add(wait);
        let mut slot = self.slot.lock();
        while matches!(*slot, Slot::Starting) {
            match deadline {
                Some(d) if self.start_done.wait_until(&mut slot, d).timed_out() => break,
                Some(_) => {}
                None => self.start_done.wait(&mut slot),
            }
        }
        Ok(match std::mem::replace(&mut *slot, Slot::Stopped) {
            Slot::Running(r) => Some(r),
            _ => None,
        })
    }

    /// `Stopped` once stopped (and `Forked` in a child): for calls that mean nothing after
    /// stop (fencing, peers).
    pub fn not_stopped(&self) -> Result<()> {
        self.same_process()?;
        match *self.slot.lock() {
            Slot::Stopped => Err(Error::Stopped(self.kind.stopped())),
            _ => Ok(()),
        }
    }

    /// `f` on what runs the handle, if it runs.
    pub fn with_running<T>(&self, f: impl FnOnce(&R) -> T) -> Option<T> {
        match &*self.slot.lock() {
            Slot::Running(r) => Some(f(r)),
            _ => None,
        }
    }

    /// Takes what runs the handle without the stop path (a test's simulated crash).
    pub fn take_running(&self) -> Option<R> {
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut *slot, Slot::Stopped) {
            Slot::Running(r) => Some(r),
            _ => None,
        }
    }
}

/// The event calls every handle has, behind the same process check as its other calls.
pub trait EventSource {
    fn events(&self) -> &Arc<EventHub>;
    /// `Forked` in a forked child.
    fn same_process(&self) -> Result<()>;

    /// Pulls the next event, waiting up to `timeout` (`None`: until one comes). `Ok(None)`
    /// on timeout; after stop, the events still queued, then `Err(Stopped)`: the end.
    fn next_event(&self, timeout: Option<Duration>) -> Result<Option<Event>> {
        self.same_process()?;
        self.events().next_event(timeout)
    }

    /// Delivers events to `callback` on an `hb-events` thread; `Stopped` after stop.
    fn set_callback(&self, callback: Callback) -> Result<()> {
        self.same_process()?;
        self.events().set_callback(callback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phases_and_what_each_call_returns() {
        let l: Lifecycle<u8> = Lifecycle::new(HandleKind::Client);
        assert_eq!(l.phase(), Phase::Idle);
        assert!(l.not_stopped().is_ok());
        l.begin_start().unwrap();
        assert_eq!(l.phase(), Phase::Starting);
        assert!(matches!(l.begin_start(), Err(Error::InvalidState(_))));
        assert!(matches!(l.finish_start(Ok(7)), Ok(Started::Running)));
        assert_eq!(l.with_running(|r| *r), Some(7));
        assert!(matches!(l.begin_start(), Err(Error::InvalidState(_))));
        assert_eq!(l.begin_stop(Duration::ZERO).unwrap(), Some(7));
        assert_eq!(l.phase(), Phase::Stopped);
        assert_eq!(l.begin_stop(Duration::ZERO).unwrap(), None);
        assert_eq!(l.not_stopped().unwrap_err().to_string(), "client is stopped; create a new one");
        assert!(matches!(l.begin_start(), Err(Error::Stopped(_))));
    }

    #[test]
    fn a_failed_start_returns_to_idle() {
        let l: Lifecycle<u8> = Lifecycle::new(HandleKind::Monitor);
        l.begin_start().unwrap();
        assert!(l.finish_start(Err(Error::Internal("x".into()))).is_err());
        assert_eq!(l.phase(), Phase::Idle);
        l.begin_start().unwrap();
    }

    #[test]
    fn a_stop_during_start_waits_for_it_then_takes_what_it_made() {
        let l = std::sync::Arc::new(Lifecycle::<u8>::new(HandleKind::Client));
        l.begin_start().unwrap();
        let stopper = {
            let l = std::sync::Arc::clone(&l);
            std::thread::spawn(move || l.begin_stop(Duration::from_secs(30)).unwrap())
        };
        // Whether the stop comes before or after this, it gets what the start made.
        assert!(matches!(l.finish_start(Ok(3)), Ok(Started::Running)));
        assert_eq!(stopper.join().unwrap(), Some(3));
        assert_eq!(l.phase(), Phase::Stopped);
    }

    #[test]
    fn a_stop_that_gives_up_waiting_leaves_the_goodbye_to_the_start() {
        let l: Lifecycle<u8> = Lifecycle::new(HandleKind::Client);
        l.begin_start().unwrap();
        assert_eq!(l.begin_stop(Duration::from_millis(1)).unwrap(), None);
        assert!(matches!(l.finish_start(Ok(5)), Ok(Started::StopWon(5))));
        assert_eq!(l.phase(), Phase::Stopped);
    }
}
