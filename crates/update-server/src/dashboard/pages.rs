//! The dashboard's pages and forms.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use update_protocol::rollout::{DeploymentState, NewDeployment, Wave};
use update_protocol::{DeviceId, EventKind, Tag};

use super::html::{self, RatePoint, csrf_field, esc, path_segment};
use super::{
    DashState, LOGIN_COOKIE, LoggedIn, PageError, SESSION_COOKIE, cookie, login_cookie, logout_cookie, random_token,
    same_secret, session_cookie,
};
use crate::api::operator::actor;
use crate::operator::{OperatorAccess, Role};
use crate::store::{Control, DeploymentRecord, DeviceRecord, StoredEvent, VersionSummary};

/// A device that checked in within this long is shown as online.
const ONLINE_WITHIN: time::Duration = time::Duration::minutes(10);
/// Most events the device page shows (the newest).
const TIMELINE: usize = 200;
/// Events read per store call.
const EVENT_PAGE: u32 = 1000;
/// Devices in one page of the overview's table.
const DEVICE_PAGE: u32 = 100;

type Page = Result<Response, PageError>;

fn html_page(title: &str, who: &LoggedIn, refresh: Option<u32>, body: &str) -> Response {
    Html(html::page(title, Some((&who.operator, &who.csrf)), refresh, body)).into_response()
}

/// RFC 3339 to the second (UTC as stored).
fn when(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn opt(v: Option<&String>) -> String {
    v.map_or_else(|| "—".to_owned(), |s| esc(s))
}

fn slot_state(s: update_protocol::SlotState) -> &'static str {
    match s {
        update_protocol::SlotState::Good => "good",
        update_protocol::SlotState::Trying => "trying",
        update_protocol::SlotState::Bad => "bad",
        update_protocol::SlotState::Unknown => "unknown",
    }
}

fn is_failure(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Failed | EventKind::RolledBack)
}

pub(crate) async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], html::STYLE)
}

// ---- login and logout ----

pub(crate) async fn login_form() -> Page {
    let nonce = random_token()?;
    let body = format!(
        "<form method=\"post\" action=\"/dashboard/login\" id=\"login\">{}\
         <label>Operator token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\" id=\"login-button\">Log in</button></form>",
        csrf_field(&nonce)
    );
    let mut r = Html(html::page("Log in", None, None, &body)).into_response();
    r.headers_mut().append(header::SET_COOKIE, login_cookie(&nonce));
    Ok(r)
}

/// Every field defaults to empty, so a form without its CSRF field is refused by the CSRF
/// check (403) rather than by the form parser.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoginForm {
    token: String,
    csrf: String,
}

pub(crate) async fn login(State(s): State<DashState>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Page {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, expected) {
        return Err(PageError::forbidden("the login form has expired or did not come from this server; reload it"));
    }
    let operator = match &s.app.operator {
        OperatorAccess::Tokens(tokens) => tokens.authenticate(form.token.trim()),
        OperatorAccess::Disabled => None,
    };
    let Some(operator) = operator else {
        tracing::warn!("dashboard: login with an unknown token");
        return Err(PageError::Status(StatusCode::UNAUTHORIZED, "unknown token".to_owned()));
    };
    tracing::info!(operator = %operator.name, role = operator.role.as_str(), "dashboard: logged in");
    let id = s.dashboard.open(operator, s.app.clock.now())?;
    let mut r = Redirect::to("/dashboard").into_response();
    r.headers_mut().append(header::SET_COOKIE, session_cookie(&id));
    r.headers_mut().append(header::SET_COOKIE, login_cookie(""));
    Ok(r)
}

/// Every field defaults to empty, so a form without its CSRF field is refused by the CSRF
/// check (403) rather than by the form parser.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct CsrfForm {
    csrf: String,
}

