//! The long-running commands: monitor, beat, watch, relay. Each builds its options through
//! `Options::set`, starts one hb-core handle, prints events, and on SIGINT/SIGTERM stops it
//! and exits 0.

use hb_core::config::format_duration;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hb_core::{Client, Monitor, Options, Watcher};

use crate::cli::{BeatArgs, BenchCommand, Cli, Command, CompletionsArgs, MonitorArgs, RelayArgs, WatchArgs};
use crate::event_line::print_event;
use crate::fail::{runtime, set, usage, CmdResult};
use crate::impair::Impairment;
use crate::relay::{udp_addr, Relay, RelaySpec};
use crate::{bench, demo, elect, escape, signals};

pub fn run(cli: Cli) -> CmdResult {
    match cli.command {
        Command::Monitor(a) => monitor(a),
        Command::Beat(a) => beat(a),
        Command::Watch(a) => watch(a),
        Command::Elect(a) => elect::run(a),
        Command::Relay(a) => relay(a),
        Command::Demo(a) => demo::run(a),
        Command::Bench(b) => match b.which {
            BenchCommand::Ingest(a) => bench::ingest::run(a),
            BenchCommand::IngestChild(a) => bench::ingest::child(a),
            BenchCommand::IngestTlsGen(a) => bench::ingest_tls::generator(a),
            BenchCommand::Footprint(a) => bench::footprint::run(a),
            BenchCommand::Delivery(a) => bench::delivery::run(a),
            BenchCommand::FootprintChild(a) => bench::footprint::child(a),
            BenchCommand::Detection(a) => bench::detection::run(a),
            BenchCommand::Flood(a) => bench::flood::run(a),
        },
        Command::Completions(a) => completions(a),
    }
}

/// The completion script for one shell, generated from the same clap definition as --help.
fn completions(a: CompletionsArgs) -> CmdResult {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(a.shell, &mut cmd, "heartbeater", &mut std::io::stdout());
    Ok(0)
}

/// `--http` and `--http-token-file`, as the options `http_addr` and `http_token_file`.
/// `--tls-*-file` flags as the options of the same names.
fn set_tls(o: &mut Options, tls: &crate::cli::TlsFileArgs) -> CmdResult<()> {
    for (key, value) in
        [("tls_ca_file", &tls.tls_ca_file), ("tls_cert_file", &tls.tls_cert_file), ("tls_key_file", &tls.tls_key_file)]
    {
        if let Some(v) = value {
            set(o, key, v)?;
        }
    }
    Ok(())
}

fn set_http(o: &mut Options, addr: Option<&str>, token_file: Option<&str>) -> CmdResult<()> {
    if let Some(addr) = addr {
        set(o, "http_addr", addr)?;
    }
    if let Some(f) = token_file {
        set(o, "http_token_file", f)?;
    }
    Ok(())
}

/// Where the HTTP API is, and a warning when anyone beyond loopback may read it.
fn say_http(who: &str, addr: std::net::SocketAddr, has_token: bool) {
    eprintln!("heartbeater {who}: http API on http://{addr}/ (docs/http.md)");
    if !has_token && !addr.ip().is_loopback() {
        eprintln!(
            "heartbeater {who}: warning: http://{addr}/ is reachable beyond loopback without a token: anyone who \
             can reach it can read every peer; give --http-token-file FILE"
        );
    }
}

/// The warning a monitor prints when it listens beyond loopback without a key, if it does.
fn unauthenticated_warning(addrs: &[(String, std::net::SocketAddr)], has_key: bool) -> Option<String> {
    // A tls:// listener authenticates every client by its certificate.
    let exposed: Vec<&str> = addrs
        .iter()
        .filter(|(name, a)| !a.ip().is_loopback() && !name.starts_with("tls://"))
        .map(|(name, _)| name.as_str())
        .collect();
    (!has_key && !exposed.is_empty()).then(|| {
        format!(
            "heartbeater monitor: warning: {} is reachable beyond loopback without an auth key: anyone who can \
             send to it can forge beats and leaves for any peer; give --auth-key-file FILE (docs/protocol.md)",
            exposed.join(", ")
        )
    })
}

