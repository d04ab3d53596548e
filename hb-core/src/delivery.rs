//! The process-wide pool of threads that run event callbacks (`EventHub::run_turn`).
//!
//! A thread per handle costs ~1,000 threads for 1,000 handles. Here handles with events
//! waiting queue up for a small pool instead: a thread takes one handle's turn (a few of its
//! events, in order), then the next. A slow callback holds only its own thread: when every
//! thread has been inside one turn for `GROW_AFTER` while a handle waits, one more is
//! started, up to `MAX_THREADS`; threads beyond `MIN_THREADS` leave after `IDLE_EXIT`
//! without work. So a slow callback delays other handles by at most about `GROW_AFTER`,
//! until `MAX_THREADS` callbacks are slow at the same time. Growing whenever all threads
//! are busy, or busy for a while over many short turns (a loaded host), would grow the pool
//! to its maximum without helping: only a turn that lasts is a slow callback.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use crate::events::EventHub;

pub const MAX_THREADS: usize = 16;
const MIN_THREADS: usize = 1;
const IDLE_EXIT: Duration = Duration::from_secs(10);
/// How long every thread must have been in one turn, while handles wait, for the pool to grow.
const GROW_AFTER: Duration = Duration::from_millis(100);

struct Pool {
    tx: Sender<Arc<EventHub>>,
    rx: Receiver<Arc<EventHub>>,
    threads: AtomicUsize,
    /// Threads inside a turn now (a thread between turns is about to take the next one).
    busy: AtomicUsize,
    /// When the turn running on each thread began (monotonic ns; 0: between turns), by the
    /// thread's place in the pool.
    turn_began: [AtomicU64; MAX_THREADS],
    places: Mutex<[bool; MAX_THREADS]>,
    /// The process the threads run in: a forked child has none of them, so it starts its own pool.
    pid: u32,
    /// Set while the watcher looks every `GROW_AFTER` (some turn runs or waits); it
    /// sleeps on `wake` while the pool is idle, and a submit wakes it.
    watching: AtomicBool,
    wake: Mutex<()>,
    wake_cv: Condvar,
    watcher: std::sync::Once,
}

/// The pool of this process.
fn pool() -> Arc<Pool> {
    static POOL: Mutex<Option<Arc<Pool>>> = Mutex::new(None);
    let mut slot = POOL.lock();
    let pid = std::process::id();
    match slot.as_ref() {
        Some(p) if p.pid == pid => Arc::clone(p),
        _ => {
            let (tx, rx) = unbounded();
            let p = Arc::new(Pool {
                tx,
                rx,
                threads: AtomicUsize::new(0),
                busy: AtomicUsize::new(0),
                turn_began: std::array::from_fn(|_| AtomicU64::new(0)),
                places: Mutex::new([false; MAX_THREADS]),
                pid,
                watching: AtomicBool::new(false),
                wake: Mutex::new(()),
                wake_cv: Condvar::new(),
                watcher: std::sync::Once::new(),
            });
            *slot = Some(Arc::clone(&p));
            p
        }
    }
}

/// Queues a turn for `hub`: the first thread starts at once, and the watcher wakes if it
/// sleeps.
pub fn submit(hub: Arc<EventHub>) {
    let p = pool();
    let _ = p.tx.send(hub);
    if p.threads.load(Ordering::Acquire) == 0 {
        start_thread(&p);
    }
    p.watcher.call_once(|| {
        let pool = Arc::clone(&p);
        let _ = std::thread::Builder::new().name("hb-events-watch".into()).spawn(move || watch(&pool));
    });
    if !p.watching.swap(true, Ordering::AcqRel) {
        let _wake = p.wake.lock();
        p.wake_cv.notify_one();
    }
}

/// Grows the pool when turns wait behind threads that stay inside one callback. It looks
/// every `GROW_AFTER` while any turn runs or waits (not only when a handle is submitted:
/// once every thread is stuck, the other handles are all queued already and nothing is
/// submitted), and sleeps while the pool is idle.
fn watch(p: &Arc<Pool>) {
    loop {
        {
            let mut wake = p.wake.lock();
            while !p.watching.load(Ordering::Acquire) {
                p.wake_cv.wait(&mut wake);
            }
        }
        loop {
            std::thread::sleep(GROW_AFTER);
            let threads = p.threads.load(Ordering::Acquire);
            if !p.rx.is_empty() && threads < MAX_THREADS && every_thread_in_a_long_turn(p, threads) {
                start_thread(p);
            }
            let idle = || p.rx.is_empty() && p.busy.load(Ordering::Acquire) == 0;
            if idle() {
                p.watching.store(false, Ordering::Release);
                // A submit between the look and the store did not wake us: look again.
                if idle() || p.watching.swap(true, Ordering::AcqRel) {
                    break;
                }
            }
        }
    }
}

/// True when each of the pool's threads has been inside its current turn for GROW_AFTER.
fn every_thread_in_a_long_turn(p: &Pool, threads: usize) -> bool {
    let now = crate::clock::monotonic_ns();
    let long = GROW_AFTER.as_nanos() as u64;
    let in_long_turn = p.turn_began.iter().filter(|t| {
        let began = t.load(Ordering::Acquire);
        began != 0 && now.saturating_sub(began) >= long
    });
    in_long_turn.count() >= threads
}

fn start_thread(p: &Arc<Pool>) {
    p.threads.fetch_add(1, Ordering::AcqRel);
    let pool = Arc::clone(p);
    let spawned = std::thread::Builder::new().name("hb-events".into()).spawn(move || work(&pool));
    if spawned.is_err() {
        // Out of threads: the ones running will get to the queue.
        p.threads.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Claims a free place in `turn_began` for this thread (there are as many as threads).
fn claim_place(p: &Pool) -> usize {
    let mut places = p.places.lock();
    let i = places.iter().position(|taken| !taken).unwrap_or(0);
    places[i] = true;
    i
}

fn work(p: &Pool) {
    let place = claim_place(p);
    loop {
        match p.rx.recv_timeout(IDLE_EXIT) {
            Ok(hub) => {
                p.busy.fetch_add(1, Ordering::AcqRel);
                p.turn_began[place].store(crate::clock::monotonic_ns().max(1), Ordering::Release);
                hub.run_turn();
                p.turn_began[place].store(0, Ordering::Release);
                p.busy.fetch_sub(1, Ordering::AcqRel);
            }
            Err(_) => {
                // Leave if others remain (never the last one while turns may be queued).
                let n = p.threads.load(Ordering::Acquire);
                if n > MIN_THREADS
                    && p.rx.is_empty()
                    && p.threads.compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::Acquire).is_ok()
                {
                    p.places.lock()[place] = false;
                    return;
                }
            }
        }
    }
}

/// Threads in this process's pool now (for tests and benchmarks).
pub fn threads() -> usize {
    pool().threads.load(Ordering::Acquire)
}
