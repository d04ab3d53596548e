//! Events and their delivery.
//!
//! The engine never calls user code: it `emit`s into a bounded channel and returns at once.
//! A consumer either pulls (`next_event`) or registers a callback, which runs on the shared
//! pool of delivery threads (`delivery`): one handle's callback on one thread at a time, its
//! events in order, a few events per turn so that handles share the threads. When the
//! channel is full the oldest event is dropped and counted, so a slow consumer costs memory
//! up to the bound and never delays a heartbeat.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(Error::config(stringify!($name), s, [$($text),*].join(", "))),
                }
            }
        }
    };
}

named_enum! {
    /// Where a peer, a registration or our own client stands. One enum for every source so
    /// that every language sees the same names (`from`/`to` of an [`Event`]).
    State {
        /// Not known yet (the `from` of a first event).
        Unknown = "unknown",
        // Monitor's view of a peer.
        Alive = "alive",
        Suspect = "suspect",
        Dead = "dead",
        Left = "left",
        // A client's own health.
        Healthy = "healthy",
        Degraded = "degraded",
        Lost = "lost",
        // Watcher's view of an etcd registration.
        Joined = "joined",
        Updated = "updated",
        Expired = "expired",
        /// A client granted a new lease and wrote its key again (epoch increased).
        Reregistered = "reregistered",
        /// The handle was stopped.
        Stopped = "stopped",
        /// Watcher: a key under the prefix whose value is not a registration (not its JSON).
        Invalid = "invalid",
        /// Election: we lead (a new term, with a new token).
        Elected = "elected",
        /// Election: another candidate leads now, as observed.
        LeaderChanged = "leader_changed",
    }
}

named_enum! {
    /// Why a transition happened, like BFD's diagnostic code.
    Reason {
        /// First heard / key appeared / first registration.
        Registered = "registered",
        /// Heard again after being suspected or declared dead.
        Recovered = "recovered",
        /// The detector convicted the peer: nothing heard within its bound.
        Timeout = "timeout",
        /// A graceful goodbye (LEAVE frame, or the key was marked leaving).
        Left = "left",
        /// A higher incarnation: the process restarted.
        Restarted = "restarted",
        /// The key or lease vanished by TTL.
        LeaseExpired = "lease_expired",
        /// etcd answered that our lease does not exist (revoked, or data wiped).
        LeaseNotFound = "lease_not_found",
        /// Our own clock says the lease must have expired (we were paused or cut off).
        LeaseDeadline = "lease_deadline",
        /// A stopped client removed its registration.
        Deregistered = "deregistered",
        /// A registration's value changed.
        Updated = "updated",
        /// A beat went unacknowledged within the retransmission timeout.
        AckTimeout = "ack_timeout",
        /// A beat or keepalive was acknowledged again.
        Acked = "acked",
        /// The transport failed (connect refused, reset, unreachable).
        ConnectFailed = "connect_failed",
        /// A keepalive to etcd failed.
        KeepaliveFailed = "keepalive_failed",
        /// The monitor rejected our beat (NACK).
        Rejected = "rejected",
        /// Held in suspect by flap damping.
        Flapping = "flapping",
        /// The handle was stopped.
        Stopped = "stopped",
        /// Two processes beat under one id (a duplicate, or a forgery without a key): the
        /// one tracked keeps it; or the one a forged restart displaced took it back.
        Conflict = "conflict",
        /// Forgotten to make room in a full monitor table (it had beaten only once, or was
        /// already dead or left): reported `dead`, as the monitor no longer vouches for it.
        Evicted = "evicted",
        /// A graceful stop could not write the `leaving` mark: watchers see `expired`.
        LeaveFailed = "leave_failed",
        /// Our own key was deleted (by hand, or its lease revoked) while we kept it alive.
        KeyDeleted = "key_deleted",
        /// A value under the prefix is not a registration's JSON.
        MalformedValue = "malformed_value",
        /// Election: the leader stepped down (resign).
        Resigned = "resigned",
    }
}

/// One transition. Cheap to clone; borrowed for the duration of a callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Instance id of the peer (or of this client, for its own health events).
    pub peer: String,
    pub service: String,
    pub from: State,
    pub to: State,
    pub reason: Reason,
    /// Wall-clock time of the transition, for display and logs.
    pub at_unix_ms: u64,
    pub incarnation: u32,
    /// Registration epoch (etcd), 0 where it does not apply.
    pub epoch: u64,
    pub labels: BTreeMap<String, String>,
    /// W3C traceparent carried by the peer's last beat, if any.
    pub traceparent: Option<String>,
}

