//! Failure detectors and the client interval policy.
//!
//! Everything here is pure: time is passed in as `now_ns` (monotonic nanoseconds), nothing
//! sleeps or reads a clock, so every behaviour is tested exactly. See `docs/detection.md`
//! for the formulas, the defaults and the bounds they give.
//!
//! - [`Detector`]: per-peer state, [`Adaptive`] (learned delay tail and bursty loss, deadlines
//!   placed at a target mistake rate) or [`Phi`] (Akka's accrual), 32 bytes + tag.
//! - [`PauseGuard`]: no convictions right after our own sweeper was late.
//! - [`FlapDamper`]: hold a flapping peer in suspect until it calms down.
//! - [`RttEstimator`], [`IntervalPolicy`]: the client side (ACK timeout, beat interval).
//! - [`qos`]: Chen–Toueg–Aguilera metrics of a detector over a trace.

mod adaptive;
mod arrivals;
mod flap;
mod interval;
mod loss;
mod pause_guard;
mod phi;
pub mod qos;
mod rtt;
mod tail;

#[cfg(test)]
mod sim_tests;

pub use adaptive::{Adaptive, Model};
pub use flap::{FlapDamper, FLAP_HALF_LIFE_NS, FLAP_MAX_PENALTY, FLAP_PENALTY, FLAP_REUSE, FLAP_SUPPRESS};
pub use interval::{IntervalPolicy, INTERVAL_GROWTH, INTERVAL_GROW_STREAK};
pub use pause_guard::PauseGuard;
pub use phi::Phi;
pub use rtt::RttEstimator;

use std::fmt;
use std::str::FromStr;

/// Which detector a monitor runs for its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DetectorKind {
    Adaptive,
    Phi,
}

impl DetectorKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            DetectorKind::Adaptive => "adaptive",
            DetectorKind::Phi => "phi",
        }
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of `"...".parse::<DetectorKind>()`; its message names the accepted values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDetectorKindError(pub String);

impl fmt::Display for ParseDetectorKindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown detector kind {:?}: expected \"adaptive\" or \"phi\"", self.0)
    }
}

impl std::error::Error for ParseDetectorKindError {}

impl FromStr for DetectorKind {
    type Err = ParseDetectorKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Config files and CLI flags: tolerate case and stray spaces, nothing else.
        let t = s.trim();
        if t.eq_ignore_ascii_case("adaptive") {
            Ok(DetectorKind::Adaptive)
        } else if t.eq_ignore_ascii_case("phi") {
            Ok(DetectorKind::Phi)
        } else {
            Err(ParseDetectorKindError(s.to_string()))
        }
    }
}

/// What the monitor concludes about a peer it has not heard from since its last heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Alive,
    Suspect,
    Dead,
}

/// One false Dead per two peer-years, per second.
pub const DEFAULT_TARGET_FALSE_DEAD_PER_S: f64 = 1.0 / (2.0 * 365.25 * 86_400.0);
/// One false Suspect per peer-day, per second.
pub const DEFAULT_TARGET_FALSE_SUSPECT_PER_S: f64 = 1.0 / 86_400.0;

/// Tunables (`Default` = the documented defaults; the reasons are in `docs/detection.md`).
/// One value per monitor, not per peer, so it is passed by reference instead of being
/// stored in every [`Detector`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorParams {
    /// Adaptive: the false-Dead rate the Dead deadline is placed for, per peer per second.
    pub target_false_dead_per_s: f64,
    /// Adaptive: the false-Suspect rate the Suspect deadline is placed for, per peer per
    /// second (at least `target_false_dead_per_s`).
    pub target_false_suspect_per_s: f64,
    /// Adaptive: floor on the tail scale, as a fraction of the interval (the jitter a quiet
    /// trace never shows).
    pub min_tail_fraction: f64,
    /// Adaptive: loss prior, L̂ = (runs + 1) / (gaps + loss_prior_beats).
    pub loss_prior_beats: f64,
    /// Adaptive: warm-up prior P(lost | previous lost), fading over the first 1024 gaps.
    pub burst_prior_continuation: f64,
    /// Adaptive: weight of that prior, in lost beats.
    pub burst_prior_weight: f64,
    /// Phi: EWMA weight of the old value (0.85: effective memory ≈ 12 samples).
    pub alpha: f64,
    /// Phi: warm-up samples needed before the learned spread is trusted on its own.
    pub window: u32,
    /// Phi level at which a peer becomes Suspect.
    pub phi_suspect: f64,
    /// Phi level at which a peer becomes Dead.
    pub phi_dead: f64,
    /// Phi: floor on the learned spread.
    pub min_sigma_ns: u64,
    /// Phi: silence tolerated on top of the mean, in expected intervals (Akka's
    /// acceptable-heartbeat-pause, relative so it follows the announced interval).
    pub phi_pause_intervals: f64,
    /// Phi: warm-up spread floor as a fraction of the announced interval.
    pub warmup_sigma_fraction: f64,
    /// Phi: a gap longer than this many expected intervals is a lost beat, not a sample.
    pub loss_gap_factor: f64,
}

