//! Flap damping in the style of BGP route-flap damping (RFC 2439): each alive→suspect
//! transition adds a penalty that decays exponentially; above the suppress level the peer
//! is held in suspect, and released once the penalty has decayed below the reuse level.
//! The gap between the two levels is the hysteresis that makes "stable for a while" mean
//! something.

/// Penalty added per transition.
pub const FLAP_PENALTY: f32 = 1000.0;
/// Hold in suspect at or above this: three flaps within ~8 s, or a steady rate above one
/// flap per ~22 s (the peak then settles at 1000/(1 − 2^(−gap/30 s)) ≥ 2500).
pub const FLAP_SUPPRESS: f32 = 2500.0;
/// Release once decayed below this: from 2500, 1.7 half-lives (~52 s) of calm.
pub const FLAP_REUSE: f32 = 750.0;
/// Cap, so a peer that flapped all night is held at most log2(6000/750) = 3 half-lives
/// (90 s) after it calms down.
pub const FLAP_MAX_PENALTY: f32 = 6000.0;
/// Half-life of the penalty: 30 s, long against a 1 s beat so that "stable for a while"
/// means tens of intervals, short enough that a recovered peer is not held for minutes.
pub const FLAP_HALF_LIFE_NS: u64 = 30_000_000_000;

/// 16 bytes per peer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FlapDamper {
    /// Penalty as of `updated_ns`.
    penalty: f32,
    held: bool,
    updated_ns: u64,
}

impl FlapDamper {
    /// Record one flap (the monitor calls this on each alive→suspect transition).
    pub fn on_transition(&mut self, now_ns: u64) {
        let p = self.penalty_at(now_ns);
        if self.held && p < FLAP_REUSE {
            self.held = false;
        }
        self.penalty = (p + FLAP_PENALTY).min(FLAP_MAX_PENALTY);
        self.updated_ns = now_ns.max(self.updated_ns);
        if self.penalty >= FLAP_SUPPRESS {
            self.held = true;
        }
    }

    /// True while the peer must be reported as suspect even though it is heard.
    pub fn hold_suspect(&self, now_ns: u64) -> bool {
        self.held && self.penalty_at(now_ns) >= FLAP_REUSE
    }

    /// When the hold ends if no further flap happens (`None` if not held), for the sweeper.
    pub fn release_at_ns(&self) -> Option<u64> {
        if !self.held {
            return None;
        }
        let half_lives = (self.penalty / FLAP_REUSE).log2().max(0.0) as f64;
        let after = (half_lives * FLAP_HALF_LIFE_NS as f64).ceil() as u64;
        Some(self.updated_ns.saturating_add(after))
    }

    /// The decayed penalty at `now_ns`.
    pub fn penalty_at(&self, now_ns: u64) -> f32 {
        let dt = now_ns.saturating_sub(self.updated_ns) as f64;
        (self.penalty as f64 * (-dt / FLAP_HALF_LIFE_NS as f64).exp2()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn occasional_flaps_are_not_held() {
        let mut f = FlapDamper::default();
        // One suspicion every 30 s, forever: peaks settle at 1000/(1 - 1/2) = 2000 < 2500.
        for i in 0..200 {
            f.on_transition(i * 30 * S);
            assert!(!f.hold_suspect(i * 30 * S), "held at flap {i}");
        }
        assert_eq!(f.release_at_ns(), None);
    }

    #[test]
    fn rapid_flaps_hold_until_calm_then_release() {
        let mut f = FlapDamper::default();
        f.on_transition(0);
        f.on_transition(S);
        assert!(!f.hold_suspect(S));
        f.on_transition(2 * S);
        assert!(f.hold_suspect(2 * S), "third flap in 2 s holds");
        let release = f.release_at_ns().unwrap();
        // penalty = 1000·(1 + 2^(-1/30) + 2^(-2/30)) ≈ 2932: log2(2932/750) ≈ 1.97 half-lives ≈ 59 s.
        assert!(release > 2 * S + 57 * S && release < 2 * S + 61 * S, "{release}");
        assert!(f.hold_suspect(release - S));
        assert!(!f.hold_suspect(release + 1_000_000));
        // A new flap after release starts from the decayed penalty, not held.
        f.on_transition(release + S);
        assert!(!f.hold_suspect(release + S));
    }

    #[test]
    fn penalty_is_capped_so_the_hold_is_bounded() {
        let mut f = FlapDamper::default();
        for i in 0..1000 {
            f.on_transition(i * 100_000_000);
        }
        let last = 999 * 100_000_000;
        let release = f.release_at_ns().unwrap();
        assert!(release - last <= 90 * S + 1, "{}", release - last);
        assert!(f.hold_suspect(release - S) && !f.hold_suspect(release + S));
    }
}
