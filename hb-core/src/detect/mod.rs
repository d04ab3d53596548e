//! Failure detectors and the client interval policy.
