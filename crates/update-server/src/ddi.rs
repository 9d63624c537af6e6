//! hawkBit's Direct Device Integration API (DDI), so devices that already run a hawkBit client
//! (SWUpdate's suricatta, rauc-hawkbit-updater, …) use this server without a change on the
//! device (`serve --ddi`; docs/reference/hawkbit-ddi.md).
//!
//! # Design
//! - **Same rollouts, other words.** A DDI *action* is a device's place in one of our
//!   deployments: its id is the deployment id. The root poll is a check-in
//!   ([`Store::check_in`](crate::store::Store::check_in)), so waves, canaries, maintenance
//!   windows and pauses decide what a DDI device is offered exactly as for a native one.
//!   Feedback becomes events ([`feedback_event`]) counted against the deployment's wave, so
//!   the failure rate and the automatic pause work the same.
//! - **An action stays open until the device closes it.** A device told to install keeps
//!   seeing its action while it installs, reboots and confirms, even if the deployment is
//!   paused or its window closes meanwhile (a hawkBit rollout pauses new assignments, never
//!   running ones). Once it reports `closed` (success or failure) the action is gone.
//! - **The artifact is the release's signed target.** The release's repository target (a
//!   `.swu` for SWUpdate) is served from the repository directory with byte ranges; its
//!   SHA-1, MD5 and SHA-256 are computed once per file version and the SHA-256 and length must
//!   equal what the targets metadata signs, or the action is not offered.
//! - **Authentication**: a client certificate from the device CA whose common name is the
//!   controller id, or `Authorization: TargetToken` (per device, stored as its SHA-256 by
//!   `update-server ddi-token`), or `Authorization: GatewayToken` (one for the server,
//!   `--ddi-gateway-token-file`). Every comparison is of digests, in constant time.
//! - **Hostile input** is refused before anything is stored: unknown tenants, malformed or
//!   dotted controller ids, another device's id, action ids the device does not hold, feedback
//!   of the wrong shape or over 64 KiB; control characters in feedback details are escaped
//!   (as every event reason is). Polls, feedback and configData spend the authenticated
//!   device's per-device rate tokens (429 beyond).

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use update_protocol::limits::{MAX_BODY, MAX_REASON};
use update_protocol::{DeviceId, Event, EventKind, Report};

use crate::AppState;
use crate::api::{Caller, JsonBody};
use crate::device::DeviceIdSource;
use crate::error::ApiError;
use crate::limits::Rated;
use crate::operator::AdminToken;
use crate::store::{ActionOutcome, AttributeMode, CancelAnswer, DeploymentRecord, MAX_ATTRIBUTES};

/// The tenant hawkBit clients use unless told otherwise.
pub const DEFAULT_TENANT: &str = "DEFAULT";

/// Most entries of a feedback's `details` that are kept (SWUpdate sends up to 48 log lines).
const MAX_DETAILS: usize = 200;

/// How the DDI API is set up (`serve --ddi …`).
#[derive(Debug, Clone)]
pub struct DdiConfig {
    /// The tenant in every path (compared without regard to ASCII case).
    pub tenant: String,
    /// What devices are told to wait between polls (`config.polling.sleep`).
    pub poll: Duration,
    /// The gateway token, which may speak for every device (`None`: refused).
    pub gateway: Option<AdminToken>,
}

impl Default for DdiConfig {
    fn default() -> Self {
        Self { tenant: DEFAULT_TENANT.to_owned(), poll: Duration::from_secs(300), gateway: None }
    }
}

/// The DDI API's state: its configuration and the artifact hashes computed so far.
#[derive(Debug)]
pub struct Ddi {
    config: DdiConfig,
    hashes: Mutex<HashMap<FileVersion, ArtifactHashes>>,
}

impl Ddi {
    /// The API with `config`.
    #[must_use]
    pub fn new(config: DdiConfig) -> Self {
        Self { config, hashes: Mutex::new(HashMap::new()) }
    }
}

/// One version of a file: a new one (the repository tool renames files into place) gets new
/// hashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileVersion {
    path: PathBuf,
    inode: u64,
    length: u64,
    mtime_ns: i128,
}

/// What a DDI artifact lists about its file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ArtifactHashes {
    sha1: String,
    md5: String,
    sha256: String,
    length: u64,
}

