//! `bench detection`: the adaptive and the phi-accrual detector watching the same
//! impaired traffic (one teeing relay, two monitors), with the QoS metrics of
//! Chen, Toueg and Aguilera, and the physical floor beside them.

use crate::cli::DetectionArgs;
use crate::fail::CmdResult;
use crate::impair::{self, Impairment};
use crate::trial::{self, TrialSpec};
use hb_core::config::format_duration;

pub fn run(a: DetectionArgs) -> CmdResult {
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
        peers: a.peers,
        kill: a.kill,
        duration: impair::duration("duration", &a.duration)?,
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