pub(crate) async fn logout(
    State(s): State<DashState>,
    who: LoggedIn,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    who.check_csrf(&form.csrf)?;
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        s.dashboard.close(id);
    }
    tracing::info!(operator = %who.operator.name, "dashboard: logged out");
    let mut r = Redirect::to("/dashboard/login").into_response();
    r.headers_mut().append(header::SET_COOKIE, logout_cookie());
    Ok(r)
}

// ---- fleet ----

fn failing(d: &DeviceRecord) -> bool {
    d.last_event.as_ref().is_some_and(|e| is_failure(&e.kind))
}

/// `?after=ID`: the device table's page starts after this device.
#[derive(Debug, Deserialize)]
pub(crate) struct OverviewQuery {
    after: Option<String>,
}

/// The fleet: counts by version from the database, and one page of the device table
/// ([`DEVICE_PAGE`] devices, with a link to the next), so the page costs the same for ten
/// devices and for a hundred thousand.
pub(crate) async fn overview(State(s): State<DashState>, who: LoggedIn, Query(q): Query<OverviewQuery>) -> Page {
    let after = q.after.as_deref().map(DeviceId::parse).transpose().map_err(|e| PageError::bad(e.to_string()))?;
    let now = s.app.clock.now();
    let versions = s.app.store.version_summary(now - ONLINE_WITHIN).await?;
    let devices = s.app.store.devices_page(after.as_ref(), DEVICE_PAGE).await?;
    let online = |d: &DeviceRecord| d.last_checkin.is_some_and(|t| now - t <= ONLINE_WITHIN);
    let sum = |f: fn(&VersionSummary) -> u64| versions.iter().map(f).sum::<u64>();
    let mut body = format!(
        "<p id=\"summary\"><span id=\"total\">{}</span> devices · <span id=\"online\" class=\"ok\">{}</span> online \
         (checked in within {} min) · <span id=\"failing\" class=\"failing\">{}</span> failing (last event failed or rolled back)</p>",
        sum(|v| v.devices),
        sum(|v| v.online),
        ONLINE_WITHIN.whole_minutes(),
        sum(|v| v.failing),
    );
    body.push_str(
        "<h2>Versions</h2><table id=\"versions\"><tr><th>version</th><th>devices</th><th>online</th><th>failing</th></tr>",
    );
    for v in &versions {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            v.version.as_deref().map_or_else(|| "(unknown)".to_owned(), esc),
            v.devices,
            v.online,
            v.failing
        );
    }
    let _ = write!(
        body,
        "</table><h2>Devices</h2>{}<table id=\"devices\"><tr><th>device</th><th>version</th><th>last check-in</th>\
         <th>status</th><th>last event</th></tr>",
        after.as_ref().map_or_else(String::new, |a| format!(
            "<p>After {} · <a href=\"/dashboard\">first page</a></p>",
            esc(a.as_str())
        ))
    );
    for d in &devices {
        let status = match (online(d), failing(d)) {
            (_, true) => "<span class=\"failing\">failing</span>",
            (true, false) => "<span class=\"ok\">online</span>",
            (false, false) => "<span class=\"offline\">offline</span>",
        };
        let last = d.last_event.as_ref().map_or_else(String::new, |e| {
            format!("{} {}", esc(e.kind.as_str()), e.reason.as_deref().map(esc).unwrap_or_default())
        });
        let _ = write!(
            body,
            "<tr><td><a href=\"/dashboard/devices/{}\">{}</a></td><td>{}</td><td>{}</td><td>{status}</td><td>{last}</td></tr>",
            path_segment(d.id.as_str()),
            esc(d.id.as_str()),
            opt(d.report.version.as_ref()),
            d.last_checkin.map_or_else(|| "never".to_owned(), when),
        );
    }
    body.push_str("</table>");
    if devices.len() == DEVICE_PAGE as usize
        && let Some(last) = devices.last()
    {
        let _ = write!(
            body,
            "<p><a id=\"next\" href=\"/dashboard?after={}\">next {DEVICE_PAGE} devices</a></p>",
            path_segment(last.id.as_str())
        );
    }
    Ok(html_page("Fleet", &who, Some(30), &body))
}