/// The DDI routes, under `/{tenant}/controller/v1/{controllerId}`; merge them into the
/// server's router ([`crate::app`] or [`crate::dashboard::app_with_dashboard`]).
pub fn router(state: AppState, ddi: Arc<Ddi>) -> Router {
    const ROOT: &str = "/{tenant}/controller/v1/{controller}";
    Router::new()
        .route(ROOT, get(poll))
        .route(&format!("{ROOT}/deploymentBase/{{action}}"), get(deployment_base))
        .route(&format!("{ROOT}/deploymentBase/{{action}}/feedback"), post(feedback))
        .route(&format!("{ROOT}/cancelAction/{{action}}"), get(cancel_action))
        .route(&format!("{ROOT}/cancelAction/{{action}}/feedback"), post(cancel_feedback))
        .route(&format!("{ROOT}/configData"), put(config_data))
        .route(&format!("{ROOT}/softwaremodules/{{module}}/artifacts/{{file}}"), get(artifact))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(crate::api::log_request))
        .with_state(DdiState { app: state, ddi })
}

#[derive(Clone)]
struct DdiState {
    app: AppState,
    ddi: Arc<Ddi>,
}

/// `config.polling.sleep`: `HH:MM:SS`.
#[must_use]
pub fn polling_sleep(poll: Duration) -> String {
    let s = poll.as_secs().min(99 * 3600 + 59 * 60 + 59);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Which device is calling, after the tenant, the controller id and the credentials are
/// checked: a client certificate (its common name must be the controller id), else a
/// `TargetToken` for that controller id, else the `GatewayToken`.
async fn authenticate(
    s: &DdiState,
    caller: &Caller,
    headers: &HeaderMap,
    tenant: &str,
    controller: &str,
) -> Result<DeviceId, ApiError> {
    if !tenant.eq_ignore_ascii_case(&s.ddi.config.tenant) {
        return Err(ApiError::NotFound(format!("no tenant {:?}", printable(tenant))));
    }
    if controller.bytes().all(|b| b == b'.') {
        return Err(ApiError::InvalidRequest("controllerId: dots only".to_owned()));
    }
    let device =
        DeviceId::parse(controller).map_err(|e| ApiError::InvalidRequest(format!("controllerId: {}", e.problem)))?;
    if caller.0.as_ref().is_some_and(|p| p.client.is_some()) {
        return crate::api::device::identify(DeviceIdSource::ClientCertificate, caller, Some(device.as_str())).map_err(
            |e| match e {
                ApiError::Forbidden(m) if m.contains("does not match") => {
                    ApiError::Forbidden("the controllerId is not the client certificate's device id".to_owned())
                }
                other => other,
            },
        );
    }
    let Some(authorization) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::DeviceIdentityRequired(
            "a client certificate, Authorization: TargetToken or Authorization: GatewayToken is required",
        ));
    };
    let (scheme, presented) = authorization.trim().split_once(' ').unwrap_or((authorization, ""));
    let presented = presented.trim();
    let presented_digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    if scheme.eq_ignore_ascii_case("TargetToken") {
        let stored = s.app.store.target_token(&device).await?;
        // An unknown device is compared against nothing that can match, in the same time.
        let stored = stored.and_then(|hex| decode_digest(&hex)).unwrap_or([0xff; 32]);
        if !presented.is_empty() && bool::from(presented_digest.ct_eq(&stored)) {
            return Ok(device);
        }
        return Err(ApiError::DeviceIdentityRequired("the target token is not this controller's"));
    }
    if scheme.eq_ignore_ascii_case("GatewayToken") {
        if s.ddi.config.gateway.as_ref().is_some_and(|g| g.verify(presented)) {
            return Ok(device);
        }
        return Err(ApiError::DeviceIdentityRequired("the gateway token is not valid"));
    }
    Err(ApiError::DeviceIdentityRequired("Authorization must be TargetToken or GatewayToken"))
}

/// Takes one of the authenticated device's `kind` tokens from the listener's per-device rate
/// limits (a poll counts as a check-in; feedback and configData as events): the same buckets
/// as its native requests when it has a certificate. Keyed on the id authentication proved, so
/// nobody can spend another device's tokens. No limits outside a listener (router tests).
fn rate(caller: &Caller, kind: Rated, device: &DeviceId) -> Result<(), ApiError> {
    match caller.0.as_ref().and_then(|p| p.rates.as_ref()) {
        Some(rates) => rates.take(kind, device.as_str()),
        None => Ok(()),
    }
}

