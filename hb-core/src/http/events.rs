//! `GET /v1/events`: every transition as a Server-Sent Event (`event: transition`, `data:`
//! the JSON of `monitor --json`, `id:` its place in the history). A reader that reconnects
//! with `Last-Event-ID` (or `?last_event_id=`, for a first connection) gets exactly the
//! events after that one; if the bounded history no longer holds them it first gets
//! `event: gap`, and should read `/v1/peers` again. Without an id, only new events come.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::{error_response, ViewState};
use crate::history::History;

/// Events taken from the history per lock.
const BATCH: usize = 256;
/// A comment line this often keeps proxies and readers from timing out an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct Cursor {
    history: Arc<History>,
    wake: tokio::sync::watch::Receiver<u64>,
    /// The id of the last event sent (or asked to resume after).
    after: u64,
    ready: VecDeque<SseEvent>,
}

pub(super) async fn stream(
    State(s): State<ViewState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let mut asked =
        headers.get("last-event-id").map(|v| ("Last-Event-ID", String::from_utf8_lossy(v.as_bytes()).into_owned()));
    for (key, value) in pairs {
        match key.as_str() {
            "last_event_id" if asked.is_none() => asked = Some(("last_event_id", value)),
            "last_event_id" => {}
            _ => {
                let e = crate::error::Error::config("parameter", key, "last_event_id");
                return error_response(StatusCode::BAD_REQUEST, e.to_string());
            }
        }
    }
    let after = match asked {
        None => s.history.latest(),
        Some((name, text)) => match text.trim().parse::<u64>() {
            Ok(id) => id,
            Err(_) => {
                let e = crate::error::Error::config(name, text, "the id of an event received (a whole number)");
                return error_response(StatusCode::BAD_REQUEST, e.to_string());
            }
        },
    };
    let cursor = Cursor { wake: s.history.subscribe(), history: s.history, after, ready: VecDeque::new() };
    let events = futures_util::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(ev) = c.ready.pop_front() {
                return Some((Ok::<_, Infallible>(ev), c));
            }
            // Marked seen before reading, so an event recorded after the read wakes us.
            c.wake.borrow_and_update();
            let since = c.history.since(c.after, BATCH);
            if since.gap {
                let resumed = since.events.first().map_or(c.history.latest() + 1, |(id, _)| *id);
                let data = serde_json::json!({ "after": c.after, "next": resumed });
                c.ready.push_back(SseEvent::default().event("gap").data(data.to_string()));
                c.after = resumed - 1;
            }
            for (id, ev) in since.events {
                c.after = id;
                c.ready.push_back(
                    SseEvent::default().id(id.to_string()).event("transition").data(ev.to_json().to_string()),
                );
            }
            if c.ready.is_empty() && c.wake.changed().await.is_err() {
                return None;
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}
