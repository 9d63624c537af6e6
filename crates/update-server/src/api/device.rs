//! The device API: check-in, events and the push stream. A device is identified by its client certificate
//! ([`DeviceIdSource::ClientCertificate`]); the `device-id` a request may carry is only
//! trusted with `--insecure-device-ids`, and must otherwise match the certificate.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio_stream::StreamExt;
use update_protocol::push::{EMPTY_DATA, PushEvent};
use update_protocol::{CheckInAnswer, DeviceId, Event, Identified, Report};

use super::{Caller, JsonBody, QueryParams};
use crate::AppState;
use crate::device::DeviceIdSource;
use crate::error::ApiError;

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
                ApiError::Forbidden(format!(
                    "the client certificate's common name is not a valid device id: {}",
                    e.problem
                ))
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
            DeviceId::parse(claimed).map_err(|e| ApiError::InvalidRequest(e.to_string()))
        }
    }
}

/// `POST /api/v1/device/checkin`: records the [`Report`], answers whether an operator asked
/// for a check.
pub(crate) async fn check_in(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<Identified<Report>>,
) -> Result<Json<CheckInAnswer>, ApiError> {
    let device = identify(state.device_ids, &caller, request.device_id.as_deref())?;
    let report = request.body;
    report.validate().map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    // Tags from the certificate only when the certificate is what identifies the device.
    let certificate_tags: &[update_protocol::Tag] = match state.device_ids {
        DeviceIdSource::ClientCertificate => {
            caller.0.as_ref().and_then(|p| p.client.as_deref()).map_or(&[], |c| c.tags.as_slice())
        }
        DeviceIdSource::InsecureRequestField => &[],
    };
    let outcome = state.store.check_in(&device, &report, certificate_tags, state.clock.now()).await?;
    tracing::debug!(
        %device,
        version = report.version.as_deref().unwrap_or("-"),
        check_now = outcome.check_now,
        deployment = outcome.assignment.as_ref().map(|a| a.deployment),
        "check-in"
    );
    Ok(Json(CheckInAnswer { device_id: device, check_now: outcome.check_now, assignment: outcome.assignment }))
}

/// `POST /api/v1/device/events`: stores one [`Event`], of a kind this server knows or not.
pub(crate) async fn post_event(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<Identified<Event>>,
) -> Result<StatusCode, ApiError> {
    let device = identify(state.device_ids, &caller, request.device_id.as_deref())?;
    let event = request.body.check().map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let seq = state.store.append_event(&device, &event, state.clock.now()).await?;
    tracing::debug!(
        %device,
        kind = event.kind.as_str(),
        known = event.kind.is_known(),
        version = event.version.as_deref().unwrap_or("-"),
        seq,
        "device event"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The device API's parsing and checks without a store (`crate::fuzzing`): how many of the
/// check-in body, the event body and the push query were accepted.
pub(crate) fn parse_bodies(body: &[u8], query: &str) -> usize {
    let source = DeviceIdSource::InsecureRequestField;
    let caller = Caller(None);
    let check_in = Json::<Identified<Report>>::from_bytes(body)
        .ok()
        .filter(|Json(r)| identify(source, &caller, r.device_id.as_deref()).is_ok() && r.body.validate().is_ok());
    let event = Json::<Identified<Event>>::from_bytes(body)
        .ok()
        .filter(|Json(r)| identify(source, &caller, r.device_id.as_deref()).is_ok())
        .and_then(|Json(r)| r.body.check().ok());
    let push = parse_query::<PushQuery>(query).filter(|q| identify(source, &caller, q.device_id.as_deref()).is_ok());
    usize::from(check_in.is_some()) + usize::from(event.is_some()) + usize::from(push.is_some())
}

/// A query string as [`QueryParams`] parses it.
pub(crate) fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> Option<T> {
    let uri: axum::http::Uri = format!("/?{query}").parse().ok()?;
    axum::extract::Query::<T>::try_from_uri(&uri).ok().map(|q| q.0)
}

/// `GET /api/v1/device/push` query.
#[derive(Debug, Deserialize)]
pub(crate) struct PushQuery {
    /// Only with `--insecure-device-ids` (the parameter is [`update_protocol::routes::PUSH_DEVICE_ID`]).
    #[serde(default, rename = "device-id")]
    device_id: Option<String>,
}

fn sse_event(push: PushEvent) -> SseEvent {
    SseEvent::default().event(push.name()).data(EMPTY_DATA)
}

/// `GET /api/v1/device/push`: server-sent events until the device or the server goes away.
/// Opens with a `: connected` comment; a [`PushEvent::CheckNow`] still pending from before the device
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
    tracing::debug!(%device, pending, "push stream opened");
    let opening = std::iter::once(SseEvent::default().comment("connected"))
        .chain(pending.then(|| sse_event(PushEvent::CheckNow)))
        .map(Ok::<_, Infallible>);
    let stream = tokio_stream::iter(opening).chain(subscription.map(|push| Ok(sse_event(push))));
    let keep_alive = KeepAlive::new().interval(state.push.keep_alive()).text("keep-alive");
    let mut response = Sse::new(stream).keep_alive(keep_alive).into_response();
    // nginx and friends: do not buffer the stream.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