impl Default for DetectorParams {
    fn default() -> Self {
        DetectorParams {
            target_false_dead_per_s: DEFAULT_TARGET_FALSE_DEAD_PER_S,
            target_false_suspect_per_s: DEFAULT_TARGET_FALSE_SUSPECT_PER_S,
            min_tail_fraction: 0.002,
            loss_prior_beats: 20.0,
            burst_prior_continuation: 0.07,
            burst_prior_weight: 1.0,
            alpha: 0.85,
            window: 16,
            phi_suspect: 5.0,
            phi_dead: 8.0,
            min_sigma_ns: 50_000_000,
            phi_pause_intervals: 5.0,
            warmup_sigma_fraction: 0.25,
            loss_gap_factor: 1.5,
        }
    }
}

impl DetectorParams {
    /// Rejects values that would make the detectors meaningless (the bindings call this on
    /// user input before building a monitor).
    pub fn validate(&self) -> Result<(), &'static str> {
        let finite_pos = |x: f64| x.is_finite() && x > 0.0;
        let rate = |x: f64| x.is_finite() && (1e-15..=1.0).contains(&x);
        if !rate(self.target_false_dead_per_s) {
            return Err(
                "target_false_dead_per_s must be in [1e-15, 1] per second (default 1.585e-8: one per two peer-years)",
            );
        }
        if !rate(self.target_false_suspect_per_s) {
            return Err(
                "target_false_suspect_per_s must be in [1e-15, 1] per second (default 1.157e-5: one per peer-day)",
            );
        }
        if self.target_false_suspect_per_s < self.target_false_dead_per_s {
            return Err("target_false_suspect_per_s must be >= target_false_dead_per_s (Suspect comes before Dead)");
        }
        if !(self.min_tail_fraction.is_finite() && self.min_tail_fraction > 0.0 && self.min_tail_fraction <= 1.0) {
            return Err("min_tail_fraction must be in (0, 1]");
        }
        if !(self.loss_prior_beats.is_finite() && self.loss_prior_beats >= 2.0) {
            return Err("loss_prior_beats must be >= 2 (the prior loss is 1 / loss_prior_beats)");
        }
        if !(self.burst_prior_continuation.is_finite() && (0.0..1.0).contains(&self.burst_prior_continuation)) {
            return Err("burst_prior_continuation must be in [0, 1)");
        }
        if !finite_pos(self.burst_prior_weight) {
            return Err("burst_prior_weight must be > 0");
        }
        if !(self.alpha.is_finite() && (0.0..1.0).contains(&self.alpha)) {
            return Err("alpha must be in [0, 1)");
        }
        if !finite_pos(self.phi_suspect) || !finite_pos(self.phi_dead) {
            return Err("phi thresholds must be positive");
        }
        if self.phi_suspect > self.phi_dead {
            return Err("phi_suspect must not exceed phi_dead");
        }
        if !(self.phi_pause_intervals.is_finite() && self.phi_pause_intervals >= 0.0) {
            return Err("phi_pause_intervals must be >= 0");
        }
        if !(self.warmup_sigma_fraction.is_finite() && self.warmup_sigma_fraction >= 0.0) {
            return Err("warmup_sigma_fraction must be >= 0");
        }
        if !(self.loss_gap_factor.is_finite() && self.loss_gap_factor > 1.0) {
            return Err("loss_gap_factor must be > 1");
        }
        Ok(())
    }
}

