//! The rollout half of the operator API: releases, tags, deployments and their control, and
//! the operator audit log. Reads need the `viewer` role, changes `operator`, the audit log
//! `admin` (the router in [`crate::app`] says which).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use update_protocol::rollout::{MAX_TAG_DEVICES, NewDeployment, NewRelease, TagDevices};
use update_protocol::{DeviceId, Tag};

use super::operator::actor;
use super::{JsonBody, PageQuery, QueryParams, next_cursor};
use crate::AppState;
use crate::audit::{self, AuditEntry};
use crate::error::ApiError;
use crate::operator::Operator;
use crate::store::{Control, DeploymentRecord, ReleaseRecord};

fn invalid(e: &update_protocol::Invalid) -> ApiError {
    ApiError::InvalidRequest(e.to_string())
}

fn tag(raw: &str) -> Result<Tag, ApiError> {
    Tag::parse(raw).map_err(|e| invalid(&e))
}

fn id_of(what: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| ApiError::NotFound(format!("no {what} {raw:?}")))
}

/// `GET /api/v1/releases` answer.
#[derive(Debug, Serialize)]
pub(crate) struct Releases {
    releases: Vec<ReleaseRecord>,
    /// Pass as `after` for the next page; `null` on the last.
    next: Option<String>,
}

pub(crate) async fn list_releases(
    State(state): State<AppState>,
    QueryParams(page): QueryParams<PageQuery>,
) -> Result<Json<Releases>, ApiError> {
    let limit = page.limit()?;
    let releases = state.store.releases_page(page.after_id()?, limit).await?;
    let next = next_cursor(&releases, limit, |r| r.id);
    Ok(Json(Releases { releases, next }))
}

pub(crate) async fn get_release(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<ReleaseRecord>, ApiError> {
    let id = id_of("release", &raw)?;
    state.store.release(id).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("no release {id}")))
}

/// `POST /api/v1/releases`: the target must be in the repository's current targets metadata
/// (and, when it signs a `version` in `custom`, with that version). This only catches an
/// operator's mistake: the device verifies the metadata itself.
pub(crate) async fn create_release(
    State(state): State<AppState>,
    Extension(operator): Extension<Operator>,
    JsonBody(release): JsonBody<NewRelease>,
) -> Result<(StatusCode, Json<ReleaseRecord>), ApiError> {
    release.validate().map_err(|e| invalid(&e))?;
    let listed = state.repo.signed_target(&release.target).await.map_err(ApiError::Conflict)?;
    let Some(custom) = listed else {
        return Err(ApiError::Conflict(format!(
            "the repository's targets metadata does not list {:?} (publish it with `update-tool repo add` and `repo sign` first)",
            release.target
        )));
    };
    if let Some(signed) = custom.get("version").and_then(Value::as_str)
        && signed != release.version
    {
        return Err(ApiError::Conflict(format!(
            "the repository signs {:?} as version {signed:?}, not {:?}",
            release.target, release.version
        )));
    }
    let record = state.store.create_release(&release, &actor(&operator), state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// `GET /api/v1/tags/{tag}/devices` answer.
#[derive(Debug, Serialize)]
pub(crate) struct TagMembers {
    tag: Tag,
    devices: Vec<Value>,
    /// Pass as `after` for the next page; `null` on the last.
    next: Option<String>,
}

pub(crate) async fn list_tag(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    QueryParams(page): QueryParams<PageQuery>,
) -> Result<Json<TagMembers>, ApiError> {
    let tag = tag(&raw)?;
    let limit = page.limit()?;
    let members = state.store.tag_members_page(&tag, page.after_device()?.as_ref(), limit).await?;
    let next = next_cursor(&members, limit, |(d, _)| d.clone());
    let devices = members.into_iter().map(|(d, source)| json!({"id": d, "source": source})).collect();
    Ok(Json(TagMembers { tag, devices, next }))
}

pub(crate) async fn tag_devices(
    State(state): State<AppState>,
    Extension(operator): Extension<Operator>,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<TagDevices>,
) -> Result<Json<Value>, ApiError> {
    let tag = tag(&raw)?;
    if body.devices.is_empty() || body.devices.len() > MAX_TAG_DEVICES {
        return Err(ApiError::InvalidRequest(format!("devices: 1 to {MAX_TAG_DEVICES}")));
    }
    let added = state.store.tag_devices(&tag, &body.devices, &actor(&operator), state.clock.now()).await?;
    Ok(Json(json!({"tag": tag, "added": added})))
}

pub(crate) async fn untag_device(
    State(state): State<AppState>,
    Extension(operator): Extension<Operator>,
    Path((raw_tag, raw_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tag = tag(&raw_tag)?;
    let device = DeviceId::parse(&raw_id).map_err(|_| ApiError::NotFound(format!("no device {raw_id:?}")))?;
    if state.store.untag_device(&tag, &device, &actor(&operator), state.clock.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("{device} is not in {tag}")))
    }
}

/// `GET /api/v1/deployments` answer.
#[derive(Debug, Serialize)]
pub(crate) struct Deployments {
    deployments: Vec<DeploymentRecord>,
    /// Pass as `after` for the next (older) page; `null` on the last.
    next: Option<String>,
}

pub(crate) async fn list_deployments(
    State(state): State<AppState>,
    QueryParams(page): QueryParams<PageQuery>,
) -> Result<Json<Deployments>, ApiError> {
    let limit = page.limit()?;
    let before = Some(page.after_id()?).filter(|id| *id > 0);
    let deployments = state.store.deployments_page(before, limit).await?;
    let next = next_cursor(&deployments, limit, |d| d.id);
    Ok(Json(Deployments { deployments, next }))
}

pub(crate) async fn get_deployment(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    let id = id_of("deployment", &raw)?;
    state.store.deployment(id).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("no deployment {id}")))
}