impl Event {
    pub fn new(peer: impl Into<String>, service: impl Into<String>, from: State, to: State, reason: Reason) -> Event {
        Event {
            peer: peer.into(),
            service: service.into(),
            from,
            to,
            reason,
            at_unix_ms: unix_ms_now(),
            incarnation: 0,
            epoch: 0,
            labels: BTreeMap::new(),
            traceparent: None,
        }
    }

    /// The one JSON shape used by `monitor --json`, `watch --json` and the bindings.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "peer": self.peer,
            "service": self.service,
            "from": self.from.as_str(),
            "to": self.to.as_str(),
            "reason": self.reason.as_str(),
            "at_unix_ms": self.at_unix_ms,
            "incarnation": self.incarnation,
            "epoch": self.epoch,
            "labels": self.labels,
            "traceparent": self.traceparent,
        })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{} {} -> {} ({})", self.at_unix_ms, self.service, self.peer, self.from, self.to, self.reason)
    }
}

pub fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// How long `close` lets a callback work through events queued before it.
pub const DRAIN_GRACE: Duration = Duration::from_millis(250);

/// A user callback. Dropping it is the user-data destructor: it runs exactly once, after
/// the last call.
pub type Callback = Box<dyn FnMut(&Event) + Send + 'static>;

/// One handle's event stream: the engine emits, the user pulls or gets called back.
pub struct EventHub {
    /// An unbounded channel whose length `emit` keeps at `capacity`: unlike a bounded
    /// (array) channel it allocates as events arrive, so an idle handle costs almost nothing.
    capacity: usize,
    tx: Sender<Slot>,
    rx: Receiver<Slot>,
    closed: AtomicBool,
    closed_by_callback: AtomicBool,
    /// Monotonic ns after which queued events are no longer delivered (0: not closed).
    drain_deadline_ns: AtomicU64,
    dropped: AtomicU64,
    /// The callback, once one is set; a delivery thread holds the lock while it runs it,
    /// and `close` takes it out (and drops it) once no run can use it any more.
    callback: Mutex<Option<Callback>>,
    has_callback: AtomicBool,
    /// Queued on the delivery pool, or being run: at most one turn at a time.
    scheduled: AtomicBool,
    /// The thread running the callback now (a call from inside the callback is re-entry).
    running_on: Mutex<Option<ThreadId>>,
    /// Signalled at the end of every turn: `close` waits for the backlog on it.
    turn_ended: Condvar,
    turn_lock: Mutex<()>,
    /// Kept only once someone asks for it (the HTTP event stream): ids and resume.
    history: std::sync::OnceLock<Arc<crate::history::History>>,
}

/// What travels in the channel: events, and the wake-up that `close` sends behind them.
enum Slot {
    Event(Event),
    Wake,
}

/// Events one turn delivers before the handle goes to the back of the pool's queue...
const EVENTS_PER_TURN: usize = 64;
/// ...or how long it may run: a slow callback then holds a thread for one event at a
/// time, not 64, and the handles queued behind it get their turns in between.
const TURN_BUDGET: Duration = Duration::from_millis(10);

impl EventHub {
    pub fn new(capacity: usize) -> Arc<EventHub> {
        let (tx, rx) = unbounded();
        Arc::new(EventHub {
            capacity: capacity.max(1),
            tx,
            rx,
            closed: AtomicBool::new(false),
            closed_by_callback: AtomicBool::new(false),
            drain_deadline_ns: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            callback: Mutex::new(None),
            has_callback: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            running_on: Mutex::new(None),
            turn_ended: Condvar::new(),
            turn_lock: Mutex::new(()),
            history: std::sync::OnceLock::new(),
        })
    }

