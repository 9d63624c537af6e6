//! The device API: check-in, events and the push stream. A device is identified by its client certificate
//! ([`DeviceIdSource::ClientCertificate`]); the `device-id` a request may carry is only
//! trusted with `--insecure-device-ids`, and must otherwise match the certificate.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_stream::StreamExt;

use super::{Caller, JsonBody, QueryParams};
use crate::AppState;
use crate::device::{DeviceId, DeviceIdSource, EventRequest, Report};
use crate::error::ApiError;
use crate::push::Push;

/// Works out which device is calling.
pub(crate) fn identify(source: DeviceIdSource, caller: &Caller, claimed: Option<&str>) -> Result<DeviceId, ApiError> {
    match source {
        DeviceIdSource::ClientCertificate => {
            let Some(certificate) = caller.0.as_ref().and_then(|p| p.client.as_ref()) else {
                return Err(ApiError::DeviceIdentityRequired(
                    "devices are identified by their client certificate: the server must run with --client-ca",
                ));
            };
            let Some(cn) = certificate.common_name.as_deref() else {
                return Err(ApiError::Forbidden(
                    "the client certificate has no (single) subject common name to use as device id".to_owned(),
                ));
            };
            let id = DeviceId::parse(cn).map_err(|e| {
                ApiError::Forbidden(format!("the client certificate's common name is not a valid device id: {e}"))
            })?;
            if claimed.is_some_and(|c| c != id.as_str()) {
                return Err(ApiError::Forbidden("device-id does not match the client certificate".to_owned()));
            }
            Ok(id)
        }
        DeviceIdSource::InsecureRequestField => {
            let Some(claimed) = claimed else {
                return Err(ApiError::DeviceIdentityRequired(
                    "device-id is required (the server runs with --insecure-device-ids)",
                ));
            };
            DeviceId::parse(claimed).map_err(|e| ApiError::InvalidRequest(format!("device-id: {e}")))
        }
    }
}

/// `POST /api/v1/device/checkin` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct CheckInRequest {
    /// Only with `--insecure-device-ids`; otherwise, if present, must equal the certificate's.
    #[serde(default)]
    device_id: Option<String>,
    #[serde(flatten)]
    report: Report,
}

/// `POST /api/v1/device/checkin` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct CheckInResponse {
    device_id: DeviceId,
    check_now: bool,
}

pub(crate) async fn check_in(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CheckInRequest>,
) -> Result<Json<CheckInResponse>, ApiError> {
    let device = identify(state.device_ids, &caller, request.device_id.as_deref())?;
    request.report.validate().map_err(ApiError::InvalidRequest)?;
    let check_now = state.store.check_in(&device, &request.report, OffsetDateTime::now_utc()).await?;
    tracing::debug!(%device, version = request.report.version.as_deref().unwrap_or("-"), check_now, "check-in");
    Ok(Json(CheckInResponse { device_id: device, check_now }))
}

pub(crate) async fn post_event(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<EventRequest>,
) -> Result<StatusCode, ApiError> {
    let device = identify(state.device_ids, &caller, request.device_id.as_deref())?;
    let event = request.into_event().map_err(ApiError::InvalidRequest)?;
    let seq = state.store.append_event(&device, &event, OffsetDateTime::now_utc()).await?;
    tracing::info!(
        %device,
        kind = event.kind.as_str(),
        version = event.version.as_deref().unwrap_or("-"),
        seq,
        "device event"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/device/push` query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct PushQuery {
    /// Only with `--insecure-device-ids`.
    #[serde(default)]
    device_id: Option<String>,
}

fn sse_event(push: Push) -> SseEvent {
    SseEvent::default().event(push.event_name()).data("{}")
}

/// `GET /api/v1/device/push`: server-sent events until the device or the server goes away.
/// Opens with a `: connected` comment; a `check-now` still pending from before the device
/// connected is sent at once.
pub(crate) async fn push(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<PushQuery>,
) -> Result<Response, ApiError> {
    let device = identify(state.device_ids, &caller, query.device_id.as_deref())?;
    // Subscribe before reading the flag: a request landing in between is then seen twice
    // (harmless), never missed.
    let subscription = state.push.subscribe(&device);
    let pending = state.store.device(&device).await?.is_some_and(|d| d.check_now_pending);
    tracing::info!(%device, pending, "push stream opened");
    let opening = std::iter::once(SseEvent::default().comment("connected"))
        .chain(pending.then(|| sse_event(Push::CheckNow)))
        .map(Ok::<_, Infallible>);
    let stream = tokio_stream::iter(opening).chain(subscription.map(|push| Ok(sse_event(push))));
    let keep_alive = KeepAlive::new().interval(state.push.keep_alive()).text("keep-alive");
    let mut response = Sse::new(stream).keep_alive(keep_alive).into_response();
    // nginx and friends: do not buffer the stream.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
