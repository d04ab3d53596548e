//! ABI contract tests that drive the C entry points from Rust, emitting events into a
//! handle's hub directly so they do not depend on the network engine.

use std::ffi::{c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use hb_core::{Event, Reason, State};

use crate::error::*;
use crate::event::*;
use crate::monitor::*;
use crate::status::hb_status;

fn monitor() -> *mut hb_monitor {
    let config = crate::config::hb_config_new();
    let mut m = null_mut();
    unsafe {
        assert_eq!(
            crate::config::hb_config_set_endpoint(config, c"udp://127.0.0.1:9".as_ptr(), null_mut()),
            hb_status::Ok
        );
        assert_eq!(hb_monitor_new(config, &mut m, null_mut()), hb_status::Ok);
        crate::config::hb_config_free(config);
    }
    m
}

fn emit(m: *mut hb_monitor, peer: &str) {
    let mut e = Event::new(peer, "svc", State::Unknown, State::Alive, Reason::Registered);
    e.labels.insert("k".into(), "v".into());
    unsafe { (*m).inner.events().emit(e) };
}

#[test]
fn panic_becomes_status_with_message() {
    let mut err = null_mut();
    let s = crate::boundary::run(&mut err, || panic!("boom"));
    assert_eq!(s, hb_status::Panic);
    let msg = unsafe { CStr::from_ptr(hb_error_message(err)) }.to_str().unwrap().to_string();
    assert!(msg.contains("boom"), "{msg}");
    assert_eq!(unsafe { hb_error_status(err) }, hb_status::Panic);
    unsafe { hb_error_free(err) };
}

#[test]
fn poll_returns_owned_event_with_accessors() {
    let m = monitor();
    emit(m, "p1");
    let mut ev = null_mut();
    unsafe {
        assert_eq!(hb_monitor_next_event(m, 1000, &mut ev, null_mut()), hb_status::Ok);
        assert_eq!(CStr::from_ptr(hb_event_peer(ev)).to_str().unwrap(), "p1");
        assert_eq!(hb_event_to(ev), hb_state::Alive);
        assert_eq!(hb_event_label_count(ev), 1);
        let (mut k, mut v) = (std::ptr::null(), std::ptr::null());
        assert_eq!(hb_event_label_at(ev, 0, &mut k, &mut v, null_mut()), hb_status::Ok);
        assert_eq!(CStr::from_ptr(k).to_str().unwrap(), "k");
        assert_eq!(hb_event_label_at(ev, 1, &mut k, &mut v, null_mut()), hb_status::OutOfRange);
        assert!(hb_event_traceparent(ev).is_null());
        hb_event_free(ev);
        hb_monitor_free(m);
    }
}

/// User data for the reentry tests: counts calls and drops, and can stop or free the
/// monitor from inside its own callback.
struct Reentry {
    monitor: AtomicPtr<hb_monitor>,
    free_it: bool,
    calls: AtomicUsize,
    drops: Mutex<usize>,
    dropped: Condvar,
}

unsafe extern "C" fn reentrant(user: *mut c_void, _ev: *const hb_event) {
    let r = unsafe { &*(user as *const Reentry) };
    r.calls.fetch_add(1, Ordering::SeqCst);
    let m = r.monitor.swap(null_mut(), Ordering::SeqCst);
    if m.is_null() {
        return; // already stopped/freed by an earlier call
    }
    if r.free_it {
        unsafe { hb_monitor_free(m) };
    } else {
        assert_eq!(unsafe { hb_monitor_stop(m, null_mut()) }, hb_status::Ok);
        // Polling its own handle from the callback is refused, not a deadlock.
        let mut ev = null_mut();
        assert_eq!(unsafe { hb_monitor_next_event(m, 0, &mut ev, null_mut()) }, hb_status::InvalidState);
    }
}

unsafe extern "C" fn reentry_drop(user: *mut c_void) {
    // Takes back the Arc lent to the library.
    let r = unsafe { Arc::from_raw(user as *const Reentry) };
    *r.drops.lock().unwrap() += 1;
    r.dropped.notify_all();
}

fn reentry(free_it: bool) {
    let m = monitor();
    let r = Arc::new(Reentry {
        monitor: AtomicPtr::new(m),
        free_it,
        calls: AtomicUsize::new(0),
        drops: Mutex::new(0),
        dropped: Condvar::new(),
    });
    let user = Arc::into_raw(r.clone()) as *mut c_void;
    unsafe {
        assert_eq!(hb_monitor_set_callback(m, Some(reentrant), user, Some(reentry_drop), null_mut()), hb_status::Ok)
    };
    emit(m, "a");
    emit(m, "b");
    let (drops, timeout) =
        r.dropped.wait_timeout_while(r.drops.lock().unwrap(), Duration::from_secs(10), |d| *d == 0).unwrap();
    assert!(!timeout.timed_out(), "drop_user_data did not run: stop/free from the callback deadlocked");
    assert_eq!(*drops, 1);
    drop(drops);
    assert!(r.calls.load(Ordering::SeqCst) >= 1);
    if !free_it {
        unsafe {
            assert_eq!(crate::monitor::hb_monitor_start(m, null_mut()), hb_status::Stopped);
            hb_monitor_free(m);
        }
    }
}

#[test]
fn stop_from_own_callback_does_not_deadlock() {
    reentry(false);
}

#[test]
fn free_from_own_callback_is_deferred() {
    reentry(true);
}

#[test]
fn drop_user_data_runs_once_when_registration_fails() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn count(_: *mut c_void) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
    let m = monitor();
    unsafe {
        assert_eq!(hb_monitor_set_callback(m, None, null_mut(), Some(count), null_mut()), hb_status::NullArgument);
        assert_eq!(
            hb_monitor_set_callback(null_mut(), Some(reentrant), null_mut(), Some(count), null_mut()),
            hb_status::NullArgument
        );
        hb_monitor_stop(m, null_mut());
        assert_eq!(
            hb_monitor_set_callback(m, Some(reentrant), null_mut(), Some(count), null_mut()),
            hb_status::Stopped
        );
        hb_monitor_free(m);
    }
    assert_eq!(DROPS.load(Ordering::SeqCst), 3);
}
