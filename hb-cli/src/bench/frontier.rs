//! The detection frontier of one trace: heartbeater's detectors at their defaults and
//! every reference detector swept over its threshold, each summarised as detection time
//! versus mistake rate; written as a table (markdown), JSON and an SVG chart.

use hb_core::detect::DetectorKind;

use super::model::ArrivalModel;
use super::replay::{replay, Outcome, Setting};
use super::svg::{Chart, Mark, Series};
use super::trace::Trace;
use crate::trial::percentile;

/// docs/detection.md's default targets: one false dead per two peer-years, at most one
/// false suspicion per peer-day.
pub const TARGET_DEAD_PER_PEER_HOUR: f64 = 1.0 / (2.0 * 8766.0);
pub const TARGET_SUSPECT_PER_PEER_HOUR: f64 = 1.0 / 24.0;
/// Modelled rates below this are reported as this (floating point says little beyond).
pub const RATE_FLOOR: f64 = 1e-12;

/// One detector setting read at one level ("suspect" or "dead"; the references have one).
#[derive(Clone, Debug)]
pub struct Point {
    pub setting: Setting,
    pub level: &'static str,
    /// Kill → level, then partition start → level, sorted; ms.
    pub td_ms: Vec<u64>,
    /// Observed wrong transitions to this level while up, and per peer-hour.
    pub observed: u64,
    pub observed_rate: f64,
    /// Modelled rate per peer-hour (model.rs).
    pub model_rate: f64,
    pub false_dead: u64,
    pub false_suspicions: u64,
    pub mean_mistake_ms: f64,
    pub query_accuracy: f64,
}

impl Point {
    pub fn p50(&self) -> Option<u64> {
        percentile(&self.td_ms, 0.5)
    }
    pub fn p99(&self) -> Option<u64> {
        percentile(&self.td_ms, 0.99)
    }

    fn new(setting: Setting, level: &'static str, o: &Outcome) -> Point {
        let hours = o.observed_hours().max(1e-12);
        let dead = level == "dead";
        let mut td: Vec<u64> = if dead {
            o.qos.detection_time_ns.iter().chain(&o.partition_dead_ns).map(|n| n / 1_000_000).collect()
        } else {
            o.suspect_after_kill_ns.iter().chain(&o.partition_suspect_ns).map(|n| n / 1_000_000).collect()
        };
        td.sort_unstable();
        let observed = if dead { o.qos.false_dead } else { o.qos.mistakes };
        let model = if dead { o.model_false_dead } else { o.model_suspicions };
        let durations = &o.qos.mistake_duration_ns;
        Point {
            setting,
            level,
            td_ms: td,
            observed,
            observed_rate: observed as f64 / hours,
            model_rate: model / hours,
            false_dead: o.qos.false_dead,
            false_suspicions: o.qos.mistakes,
            mean_mistake_ms: if durations.is_empty() {
                0.0
            } else {
                durations.iter().sum::<u64>() as f64 / durations.len() as f64 / 1e6
            },
            query_accuracy: o.qos.query_accuracy,
        }
    }

