//! `heartbeater demo`: an embedded monitor and N clients beating through an impaired
//! in-process relay; some are killed mid-run; transitions are shown live, then a summary.
//! Exits 1 if a killed peer was not reported dead or a live one was.

use crate::cli::DemoArgs;
use crate::fail::CmdResult;
use crate::impair::{self, Impairment};
use crate::trial::{self, TrialSpec};
use hb_core::config::format_duration;

pub fn run(a: DemoArgs) -> CmdResult {
    let (jitter_min, jitter_max) = impair::jitter(&a.jitter)?;
    let impairment =
        Impairment { jitter_min, jitter_max, loss: impair::percent("loss", &a.loss)?, ..Impairment::none() };
    let spec = TrialSpec {
        peers: a.peers,
        kill: a.kill,
        duration: impair::duration("duration", &a.duration)?,
        impairment,
        interval: a.interval,
        seed: a.seed,
        detectors: vec![a.detector],
        live: true,
    };
    println!(
        "heartbeater demo: {} peers beating every {} through a relay with {}; killing {} during {}",
        spec.peers,
        spec.interval,
        spec.impairment.describe(),
        spec.kill,
        format_duration(spec.duration)
    );
    let report = trial::run(&spec)?;
    trial::print_summary(&spec, &report);
    let d = &report.detectors[0];
    let ok = d.detected == d.killed && d.false_dead == 0;
    println!(
        "\n{}: {}/{} crashes detected, {} false positives (false dead)",
        if ok { "OK" } else { "FAILED" },
        d.detected,
        d.killed,
        d.false_dead
    );
    Ok(if ok { 0 } else { 1 })
}
