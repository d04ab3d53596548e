//! One election candidate for the fault test (tests/etcd/test_election_faults.py):
//! `election_candidate ETCD_URL NAME TTL LOG`. It campaigns for ever, calls `check()` every
//! millisecond and logs, with CLOCK_REALTIME µs (comparable across processes on one host):
//!
//! - `ok T REV` when check() starts passing (REV: the term's token revision),
//! - `end T REV` with the last time it passed, once it fails,
//! - `w T REV accepted|refused` for each write to the token-guarded register (an etcd txn
//!   that accepts a write only if the register's token is not larger than ours; `failed`:
//!   etcd did not answer within 2 s).

use std::io::Write;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use hb_core::{Election, Options};

const REGISTER_TOKEN: &str = "/register/token";

fn realtime_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, name, ttl, log] = &args[..] else {
        eprintln!("usage: election_candidate ETCD_URL NAME TTL LOG");
        std::process::exit(2);
    };
    let mut options = Options::new();
    options.set("endpoint", url).unwrap();
    options.set("ttl", ttl).unwrap();
    options.set("connect_timeout", "30s").unwrap();
    let election = Election::new(&options, "faults", name.as_bytes()).unwrap();
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let hosts: Vec<String> =
        url.trim_start_matches("etcd://").split('/').next().unwrap().split(',').map(String::from).collect();
    let register =
        hb_core::runtime::run(async move { etcd_client::Client::connect(hosts, None).await }, Duration::from_secs(30))
            .unwrap()
            .unwrap();
    let mut run: Option<(u64, i64)> = None;
    let mut last_write = 0u64;
    loop {
        if run.is_none() {
            // Keeps the candidacy going; returns at once unless we lead.
            let _ = election.campaign(Duration::ZERO);
        }
        let ok = election.check().is_ok();
        let now = realtime_us();
        match (ok, run) {
            (true, None) => {
                let rev = election.token().map_or(0, |t| t.revision);
                writeln!(log, "ok {now} {rev}").unwrap();
                run = Some((now, rev));
            }
            (true, Some((_, rev))) => {
                run = Some((now, rev));
                if now - last_write >= 20_000 {
                    last_write = now;
                    let outcome = match guarded_write(&register, rev) {
                        Some(true) => "accepted",
                        Some(false) => "refused",
                        None => "failed",
                    };
                    writeln!(log, "w {now} {rev} {outcome}").unwrap();
                }
            }
            (false, Some((last, rev))) => {
                writeln!(log, "end {last} {rev}").unwrap();
                run = None;
            }
            (false, None) => {}
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One write to the register, accepted only if its token is not larger than ours (tokens
/// zero-padded, so etcd's byte comparison is the numeric one).
fn guarded_write(client: &etcd_client::Client, rev: i64) -> Option<bool> {
    let mut client = client.clone();
    let token = format!("{rev:020}");
    let fut = async move {
        let txn = Txn::new()
            .when([Compare::value(REGISTER_TOKEN, CompareOp::Less, token.clone())])
            .and_then([TxnOp::put(REGISTER_TOKEN, token.clone(), None)])
            .or_else([TxnOp::get(REGISTER_TOKEN, None)]);
        let first = client.txn(txn).await.ok()?;
        if first.succeeded() {
            return Some(true);
        }
        // Equal: our own term wrote before; any larger token refuses us.
        let again = Txn::new()
            .when([Compare::value(REGISTER_TOKEN, CompareOp::Equal, token.clone())])
            .and_then([TxnOp::put(REGISTER_TOKEN, token, None)]);
        Some(client.txn(again).await.ok()?.succeeded())
    };
    hb_core::runtime::run(fut, Duration::from_secs(2)).ok().flatten()
}
