//! The operator dashboard under `/dashboard` (docs/dashboard.md): server-rendered HTML on the
//! same listener as the API, no script.
//!
//! # Security model
//! - **Login**: an operator token (the `--operator-tokens` / `--admin-token-file` ones),
//!   checked by [`OperatorTokens::authenticate`](crate::operator::OperatorTokens::authenticate)
//!   in constant time, becomes a **server-side session**: a random 256-bit id in a
//!   `__Host-update-session` cookie (`HttpOnly; Secure; SameSite=Strict; Path=/`), kept here
//!   only as its SHA-256, valid for [`SESSION_LIFETIME`] and removed by logout.
//! - **CSRF**: every form carries the session's random CSRF token in a hidden field, and every
//!   POST is refused (403) unless it matches (compared in constant time). The login form, used
//!   before there is a session, is a double submit: a random value in a short-lived
//!   `__Host-update-login` cookie and in the form.
//! - **Roles**: every page needs a session (any role); deployment changes need `operator`.
//! - **Client certificates give no access**: a device certificate never logs anyone in. With
//!   mutual TLS the listener then lets a browser without a certificate finish the handshake
//!   ([`ClientAuth::RequiredOutsideDashboard`](crate::tls::ClientAuth)), and [`app_with_dashboard`]
//!   refuses such a client on every route outside `/dashboard` before any handler runs.
//! - **Escaping**: every string on a page goes through [`html::esc`]; the content security
//!   policy allows no script at all.

pub mod html;
mod pages;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::AppState;
use crate::api::Caller;
use crate::error::ApiError;
use crate::operator::{Operator, Role};
use crate::store::StoreError;

/// How long a session lasts after login (no sliding renewal).
pub const SESSION_LIFETIME: time::Duration = time::Duration::hours(8);
/// How long a login form stays usable.
const LOGIN_FORM_LIFETIME_SECS: u32 = 600;
/// The session cookie (the `__Host-` prefix makes browsers insist on Secure, Path=/, no Domain).
pub const SESSION_COOKIE: &str = "__Host-update-session";
/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "__Host-update-login";
/// Most sessions held at once; the oldest is dropped beyond it.
const MAX_SESSIONS: usize = 10_000;

/// Whether routes outside the dashboard demand a client certificate at the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRoutes {
    /// The handshake already demands one (or TLS is not mutual): nothing more to check.
    AsTheListener,
    /// The listener lets clients without a certificate through (for browsers, with
    /// [`ClientAuth::RequiredOutsideDashboard`](crate::tls::ClientAuth)): every route outside
    /// `/dashboard` refuses them with 401 before any handler.
    RequireClientCertificate,
}

/// The dashboard's sessions.
pub struct Dashboard {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    device_routes: DeviceRoutes,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").field("device_routes", &self.device_routes).finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Session {
    operator: Operator,
    csrf: String,
    expires: OffsetDateTime,
}

/// A logged-in operator (the request's session).
#[derive(Clone)]
pub(crate) struct LoggedIn {
    pub(crate) operator: Operator,
    pub(crate) csrf: String,
}

