//! A client's own `/healthz` (the `health_addr` option), for Kubernetes probes: 200 while
//! `healthy` or `degraded`, 503 before the first acknowledgement and once `lost` or
//! stopped, with the fencing token and the remaining validity in a JSON body.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::events::State as Health;
use crate::fencing::FencingToken;

/// What the probe reports, read afresh for each request.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthReport {
    pub state: Health,
    /// None before the first acknowledgement.
    pub fencing_token: Option<FencingToken>,
    /// How long this process may still act as the holder (`Client::remaining`).
    pub remaining_ms: u64,
}

impl HealthReport {
    /// The probe passes while the client can still act: `healthy`, or `degraded` (it is
    /// retrying, and still valid until `lost`).
    pub fn passes(&self) -> bool {
        matches!(self.state, Health::Healthy | Health::Degraded)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "state": self.state.as_str(),
            "fencing_token": self.fencing_token.map(|t| serde_json::json!({ "lease_id": t.lease_id, "epoch": t.epoch })),
            "remaining_ms": self.remaining_ms,
        })
    }
}

pub trait HealthSource: Send + Sync + 'static {
    fn report(&self) -> HealthReport;
}

pub(super) fn router(source: Arc<dyn HealthSource>) -> Router {
    Router::new().route("/healthz", get(healthz)).with_state(source)
}

async fn healthz(State(source): State<Arc<dyn HealthSource>>) -> Response {
    let report = source.report();
    let status = if report.passes() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report.to_json())).into_response()
}
