//! Runs COUNT etcd registrations in one process (one shared connection and keepalive
//! stream) and reports, as JSON lines on stdout, every change of their fencing check and
//! every event; with `--holders`, also each client's own check turning (`{"kind": "holder",
//! "peer", "ok", "t_ms"}`). Driven by tests/etcd (acceptance 4: frozen client; 5: keepalive load).
//!
//!   cargo run -p hb-core --example etcd_clients -- etcd://127.0.0.1:2379/services 1000 10s
//!       [--service svc] [--id-prefix c] [--poll-ms 1]
//!
//! stdin: `stats` prints counters; `stop` (or end of input) stops every client gracefully.
//! Times are `t_ms` on CLOCK_BOOTTIME, comparable with Python's time.clock_gettime.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hb_core::Client;
use serde_json::json;

fn t_ms() -> f64 {
    hb_core::clock::monotonic_ns() as f64 / 1e6
}

fn say(v: serde_json::Value) {
    println!("{v}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: etcd_clients ENDPOINT COUNT TTL [--service S] [--id-prefix P] [--poll-ms N]");
        std::process::exit(2);
    }
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let endpoint = &args[0];
    let count: usize = args[1].parse().expect("COUNT is a number");
    let ttl = &args[2];
    let service = flag("--service").unwrap_or_else(|| "svc".into());
    let id_prefix = flag("--id-prefix").unwrap_or_else(|| "c".into());
    let holders = args.iter().any(|a| a == "--holders");
    let poll =
        Duration::from_millis(flag("--poll-ms").map(|v| v.parse().expect("--poll-ms N")).unwrap_or(if count <= 10 {
            1
        } else {
            100
        }));

    let started = t_ms();
    let mut members = Vec::with_capacity(count);
    for i in 0..count {
        let mut o = hb_core::Options::new();
        let id = format!("{id_prefix}{i}");
        for (k, v) in [
            ("endpoint", endpoint.as_str()),
            ("service", &service),
            ("instance_id", &id),
            ("ttl", ttl),
            ("event_capacity", "16"),
        ] {
            o.set(k, v).unwrap_or_else(|e| fail(&e.to_string()));
        }
        match start_client(&o) {
            Ok(m) => members.push(m),
            Err(e) => fail(&format!("client {id}: {e}")),
        }
    }
    let members = Arc::new(members);
    let epochs: Vec<u64> = members.iter().map(|m| token(m).1).collect();
    say(json!({"kind": "ready", "count": count, "start_ms": t_ms() - started, "t_ms": t_ms(),
               "lease": members.first().map(|m| token(m).0), "epochs_max": epochs.iter().max()}));

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (members, stop) = (members.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last: Option<(usize, u64, u64)> = None;
            let mut each: Vec<Option<bool>> = vec![None; members.len()];
            while !stop.load(Ordering::SeqCst) {
                let checks: Vec<bool> = members.iter().map(|m| m.check().is_ok()).collect();
                let now = t_ms();
                for (i, (&ok, seen)) in checks.iter().zip(each.iter_mut()).enumerate() {
                    if holders && *seen != Some(ok) {
                        *seen = Some(ok);
                        say(json!({"kind": "holder", "peer": format!("{id_prefix}{i}"), "ok": ok, "t_ms": now}));
                    }
                }
                let ok = checks.iter().filter(|&&ok| ok).count();
                let epochs = members.iter().map(|m| token(m).1);
                let (lo, hi) = epochs.fold((u64::MAX, 0), |(lo, hi), e| (lo.min(e), hi.max(e)));
                if last != Some((ok, lo, hi)) {
                    last = Some((ok, lo, hi));
                    say(
                        json!({"kind": "check", "ok": ok, "total": members.len(), "min_epoch": lo, "max_epoch": hi, "t_ms": t_ms()}),
                    );
                }
                for m in members.iter() {
                    while let Ok(Some(ev)) = m.events().next_event(Some(Duration::ZERO)) {
                        say(json!({"kind": "event", "peer": ev.peer, "from": ev.from.as_str(), "to": ev.to.as_str(),
                                   "reason": ev.reason.as_str(), "epoch": ev.epoch, "t_ms": t_ms()}));
                    }
                }
                std::thread::sleep(poll);
            }
        })
    };

    for line in std::io::stdin().lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok("stats") => {
                let m = hb_core::metrics::get();
                say(
                    json!({"kind": "stats", "keepalives": m.keepalives_sent.get(), "failures": m.lease_keepalive_failures.get(),
                           "reregistrations": m.reregistrations.get(), "t_ms": t_ms()}),
                );
            }
            Ok("stop") | Err(_) => break,
            Ok(_) => {}
        }
    }
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    for m in members.iter() {
        let _ = m.stop(Duration::from_secs(2));
    }
    say(json!({"kind": "stopped", "t_ms": t_ms()}));
}

fn fail(msg: &str) -> ! {
    say(json!({"kind": "error", "error": msg}));
    std::process::exit(1);
}

fn start_client(options: &hb_core::Options) -> hb_core::Result<Client> {
    let client = Client::new(options)?;
    client.start()?;
    Ok(client)
}

/// `(lease id, epoch)`, `(0, 0)` before the first registration.
fn token(client: &Client) -> (i64, u64) {
    client.fencing_token().map(|t| (t.lease_id, t.epoch)).unwrap_or((0, 0))
}
