//! UDP listeners on threads of their own (`listen_threads` > 1): each of an endpoint's
//! `SO_REUSEPORT` sockets gets an OS thread running the same receive loop as on the engine
//! (on a single-threaded runtime of its own), so that the sockets can use several cores.
//! They share the one peer table and its lock.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::error::{Error, Result};

use super::{udp, Ingest};

pub(super) struct UdpThread {
    stop: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UdpThread {
    /// Starts receiving on `sock` in a thread called `name` (`hb-udp-N`: counted with the
    /// engine's threads by `hb-*`).
    pub(super) fn spawn(sock: std::net::UdpSocket, ingest: Arc<Ingest>, name: String) -> Result<UdpThread> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::io(format!("start {name}"), e))?;
        // Registered with this thread's own runtime, which drives it.
        let sock = {
            let _in_rt = rt.enter();
            tokio::net::UdpSocket::from_std(sock).map_err(|e| Error::io(format!("start {name}"), e))?
        };
        let stop = Arc::new(Notify::new());
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                rt.block_on(async move {
                    tokio::select! {
                        _ = udp::run(sock, ingest) => {}
                        _ = stopped.notified() => {}
                    }
                })
            })
            .map_err(|e| Error::io(format!("start {name}"), e))?;
        Ok(UdpThread { stop, thread: Some(thread) })
    }

    /// Ends the receive loop. With `wait`, returns once the thread (and so its socket) is
    /// gone; without (on an engine thread, which must not block) the thread ends on its own.
    pub(super) fn stop(mut self, wait: bool) {
        self.stop.notify_one();
        if let (true, Some(t)) = (wait, self.thread.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for UdpThread {
    /// A listener thread never outlives its handle.
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}
