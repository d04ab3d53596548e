//! `bench detection`. With `--profile` or `--replay`: the detection frontier — record an
//! arrival trace per network profile (record.rs), replay it through heartbeater's
//! detectors and the swept reference detectors (frontier.rs), write table, JSON and SVG.
//! Without: the live comparison of the adaptive and the phi-accrual monitor watching the
//! same impaired traffic (one teeing relay, two monitors; trial.rs).

use std::time::Duration;

use super::frontier;
use super::record::{self, Profile};
use super::trace::Trace;
use crate::cli::DetectionArgs;
use crate::fail::{runtime, usage, CmdResult};
use crate::impair::{self, Impairment};
use crate::trial::{self, TrialSpec};
use hb_core::config::format_duration;

pub fn run(a: DetectionArgs) -> CmdResult {
    if !a.replay.is_empty() {
        for path in &a.replay {
            let trace = Trace::read(path)?;
            write_frontier(&trace, a.figures.as_deref().unwrap_or(&a.out))?;
        }
        return Ok(0);
    }
    match a.profile.as_deref() {
        Some(name) => record_profiles(&a, name),
        None => live(a),
    }
}

fn record_profiles(a: &DetectionArgs, name: &str) -> CmdResult {
    let all = record::profiles();
    let chosen: Vec<Profile> = match name {
        "all" => all,
        _ => all.into_iter().filter(|p| p.name == name).collect(),
    };
    if chosen.is_empty() {
        return Err(usage(format!("profile {name:?}: expected lan, wan, burst, partition or all")));
    }
    let duration = a.duration.as_deref().map(|d| impair::duration("duration", d)).transpose()?;
    std::fs::create_dir_all(&a.out).map_err(|e| runtime(format!("create {}: {e}", a.out)))?;
    for mut p in chosen {
        if let Some(n) = a.peers {
            p.peers = n;
            // Keep two thirds of the peers alive for the mistake rates.
            p.kills = p.kills.min(n / 3);
        }
        p.kills = a.kill.unwrap_or(p.kills);
        p.duration = duration.unwrap_or(p.duration);
        if let Some(len) = p.partition {
            // A short CI run keeps a partition, a third of the run long.
            p.partition = Some(len.min(p.duration / 3));
        }
        eprintln!(
            "bench detection: recording {} ({} peers, {} kills, {}) ...",
            p.name,
            p.peers,
            p.kills,
            format_duration(p.duration)
        );
        let trace = record::record(&p, a.seed)?;
        let path = format!("{}/trace-{}.csv", a.out, p.name);
        trace.write(&path)?;
        eprintln!("wrote {path} ({} arrivals)", trace.arrivals.len());
        write_frontier(&trace, a.figures.as_deref().unwrap_or(&a.out))?;
    }
    Ok(0)
}

fn write_frontier(trace: &Trace, dir: &str) -> CmdResult<()> {
    std::fs::create_dir_all(dir).map_err(|e| runtime(format!("create {dir}: {e}")))?;
    let started = std::time::Instant::now();
    let f = frontier::compute(trace);
    let base = format!("{dir}/frontier-{}", trace.profile);
    let write = |ext: &str, text: String| {
        let path = format!("{base}.{ext}");
        std::fs::write(&path, text).map_err(|e| runtime(format!("write {path}: {e}")))?;
        eprintln!("wrote {path}");
        Ok::<_, crate::fail::Failure>(())
    };
    let md = f.markdown();
    println!("{md}");
    write("md", md)?;
    write("svg", f.chart().render())?;
    let json = serde_json::to_string_pretty(&f.to_json()).map_err(|e| runtime(e.to_string()))?;
    write("json", json + "\n")?;
    eprintln!("replayed {} in {:.1}s", trace.profile, started.elapsed().as_secs_f64());
    Ok(())
}

fn live(a: DetectionArgs) -> CmdResult {
    let (jitter_min, jitter_max) = impair::jitter(&a.jitter)?;
    let args = crate::cli::ImpairArgs {
        delay: "0ms".into(),
        jitter: a.jitter.clone(),
        loss: a.loss.clone(),
        burst: a.burst,
        seed: a.seed,
    };
    let impairment = Impairment { jitter_min, jitter_max, ..Impairment::from_args(&args)? };
    let spec = TrialSpec {
        peers: a.peers.unwrap_or(50),
        kill: a.kill.unwrap_or(5),
        duration: match &a.duration {
            Some(d) => impair::duration("duration", d)?,
            None => Duration::from_secs(60),
        },
        impairment,
        interval: a.interval.clone(),
        seed: a.seed,
        detectors: vec!["adaptive".into(), "phi".into()],
        live: false,
    };
    eprintln!("bench detection: running {} with {} peers ...", format_duration(spec.duration), spec.peers);
    let report = trial::run(&spec)?;
    trial::print_summary(&spec, &report);
    let json = serde_json::json!({
        "peers": spec.peers,
        "killed": spec.kill,
        "duration_s": spec.duration.as_secs_f64(),
        "interval": spec.interval,
        "impairment": spec.impairment.describe(),
        "seed": spec.seed,
        "relay_forwarded": report.relay_forwarded,
        "relay_lost": report.relay_lost,
        "physical_floor_ms": report.floor.as_millis() as u64,
        "floor_epsilon": report.epsilon,
        "detectors": report.detectors.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
    });
    super::write_json(a.json.as_deref(), &json)?;
    let all_good = report.detectors.iter().all(|d| d.detected == d.killed && d.false_dead == 0);
    Ok(if all_good { 0 } else { 1 })
}
