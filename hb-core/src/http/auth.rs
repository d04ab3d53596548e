//! The optional bearer token (`http_token_file`): every route but the probes asks for
//! `Authorization: Bearer <token>`, compared in constant time.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::error::{Error, Result};

/// Shortest token accepted: a guessable one would protect nothing.
pub const MIN_TOKEN_LEN: usize = 16;

/// The token in `path`: the file's text without surrounding whitespace.
pub fn read_token_file(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config("http_token_file", path.display(), format!("a readable text file ({e})")))?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::config(
            "http_token_file",
            path.display(),
            format!("a file holding one token of at least {MIN_TOKEN_LEN} characters, without spaces"),
        ));
    }
    Ok(Secret(token.as_bytes().to_vec()))
}

pub(super) async fn require_bearer(State(token): State<Arc<Secret>>, req: Request, next: Next) -> Response {
    let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match given {
        Some(given) if bool::from(given.ct_eq(&token.0)) => next.run(req).await,
        _ => {
            let mut resp =
                super::error_response(StatusCode::UNAUTHORIZED, "a valid Authorization: Bearer token is required");
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            resp.into_response()
        }
    }
}