async fn all_events(s: &DashState, id: &DeviceId) -> Result<Option<Vec<StoredEvent>>, PageError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let Some(page) = s.app.store.events(id, after, EVENT_PAGE).await? else { return Ok(None) };
        let Some(last) = page.last() else { break };
        after = last.seq;
        let full = page.len() == EVENT_PAGE as usize;
        out.extend(page);
        if !full {
            break;
        }
    }
    Ok(Some(out))
}

pub(crate) async fn device(State(s): State<DashState>, who: LoggedIn, Path(raw): Path<String>) -> Page {
    let id = DeviceId::parse(&raw).map_err(|e| PageError::bad(e.to_string()))?;
    let Some(d) = s.app.store.device(&id).await? else {
        return Err(PageError::not_found(format!("no device {raw}")));
    };
    let events = all_events(&s, &id).await?.unwrap_or_default();
    let r = &d.report;
    let mut body = format!(
        "<table id=\"device\"><tr><th>device</th><td>{}</td></tr><tr><th>compatible</th><td>{}</td></tr>\
         <tr><th>version</th><td>{}</td></tr><tr><th>booted slot</th><td>{}</td></tr><tr><th>primary slot</th><td>{}</td></tr>\
         <tr><th>first seen</th><td>{}</td></tr><tr><th>last check-in</th><td>{}</td></tr>\
         <tr><th>check-now pending</th><td>{}</td></tr></table>",
        esc(d.id.as_str()),
        opt(r.compatible.as_ref()),
        opt(r.version.as_ref()),
        opt(r.booted.as_ref()),
        opt(r.primary.as_ref()),
        when(d.first_seen),
        d.last_checkin.map_or_else(|| "never".to_owned(), when),
        if d.check_now_pending { "yes" } else { "no" },
    );
    body.push_str(
        "<h2>Slots and components</h2><table id=\"slots\"><tr><th>slot</th><th>state</th><th>version</th></tr>",
    );
    for slot in &r.slots {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&slot.name),
            slot_state(slot.state),
            opt(slot.version.as_ref())
        );
    }
    body.push_str("</table>");
    let attributes = s.app.store.attributes(&id).await?;
    if !attributes.is_empty() {
        // Reported by the device (hawkBit configData): escaped like every stored text.
        body.push_str("<h2>Attributes</h2><table id=\"attributes\"><tr><th>name</th><th>value</th></tr>");
        for (name, value) in &attributes {
            let _ = write!(body, "<tr><td>{}</td><td>{}</td></tr>", esc(name), esc(value));
        }
        body.push_str("</table>");
    }
    let _ = write!(
        body,
        "<h2>Event timeline</h2><p>{} events{}</p><table id=\"events\"><tr><th>received</th><th>device time</th>\
         <th>event</th><th>version</th><th>reason</th></tr>",
        events.len(),
        if events.len() > TIMELINE { format!(", the newest {TIMELINE} shown") } else { String::new() }
    );
    for e in events.iter().rev().take(TIMELINE) {
        let class = if is_failure(&e.kind) { " class=\"failing\"" } else { "" };
        let _ = write!(
            body,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(e.received),
            when(e.time),
            esc(e.kind.as_str()),
            opt(e.version.as_ref()),
            opt(e.reason.as_ref())
        );
    }
    body.push_str("</table>");
    Ok(html_page(&format!("Device {}", d.id.as_str()), &who, None, &body))
}

// ---- releases ----

