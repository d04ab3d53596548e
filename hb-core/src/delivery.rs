//! The process-wide pool of threads that run event callbacks (`EventHub::run_turn`).
//!
//! A thread per handle costs ~1,000 threads for 1,000 handles. Here handles with events
//! waiting queue up for a small pool instead: a thread takes one handle's turn (a few of its
//! events, in order), then the next. A slow callback holds only its own thread: when every
//! thread is busy and a handle waits, one more is started, up to `MAX_THREADS`; threads
//! beyond `MIN_THREADS` leave after `IDLE_EXIT` without work. So other handles are delayed
//! by a slow callback only once `MAX_THREADS` callbacks are slow at the same time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::events::EventHub;

pub const MAX_THREADS: usize = 16;
const MIN_THREADS: usize = 1;
const IDLE_EXIT: Duration = Duration::from_secs(10);

struct Pool {
    tx: Sender<Arc<EventHub>>,
    rx: Receiver<Arc<EventHub>>,
    threads: AtomicUsize,
    idle: AtomicUsize,
    /// The process the threads run in: a forked child has none of them, so it starts its own pool.
    pid: u32,
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
            let p = Arc::new(Pool { tx, rx, threads: AtomicUsize::new(0), idle: AtomicUsize::new(0), pid });
            *slot = Some(Arc::clone(&p));
            p
        }
    }
}

/// Queues a turn for `hub`; starts a thread if none is free.
pub fn submit(hub: Arc<EventHub>) {
    let p = pool();
    let _ = p.tx.send(hub);
    if p.idle.load(Ordering::Acquire) == 0 && p.threads.load(Ordering::Acquire) < MAX_THREADS {
        start_thread(&p);
    }
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

fn work(p: &Pool) {
    loop {
        p.idle.fetch_add(1, Ordering::AcqRel);
        let got = p.rx.recv_timeout(IDLE_EXIT);
        p.idle.fetch_sub(1, Ordering::AcqRel);
        match got {
            Ok(hub) => hub.run_turn(),
            Err(_) => {
                // Leave if others remain (never the last one while turns may be queued).
                let n = p.threads.load(Ordering::Acquire);
                if n > MIN_THREADS
                    && p.rx.is_empty()
                    && p.threads.compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::Acquire).is_ok()
                {
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