impl Dashboard {
    /// No sessions yet.
    #[must_use]
    pub fn new(device_routes: DeviceRoutes) -> Self {
        Self { sessions: Mutex::new(HashMap::new()), device_routes }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session; returns its id (the cookie's value).
    fn open(&self, operator: Operator, now: OffsetDateTime) -> Result<String, ApiError> {
        let id = random_token()?;
        let csrf = random_token()?;
        let mut sessions = self.sessions();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(digest(&id), Session { operator, csrf, expires: now + SESSION_LIFETIME });
        Ok(id)
    }

    fn find(&self, id: &str, now: OffsetDateTime) -> Option<LoggedIn> {
        let key = digest(id);
        let mut sessions = self.sessions();
        match sessions.get(&key) {
            Some(s) if s.expires > now => Some(LoggedIn { operator: s.operator.clone(), csrf: s.csrf.clone() }),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    fn close(&self, id: &str) {
        self.sessions().remove(&digest(id));
    }

    /// How many sessions are open (expired ones included until the next login).
    #[must_use]
    pub fn open_sessions(&self) -> usize {
        self.sessions().len()
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 32 random bytes, hex.
fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("no randomness: {e}").into()))?;
    Ok(bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// Whether two secrets are equal, in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (digest(a), digest(b));
    a.ct_eq(&b).into()
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The dashboard's state: the app's and the sessions.
#[derive(Clone)]
pub(crate) struct DashState {
    pub(crate) app: AppState,
    pub(crate) dashboard: Arc<Dashboard>,
}

/// What goes wrong on a page: a status and a short message, shown as a page.
#[derive(Debug)]
pub(crate) enum PageError {
    /// 303 to the login page.
    LoginNeeded,
    Status(StatusCode, String),
}

impl PageError {
    pub(crate) fn forbidden(msg: impl Into<String>) -> Self {
        PageError::Status(StatusCode::FORBIDDEN, msg.into())
    }
    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        PageError::Status(StatusCode::BAD_REQUEST, msg.into())
    }
    pub(crate) fn not_found(msg: impl Into<String>) -> Self {
        PageError::Status(StatusCode::NOT_FOUND, msg.into())
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => PageError::Status(StatusCode::NOT_FOUND, m),
            StoreError::Conflict(m) => PageError::Status(StatusCode::CONFLICT, m),
            e => {
                tracing::error!(error = %e, "dashboard: store failed");
                PageError::Status(StatusCode::INTERNAL_SERVER_ERROR, "internal error (see the server log)".to_owned())
            }
        }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let response = e.into_response();
        PageError::Status(response.status(), "the request failed (see the server log)".to_owned())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::LoginNeeded => Redirect::to("/dashboard/login").into_response(),
            PageError::Status(status, message) => {
                let body = html::page(
                    status.canonical_reason().unwrap_or("Error"),
                    None,
                    None,
                    &format!(
                        "<p class=\"error\" id=\"error\">{}</p><p><a href=\"/dashboard\">Back to the dashboard</a></p>",
                        html::esc(&message)
                    ),
                );
                (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
            }
        }
    }
}

impl FromRequestParts<DashState> for LoggedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &DashState) -> Result<Self, Self::Rejection> {
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or(PageError::LoginNeeded)?;
        state.dashboard.find(id, state.app.clock.now()).ok_or(PageError::LoginNeeded)
    }
}

impl LoggedIn {
    /// Refuses a form whose CSRF field is not this session's token.
    pub(crate) fn check_csrf(&self, presented: &str) -> Result<(), PageError> {
        if same_secret(presented, &self.csrf) {
            Ok(())
        } else {
            tracing::warn!(operator = %self.operator.name, "dashboard: a form's CSRF token does not match its session");
            Err(PageError::forbidden(
                "the form's CSRF token does not match this session; reload the page and try again",
            ))
        }
    }

