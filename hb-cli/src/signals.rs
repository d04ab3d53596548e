//! SIGINT/SIGTERM handling for the long-running commands.
//!
//! The signals are blocked in the main thread before any other thread exists, so every
//! thread (the engine's included) inherits the mask and the signal stays pending until the
//! main thread takes it with `sigtimedwait`. No async handler, no flag polling in the engine.

use std::time::Duration;

fn termination_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write into the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Call before starting any thread.
pub fn block_termination() {
    let set = termination_set();
    // SAFETY: a valid set; a null old-set pointer is allowed.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits up to `timeout` for SIGINT or SIGTERM; returns the signal's name if one came.
pub fn wait(timeout: Duration) -> Option<&'static str> {
    let set = termination_set();
    let ts =
        libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // SAFETY: valid set and timespec; a null siginfo pointer is allowed.
    let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    match sig {
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        _ => None,
    }
}

/// Blocks until SIGINT or SIGTERM.
pub fn wait_forever() -> &'static str {
    loop {
        if let Some(name) = wait(Duration::from_secs(3600)) {
            return name;
        }
    }
}