    pub fn name(&self) -> String {
        match self.setting.threshold() {
            None => format!("heartbeater {} ({})", self.setting.family(), self.level),
            Some((k, v)) => format!("{} {k}={}", self.setting.family(), sig(v)),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let (name, value) = self.setting.threshold().unzip();
        serde_json::json!({
            "detector": self.setting.family(),
            "threshold_name": name,
            "threshold": value,
            "level": self.level,
            "td_ms": self.td_ms,
            "td_p50_ms": self.p50(),
            "td_p99_ms": self.p99(),
            "observed_mistakes": self.observed,
            "observed_per_peer_hour": self.observed_rate,
            "model_per_peer_hour": self.model_rate,
            "false_dead": self.false_dead,
            "false_suspicions": self.false_suspicions,
            "mean_mistake_ms": self.mean_mistake_ms,
            "query_accuracy": self.query_accuracy,
        })
    }
}

pub struct Frontier {
    pub trace_summary: serde_json::Value,
    pub model: ArrivalModel,
    pub observed_peer_hours: f64,
    /// heartbeater adaptive and phi, each at "suspect" and "dead".
    pub heartbeater: Vec<Point>,
    /// Every swept reference setting, by family, in threshold order.
    pub references: Vec<(&'static str, Vec<Point>)>,
}

fn log_range(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
    (0..n).map(move |i| lo * (hi / lo).powf(i as f64 / (n - 1) as f64))
}

/// The sweeps: wide enough that each family runs from many mistakes per hour to far
/// below the targets on every profile.
pub fn sweeps() -> Vec<(&'static str, Vec<Setting>)> {
    const N: usize = 48;
    vec![
        ("timeout", log_range(1.05, 30.0, N).map(Setting::Timeout).collect()),
        ("chen", log_range(0.02, 30.0, N).map(Setting::Chen).collect()),
        ("bertier", log_range(0.5, 1e5, N).map(Setting::Bertier).collect()),
        ("akka-phi", log_range(0.5, 1e5, N).map(Setting::Akka).collect()),
    ]
}

pub fn compute(trace: &Trace) -> Frontier {
    let model = ArrivalModel::fit(trace);
    let mut heartbeater = Vec::new();
    let mut hours = 0.0;
    for kind in [DetectorKind::Adaptive, DetectorKind::Phi] {
        let o = replay(trace, Setting::Heartbeater(kind), &model);
        hours = o.observed_hours();
        heartbeater.push(Point::new(Setting::Heartbeater(kind), "suspect", &o));
        heartbeater.push(Point::new(Setting::Heartbeater(kind), "dead", &o));
    }
    let references = sweeps()
        .into_iter()
        .map(|(family, settings)| {
            (family, settings.into_iter().map(|s| Point::new(s, "dead", &replay(trace, s, &model))).collect())
        })
        .collect();
    let per_peer = trace.by_peer();
    let delays: Vec<u64> = {
        let mut d: Vec<u64> = trace.arrivals.iter().map(|a| a.t_ns.saturating_sub(a.sent_ns) / 1000).collect();
        d.sort_unstable();
        d
    };
    let trace_summary = serde_json::json!({
        "profile": trace.profile,
        "network": trace.network,
        "interval_ms": trace.interval_ns / 1_000_000,
        "peers": trace.peer_ids.len(),
        "kills": trace.kills.len(),
        "partition_ms": trace.partition.map(|(a, b)| [a / 1_000_000, b / 1_000_000]),
        "duration_s": (trace.end_ns - trace.ready_ns) as f64 / 1e9,
        "arrivals": trace.arrivals.len(),
        "peers_heard_after_partition": trace.partition.map(|(_, p1)| per_peer.iter().filter(|b| b.iter().any(|a| a.t_ns >= p1)).count()),
        "one_way_delay_us": {
            "p50": percentile(&delays, 0.5), "p99": percentile(&delays, 0.99), "max": delays.last(),
        },
    });
    Frontier { trace_summary, model, observed_peer_hours: hours, heartbeater, references }
}

impl Frontier {
    fn profile(&self) -> &str {
        self.trace_summary["profile"].as_str().unwrap_or("custom")
    }

    /// The fastest setting (lowest T_D p99) of `family` with 0 observed false dead and a
    /// modelled rate at most `rate`.
    pub fn best(&self, family: &str, rate: f64) -> Option<&Point> {
        let (_, points) = self.references.iter().find(|(f, _)| *f == family)?;
        points
            .iter()
            .filter(|p| p.false_dead == 0 && p.model_rate <= rate.max(RATE_FLOOR) && p.p99().is_some())
            .min_by_key(|p| p.p99())
    }

    fn adaptive_dead(&self) -> &Point {
        &self.heartbeater[1]
    }

    /// Rows of the comparison: heartbeater's four points, then each reference's best at
    /// heartbeater adaptive's modelled `dead` rate and at the documented target.
    pub fn rows(&self) -> Vec<(String, &Point)> {
        let mut rows: Vec<(String, &Point)> = self.heartbeater.iter().map(|p| (p.name(), p)).collect();
        let hb_rate = self.adaptive_dead().model_rate;
        for (family, _) in &self.references {
            if let Some(p) = self.best(family, hb_rate) {
                rows.push((format!("{} (best at ≤ adaptive's rate)", p.name()), p));
            }
            if let Some(p) = self.best(family, TARGET_DEAD_PER_PEER_HOUR) {
                rows.push((format!("{} (best at ≤ target)", p.name()), p));
            }
        }
        rows
    }

