//! A configuration made from files and made again when one of them changes, so that
//! certificates can be rotated without a restart: new handshakes use the new files, the
//! connections already made keep going on theirs.
//!
//! No watcher thread: the files are looked at (modified time, length, inode) when a
//! handshake asks for the configuration, at most once per [`CHECK_EVERY`]. A change that
//! does not load (a file half written, a key that does not match its certificate yet)
//! keeps the old configuration and is counted (`heartbeater_tls_reloads_total{result=
//! "failed"}`); it is tried again once a file changes again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use crate::error::Result;

pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies one version of a file; `None` while it cannot be read.
type Stamp = Option<(SystemTime, u64, u64)>;

type Load<T> = Box<dyn Fn() -> Result<T> + Send + Sync>;

pub(crate) struct Reloading<T> {
    paths: Vec<PathBuf>,
    load: Load<T>,
    state: Mutex<State<T>>,
}

struct State<T> {
    current: Arc<T>,
    /// The files as last loaded (or tried).
    stamps: Vec<Stamp>,
    checked: Instant,
}

impl<T> Reloading<T> {
    /// Loads once now: an error here is the caller's configuration error.
    pub fn new(paths: Vec<PathBuf>, load: impl Fn() -> Result<T> + Send + Sync + 'static) -> Result<Reloading<T>> {
        let stamps = stamps(&paths);
        let current = Arc::new(load()?);
        Ok(Reloading {
            paths,
            load: Box::new(load),
            state: Mutex::new(State { current, stamps, checked: Instant::now() }),
        })
    }

    /// The configuration for a new handshake: made again first if a file changed.
    pub fn current(&self) -> Arc<T> {
        let mut st = self.state.lock();
        if st.checked.elapsed() >= CHECK_EVERY {
            st.checked = Instant::now();
            let now = stamps(&self.paths);
            if now != st.stamps {
                st.stamps = now;
                let result = match (self.load)() {
                    Ok(fresh) => {
                        st.current = Arc::new(fresh);
                        "ok"
                    }
                    Err(_) => "failed",
                };
                crate::metrics::get().tls_reloads.with_label_values(&[result]).inc();
            }
        }
        Arc::clone(&st.current)
    }
}

fn stamps(paths: &[PathBuf]) -> Vec<Stamp> {
    use std::os::unix::fs::MetadataExt;
    paths.iter().map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len(), m.ino())))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn a_changed_file_is_loaded_again_and_a_bad_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "1").unwrap();
        let loads = Arc::new(AtomicU32::new(0));
        let (p, n) = (path.clone(), Arc::clone(&loads));
        let r = Reloading::new(vec![path.clone()], move || {
            n.fetch_add(1, Ordering::Relaxed);
            let text = std::fs::read_to_string(&p).unwrap();
            text.parse::<u32>().map_err(|_| crate::Error::config("f", &text, "a number"))
        })
        .unwrap();
        assert_eq!(*r.current(), 1);
        // Unchanged: not loaded again, however often asked.
        r.state.lock().checked -= CHECK_EVERY;
        assert_eq!(*r.current(), 1);
        assert_eq!(loads.load(Ordering::Relaxed), 1);

        std::fs::write(&path, "22").unwrap();
        assert_eq!(*r.current(), 1, "not looked at again within CHECK_EVERY");
        r.state.lock().checked -= CHECK_EVERY;
        assert_eq!(*r.current(), 22);

        std::fs::write(&path, "bad").unwrap();
        r.state.lock().checked -= CHECK_EVERY;
        assert_eq!(*r.current(), 22, "a change that does not load keeps the old one");
        let tries = loads.load(Ordering::Relaxed);
        r.state.lock().checked -= CHECK_EVERY;
        assert_eq!(*r.current(), 22);
        assert_eq!(loads.load(Ordering::Relaxed), tries, "not tried again until the file changes");
    }
}