pub(crate) async fn releases(State(s): State<DashState>, who: LoggedIn) -> Page {
    let releases = s.app.store.releases().await?;
    let mut body = String::from(
        "<p>Releases are signed repository targets registered with <code>POST /api/v1/releases</code> \
         (or <code>update-tool</code>).</p><table id=\"releases\"><tr><th>id</th><th>version</th><th>target</th><th>registered</th><th>by</th></tr>",
    );
    for r in &releases {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.id,
            esc(&r.version),
            esc(&r.target),
            when(r.created),
            esc(&r.created_by)
        );
    }
    body.push_str("</table>");
    Ok(html_page("Releases", &who, None, &body))
}

// ---- deployments ----

fn state_cell(d: &DeploymentRecord) -> String {
    let s = d.state.as_str();
    format!("<span class=\"state-{s}\" id=\"state\">{s}</span>")
}

fn wave_plan(w: &Wave) -> String {
    match w {
        Wave::Devices(n) => format!("{n} devices"),
        Wave::Percent(p) => format!("{p}%"),
    }
}

pub(crate) async fn deployments(State(s): State<DashState>, who: LoggedIn) -> Page {
    let list = s.app.store.deployments().await?;
    let mut body = String::from(
        "<table id=\"deployments\"><tr><th>id</th><th>release</th><th>tag</th><th>state</th><th>wave</th>\
         <th>devices</th><th>failed / attempted</th><th>created</th></tr>",
    );
    for d in &list {
        let (devices, attempted, failed) =
            d.waves.iter().fold((0, 0, 0), |(a, b, c), w| (a + w.devices, b + w.attempted, c + w.failed));
        let _ = write!(
            body,
            "<tr><td><a href=\"/dashboard/deployments/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{} of {}</td>\
             <td>{devices}</td><td>{failed} / {attempted}</td><td>{}</td></tr>",
            esc(&d.release.version),
            esc(d.tag.as_str()),
            state_cell(d),
            d.current_wave + 1,
            d.waves.len(),
            when(d.created),
            id = d.id,
        );
    }
    body.push_str("</table>");
    if who.operator.role >= Role::Operator {
        let releases = s.app.store.releases().await?;
        body.push_str(
            "<h2>Start a deployment</h2><form method=\"post\" action=\"/dashboard/deployments\" id=\"new-deployment\">",
        );
        body.push_str(&csrf_field(&who.csrf));
        body.push_str("<label>Release <select name=\"release\" id=\"release\">");
        for r in releases.iter().rev() {
            let _ = write!(body, "<option value=\"{}\">{} ({})</option>", r.id, esc(&r.version), esc(&r.target));
        }
        body.push_str(
            "</select></label><label>Device tag <input name=\"tag\" id=\"tag\" required></label>\
             <label>Waves (device counts and percentages, the last 100%) <input name=\"waves\" id=\"waves\" value=\"2, 50%, 100%\" required></label>\
             <label>Least seconds between waves <input name=\"min_wave_interval_secs\" id=\"interval\" value=\"3600\" required></label>\
             <label>Pause when failures exceed (%) <input name=\"max_failure_percent\" id=\"threshold\" value=\"10\" required></label>\
             <label><input type=\"checkbox\" name=\"rollback_on_abort\" id=\"rollback-on-abort\" value=\"on\"> Roll devices back when aborted</label>\
             <button type=\"submit\" id=\"start-deployment\">Start deployment</button></form>",
        );
    }
    Ok(html_page("Deployments", &who, None, &body))
}

/// Every field defaults to empty, so a form without its CSRF field is refused by the CSRF
/// check (403) rather than by the form parser.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct DeploymentForm {
    csrf: String,
    release: String,
    tag: String,
    waves: String,
    min_wave_interval_secs: String,
    max_failure_percent: String,
    /// A checkbox: `on` when ticked, absent otherwise.
    rollback_on_abort: String,
}

/// `"2, 50%, 100%"` → two canaries, then up to 50%, then everyone.
fn parse_waves(text: &str) -> Result<Vec<Wave>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| match w.strip_suffix('%') {
            Some(p) => p.trim().parse().map(Wave::Percent).map_err(|_| format!("wave {w:?}: a percentage 1 to 100")),
            None => {
                w.parse().map(Wave::Devices).map_err(|_| format!("wave {w:?}: a device count or a percentage like 50%"))
            }
        })
        .collect()
}