fn monitor(a: MonitorArgs) -> CmdResult {
    signals::block_termination();
    let mut o = Options::new();
    set(&mut o, "listen", &a.listen)?;
    set_tls(&mut o, &a.tls)?;
    if let Some(f) = &a.auth_key_file {
        set(&mut o, "auth_key_file", f)?;
    }
    if let Some(d) = &a.detector {
        set(&mut o, "detector", d)?;
    }
    if let Some(r) = &a.false_dead_rate {
        set(&mut o, "false_dead_rate", r)?;
    }
    if let Some(r) = &a.false_suspect_rate {
        set(&mut o, "false_suspect_rate", r)?;
    }
    if let Some(n) = &a.max_peers {
        set(&mut o, "max_peers", n)?;
    }
    if let Some(n) = &a.listen_threads {
        set(&mut o, "listen_threads", n)?;
    }
    set_http(&mut o, a.http.as_deref(), a.http_token_file.as_deref())?;
    // Validated by the library, served here (one listener per process).
    let metrics_addr = a.metrics_addr.as_deref().map(hb_core::config::parse_metrics_addr).transpose()?;
    let monitor = Monitor::new(&o)?;
    let json = a.json;
    monitor.events().set_callback(Box::new(move |ev| print_event(ev, json)))?;
    monitor.start()?;
    let addrs = monitor.local_addrs()?;
    for (name, _) in &addrs {
        eprintln!("heartbeater monitor: listening on {name}");
    }
    if let Some(warning) = unauthenticated_warning(&addrs, a.auth_key_file.is_some()) {
        eprintln!("{warning}");
    }
    if let Some(addr) = monitor.http_addr()? {
        say_http("monitor", addr, a.http_token_file.is_some());
    }
    let _metrics = match metrics_addr {
        Some(addr) => {
            let server = hb_core::http::serve_metrics(addr)?;
            eprintln!("heartbeater monitor: metrics on http://{}/metrics", server.local_addr());
            Some(server)
        }
        None => None,
    };
    let sig = std::thread::scope(|scope| {
        let done = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let watch = std::sync::Arc::clone(&done);
        let monitor = &monitor;
        scope.spawn(move || warn_of_pressure(monitor, &watch));
        let sig = signals::wait_forever();
        *done.0.lock().unwrap() = true;
        done.1.notify_all();
        sig
    });
    eprintln!("heartbeater monitor: {sig}, stopping");
    monitor.stop()?;
    Ok(0)
}

/// Every 5 s, one stderr line if peers were evicted or refused or events dropped since the
/// last: a flood or an undersized table must not go unnoticed (docs/states.md).
fn warn_of_pressure(monitor: &Monitor, done: &(std::sync::Mutex<bool>, std::sync::Condvar)) {
    let mut last = monitor.stats();
    let mut stopped = done.0.lock().unwrap();
    while !*stopped {
        stopped = done.1.wait_timeout(stopped, std::time::Duration::from_secs(5)).unwrap().0;
        let now = monitor.stats();
        let (evicted, refused, dropped) = (
            now.peers_evicted - last.peers_evicted,
            now.peers_refused - last.peers_refused,
            now.events_dropped - last.events_dropped,
        );
        if evicted + refused + dropped > 0 {
            eprintln!(
                "heartbeater monitor: warning: in the last 5 s {evicted} peers evicted, {refused} refused \
                 (max_peers full), {dropped} events dropped (output too slow); {} new ids on probation",
                now.on_probation
            );
        }
        last = now;
    }
}

fn beat(a: BeatArgs) -> CmdResult {
    signals::block_termination();
    let mut o = Options::new();
    set(&mut o, "endpoint", &a.endpoint)?;
    set(&mut o, "service", &a.service)?;
    set(&mut o, "instance_id", &a.id)?;
    if let Some(t) = &a.ttl {
        set(&mut o, "ttl", t)?;
    }
    if let Some(i) = &a.interval {
        set(&mut o, "interval", i)?;
    }
    for l in &a.labels {
        set(&mut o, "label", l)?;
    }
    if let Some(f) = &a.auth_key_file {
        set(&mut o, "auth_key_file", f)?;
    }
    set_tls(&mut o, &a.tls)?;
    if let Some(name) = &a.tls_server_name {
        set(&mut o, "tls_server_name", name)?;
    }
    let watch_fencing =
        a.watch_fencing.as_deref().map(|p| hb_core::config::parse_duration("watch_fencing", p)).transpose()?;
    let client = Arc::new(Client::new(&o)?);
    client
        .events()
        .set_callback(Box::new(|ev| eprintln!("heartbeater beat: {} -> {} ({})", ev.from, ev.to, ev.reason)))?;
    client.start()?;
    let cfg = client.config();
    eprintln!(
        "heartbeater beat: {}/{} incarnation {} beating to {} every {}..{} (ttl {})",
        cfg.service,
        cfg.instance_id,
        client.incarnation()?,
        a.endpoint,
        format_duration(cfg.interval.min),
        format_duration(cfg.interval.max),
        format_duration(cfg.ttl)
    );
    if let Some(period) = watch_fencing {
        let client = Arc::clone(&client);
        std::thread::spawn(move || watch_fencing_loop(&client, period));
    }
    {
        let client = Arc::clone(&client);
        std::thread::spawn(move || say_why_not_registered(&client));
    }
    let sig = signals::wait_forever();
    eprintln!("heartbeater beat: {sig}, leaving");
    if let Err(e) = client.stop(client.config().stop_timeout) {
        eprintln!("heartbeater beat: stop: {}", escape::line(&e.to_string()));
    }
    Ok(0)
}

/// Until the first acknowledgement, says once a second what `check()` says if it changed
/// (e.g. the monitor refused us, and why): a refused `beat` must not sit silent.
fn say_why_not_registered(client: &Client) {
    let mut said = String::new();
    let start = std::time::Instant::now();
    while client.state().is_ok_and(|s| s == hb_core::events::State::Unknown) {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let Err(e) = client.check() else { break };
        let now = e.to_string();
        if now != said && (now.contains("refused") || start.elapsed() >= std::time::Duration::from_secs(5)) {
            eprintln!("heartbeater beat: {now}");
            said = now;
        }
    }
}