pub(crate) async fn create_deployment(
    State(state): State<AppState>,
    Extension(operator): Extension<Operator>,
    JsonBody(plan): JsonBody<NewDeployment>,
) -> Result<(StatusCode, Json<DeploymentRecord>), ApiError> {
    plan.validate().map_err(|e| invalid(&e))?;
    let now = state.clock.now();
    if let Some(w) = &plan.maintenance_window {
        crate::rollout::in_window(w, now).map_err(ApiError::InvalidRequest)?;
    }
    let d = state.store.create_deployment(&plan, &actor(&operator), now).await?;
    tracing::info!(deployment = d.id, release = d.release.id, tag = %d.tag, operator = %operator.name, "deployment created");
    Ok((StatusCode::CREATED, Json(d)))
}

async fn control(
    state: &AppState,
    operator: &Operator,
    raw: &str,
    control: Control,
) -> Result<Json<DeploymentRecord>, ApiError> {
    let id = id_of("deployment", raw)?;
    let d = state.store.control_deployment(id, control, &actor(operator), state.clock.now()).await?;
    tracing::info!(deployment = id, ?control, operator = %operator.name, state = d.state.as_str(), "deployment changed");
    Ok(Json(d))
}

pub(crate) async fn pause(
    State(state): State<AppState>,
    Extension(operator): Extension<Operator>,
    Path(raw): Path<String>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    control(&state, &operator, &raw, Control::Pause).await
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    Extension(operator): Extension<Operator>,
    Path(raw): Path<String>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    control(&state, &operator, &raw, Control::Resume).await
}

pub(crate) async fn abort(
    State(state): State<AppState>,
    Extension(operator): Extension<Operator>,
    Path(raw): Path<String>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    control(&state, &operator, &raw, Control::Abort).await
}

/// The rollout API's parsing and checks without a store (`crate::fuzzing`): how many of the
/// release, tag and deployment bodies and the audit query were accepted.
pub(crate) fn parse_bodies(body: &[u8], query: &str) -> usize {
    let release = Json::<NewRelease>::from_bytes(body).ok().filter(|Json(r)| r.validate().is_ok());
    let tag = Json::<TagDevices>::from_bytes(body)
        .ok()
        .filter(|Json(t)| !t.devices.is_empty() && t.devices.len() <= MAX_TAG_DEVICES);
    let deployment = Json::<NewDeployment>::from_bytes(body).ok().filter(|Json(d)| d.validate().is_ok());
    if let Some(Json(d)) = &deployment {
        // A valid plan places every device in exactly one wave.
        for total in [0, 1, 7, 1000] {
            assert_eq!(crate::rollout::wave_sizes(&d.waves, total).iter().sum::<u32>(), total);
        }
    }
    let audit =
        super::device::parse_query::<AuditQuery>(query).filter(|q| q.limit.is_none_or(|l| l > 0 && l <= MAX_AUDIT));
    [release.is_some(), tag.is_some(), deployment.is_some(), audit.is_some()].into_iter().filter(|b| *b).count()
}

/// Most audit rows one request returns.
const MAX_AUDIT: u32 = 1000;

/// `GET /api/v1/audit` query.
#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /api/v1/audit` answer.
#[derive(Debug, Serialize)]
pub(crate) struct AuditPage {
    entries: Vec<AuditEntry>,
    /// Pass as `after` for the next page; `null` on the last.
    next: Option<String>,
}

pub(crate) async fn audit_log(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = q.limit.unwrap_or(MAX_AUDIT);
    if limit == 0 || limit > MAX_AUDIT {
        return Err(ApiError::InvalidRequest(format!("limit: 1 to {MAX_AUDIT}")));
    }
    let entries = state.store.audit_log(q.after, limit).await?;
    let next = super::next_cursor(&entries, limit, |e| e.seq);
    Ok(Json(AuditPage { entries, next }))
}

/// `GET /api/v1/audit/verify`: walks the whole chain. 200 with `{"ok": true, "entries": N,
/// "head": HASH}`, or 200 with `{"ok": false, "seq": N, "problem": …}` (the check itself worked;
/// what it found is the answer).
pub(crate) async fn audit_verify(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.audit_log(after, MAX_AUDIT).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        rows.extend(page);
    }
    Ok(Json(match audit::verify(&rows) {
        Ok((entries, head)) => json!({"ok": true, "entries": entries, "head": head}),
        Err(broken) => {
            tracing::error!(seq = broken.seq, problem = %broken.problem, "the operator audit log's chain is broken");
            json!({"ok": false, "seq": broken.seq, "problem": broken.problem})
        }
    }))
}
