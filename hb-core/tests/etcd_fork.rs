//! A forked child makes its own etcd connection: the parent's pooled one ran on the parent's
//! runtime, whose threads the child does not have, so reusing it would hang until
//! "cannot reach etcd". Alone in its own test binary: forking is safest with few threads.

mod etcd_support;

use std::time::{Duration, Instant};

use etcd_support::{options, start_client, Etcd};

fn member(etcd: &Etcd, id: &str) -> hb_core::Result<hb_core::Client> {
    start_client(&options(&[
        ("endpoint", &etcd.url("/services")),
        ("service", "svc"),
        ("instance_id", id),
        ("ttl", "5s"),
        ("connect_timeout", "3s"),
    ]))
}

/// Waits for `child` to exit within `timeout`; kills it (by its pid) if it does not.
fn wait_child(child: libc::pid_t, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: waiting on our own child with a valid status pointer.
        let done = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
        if done == child {
            return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        }
        if Instant::now() >= deadline {
            // SAFETY: signalling and reaping the child we forked.
            unsafe {
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_forked_child_registers_over_its_own_connection() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let etcd = Etcd::start();
    // The parent's connection is in the pool (and its keepalive stream running) at the fork.
    let parent = member(&etcd, "parent").expect("parent registers");

    // SAFETY: the child only registers a new Client and leaves with _exit (no destructors,
    // no test harness); the parent only waits for it.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        let code = match member(&etcd, "child") {
            Ok(client) => {
                std::mem::forget(client);
                0
            }
            Err(e) => {
                eprintln!("child: {e}");
                1
            }
        };
        // SAFETY: ends the child without running the parent's destructors twice.
        unsafe { libc::_exit(code) };
    }
    let status = wait_child(child, Duration::from_secs(15));
    assert_eq!(status, Some(0), "child registration (None: hung and was killed)");
    // Registered, and still there: the child left without a goodbye, so the key stays
    // until its 5 s TTL.
    let keys = etcd.keys("/services/");
    assert!(keys.contains(&"/services/svc/child".to_string()), "{keys:?}");
    // The parent's own registration is unaffected.
    parent.check().unwrap();
    parent.stop(Duration::from_secs(2)).unwrap();
}