pub(crate) async fn create_deployment(
    State(s): State<DashState>,
    who: LoggedIn,
    Form(f): Form<DeploymentForm>,
) -> Page {
    who.check_csrf(&f.csrf)?;
    who.require(Role::Operator)?;
    let plan = NewDeployment {
        release: f.release.trim().parse().map_err(|_| PageError::bad("release: pick a release"))?,
        tag: Tag::parse(f.tag.trim()).map_err(|e| PageError::bad(e.to_string()))?,
        waves: parse_waves(&f.waves).map_err(PageError::bad)?,
        min_wave_interval_secs: f
            .min_wave_interval_secs
            .trim()
            .parse()
            .map_err(|_| PageError::bad("least seconds between waves: a whole number"))?,
        max_failure_percent: f
            .max_failure_percent
            .trim()
            .parse()
            .map_err(|_| PageError::bad("failure threshold: 0 to 100"))?,
        maintenance_window: None,
        rollback_on_abort: f.rollback_on_abort == "on",
    };
    plan.validate().map_err(|e| PageError::bad(e.to_string()))?;
    let d = s.app.store.create_deployment(&plan, &actor(&who.operator), s.app.clock.now()).await?;
    tracing::info!(deployment = d.id, release = d.release.id, tag = %d.tag, operator = %who.operator.name, "dashboard: deployment created");
    Ok(Redirect::to(&format!("/dashboard/deployments/{}", d.id)).into_response())
}

/// The deployment's failure rate over time: from the events of its tag's devices received
/// since it was created about its release's version (attempts: any update step; failures:
/// `failed` or `rolled-back`), per device, cumulative.
async fn failure_rate(s: &DashState, d: &DeploymentRecord) -> Result<Vec<RatePoint>, PageError> {
    let members = s.app.store.tag_members(&d.tag).await?;
    let mut steps: Vec<(OffsetDateTime, DeviceId, bool)> = Vec::new();
    for (id, _) in members {
        for e in all_events(s, &id).await?.unwrap_or_default() {
            let about_release = e.version.as_deref() == Some(d.release.version.as_str());
            let update_step = !matches!(e.kind, EventKind::Checking);
            if e.received >= d.created && about_release && update_step {
                steps.push((e.received, id.clone(), is_failure(&e.kind)));
            }
        }
    }
    steps.sort_by_key(|(t, _, _)| *t);
    let (mut attempted, mut failed) = (BTreeSet::new(), BTreeSet::new());
    let mut points = vec![RatePoint { secs: 0, percent: 0.0 }];
    for (t, id, failure) in steps {
        attempted.insert(id.clone());
        if failure {
            failed.insert(id);
        }
        #[allow(clippy::cast_precision_loss, reason = "device counts are far below 2^52")]
        let percent = failed.len() as f64 * 100.0 / attempted.len() as f64;
        points.push(RatePoint { secs: (t - d.created).whole_seconds(), percent });
    }
    Ok(points)
}