    /// Never blocks. When full, the oldest queued event makes room and is counted as dropped.
    pub fn emit(self: &Arc<Self>, event: Event) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        while self.rx.len() >= self.capacity {
            if self.rx.try_recv().is_err() {
                break;
            }
            self.dropped.fetch_add(1, Ordering::Relaxed);
            crate::metrics::dropped_events();
        }
        if let Some(history) = self.history.get() {
            history.record(event.clone());
        }
        let _ = self.tx.send(Slot::Event(event));
        self.schedule();
    }

    /// Puts this hub on the delivery pool, unless it has no callback or is already there.
    fn schedule(self: &Arc<Self>) {
        if self.has_callback.load(Ordering::Acquire) && !self.scheduled.swap(true, Ordering::AcqRel) {
            crate::delivery::submit(Arc::clone(self));
        }
    }

    /// This hub's event history, kept from the first call on (every event emitted after it).
    pub fn history(&self) -> Arc<crate::history::History> {
        Arc::clone(self.history.get_or_init(|| Arc::new(crate::history::History::new(crate::history::DEFAULT_HISTORY))))
    }

    /// Events lost to a slow consumer so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Pulls the next event, waiting up to `timeout` (`None`: until one comes or the hub
    /// closes). `Ok(None)` on timeout; `Err(Stopped)` once closed and drained.
    pub fn next_event(&self, timeout: Option<Duration>) -> Result<Option<Event>> {
        if self.has_callback.load(Ordering::Acquire) {
            return Err(Error::InvalidState(
                "events are delivered to a callback on this handle; next_event is not available".into(),
            ));
        }
        // A ready event (or a poll with no wait) needs no timed wait: crossbeam's
        // recv_timeout spins and yields before looking at its deadline.
        let got = match (self.rx.try_recv(), timeout) {
            (Ok(slot), _) => Ok(slot),
            (Err(_), Some(t)) if t.is_zero() => Err(RecvTimeoutError::Timeout),
            (Err(_), Some(t)) => self.rx.recv_timeout(t),
            (Err(_), None) => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(Slot::Event(ev)) => Ok(Some(ev)),
            Ok(Slot::Wake) => {
                // Pass the wake-up on, so every other waiting puller learns of the close too.
                let _ = self.tx.send(Slot::Wake);
                Err(Error::Stopped("handle is stopped: no more events"))
            }
            Err(RecvTimeoutError::Timeout) if !self.is_closed() => Ok(None),
            Err(_) => Err(Error::Stopped("handle is stopped: no more events")),
        }
    }

    /// Starts delivering to `callback` on the shared delivery pool. One callback per hub.
    pub fn set_callback(self: &Arc<Self>, callback: Callback) -> Result<()> {
        let mut slot = self.callback.lock();
        if self.has_callback.load(Ordering::Acquire) {
            return Err(Error::InvalidState("a callback is already set on this handle".into()));
        }
        if self.is_closed() {
            return Err(Error::Stopped("handle is stopped"));
        }
        *slot = Some(callback);
        self.has_callback.store(true, Ordering::Release);
        drop(slot);
        // Events emitted before the callback was set are delivered to it.
        if !self.rx.is_empty() {
            self.schedule();
        }
        Ok(())
    }

    /// One turn on a delivery thread: up to `EVENTS_PER_TURN` events to the callback (fewer
    /// once it has run `TURN_BUDGET`), then back to the pool's queue if more wait (so
    /// handles share the threads).
    pub(crate) fn run_turn(self: &Arc<Self>) {
        // A callback closed from inside itself, dropped once the turn has let go of the lock.
        let mut gone = None;
        {
            let mut callback = self.callback.lock();
            *self.running_on.lock() = Some(thread::current().id());
            let mut delivered = 0;
            let began = std::time::Instant::now();
            while delivered < EVENTS_PER_TURN && (delivered == 0 || began.elapsed() < TURN_BUDGET) {
                let ev = match self.rx.try_recv() {
                    Ok(Slot::Event(ev)) => ev,
                    Ok(Slot::Wake) => continue, // close's wake-up, for pullers
                    Err(_) => break,
                };
                // After close, the backlog gets a short grace period, so that stop stays
                // bounded even behind a slow callback; what is left then (or anything once
                // the callback is gone) is dropped and counted.
                let Some(cb) = callback.as_mut().filter(|_| !self.past_drain_deadline()) else {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::dropped_events();
                    continue;
                };
                // A panicking callback must not take the engine down with it.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(&ev))).is_err() {
                    crate::metrics::callback_panics();
                }
                delivered += 1;
                // Closed from inside the callback: that stop has returned, so nothing more
                // runs, and the callback is dropped now that it has returned.
                if self.closed_by_callback.load(Ordering::Acquire) {
                    gone = callback.take();
                }
            }
            *self.running_on.lock() = None;
        }
        if gone.is_some() {
            drop(gone);
            self.has_callback.store(false, Ordering::Release); // the stream has ended for pullers too
        }
        self.scheduled.store(false, Ordering::Release);
        {
            let _turn = self.turn_lock.lock();
            self.turn_ended.notify_all();
        }
        // Events that came while the turn ran (or its share was used up) get a turn too.
        if !self.rx.is_empty() {
            self.schedule();
        }
    }

    fn past_drain_deadline(&self) -> bool {
        let deadline = self.drain_deadline_ns.load(Ordering::Acquire);
        deadline != 0 && crate::clock::monotonic_ns() > deadline
    }

    /// True when called from this hub's own callback.
    pub fn on_delivery_thread(&self) -> bool {
        *self.running_on.lock() == Some(thread::current().id())
    }

    /// Closes the hub: events queued before it are still delivered to the callback for up to
    /// [`DRAIN_GRACE`] (the rest are dropped and counted), then the callback is dropped.
    /// Returns once no callback can run any more, except when called from the callback
    /// itself: then the callback is dropped as soon as it returns.
    pub fn close(self: &Arc<Self>) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let deadline = crate::clock::monotonic_ns() + DRAIN_GRACE.as_nanos() as u64;
            self.drain_deadline_ns.store(deadline, Ordering::Release);
            // Wakes a puller at once, behind every queued event.
            let _ = self.tx.send(Slot::Wake);
        }
        if !self.has_callback.load(Ordering::Acquire) {
            return;
        }
        if self.on_delivery_thread() {
            self.closed_by_callback.store(true, Ordering::Release);
            return;
        }
        // Let the backlog be delivered (or dropped once the grace period is over)...
        self.schedule();
        let mut turn = self.turn_lock.lock();
        while !self.rx.is_empty() || self.scheduled.load(Ordering::Acquire) {
            self.turn_ended.wait_for(&mut turn, Duration::from_millis(10));
            if !self.rx.is_empty() && !self.scheduled.load(Ordering::Acquire) {
                drop(turn);
                self.schedule();
                turn = self.turn_lock.lock();
            }
        }
        drop(turn);
        // ...then no turn can call it any more (a running one finishes first). Dropped
        // outside the lock: the user's destructor may take its time (a Go pump draining),
        // and a turn queued for this hub must not wait for it.
        let callback = self.callback.lock().take();
        drop(callback);
        // The stream has ended: next_event says so (Stopped) rather than "a callback is set".
        self.has_callback.store(false, Ordering::Release);
    }
}