/// `beat --watch-fencing`: polls `check()` and prints each change, stamped on the wall
/// clock (as monitor events are) in µs. An invalid line carries when the last passing check
/// began (read just before calling it): a check that began at or after a monitor's `dead`
/// and passed is a fencing violation; one that spans it cannot be judged from outside (a
/// SIGSTOP may land inside it), but the checks after it can.
fn watch_fencing_loop(client: &Client, period: std::time::Duration) {
    let unix_us =
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    let (mut valid, mut last_valid_us) = (None, 0);
    loop {
        let began_us = unix_us();
        let result = client.check();
        let now_us = unix_us();
        let ok = result.is_ok();
        if valid != Some(ok) {
            let line = match &result {
                Ok(()) => format!("fencing valid at_unix_us={now_us}"),
                Err(e) => format!(
                    "fencing invalid at_unix_us={now_us} last_valid_unix_us={last_valid_us} reason={e:?}",
                    e = e.to_string()
                ),
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            valid = Some(ok);
        }
        if ok {
            last_valid_us = began_us;
        }
        std::thread::sleep(period);
    }
}

/// What `watch` takes, in the words of hb-core's Watcher check.
const WATCH_ENDPOINT: &str = "one etcd://host:port[,host:port]/prefix";

fn watch(a: WatchArgs) -> CmdResult {
    signals::block_termination();
    let mut o = Options::new();
    // Anything but etcd:// fails here; the generic endpoint message would offer udp and
    // tcp, which a watcher cannot use.
    if !a.endpoint.trim_start().starts_with("etcd://") {
        return Err(hb_core::Error::config("endpoint", &a.endpoint, WATCH_ENDPOINT).into());
    }
    set(&mut o, "endpoint", &a.endpoint)?;
    set_http(&mut o, a.http.as_deref(), a.http_token_file.as_deref())?;
    let watcher = Arc::new(Watcher::new(&o)?);
    let json = a.json;
    watcher.events().set_callback(Box::new(move |ev| print_event(ev, json)))?;
    watcher.start()?;
    if let Some(addr) = watcher.http_addr()? {
        say_http("watch", addr, a.http_token_file.is_some());
    }
    eprintln!("heartbeater watch: watching {}", a.endpoint);
    let sig = signals::wait_forever();
    eprintln!("heartbeater watch: {sig}, stopping");
    watcher.stop()?;
    Ok(0)
}

fn relay(a: RelayArgs) -> CmdResult {
    signals::block_termination();
    let listen = udp_addr("listen", &a.listen).map_err(usage)?;
    let upstreams = a.upstream.iter().map(|u| udp_addr("upstream", u)).collect::<Result<Vec<_>, _>>().map_err(usage)?;
    let impairment = Impairment::from_args(&a.impair)?;
    let mut relay = Relay::start(RelaySpec {
        listen,
        upstreams: upstreams.clone(),
        impairment: impairment.clone(),
        seed: a.impair.seed,
    })
    .map_err(|e| runtime(format!("relay: bind {listen}: {e}")))?;
    eprintln!(
        "heartbeater relay: listening on udp://{} -> {}; {} (seed {})",
        relay.local_addr(),
        upstreams.iter().map(|u| format!("udp://{u}")).collect::<Vec<_>>().join(", "),
        impairment.describe(),
        a.impair.seed
    );
    let sig = signals::wait_forever();
    let s = relay.stats();
    eprintln!(
        "heartbeater relay: {sig}, stopping; forwarded up {} down {}, lost {}",
        s.up_forwarded.load(Ordering::Relaxed),
        s.down_forwarded.load(Ordering::Relaxed),
        s.lost.load(Ordering::Relaxed)
    );
    relay.stop();
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitor_warns_only_beyond_loopback_without_a_key() {
        let addrs = |list: &[&str]| -> Vec<(String, std::net::SocketAddr)> {
            list.iter().map(|a| (format!("udp://{a}"), a.parse().unwrap())).collect()
        };
        for local in [&["127.0.0.1:7946"][..], &["127.0.0.2:1", "[::1]:2"]] {
            assert_eq!(unauthenticated_warning(&addrs(local), false), None);
        }
        for exposed in [&["0.0.0.0:7946"][..], &["127.0.0.1:1", "[::]:2"], &["10.1.2.3:4"]] {
            let w = unauthenticated_warning(&addrs(exposed), false).expect("a warning");
            assert!(w.contains("--auth-key-file") && !w.contains('\n'), "{w}");
            assert_eq!(unauthenticated_warning(&addrs(exposed), true), None);
        }
        let w = unauthenticated_warning(&addrs(&["127.0.0.1:1", "[::]:2"]), false).unwrap();
        assert!(w.contains("udp://[::]:2") && !w.contains("127.0.0.1"), "{w}");
        let tls = vec![("tls://0.0.0.0:7946".to_string(), "0.0.0.0:7946".parse().unwrap())];
        assert_eq!(unauthenticated_warning(&tls, false), None, "clients of tls:// hold certificates");
    }
}
