//! The JSON API under `/api/v1` (docs/reference/server-api.md): the device side in
//! [`device`], the operator side in [`operator`], and what they share: extractors, the health
//! check and the request log.

pub(crate) mod device;
pub(crate) mod operator;
pub(crate) mod rollout;

use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use crate::AppState;

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;

use crate::error::ApiError;
use crate::serve::Peer;

/// `axum::Json` whose rejection is an [`ApiError`] (so a bad body gets our JSON error shape).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct JsonBody<T>(pub(crate) T);

/// `axum::extract::Query` whose rejection is an [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct QueryParams<T>(pub(crate) T);

/// The connection the request came on; `None` when the router is driven without
/// [`serve`](crate::serve::serve) (unit tests), which then looks like a client without a
/// certificate.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Option<Peer>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller(parts.extensions.get::<Peer>().cloned()))
    }
}

/// `GET /api/v1/health`: 200 when the store answers (for load balancers; no authentication).
pub(crate) async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({"status": "ok"})))
}

/// One log line per request: method, path, status, time to the response head, remote address
/// and the client certificate's CN. Never headers (the operator token is one) or bodies.
pub(crate) async fn log_request(caller: Caller, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let remote = caller.0.as_ref().map(|p| p.remote.to_string()).unwrap_or_default();
    let client =
        caller.0.as_ref().and_then(|p| p.client.as_ref()).and_then(|c| c.common_name.clone()).unwrap_or_default();
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis(),
        %remote,
        %client,
        "request"
    );
    response
}