impl Drop for EventHub {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn ev(n: u32) -> Event {
        let mut e = Event::new("p", "s", State::Unknown, State::Alive, Reason::Registered);
        e.incarnation = n;
        e
    }

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().unwrap(), *s);
        }
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), *r);
        }
        assert!("zombie".parse::<State>().is_err());
    }

    #[test]
    fn pull_in_order_and_timeout() {
        let hub = EventHub::new(8);
        hub.emit(ev(1));
        hub.emit(ev(2));
        assert_eq!(hub.next_event(Some(Duration::ZERO)).unwrap().unwrap().incarnation, 1);
        assert_eq!(hub.next_event(None).unwrap().unwrap().incarnation, 2);
        assert_eq!(hub.next_event(Some(Duration::from_millis(10))).unwrap(), None);
        hub.close();
        assert!(matches!(hub.next_event(None), Err(Error::Stopped(_))));
    }

    #[test]
    fn full_hub_drops_oldest_and_counts() {
        let hub = EventHub::new(4);
        for i in 0..10 {
            hub.emit(ev(i));
        }
        assert_eq!(hub.dropped(), 6);
        let got: Vec<u32> =
            (0..4).map(|_| hub.next_event(Some(Duration::ZERO)).unwrap().unwrap().incarnation).collect();
        assert_eq!(got, vec![6, 7, 8, 9]);
    }

    #[test]
    fn callback_gets_everything_then_is_dropped_once_before_close_returns() {
        struct OnDrop(Arc<AtomicUsize>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let hub = EventHub::new(64);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let drops = Arc::new(AtomicUsize::new(0));
        let (s, guard) = (seen.clone(), OnDrop(drops.clone()));
        hub.set_callback(Box::new(move |e| {
            let _ = &guard;
            s.lock().push(e.incarnation)
        }))
        .unwrap();
        for i in 0..20 {
            hub.emit(ev(i));
        }
        hub.close();
        assert_eq!(*seen.lock(), (0..20).collect::<Vec<_>>());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        hub.emit(ev(99));
        assert_eq!(seen.lock().len(), 20);
        // The stream has ended (as for a puller), not "a callback is set".
        let after = hub.next_event(Some(Duration::ZERO));
        assert!(matches!(after, Err(Error::Stopped(_))), "{after:?}");
    }

    #[test]
    fn close_is_bounded_behind_a_slow_callback() {
        let hub = EventHub::new(1024);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        hub.set_callback(Box::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(20));
        }))
        .unwrap();
        for i in 0..500 {
            hub.emit(ev(i));
        }
        let t0 = std::time::Instant::now();
        hub.close();
        // 500 × 20 ms would be 10 s; the grace period cuts it to about 250 ms.
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        let delivered = calls.load(Ordering::SeqCst) as u64;
        assert!(delivered < 100);
        assert_eq!(delivered + hub.dropped(), 500);
    }

    #[test]
    fn close_from_inside_the_callback_does_not_deadlock() {
        let hub = EventHub::new(8);
        let h = hub.clone();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        hub.set_callback(Box::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            assert!(h.on_delivery_thread());
            h.close();
        }))
        .unwrap();
        hub.emit(ev(1));
        let t0 = std::time::Instant::now();
        while calls.load(Ordering::SeqCst) == 0 && t0.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(5));
        }
        hub.emit(ev(2));
        hub.close();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let t0 = std::time::Instant::now();
        while !cond() {
            assert!(t0.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_thousand_handles_share_a_few_threads_each_in_order() {
        let hubs: Vec<_> = (0..1000).map(|_| EventHub::new(64)).collect();
        let seen: Vec<Arc<Mutex<Vec<u32>>>> = (0..1000).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
        for (hub, seen) in hubs.iter().zip(&seen) {
            let s = Arc::clone(seen);
            hub.set_callback(Box::new(move |e| s.lock().push(e.incarnation))).unwrap();
        }
        for i in 0..20 {
            for hub in &hubs {
                hub.emit(ev(i));
            }
        }
        wait_until("every event delivered", || seen.iter().all(|s| s.lock().len() == 20));
        assert!(seen.iter().all(|s| *s.lock() == (0..20).collect::<Vec<_>>()), "order per handle");
        let threads = crate::delivery::threads();
        assert!(threads <= crate::delivery::MAX_THREADS, "{threads} delivery threads");
        for hub in &hubs {
            hub.close();
        }
    }

    #[test]
    fn a_slow_callback_delays_only_its_own_handle() {
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
        let slow = EventHub::new(64);
        let slow_calls = Arc::new(AtomicUsize::new(0));
        let c = slow_calls.clone();
        slow.set_callback(Box::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
        }))
        .unwrap();
        slow.emit(ev(1));
        slow.emit(ev(2));
        wait_until("the slow callback running", || slow_calls.load(Ordering::SeqCst) == 1);
        // While it is held, another handle's events keep flowing.
        let fast = EventHub::new(64);
        let fast_calls = Arc::new(AtomicUsize::new(0));
        let f = fast_calls.clone();
        fast.set_callback(Box::new(move |_| {
            f.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
        for i in 0..10 {
            fast.emit(ev(i));
        }
        wait_until("the other handle's events", || fast_calls.load(Ordering::SeqCst) == 10);
        assert_eq!(slow_calls.load(Ordering::SeqCst), 1, "the slow handle's next event waits for it");
        release_tx.send(()).unwrap();
        wait_until("the slow handle's second event", || slow_calls.load(Ordering::SeqCst) == 2);
        release_tx.send(()).unwrap();
        slow.close();
        fast.close();
    }

    #[test]
    fn the_pool_grows_past_several_slow_callbacks_held_at_once() {
        // Once every thread is held, nothing new is submitted (the other handles are all
        // queued already): the pool must grow on its own, one thread per slow callback.
        let (release_tx, release_rx) = crossbeam_channel::unbounded::<()>();
        let held = Arc::new(AtomicUsize::new(0));
        let slow: Vec<_> = (0..4)
            .map(|_| {
                let hub = EventHub::new(8);
                let (h, rx) = (held.clone(), release_rx.clone());
                hub.set_callback(Box::new(move |_| {
                    h.fetch_add(1, Ordering::SeqCst);
                    let _ = rx.recv_timeout(Duration::from_secs(30));
                }))
                .unwrap();
                hub.emit(ev(1));
                hub
            })
            .collect();
        let fast = EventHub::new(8);
        let fast_calls = Arc::new(AtomicUsize::new(0));
        let f = fast_calls.clone();
        fast.set_callback(Box::new(move |_| {
            f.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
        fast.emit(ev(1));
        wait_until("all four slow callbacks running at once", || held.load(Ordering::SeqCst) == 4);
        wait_until("the other handle's event", || fast_calls.load(Ordering::SeqCst) == 1);
        for _ in 0..4 {
            release_tx.send(()).unwrap();
        }
        for hub in slow.iter().chain([&fast]) {
            hub.close();
        }
    }

    #[test]
    fn panicking_callback_is_contained() {
        let hub = EventHub::new(8);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        hub.set_callback(Box::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            panic!("user bug");
        }))
        .unwrap();
        hub.emit(ev(1));
        hub.emit(ev(2));
        let t0 = std::time::Instant::now();
        while calls.load(Ordering::SeqCst) < 2 && t0.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(5));
        }
        hub.close();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(crate::metrics::get().callback_panics.get() >= 2);
    }
}