/// Per-peer detector state: `Copy`, no heap, 40 bytes (asserted in tests), because the
/// monitor keeps one per peer for 100k peers.
#[derive(Clone, Copy, Debug)]
pub enum Detector {
    Adaptive(Adaptive),
    Phi(Phi),
}

impl Detector {
    /// A peer registered (or was first heard) at `now_ns`, announcing its interval.
    pub fn new(kind: DetectorKind, announced_interval_ns: u64, now_ns: u64) -> Detector {
        match kind {
            DetectorKind::Adaptive => Detector::Adaptive(Adaptive::new(announced_interval_ns, now_ns)),
            DetectorKind::Phi => Detector::Phi(Phi::new(announced_interval_ns, now_ns)),
        }
    }

    pub fn kind(&self) -> DetectorKind {
        match self {
            Detector::Adaptive(_) => DetectorKind::Adaptive,
            Detector::Phi(_) => DetectorKind::Phi,
        }
    }

    /// A heartbeat arrived at `now_ns`; the peer announced `announced_interval_ns` in it
    /// (the gap it promises until its next beat).
    pub fn heartbeat(&mut self, now_ns: u64, announced_interval_ns: u64, params: &DetectorParams) {
        match self {
            Detector::Adaptive(d) => d.heartbeat(now_ns, announced_interval_ns, params),
            Detector::Phi(d) => d.heartbeat(now_ns, announced_interval_ns, params),
        }
    }

    /// A heartbeat the sender flagged STALLED: it left late because the sender itself was
    /// paused. The peer is heard (the deadlines restart from `now_ns`), but the gap is
    /// the sender's pause, not the network's arrival pattern, so it is not learned.
    pub fn heartbeat_after_pause(&mut self, now_ns: u64, announced_interval_ns: u64, params: &DetectorParams) {
        match self {
            Detector::Adaptive(d) => {
                let _ = d.heard(now_ns, announced_interval_ns);
            }
            Detector::Phi(d) => {
                let _ = d.a.accept(now_ns, announced_interval_ns, params);
            }
        }
    }

    /// The verdict if nothing more is heard up to `now_ns`. Defined through the deadlines,
    /// so the verdict and the sweeper's schedule can never disagree.
    pub fn verdict(&self, now_ns: u64, params: &DetectorParams) -> Verdict {
        if now_ns >= self.dead_at(params) {
            Verdict::Dead
        } else if now_ns >= self.suspect_at(params) {
            Verdict::Suspect
        } else {
            Verdict::Alive
        }
    }

    /// Absolute time (ns) at which the verdict becomes Suspect if nothing is heard.
    pub fn suspect_at(&self, params: &DetectorParams) -> u64 {
        match self {
            Detector::Adaptive(d) => d.suspect_at(params),
            Detector::Phi(d) => d.suspect_at(params),
        }
    }

    /// Absolute time (ns) at which the verdict becomes Dead if nothing is heard
    /// (never before [`suspect_at`](Self::suspect_at)).
    pub fn dead_at(&self, params: &DetectorParams) -> u64 {
        let dead = match self {
            Detector::Adaptive(d) => d.dead_at(params),
            Detector::Phi(d) => d.dead_at(params),
        };
        dead.max(self.suspect_at(params))
    }

    pub fn last_heartbeat_ns(&self) -> u64 {
        match self {
            Detector::Adaptive(d) => d.last_heartbeat_ns(),
            Detector::Phi(d) => d.last_heartbeat_ns(),
        }
    }

    /// The interval the peer announced in its latest heartbeat.
    pub fn announced_interval_ns(&self) -> u64 {
        match self {
            Detector::Adaptive(d) => d.announced_interval_ns(),
            Detector::Phi(d) => d.announced_interval_ns(),
        }
    }
}