    /// Refuses an operator below `role`.
    pub(crate) fn require(&self, role: Role) -> Result<(), PageError> {
        if self.operator.role >= role {
            Ok(())
        } else {
            Err(PageError::forbidden(format!(
                "{} has the role {}; this needs {}",
                self.operator.name,
                self.operator.role.as_str(),
                role.as_str()
            )))
        }
    }
}

/// Security headers on every dashboard answer: no script, no framing, no caching.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Refuses a TLS client without a certificate (routes outside the dashboard, when the listener
/// lets such clients through).
async fn require_client_certificate(caller: Caller, request: Request, next: Next) -> Response {
    match &caller.0 {
        Some(peer) if peer.tls && peer.client.is_none() => ApiError::DeviceIdentityRequired(
            "this route needs a client certificate (only /dashboard is open without one)",
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// Every route of [`crate::app`] plus the dashboard under `/dashboard`.
pub fn app_with_dashboard(state: AppState, dashboard: Arc<Dashboard>) -> Router {
    let device_routes = dashboard.device_routes;
    let mut api = crate::app(state.clone());
    if device_routes == DeviceRoutes::RequireClientCertificate {
        api = api.layer(middleware::from_fn(require_client_certificate));
    }
    let dash = DashState { app: state, dashboard };
    let pages = Router::new()
        .route("/dashboard", get(pages::overview))
        .route("/dashboard/login", get(pages::login_form).post(pages::login))
        .route("/dashboard/logout", post(pages::logout))
        .route("/dashboard/devices/{id}", get(pages::device))
        .route("/dashboard/releases", get(pages::releases))
        .route("/dashboard/deployments", get(pages::deployments).post(pages::create_deployment))
        .route("/dashboard/deployments/{id}", get(pages::deployment))
        .route("/dashboard/deployments/{id}/{action}", post(pages::control))
        .route("/dashboard/static/style.css", get(pages::style))
        .layer(middleware::from_fn(headers))
        .layer(middleware::from_fn(crate::api::log_request))
        .with_state(dash);
    pages.merge(api)
}

fn session_cookie(id: &str) -> HeaderValue {
    set_cookie(SESSION_COOKIE, id, SESSION_LIFETIME.whole_seconds())
}

fn logout_cookie() -> HeaderValue {
    set_cookie(SESSION_COOKIE, "", 0)
}

fn login_cookie(value: &str) -> HeaderValue {
    set_cookie(LOGIN_COOKIE, value, i64::from(LOGIN_FORM_LIFETIME_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_close() {
        let d = Dashboard::new(DeviceRoutes::AsTheListener);
        let now = OffsetDateTime::now_utc();
        let op = Operator { name: "wall".into(), role: Role::Viewer };
        let id = d.open(op.clone(), now).unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(d.find(&id, now).unwrap().operator, op);
        assert!(d.find(&id, now + SESSION_LIFETIME).is_none(), "expired");
        assert!(d.find(&id, now).is_none(), "an expired session is removed");
        let id = d.open(op, now).unwrap();
        d.close(&id);
        assert!(d.find(&id, now).is_none());
        assert!(d.find("", now).is_none());
    }

    #[test]
    fn csrf_and_roles() {
        let who = LoggedIn { operator: Operator { name: "wall".into(), role: Role::Viewer }, csrf: "a".repeat(64) };
        who.check_csrf(&"a".repeat(64)).unwrap();
        for wrong in ["", "a", &"b".repeat(64), &"a".repeat(65)] {
            let e = who.check_csrf(wrong).unwrap_err();
            assert!(matches!(e, PageError::Status(StatusCode::FORBIDDEN, _)), "{wrong:?}: {e:?}");
        }
        who.require(Role::Viewer).unwrap();
        let PageError::Status(status, message) = who.require(Role::Operator).unwrap_err() else { panic!() };
        assert_eq!(
            (status, message.as_str()),
            (StatusCode::FORBIDDEN, "wall has the role viewer; this needs operator")
        );
    }

    #[test]
    fn session_cookies_are_host_only_secure_http_only_and_strict() {
        let c = session_cookie("abc");
        let c = c.to_str().unwrap();
        assert!(c.starts_with("__Host-update-session=abc; Path=/; "), "{c}");
        for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Max-Age=28800"] {
            assert!(c.split("; ").any(|a| a == attribute), "{attribute} in {c}");
        }
        assert!(!c.contains("Domain"), "{c}");
        assert!(logout_cookie().to_str().unwrap().contains("Max-Age=0"));
        // A value that would break the header is never sent.
        assert_eq!(set_cookie("x", "a\nb", 1).to_str().unwrap(), "invalid=; Max-Age=0");
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; __Host-update-session=abc; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same_secret("x", "x") && !same_secret("x", "y"));
    }
}
