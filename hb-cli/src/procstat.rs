//! Resident memory and CPU time from /proc (Linux), for the benchmarks.

use std::time::Duration;

/// VmRSS of a process in bytes (`pid = None`: this process).
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// OS threads of a process (`Threads:` in its status).
pub fn threads(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Threads:"))?.trim().parse().ok()
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime from a `stat` file (fields 14 and 15, after the parenthesised name).
fn stat_cpu(path: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / ticks_per_second()))
}

/// CPU time (user + system) of a whole process.
pub fn process_cpu(pid: Option<u32>) -> Option<Duration> {
    match pid {
        Some(p) => stat_cpu(&format!("/proc/{p}/stat")),
        None => stat_cpu("/proc/self/stat"),
    }
}

/// CPU time of this process's threads whose name starts with `prefix` (e.g. "hb-").
pub fn threads_cpu(prefix: &str) -> Duration {
    let mut total = Duration::ZERO;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return total };
    for entry in dir.flatten() {
        let base = entry.path();
        let name = std::fs::read_to_string(base.join("comm")).unwrap_or_default();
        if name.trim_end().starts_with(prefix) {
            total += stat_cpu(&base.join("stat").to_string_lossy()).unwrap_or_default();
        }
    }
    total
}

/// CPU time of the calling thread (precise: clock_gettime, not ticks).
pub fn this_thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_rss_and_cpu() {
        assert!(rss_bytes(None).unwrap() > 100_000);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu(None).unwrap() > Duration::ZERO);
        assert!(this_thread_cpu() > Duration::ZERO);
    }
}