/// Adds a non-negative float duration to an absolute time, saturating instead of wrapping.
fn deadline(last_ns: u64, span_ns: f64) -> u64 {
    if span_ns.is_nan() || span_ns <= 0.0 {
        return last_ns;
    }
    // `as u64` saturates for huge floats; the add must saturate too.
    last_ns.saturating_add(span_ns.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_parses_and_displays() {
        assert_eq!("adaptive".parse::<DetectorKind>(), Ok(DetectorKind::Adaptive));
        assert_eq!(" PHI ".parse::<DetectorKind>(), Ok(DetectorKind::Phi));
        for k in [DetectorKind::Adaptive, DetectorKind::Phi] {
            assert_eq!(k.to_string().parse::<DetectorKind>(), Ok(k));
        }
        let err = "swim".parse::<DetectorKind>().unwrap_err().to_string();
        assert!(err.contains("\"adaptive\"") && err.contains("\"phi\"") && err.contains("swim"), "{err}");
    }

    #[test]
    fn detector_is_small_and_copy() {
        fn assert_copy<T: Copy>() {}
        assert_copy::<Detector>();
        assert!(std::mem::size_of::<Detector>() <= 40, "{}", std::mem::size_of::<Detector>());
        assert_eq!(std::mem::size_of::<Adaptive>(), 32);
        assert!(std::mem::size_of::<FlapDamper>() <= 16);
    }

    #[test]
    fn default_params_are_valid_and_bad_ones_rejected() {
        let p = DetectorParams::default();
        assert_eq!(p.validate(), Ok(()));
        assert!(DetectorParams { alpha: 1.0, ..p }.validate().is_err());
        assert!(DetectorParams { phi_suspect: 9.0, ..p }.validate().is_err());
        assert!(DetectorParams { loss_gap_factor: 1.0, ..p }.validate().is_err());
        assert!(DetectorParams { phi_pause_intervals: f64::NAN, ..p }.validate().is_err());
        let err = |q: DetectorParams| q.validate().unwrap_err();
        assert!(err(DetectorParams { target_false_dead_per_s: 0.0, ..p }).contains("target_false_dead_per_s"));
        assert!(err(DetectorParams { target_false_dead_per_s: f64::NAN, ..p }).contains("target_false_dead_per_s"));
        assert!(err(DetectorParams { target_false_suspect_per_s: 2.0, ..p }).contains("target_false_suspect_per_s"));
        assert!(err(DetectorParams { target_false_suspect_per_s: 1e-9, ..p }).contains(">= target_false_dead_per_s"));
        assert!(err(DetectorParams { min_tail_fraction: 0.0, ..p }).contains("min_tail_fraction"));
        assert!(err(DetectorParams { loss_prior_beats: 1.0, ..p }).contains("loss_prior_beats"));
        assert!(err(DetectorParams { burst_prior_continuation: 1.0, ..p }).contains("burst_prior_continuation"));
        assert!(err(DetectorParams { burst_prior_weight: -1.0, ..p }).contains("burst_prior_weight"));
        // The defaults are the documented rates.
        assert!((p.target_false_dead_per_s - 1.585e-8).abs() < 1e-11);
        assert!((p.target_false_suspect_per_s - 1.157e-5).abs() < 1e-8);
    }

    #[test]
    fn verdict_follows_deadlines_for_both_kinds() {
        let p = DetectorParams::default();
        for kind in [DetectorKind::Adaptive, DetectorKind::Phi] {
            let d = Detector::new(kind, 1_000_000_000, 5_000);
            assert_eq!(d.kind(), kind);
            assert_eq!(d.last_heartbeat_ns(), 5_000);
            let (s, x) = (d.suspect_at(&p), d.dead_at(&p));
            assert!(5_000 < s && s <= x, "{kind}: {s} {x}");
            assert_eq!(d.verdict(s - 1, &p), Verdict::Alive);
            assert_eq!(d.verdict(s, &p), Verdict::Suspect);
            assert_eq!(d.verdict(x - 1, &p), Verdict::Suspect);
            assert_eq!(d.verdict(x, &p), Verdict::Dead);
        }
    }

    #[test]
    fn deadlines_saturate_instead_of_wrapping() {
        let p = DetectorParams::default();
        for kind in [DetectorKind::Adaptive, DetectorKind::Phi] {
            let d = Detector::new(kind, u64::MAX / 2, u64::MAX - 10);
            assert_eq!(d.dead_at(&p), u64::MAX);
            assert_eq!(d.verdict(u64::MAX - 10, &p), Verdict::Alive);
        }
    }
}
