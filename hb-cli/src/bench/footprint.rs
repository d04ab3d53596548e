//! `bench footprint`: RSS, CPU and OS threads of a process holding 0, 1, 10, 100, 1000
//! clients beating at a 1 s interval to a monitor in this (parent) process, each with an
//! event callback with `--callbacks`. Each count runs in a fresh child
//! (`bench footprint-child N`), measured from /proc/<pid>.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use hb_core::{Client, Monitor, Options};

use crate::cli::{FootprintArgs, FootprintChildArgs};
use crate::fail::{runtime, set, CmdResult};
use crate::procstat;

struct Row {
    clients: u64,
    rss: u64,
    cpu_percent: f64,
    threads: u64,
}

pub fn run(a: FootprintArgs) -> CmdResult {
    let counts = super::list("clients", &a.clients)?;
    let window = crate::impair::duration("duration", &a.duration)?;
    let mut o = Options::new();
    set(&mut o, "listen", "udp://127.0.0.1:0")?;
    set(&mut o, "max_peers", "100000")?;
    let monitor = Monitor::new(&o)?;
    monitor.start()?;
    let addr =
        monitor.local_addrs()?.into_iter().map(|(_, a)| a).next().ok_or_else(|| runtime("monitor bound no address"))?;
    let exe = std::env::current_exe().map_err(|e| runtime(format!("own executable: {e}")))?;

    let mut rows = Vec::new();
    for &n in &counts {
        let mut args = vec!["bench".to_string(), "footprint-child".into(), n.to_string()];
        args.extend(["--endpoint".into(), format!("udp://{addr}")]);
        if a.callbacks {
            args.push("--callbacks".into());
        }
        let mut child = Command::new(&exe)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| runtime(format!("spawn child: {e}")))?;
        let pid = child.id();
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or_else(|| runtime("child stdout"))?;
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).map_err(|e| runtime(format!("child: {e}")))?;
        if line.trim() != "ready" {
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            let _ = child.kill();
            return Err(runtime(format!("footprint child with {n} clients failed: {line}{rest}")));
        }
        // Let start-up allocations and the first beats settle before measuring.
        std::thread::sleep(Duration::from_secs(2));
        let cpu0 = procstat::process_cpu(Some(pid)).unwrap_or_default();
        std::thread::sleep(window);
        let cpu1 = procstat::process_cpu(Some(pid)).unwrap_or_default();
        let rss = procstat::rss_bytes(Some(pid)).unwrap_or(0);
        let threads = procstat::threads(pid).unwrap_or(0);
        drop(child.stdin.take()); // the child exits when its stdin closes
        let _ = child.wait();
        let cpu_percent = (cpu1 - cpu0).as_secs_f64() / window.as_secs_f64() * 100.0;
        eprintln!("  {n} clients: RSS {:.2} MB, CPU {:.3}%, {threads} threads", rss as f64 / 1e6, cpu_percent);
        rows.push(Row { clients: n, rss, cpu_percent, threads });
    }
    monitor.stop()?;

    let base = rows.iter().find(|r| r.clients == 0).map(|r| r.rss);
    let one = rows.iter().find(|r| r.clients == 1).map(|r| r.rss);
    println!(
        "{:>8} {:>10} {:>14} {:>16} {:>8} {:>8}",
        "clients", "RSS MB", "+RSS vs 0, MB", "per further, KB", "CPU %", "threads"
    );
    let mut json_rows = Vec::new();
    for r in &rows {
        let added = base.map(|b| r.rss as f64 - b as f64);
        let per_further = match one {
            Some(o) if r.clients > 1 => Some((r.rss as f64 - o as f64) / (r.clients - 1) as f64),
            _ => None,
        };
        println!(
            "{:>8} {:>10.2} {:>14} {:>16} {:>8.3} {:>8}",
            r.clients,
            r.rss as f64 / 1e6,
            added.map(|v| format!("{:.2}", v / 1e6)).unwrap_or("-".into()),
            per_further.map(|v| format!("{:.1}", v / 1024.0)).unwrap_or("-".into()),
            r.cpu_percent,
            r.threads
        );
        json_rows.push(serde_json::json!({
            "clients": r.clients,
            "rss_bytes": r.rss,
            "rss_added_vs_zero_bytes": added,
            "rss_per_further_client_bytes": per_further,
            "cpu_percent": r.cpu_percent,
            "threads": r.threads,
        }));
    }
    super::write_json(
        a.json.as_deref(),
        &serde_json::json!({
            "interval": "1s", "window_s": window.as_secs_f64(), "callbacks": a.callbacks, "rows": json_rows,
        }),
    )?;
    Ok(0)
}

/// Holds `count` clients at a 1 s interval until stdin closes.
pub fn child(a: FootprintChildArgs) -> CmdResult {
    let mut clients = Vec::new();
    for i in 0..a.count {
        let mut o = Options::new();
        set(&mut o, "endpoint", &a.endpoint)?;
        set(&mut o, "service", "footprint")?;
        set(&mut o, "instance_id", &format!("fp-{}-{i}", std::process::id()))?;
        set(&mut o, "interval", "1s")?;
        let c = Client::new(&o)?;
        if a.callbacks {
            c.events().set_callback(Box::new(|ev| {
                std::hint::black_box(ev);
            }))?;
        }
        c.start()?;
        clients.push(c);
    }
    println!("ready");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    for c in &clients {
        let _ = c.stop(Duration::from_millis(200));
    }
    Ok(0)
}