pub(crate) async fn deployment(State(s): State<DashState>, who: LoggedIn, Path(raw): Path<String>) -> Page {
    let id: i64 = raw.parse().map_err(|_| PageError::not_found(format!("no deployment {raw}")))?;
    let Some(d) = s.app.store.deployment(id).await? else {
        return Err(PageError::not_found(format!("no deployment {id}")));
    };
    let mut body = format!(
        "<table id=\"deployment\"><tr><th>release</th><td>{} ({})</td></tr><tr><th>tag</th><td>{}</td></tr>\
         <tr><th>state</th><td>{}</td></tr><tr><th>open wave</th><td>{} of {}</td></tr>\
         <tr><th>failure threshold</th><td>{}%</td></tr><tr><th>least time between waves</th><td>{} s</td></tr>\
         <tr><th>when aborted</th><td id=\"on-abort\">{}</td></tr><tr><th>created</th><td>{} by {}</td></tr></table>",
        esc(&d.release.version),
        esc(&d.release.target),
        esc(d.tag.as_str()),
        state_cell(&d),
        d.current_wave + 1,
        d.waves.len(),
        d.max_failure_percent,
        d.min_wave_interval_secs,
        if d.rollback_on_abort { "devices told to install roll back" } else { "devices keep what they installed" },
        when(d.created),
        esc(&d.created_by),
    );
    if let Some(reason) = &d.pause_reason {
        let _ = write!(body, "<p class=\"notice\" id=\"pause-reason\">Paused: {}</p>", esc(reason));
    }
    if who.operator.role >= Role::Operator {
        let actions: &[(&str, &str)] = match d.state {
            DeploymentState::Running => &[("pause", "Pause"), ("abort", "Abort")],
            DeploymentState::Paused => &[("resume", "Resume"), ("abort", "Abort")],
            DeploymentState::Aborted | DeploymentState::Unknown => &[],
        };
        for (action, label) in actions {
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/dashboard/deployments/{id}/{action}\" class=\"actions\">{}\
                 <button type=\"submit\" id=\"{action}\">{label}</button></form>",
                csrf_field(&who.csrf)
            );
        }
    }
    body.push_str(
        "<h2>Waves</h2><table id=\"waves\"><tr><th>wave</th><th>plan</th><th>devices</th><th>assigned</th>\
         <th>attempted</th><th>succeeded</th><th>failed</th><th>progress</th></tr>",
    );
    for (i, w) in d.waves.iter().enumerate() {
        let pct = |n: u32| n.saturating_mul(100).checked_div(w.devices).unwrap_or(0);
        let open = if usize::try_from(d.current_wave).is_ok_and(|c| c == i) { " (open)" } else { "" };
        let _ = write!(
            body,
            "<tr><td>{}{open}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><progress max=\"100\" value=\"{}\" title=\"{}% failed\"></progress> {}%</td></tr>",
            i + 1,
            wave_plan(&w.plan),
            w.devices,
            w.assigned,
            w.attempted,
            w.succeeded,
            w.failed,
            pct(w.succeeded + w.failed),
            pct(w.failed),
            pct(w.succeeded + w.failed),
        );
    }
    body.push_str("</table><h2>Failure rate over time</h2>");
    body.push_str(&html::failure_chart(&failure_rate(&s, &d).await?, d.max_failure_percent));
    let refresh = (d.state == DeploymentState::Running).then_some(5);
    Ok(html_page(&format!("Deployment {id}"), &who, refresh, &body))
}

pub(crate) async fn control(
    State(s): State<DashState>,
    who: LoggedIn,
    Path((raw, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Page {
    who.check_csrf(&form.csrf)?;
    who.require(Role::Operator)?;
    let control = match action.as_str() {
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "abort" => Control::Abort,
        _ => return Err(PageError::not_found(format!("no action {action}"))),
    };
    let id: i64 = raw.parse().map_err(|_| PageError::not_found(format!("no deployment {raw}")))?;
    let d = s.app.store.control_deployment(id, control, &actor(&who.operator), s.app.clock.now()).await?;
    tracing::info!(deployment = id, ?control, operator = %who.operator.name, state = d.state.as_str(), "dashboard: deployment changed");
    Ok(Redirect::to(&format!("/dashboard/deployments/{id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves() {
        assert_eq!(parse_waves("2, 50%, 100%").unwrap(), vec![Wave::Devices(2), Wave::Percent(50), Wave::Percent(100)]);
        assert!(parse_waves("x").unwrap_err().contains("\"x\""));
        assert!(parse_waves("500%").is_err());
    }
}
