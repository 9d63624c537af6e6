//! The operator API: inventory, a device's events, and `check-now`. Every route is behind
//! [`require_role`], which finds the token's [`Operator`] and checks its role.

use axum::Extension;
use axum::Json;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use update_protocol::DeviceId;
use update_protocol::limits::MAX_EVENTS;
use update_protocol::push::PushEvent;

use super::{Caller, PageQuery, QueryParams, next_cursor};
use crate::AppState;
use crate::audit::Actor;
use crate::error::ApiError;
use crate::operator::{Operator, OperatorAccess, Role, bearer};
use crate::store::{DeviceRecord, StoredEvent};

/// Lets the request through only with a bearer token of at least the route's role, and
/// hands the handler the [`Operator`] (a request extension). The token is never logged; a
/// refusal is logged with the remote address and the token's name when it was valid.
pub(crate) async fn require_role(
    State((state, needed)): State<(AppState, Role)>,
    caller: Caller,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let OperatorAccess::Tokens(tokens) = &state.operator else {
        return Err(ApiError::OperatorApiDisabled);
    };
    let presented = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    let operator = presented.and_then(|p| tokens.authenticate(p));
    let remote = caller.0.map(|p| p.remote.to_string()).unwrap_or_default();
    let path = request.extensions().get::<OriginalUri>().map_or(request.uri(), |o| &o.0).path().to_owned();
    match operator {
        Some(operator) if operator.role >= needed => {
            request.extensions_mut().insert(operator);
            Ok(next.run(request).await)
        }
        Some(operator) => {
            tracing::warn!(%remote, path, token = %operator.name, role = operator.role.as_str(), needed = needed.as_str(), "operator request refused: role");
            Err(ApiError::RoleRequired { needed: needed.as_str(), name: operator.name, has: operator.role.as_str() })
        }
        None => {
            tracing::warn!(%remote, path, with_token = presented.is_some(), "operator request refused");
            Err(ApiError::AdminTokenRequired)
        }
    }
}

/// The audit log's actor for an operator.
pub(crate) fn actor(operator: &Operator) -> Actor {
    Actor { name: operator.name.clone(), role: operator.role.as_str() }
}

/// A device in the inventory, with its push streams.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct DeviceView {
    #[serde(flatten)]
    record: DeviceRecord,
    /// Open push streams (0: not connected).
    push_streams: usize,
    /// What the device reported about itself through hawkBit's configData (one device only).
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<std::collections::BTreeMap<String, String>>,
}

impl DeviceView {
    fn new(state: &AppState, record: DeviceRecord) -> Self {
        let push_streams = state.push.connected(&record.id);
        Self { record, push_streams, attributes: None }
    }
}

fn device_id(raw: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(raw).map_err(|_| ApiError::NotFound(format!("no device {raw:?}")))
}

/// `GET /api/v1/devices` answer: one page.
#[derive(Debug, Serialize)]
pub(crate) struct Inventory {
    devices: Vec<DeviceView>,
    /// Pass as `after` for the next page; `null` on the last.
    next: Option<String>,
}

pub(crate) async fn list_devices(
    State(state): State<AppState>,
    QueryParams(page): QueryParams<PageQuery>,
) -> Result<Json<Inventory>, ApiError> {
    let limit = page.limit()?;
    let records = state.store.devices_page(page.after_device()?.as_ref(), limit).await?;
    let next = next_cursor(&records, limit, |r| r.id.clone());
    Ok(Json(Inventory { devices: records.into_iter().map(|r| DeviceView::new(&state, r)).collect(), next }))
}

pub(crate) async fn get_device(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let id = device_id(&raw)?;
    let record = state.store.device(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no device {id}")))?;
    let attributes = state.store.attributes(&id).await?.into_iter().collect();
    Ok(Json(DeviceView { attributes: Some(attributes), ..DeviceView::new(&state, record) }))
}

/// `GET /api/v1/devices/{id}/events` query.
#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    /// Only events with a larger `seq` (paging: pass the last `seq` seen).
    #[serde(default)]
    after: i64,
    /// At most this many (default and maximum 1000).
    #[serde(default)]
    limit: Option<u32>,
}

/// The operator API's query parsing and checks without a store (`crate::fuzzing`): 1 when the
/// event-list query is accepted.
pub(crate) fn parse_queries(query: &str) -> usize {
    super::device::parse_query::<EventsQuery>(query)
        .filter(|q| q.limit.is_none_or(|l| l > 0 && l <= MAX_EVENTS))
        .map_or(0, |_| 1)
}

/// `GET /api/v1/devices/{id}/events` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct EventList {
    device_id: DeviceId,
    events: Vec<StoredEvent>,
    /// Pass as `after` for the next page; `null` on the last.
    next: Option<String>,
}

pub(crate) async fn list_events(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Json<EventList>, ApiError> {
    let id = device_id(&raw)?;
    let limit = query.limit.unwrap_or(MAX_EVENTS);
    if limit == 0 || limit > MAX_EVENTS {
        return Err(ApiError::InvalidRequest(format!("limit: 1 to {MAX_EVENTS}")));
    }
    let events = state
        .store
        .events(&id, query.after, limit)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no device {id}")))?;
    let next = next_cursor(&events, limit, |e| e.seq);
    Ok(Json(EventList { device_id: id, events, next }))
}

/// `POST /api/v1/devices/{id}/check-now` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct CheckNowAccepted {
    device_id: DeviceId,
    /// Push streams the request was sent to (0: the device gets it at its next check-in).
    pushed: usize,
}

pub(crate) async fn check_now(
    State(state): State<AppState>,
    Extension(operator): Extension<Operator>,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Json<CheckNowAccepted>), ApiError> {
    let id = device_id(&raw)?;
    if !state.store.request_check(&id, &actor(&operator), state.clock.now()).await? {
        return Err(ApiError::NotFound(format!("no device {id}")));
    }
    let pushed = state.push.send(&id, PushEvent::CheckNow);
    tracing::info!(device = %id, pushed, operator = %operator.name, "check-now requested");
    Ok((StatusCode::ACCEPTED, Json(CheckNowAccepted { device_id: id, pushed })))
}
