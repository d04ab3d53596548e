//! Failure detectors and the client interval policy.
//! (Placeholder for DetectorKind until the detect branch lands.)

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DetectorKind {
    Adaptive,
    Phi,
}

impl std::str::FromStr for DetectorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "adaptive" => Ok(DetectorKind::Adaptive),
            "phi" => Ok(DetectorKind::Phi),
            _ => Err(format!("detector {s:?}: expected adaptive or phi")),
        }
    }
}
