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

/// Most items one page of a list holds (and the default).
pub(crate) const MAX_PAGE: u32 = 1000;

/// The query of every list: `after` (the `next` of the previous page; from the start without)
/// and `limit` (1 to [`MAX_PAGE`]).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    pub(crate) after: Option<String>,
    #[serde(default)]
    pub(crate) limit: Option<u32>,
}

impl PageQuery {
    /// The page size asked for.
    pub(crate) fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(MAX_PAGE),
            Some(l) if l > 0 && l <= MAX_PAGE => Ok(l),
            Some(_) => Err(ApiError::InvalidRequest(format!("limit: 1 to {MAX_PAGE}"))),
        }
    }

    /// `after` as a row id (0: from the start).
    pub(crate) fn after_id(&self) -> Result<i64, ApiError> {
        match self.after.as_deref() {
            None | Some("") => Ok(0),
            Some(a) => a
                .parse::<i64>()
                .ok()
                .filter(|i| *i >= 0)
                .ok_or_else(|| ApiError::InvalidRequest(format!("after: {a:?} is not the `next` of a page"))),
        }
    }

    /// `after` as a device id (`None`: from the start).
    pub(crate) fn after_device(&self) -> Result<Option<update_protocol::DeviceId>, ApiError> {
        match self.after.as_deref() {
            None | Some("") => Ok(None),
            Some(a) => update_protocol::DeviceId::parse(a)
                .map(Some)
                .map_err(|_| ApiError::InvalidRequest(format!("after: {a:?} is not the `next` of a page"))),
        }
    }
}

/// The `next` of a page: the key of its last item when the page is full (there may be more),
/// `None` at the end.
pub(crate) fn next_cursor<T, K: ToString>(page: &[T], limit: u32, key: impl Fn(&T) -> K) -> Option<String> {
    if page.len() < limit as usize {
        return None;
    }
    page.last().map(|last| key(last).to_string())
}

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

/// One debug log line per request: method, path, status, time to the response head, remote
/// address and the client certificate's CN. Never headers (the operator token is one) or
/// bodies. Costs nothing when debug logging is off.
pub(crate) async fn log_request(caller: Caller, request: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let remote = caller.0.as_ref().map(|p| p.remote.to_string()).unwrap_or_default();
    let client =
        caller.0.as_ref().and_then(|p| p.client.as_deref()).and_then(|c| c.common_name.clone()).unwrap_or_default();
    tracing::debug!(
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