    pub fn markdown(&self) -> String {
        let m = &self.model;
        let mut s = format!(
            "**{}** — {}; {} peers, {} kills, {:.0} s, {:.2} peer-hours observed; \
             measured loss {:.2} % in bursts of {:.2} (mean), one-way delay p50 {} µs, p99 {} µs.\n\n",
            self.profile().to_uppercase(),
            self.trace_summary["network"].as_str().unwrap_or(""),
            self.trace_summary["peers"],
            self.trace_summary["kills"],
            self.trace_summary["duration_s"].as_f64().unwrap_or(0.0),
            self.observed_peer_hours,
            m.loss * 100.0,
            m.mean_burst,
            self.trace_summary["one_way_delay_us"]["p50"],
            self.trace_summary["one_way_delay_us"]["p99"],
        );
        s.push_str(
            "| detector | T_D p50 | T_D p99 | mistakes (observed) | observed /peer-h | model /peer-h | false dead | T_M mean | P_A |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for (name, p) in self.rows() {
            let secs = |v: Option<u64>| v.map(|x| format!("{:.3} s", x as f64 / 1000.0)).unwrap_or_else(|| "–".into());
            s.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} | {} | {:.0} ms | {:.6} |\n",
                secs(p.p50()),
                secs(p.p99()),
                p.observed,
                sig(p.observed_rate),
                rate(p.model_rate),
                p.false_dead,
                p.mean_mistake_ms,
                p.query_accuracy
            ));
        }
        s
    }

    pub fn to_json(&self) -> serde_json::Value {
        let m = &self.model;
        serde_json::json!({
            "trace": self.trace_summary,
            "observed_peer_hours": self.observed_peer_hours,
            "model": {
                "period_ns": m.period_ns,
                "enter_loss": m.enter_loss,
                "stay_loss": m.stay_loss,
                "loss": m.loss,
                "mean_burst": m.mean_burst,
                "residual_samples": m.samples(),
            },
            "targets_per_peer_hour": {"dead": TARGET_DEAD_PER_PEER_HOUR, "suspect": TARGET_SUSPECT_PER_PEER_HOUR},
            "heartbeater": self.heartbeater.iter().map(Point::to_json).collect::<Vec<_>>(),
            "references": self.references.iter().map(|(f, pts)| (f.to_string(), serde_json::Value::from(pts.iter().map(Point::to_json).collect::<Vec<_>>()))).collect::<serde_json::Map<_, _>>(),
        })
    }

    pub fn chart(&self) -> Chart {
        let secs = |p: &Point| p.p99().map(|v| v as f64 / 1000.0);
        let hb_max = self.heartbeater.iter().filter_map(secs).fold(0.0, f64::max);
        let x_max = (hb_max * 2.5).max(1e-3);
        let colors = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b"];
        let mut series: Vec<Series> = self
            .references
            .iter()
            .zip(colors)
            .map(|((family, pts), color)| Series {
                name: family.to_string(),
                color,
                mark: Mark::Line,
                // Settings slower than the chart's range are left out, not piled on its edge.
                points: pts
                    .iter()
                    .filter_map(|p| Some((secs(p)?, p.model_rate.max(RATE_FLOOR))))
                    .filter(|&(x, _)| x <= x_max)
                    .collect(),
            })
            .collect();
        for (p, color, mark) in [
            (&self.heartbeater[1], "#d62728", Mark::Circle),
            (&self.heartbeater[0], "#d62728", Mark::Triangle),
            (&self.heartbeater[3], "#ff7f0e", Mark::Circle),
            (&self.heartbeater[2], "#ff7f0e", Mark::Triangle),
        ] {
            if let Some(x) = secs(p) {
                series.push(Series { name: p.name(), color, mark, points: vec![(x, p.model_rate.max(RATE_FLOOR))] });
            }
        }
        Chart {
            title: format!("Detection frontier: {}", self.profile().to_uppercase()),
            subtitle: self.trace_summary["network"].as_str().unwrap_or("").to_string(),
            x_label: "detection time T_D p99 (s): kill → dead (references: → suspected)".into(),
            y_label: "modelled mistakes per peer-hour (≤ 1e-12 drawn on the axis)".into(),
            x_max,
            y_decades: (-12, 4),
            rules: vec![
                (TARGET_DEAD_PER_PEER_HOUR, "target dead: 1 per 2 peer-years".into()),
                (TARGET_SUSPECT_PER_PEER_HOUR, "target suspect: 1 per peer-day".into()),
            ],
            series,
        }
    }
}

/// Three significant digits.
fn sig(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if (0.01..10_000.0).contains(&v.abs()) {
        let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.2e}")
    }
}

fn rate(v: f64) -> String {
    if v < RATE_FLOOR {
        format!("< {RATE_FLOOR:.0e}")
    } else {
        sig(v)
    }
}