fn decode_digest(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `s` for an error message: control characters escaped, at most 64 characters.
fn printable(s: &str) -> String {
    s.chars().take(64).flat_map(char::escape_debug).collect()
}

/// The action a device is offered now: the deployment and its release.
struct Offer {
    deployment: DeploymentRecord,
}

/// Records the device's contact and works out its open action: the deployment its check-in
/// assigns, if the device is told to install now or was told before and has not closed it.
async fn offer(s: &DdiState, caller: &Caller, device: &DeviceId) -> Result<Option<Offer>, ApiError> {
    let store = &s.app.store;
    let now = s.app.clock.now();
    // A DDI device reports nothing of its own: keep what the inventory has (the version
    // of its last successful action).
    let report = store.device(device).await?.map(|d| d.report).unwrap_or_default();
    let outcome = store.check_in(device, &report, &certificate_tags(caller), now).await?;
    let Some(assignment) = outcome.assignment else {
        return Ok(None);
    };
    let Some(action) = store.device_action(assignment.deployment, device).await? else {
        return Ok(None);
    };
    // hawkBit has no rollback: a DDI device is offered nothing for an aborted deployment
    // (beyond its cancel, which the poll sends first).
    if assignment.action == update_protocol::AssignmentAction::Rollback {
        return Ok(None);
    }
    let install = assignment.action == update_protocol::AssignmentAction::Install;
    if action.outcome.is_some() || !(install || action.told) {
        return Ok(None);
    }
    let Some(deployment) = store.deployment(assignment.deployment).await? else {
        return Ok(None);
    };
    Ok(Some(Offer { deployment }))
}

/// The device's tags from its client certificate (none for a token), as a native check-in
/// sets them.
fn certificate_tags(caller: &Caller) -> Vec<update_protocol::Tag> {
    caller.0.as_ref().and_then(|p| p.client.as_ref()).map(|c| c.tags.clone()).unwrap_or_default()
}

/// The scheme and authority links are built with: the request's authority (HTTP/2) or `Host`
/// (HTTP/1.1), checked, and `https` on a TLS connection.
fn base_url(caller: &Caller, uri: &Uri, headers: &HeaderMap) -> Result<String, ApiError> {
    let host = match uri.authority() {
        Some(a) => a.as_str(),
        None => headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or(""),
    };
    let valid = !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    if !valid {
        return Err(ApiError::InvalidRequest("Host: missing or not a host name".to_owned()));
    }
    let tls = caller.0.as_ref().is_some_and(|p| p.tls);
    Ok(format!("{}://{host}", if tls { "https" } else { "http" }))
}

fn link(href: String) -> Value {
    json!({"href": href})
}

/// `GET /{tenant}/controller/v1/{controllerId}`: the root poll.
async fn poll(
    State(s): State<DdiState>,
    caller: Caller,
    uri: Uri,
    headers: HeaderMap,
    Path((tenant, controller)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let device = authenticate(&s, &caller, &headers, &tenant, &controller).await?;
    rate(&caller, Rated::CheckIn, &device)?;
    let base = base_url(&caller, &uri, &headers)?;
    let mut links = serde_json::Map::new();
    // A cancel first, as hawkBit does: the device stops (or says it cannot) before anything new.
    let cancel = s.app.store.pending_cancel(&device).await?;
    if let Some(id) = cancel {
        links.insert(
            "cancelAction".to_owned(),
            link(format!("{base}/{tenant}/controller/v1/{device}/cancelAction/{id}")),
        );
    } else if let Some(offer) = offer(&s, &caller, &device).await? {
        let d = &offer.deployment;
        // `c` changes with the action's content, as hawkBit's does (clients may cache on it).
        let digest = Sha256::digest(format!("{}:{}:{}", d.id, d.release.target, d.release.version).as_bytes());
        let c: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        links.insert(
            "deploymentBase".to_owned(),
            link(format!("{base}/{tenant}/controller/v1/{device}/deploymentBase/{}?c={c}", d.id)),
        );
    }
    // Ask for the device's attributes until it has given some (hawkBit asks when they are
    // missing); SWUpdate sends its `identify` settings.
    if s.app.store.attributes(&device).await?.is_empty() {
        links.insert("configData".to_owned(), link(format!("{base}/{tenant}/controller/v1/{device}/configData")));
    }
    tracing::debug!(%device, offered = links.contains_key("deploymentBase"), cancel, "ddi poll");
    Ok(Json(json!({
        "config": {"polling": {"sleep": polling_sleep(s.ddi.config.poll)}},
        "_links": links,
    })))
}

fn parse_id(what: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::InvalidRequest(format!("{what}: {:?} is not a positive number", printable(raw))))
}

/// The device's open action `id`, or 404.
async fn open_action(s: &DdiState, caller: &Caller, device: &DeviceId, id: i64) -> Result<Offer, ApiError> {
    match offer(s, caller, device).await? {
        Some(o) if o.deployment.id == id => Ok(o),
        _ => Err(ApiError::NotFound(format!("no open action {id} for {device}"))),
    }
}

/// The file name the artifact is listed under: the target's last path segment.
fn artifact_name(target: &str) -> &str {
    target.rsplit('/').next().unwrap_or(target)
}

/// `GET …/deploymentBase/{actionId}`: what to install.
async fn deployment_base(
    State(s): State<DdiState>,
    caller: Caller,
    uri: Uri,
    headers: HeaderMap,
    Path((tenant, controller, action)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let device = authenticate(&s, &caller, &headers, &tenant, &controller).await?;
    let id = parse_id("actionId", &action)?;
    let base = base_url(&caller, &uri, &headers)?;
    let offer = open_action(&s, &caller, &device, id).await?;
    let release = &offer.deployment.release;
    let hashes = artifact_hashes(&s, &release.target).await?;
    let file = artifact_name(&release.target);
    let href = format!("{base}/{tenant}/controller/v1/{device}/softwaremodules/{}/artifacts/{file}", release.id);
    let links =
        if base.starts_with("https:") { json!({"download": link(href)}) } else { json!({"download-http": link(href)}) };
    Ok(Json(json!({
        "id": id.to_string(),
        "deployment": {
            "download": "forced",
            "update": "forced",
            "chunks": [{
                "part": "os",
                "version": release.version,
                "name": release.target,
                "artifacts": [{
                    "filename": file,
                    "hashes": {"sha1": hashes.sha1, "md5": hashes.md5, "sha256": hashes.sha256},
                    "size": hashes.length,
                    "_links": links,
                }],
            }],
        },
    })))
}

/// The hashes of a release's target file, computed once per file version; its length and
/// SHA-256 must be what the targets metadata signs.
async fn artifact_hashes(s: &DdiState, target: &str) -> Result<ArtifactHashes, ApiError> {
    use std::os::unix::fs::MetadataExt;
    let file =
        s.app.repo.target_file(target).await.map_err(ApiError::internal)?.ok_or_else(|| {
            ApiError::internal(format!("the release's target {target:?} has no file in the repository"))
        })?;
    let meta = tokio::fs::metadata(&file.path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot stat {}: {e}", file.path.display())))?;
    let version = FileVersion {
        path: file.path.clone(),
        inode: meta.ino(),
        length: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    };
    let cached = s.ddi.hashes.lock().unwrap_or_else(PoisonError::into_inner).get(&version).cloned();
    let hashes = match cached {
        Some(h) => h,
        None => {
            let path = file.path.clone();
            let h = tokio::task::spawn_blocking(move || hash_file(&path))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
            let mut cache = s.ddi.hashes.lock().unwrap_or_else(PoisonError::into_inner);
            // Old versions of files go: a long-running server keeps one entry per target.
            cache.retain(|k, _| k.path != version.path);
            cache.insert(version, h.clone());
            h
        }
    };
    if hashes.length != file.length || hashes.sha256 != file.sha256 {
        return Err(ApiError::internal(format!(
            "{} is not the target {target:?} the metadata signs (length {} vs {}, or its SHA-256 differs)",
            file.path.display(),
            hashes.length,
            file.length
        )));
    }
    Ok(hashes)
}

fn hash_file(path: &std::path::Path) -> Result<ArtifactHashes, String> {
    use sha1::Digest as _;
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let (mut sha1, mut md5, mut sha256) = (sha1::Sha1::new(), md5::Md5::new(), Sha256::new());
    let mut buf = vec![0u8; 256 * 1024];
    let mut length = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        sha1.update(chunk);
        md5.update(chunk);
        sha256.update(chunk);
        length += n as u64;
    }
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Ok(ArtifactHashes {
        sha1: hex(&sha1.finalize()),
        md5: hex(&md5.finalize()),
        sha256: hex(&sha256.finalize()),
        length,
    })
}

/// `GET|HEAD …/softwaremodules/{moduleId}/artifacts/{fileName}`: the release's target, with
/// byte ranges. The module id is the release id; only the device's open action's release is
/// served.
async fn artifact(
    State(s): State<DdiState>,
    caller: Caller,
    method: Method,
    headers: HeaderMap,
    Path((tenant, controller, module, file)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let device = authenticate(&s, &caller, &headers, &tenant, &controller).await?;
    let module = parse_id("softwareModuleId", &module)?;
    let not_found =
        || ApiError::NotFound(format!("no artifact {:?} of module {module} for {device}", printable(&file)));
    let Some(offer) = offer(&s, &caller, &device).await? else {
        return Err(not_found());
    };
    let release = &offer.deployment.release;
    if release.id != module || artifact_name(&release.target) != file {
        return Err(not_found());
    }
    let target = s.app.repo.target_file(&release.target).await.map_err(ApiError::internal)?.ok_or_else(not_found)?;
    crate::repo::send_file(&target.path, &format!("artifact {file}"), &method, &headers).await
}

/// A feedback body (hawkBit's `DdiActionFeedback`); unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub struct Feedback {
    /// The action id: a number (SWUpdate) or a string (hawkBit's own examples). Optional; when
    /// present it must be the path's.
    #[serde(default)]
    pub id: Option<Value>,
    /// The status.
    pub status: FeedbackStatus,
}

/// `status` of a feedback.
#[derive(Debug, Deserialize)]
pub struct FeedbackStatus {
    /// `closed`, `proceeding`, `canceled`, `scheduled`, `rejected`, `resumed`, `downloaded`,
    /// `download`.
    pub execution: String,
    /// The result.
    pub result: FeedbackResult,
    /// Free text lines (SWUpdate: its log lines).
    #[serde(default)]
    pub details: Vec<String>,
}

/// `status.result` of a feedback.
#[derive(Debug, Deserialize)]
pub struct FeedbackResult {
    /// `success`, `failure` or `none`.
    pub finished: String,
    /// Chunks done (`cnt`) of (`of`).
    #[serde(default)]
    pub progress: Option<Progress>,
}

/// `status.result.progress`.
#[derive(Debug, Deserialize)]
pub struct Progress {
    /// Done.
    pub cnt: u64,
    /// Of.
    pub of: u64,
}

/// The event a feedback becomes, or why it is refused:
///
/// | execution | finished | event |
/// |---|---|---|
/// | `closed` | `success` | `committed` |
/// | `closed` | `failure` | `failed` |
/// | `rejected` | any | `rejected` (stored, not counted: hawkBit keeps the action open) |
/// | `proceeding`, `scheduled`, `resumed`, `download`, `downloaded` | any | `installed` when `progress.cnt == progress.of > 0`, else `downloading` |
///
/// `closed` with `none`, `canceled` (the answer to a cancel goes to
/// [`cancel_feedback_event`]) and unknown words are refused.
///
/// # Errors
/// Why the feedback is refused (answered 400).
pub fn feedback_event(status: &FeedbackStatus) -> Result<EventKind, String> {
    let finished = status.result.finished.as_str();
    if !matches!(finished, "success" | "failure" | "none") {
        return Err(format!("status.result.finished: {:?} is not success, failure or none", printable(finished)));
    }
    match status.execution.as_str() {
        "closed" => match finished {
            "success" => Ok(EventKind::Committed),
            "failure" => Ok(EventKind::Failed),
            _ => Err("status.result.finished: a closed action is a success or a failure".to_owned()),
        },
        // "Cannot be fulfilled at this point in time": the action stays open (a device that
        // never will sends closed/failure).
        "rejected" => Ok(EventKind::from_name("rejected")),
        "proceeding" | "scheduled" | "resumed" | "download" | "downloaded" => Ok(match &status.result.progress {
            Some(p) if p.of > 0 && p.cnt == p.of => EventKind::Installed,
            _ => EventKind::Downloading,
        }),
        "canceled" => {
            Err("status.execution: canceled answers a cancelAction: post it to …/cancelAction/ID/feedback".to_owned())
        }
        other => Err(format!("status.execution: {:?} is not a DDI execution status", printable(other))),
    }
}

/// The event reason from a feedback: `execution/finished`, then the details one per line,
/// cut to the longest reason an event may have.
#[must_use]
pub fn feedback_reason(status: &FeedbackStatus) -> String {
    let mut reason = format!("hawkBit feedback {}/{}", status.execution, status.result.finished);
    if let Some(p) = &status.result.progress {
        reason.push_str(&format!(" ({} of {})", p.cnt, p.of));
    }
    for line in status.details.iter().take(MAX_DETAILS) {
        reason.push('\n');
        reason.push_str(line);
    }
    const CUT: &str = "\n[cut]";
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON - CUT.len();
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push_str(CUT);
    }
    reason
}

/// `POST …/deploymentBase/{actionId}/feedback`: one step of the action, stored as an event
/// and counted for the deployment's wave.
async fn feedback(
    State(s): State<DdiState>,
    caller: Caller,
    headers: HeaderMap,
    Path((tenant, controller, action)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Feedback>,
) -> Result<StatusCode, ApiError> {
    let device = authenticate(&s, &caller, &headers, &tenant, &controller).await?;
    rate(&caller, Rated::Event, &device)?;
    let id = parse_id("actionId", &action)?;
    check_feedback_id(body.id.as_ref(), id)?;
    let kind = feedback_event(&body.status).map_err(ApiError::InvalidRequest)?;
    let store = &s.app.store;
    let Some(held) = store.device_action(id, &device).await?.filter(|a| a.told) else {
        return Err(ApiError::NotFound(format!("no action {id} for {device}")));
    };
    if let Some(outcome) = held.outcome {
        let how = if outcome == ActionOutcome::Succeeded { "succeeded" } else { "failed" };
        return Err(ApiError::Conflict(format!("action {id} is closed: it {how}")));
    }
    if held.cancel_answer == Some(CancelAnswer::Canceled) {
        return Err(ApiError::Conflict(format!("action {id} is closed: it was canceled")));
    }
    let release = store
        .deployment(id)
        .await?
        .map(|d| d.release)
        .ok_or_else(|| ApiError::NotFound(format!("no action {id} for {device}")))?;
    let now = s.app.clock.now();
    let event = feedback_as_event(kind.clone(), &release.version, &body.status, id, now)?;
    let seq = store.append_event(&device, &event, now).await?;
    if kind == EventKind::Committed {
        // The inventory shows what the device now runs.
        let mut report: Report = store.device(&device).await?.map(|d| d.report).unwrap_or_default();
        report.version = Some(release.version.clone());
        store.check_in(&device, &report, &certificate_tags(&caller), now).await?;
    }
    tracing::info!(%device, action = id, kind = kind.as_str(), seq, "ddi feedback");
    Ok(StatusCode::OK)
}

/// `GET …/cancelAction/{actionId}`: the cancel of an aborted deployment the device was told to
/// install (`stopId` is the action to stop: the same id).
async fn cancel_action(
    State(s): State<DdiState>,
    caller: Caller,
    headers: HeaderMap,
    Path((tenant, controller, action)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let device = authenticate(&s, &caller, &headers, &tenant, &controller).await?;
    let id = parse_id("actionId", &action)?;
    if s.app.store.pending_cancel(&device).await? != Some(id) {
        return Err(ApiError::NotFound(format!("no cancel of action {id} for {device}")));
    }
    Ok(Json(json!({"id": id.to_string(), "cancelAction": {"stopId": id.to_string()}})))
}

/// The event a cancel feedback becomes and the answer it gives, or why it is refused:
///
/// | execution | finished | event | answer |
/// |---|---|---|---|
/// | `closed`, `canceled` | `success`, `none` (`canceled` only) | `canceled` | the device stopped: the action is closed |
/// | `closed` | `failure` | `cancel-rejected` | it could not stop: the action stays open |
/// | `rejected` | any | `cancel-rejected` | it will not stop: the action stays open |
/// | `proceeding`, `scheduled`, `resumed`, `download`, `downloaded` | any | `canceling` | none yet |
///
/// # Errors
/// Why the feedback is refused (answered 400).
pub fn cancel_feedback_event(status: &FeedbackStatus) -> Result<(EventKind, Option<CancelAnswer>), String> {
    let finished = status.result.finished.as_str();
    if !matches!(finished, "success" | "failure" | "none") {
        return Err(format!("status.result.finished: {:?} is not success, failure or none", printable(finished)));
    }
    let canceled = || (EventKind::from_name("canceled"), Some(CancelAnswer::Canceled));
    let rejected = || (EventKind::from_name("cancel-rejected"), Some(CancelAnswer::Rejected));
    match (status.execution.as_str(), finished) {
        ("closed", "success") | ("canceled", "success" | "none") => Ok(canceled()),
        ("closed", "failure") | ("rejected", _) => Ok(rejected()),
        ("closed", _) => Err("status.result.finished: a closed cancel is a success or a failure".to_owned()),
        ("canceled", _) => {
            Err("status.result.finished: canceled is a success; a cancel that failed is closed/failure".to_owned())
        }
        ("proceeding" | "scheduled" | "resumed" | "download" | "downloaded", _) => {
            Ok((EventKind::from_name("canceling"), None))
        }
        (other, _) => Err(format!("status.execution: {:?} is not a DDI execution status", printable(other))),
    }
}

/// `POST …/cancelAction/{actionId}/feedback`: the device's answer to the cancel (or a step
/// before it), stored as an event of the device; counted for no wave (the deployment is
/// aborted).
async fn cancel_feedback(
    State(s): State<DdiState>,
    caller: Caller,
    headers: HeaderMap,
    Path((tenant, controller, action)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Feedback>,
) -> Result<StatusCode, ApiError> {
    let device = authenticate(&s, &caller, &headers, &tenant, &controller).await?;
    rate(&caller, Rated::Event, &device)?;
    let id = parse_id("actionId", &action)?;
    check_feedback_id(body.id.as_ref(), id)?;
    let (kind, answer) = cancel_feedback_event(&body.status).map_err(ApiError::InvalidRequest)?;
    let store = &s.app.store;
    let release = store
        .deployment(id)
        .await?
        .map(|d| d.release)
        .ok_or_else(|| ApiError::NotFound(format!("no cancel of action {id} for {device}")))?;
    let now = s.app.clock.now();
    let event = feedback_as_event(kind.clone(), &release.version, &body.status, id, now)?;
    let Some(seq) = store.answer_cancel(id, &device, answer, &event, now).await? else {
        return Err(ApiError::NotFound(format!("no cancel of action {id} for {device}")));
    };
    tracing::info!(%device, action = id, kind = kind.as_str(), seq, "ddi cancel feedback");
    Ok(StatusCode::OK)
}

/// A feedback's `id`, when present, must be the path's action id (a number, or its text).
fn check_feedback_id(body_id: Option<&Value>, id: i64) -> Result<(), ApiError> {
    let same = match body_id {
        None => true,
        Some(Value::Number(n)) => n.as_i64() == Some(id),
        Some(Value::String(t)) => t.is_empty() || t.parse::<i64>().ok() == Some(id),
        Some(_) => false,
    };
    if same { Ok(()) } else { Err(ApiError::InvalidRequest(format!("id: the body names another action than {id}"))) }
}

/// The event a feedback is stored as: the release's version, the deployment, the server's
/// time (the body's is local time without a zone) and [`feedback_reason`].
fn feedback_as_event(
    kind: EventKind,
    version: &str,
    status: &FeedbackStatus,
    deployment: i64,
    now: time::OffsetDateTime,
) -> Result<update_protocol::CheckedEvent, ApiError> {
    let time = now.format(&time::format_description::well_known::Rfc3339).map_err(ApiError::internal)?;
    Event {
        kind,
        version: Some(version.to_owned()),
        reason: Some(feedback_reason(status)),
        time,
        deployment: Some(deployment),
    }
    .check()
    .map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// A configData body: `data` is a map of attribute names to values; `mode` says what it does
/// to the stored ones (`merge`, the default; `replace`; `remove`).
#[derive(Debug, Deserialize)]
struct ConfigData {
    #[serde(default)]
    data: HashMap<String, String>,
    #[serde(default)]
    mode: Option<String>,
}

/// `PUT …/configData`: the device's attributes, checked (at most 100 entries of text without
/// control characters, names of 1 to 256 bytes, values up to 256) and stored; a device holds
/// at most [`MAX_ATTRIBUTES`] (409 beyond, nothing changed).
async fn config_data(
    State(s): State<DdiState>,
    caller: Caller,
    headers: HeaderMap,
    Path((tenant, controller)): Path<(String, String)>,
    JsonBody(body): JsonBody<ConfigData>,
) -> Result<StatusCode, ApiError> {
    let device = authenticate(&s, &caller, &headers, &tenant, &controller).await?;
    rate(&caller, Rated::Event, &device)?;
    let (mode, data) = check_config_data(body)?;
    let held = s.app.store.set_attributes(&device, mode, &data, s.app.clock.now()).await?;
    tracing::info!(%device, attributes = data.len(), held, "ddi configData");
    Ok(StatusCode::OK)
}

/// The mode and the attributes, sorted by name; or why they are refused (400).
fn check_config_data(body: ConfigData) -> Result<(AttributeMode, Vec<(String, String)>), ApiError> {
    let mode = match body.mode.as_deref() {
        None | Some("merge") => AttributeMode::Merge,
        Some("replace") => AttributeMode::Replace,
        Some("remove") => AttributeMode::Remove,
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!(
                "mode: {:?} is not merge, replace or remove",
                printable(other)
            )));
        }
    };
    if body.data.len() > MAX_ATTRIBUTES {
        return Err(ApiError::InvalidRequest(format!("data: at most {MAX_ATTRIBUTES} attributes")));
    }
    for (k, v) in &body.data {
        if k.is_empty() || k.len() > 256 || v.len() > 256 || k.chars().chain(v.chars()).any(char::is_control) {
            return Err(ApiError::InvalidRequest(
                "data: names of 1 to 256 bytes and values of at most 256, without control characters".to_owned(),
            ));
        }
    }
    let mut data: Vec<(String, String)> = body.data.into_iter().collect();
    data.sort();
    Ok((mode, data))
}

/// The DDI bodies' parsing and checks without a store (`crate::fuzzing`): whether `body` was
/// accepted as a feedback (its event included) and as a configData body.
pub(crate) fn parse_bodies(body: &[u8]) -> usize {
    let feedback = Json::<Feedback>::from_bytes(body).ok().and_then(|Json(f)| {
        // A deployment's feedback or a cancel's: either mapping must accept it.
        let kind = feedback_event(&f.status).ok().or_else(|| cancel_feedback_event(&f.status).ok().map(|(k, _)| k))?;
        let reason = feedback_reason(&f.status);
        let event = Event {
            kind,
            version: None,
            reason: Some(reason),
            time: "2026-03-01T10:00:00Z".to_owned(),
            deployment: Some(1),
        };
        event.check().ok()
    });
    let config = Json::<ConfigData>::from_bytes(body).ok().and_then(|Json(c)| check_config_data(c).ok());
    usize::from(feedback.is_some()) + usize::from(config.is_some())
}

/// A new target token: 32 random bytes as 64 hex digits, and its digest (what the store keeps).
///
/// # Errors
/// The system has no randomness to give.
pub fn new_target_token() -> Result<(String, String), String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok((token.clone(), token_digest(&token)))
}

/// The digest the store keeps of a target token (lowercase hex SHA-256).
#[must_use]
pub fn token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(execution: &str, finished: &str, progress: Option<(u64, u64)>, details: &[&str]) -> FeedbackStatus {
        FeedbackStatus {
            execution: execution.into(),
            result: FeedbackResult {
                finished: finished.into(),
                progress: progress.map(|(cnt, of)| Progress { cnt, of }),
            },
            details: details.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn feedback_maps_to_events() {
        let e = |x, f, p| feedback_event(&status(x, f, p, &[]));
        assert_eq!(e("closed", "success", None), Ok(EventKind::Committed));
        assert_eq!(e("closed", "failure", Some((0, 1))), Ok(EventKind::Failed));
        assert_eq!(e("rejected", "none", None), Ok(EventKind::Unknown("rejected".to_owned())));
        assert_eq!(e("proceeding", "none", Some((0, 1))), Ok(EventKind::Downloading));
        assert_eq!(e("proceeding", "none", Some((0, 0))), Ok(EventKind::Downloading));
        assert_eq!(e("proceeding", "none", Some((1, 1))), Ok(EventKind::Installed));
        assert_eq!(e("downloaded", "none", None), Ok(EventKind::Downloading));
        assert!(e("closed", "none", None).is_err());
        assert!(e("canceled", "success", None).is_err());
        assert!(e("exploded", "none", None).is_err());
        assert!(e("closed", "maybe", None).is_err());
    }

    #[test]
    fn cancel_feedback_maps_to_events_and_answers() {
        let e = |x, f| {
            cancel_feedback_event(&status(x, f, None, &[]))
                .map(|(k, a)| (k.as_str().to_owned(), a.map(CancelAnswer::as_str)))
        };
        let ok = |k: &str, a: Option<&'static str>| Ok((k.to_owned(), a));
        // What SWUpdate 2022.12 sends: closed/success, "cancellation acknowledged."
        assert_eq!(e("closed", "success"), ok("canceled", Some("canceled")));
        assert_eq!(e("canceled", "success"), ok("canceled", Some("canceled")));
        assert_eq!(e("canceled", "none"), ok("canceled", Some("canceled")));
        assert_eq!(e("closed", "failure"), ok("cancel-rejected", Some("rejected")));
        assert_eq!(e("rejected", "none"), ok("cancel-rejected", Some("rejected")));
        assert_eq!(e("proceeding", "none"), ok("canceling", None));
        assert!(e("closed", "none").is_err());
        assert!(e("canceled", "failure").is_err(), "a failed cancel is closed/failure or rejected");
        assert!(e("exploded", "none").is_err());
        assert!(e("closed", "maybe").is_err());
    }

    #[test]
    fn reasons_are_cut_to_the_event_limit() {
        let long = "é".repeat(3000);
        let r = feedback_reason(&status("proceeding", "none", Some((0, 0)), &[&long, "next"]));
        assert!(r.len() <= MAX_REASON && r.ends_with("\n[cut]"), "{}", r.len());
        assert!(r.starts_with("hawkBit feedback proceeding/none (0 of 0)\né"));
        let short = feedback_reason(&status("closed", "success", None, &["Update Installed."]));
        assert_eq!(short, "hawkBit feedback closed/success\nUpdate Installed.");
    }

    #[test]
    fn polling_sleep_is_hh_mm_ss() {
        assert_eq!(polling_sleep(Duration::from_secs(1)), "00:00:01");
        assert_eq!(polling_sleep(Duration::from_secs(300)), "00:05:00");
        assert_eq!(polling_sleep(Duration::from_secs(3 * 3600 + 61)), "03:01:01");
        assert_eq!(polling_sleep(Duration::from_secs(1_000_000)), "99:59:59");
    }

    #[test]
    fn digests_decode_and_tokens_are_fresh() {
        let (a, da) = new_target_token().unwrap();
        let (b, _) = new_target_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_digest(&a), da);
        assert!(decode_digest(&da).is_some());
        assert!(decode_digest("zz").is_none());
        assert!(decode_digest(&"g".repeat(64)).is_none());
    }
}
