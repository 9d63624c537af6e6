//! `update-server`: the repository and fleet server of libupdate (DESIGN §7).
//!
//! # Design
//! - **Transport** ([`serve`], [`tls`]): a tokio accept loop doing the rustls handshake itself,
//!   then hyper (HTTP/1.1 and HTTP/2). With mutual TLS a client without a certificate from the
//!   device CA never gets past the handshake; the verified certificate's CN rides along with
//!   each request as the device id ([`device::DeviceIdSource`]). Plain HTTP without TLS flags,
//!   for a TLS-terminating proxy.
//! - **Repository** ([`repo`]): the repository directory read-only under `/repo/`, with byte
//!   ranges and validators so devices resume downloads.
//! - **Push** ([`push`]): devices hold a server-sent-events stream; an operator's `check-now`
//!   reaches them at once, and a flag in the store reaches them at the next check-in anyway.
//! - **Storage** ([`store`]): a [`Store`] trait object; SQLite by default.
//! - **Operators** ([`operator`]): named bearer tokens with roles (viewer, operator, admin),
//!   compared in constant time, or the operator API is disabled. Every operator action, and
//!   every decision the server takes on a rollout, is a row of the hash-chained operator
//!   audit log ([`audit`]).
//! - **Rollouts** ([`rollout`]): releases (signed repository targets), device tags, and
//!   deployments in waves that pause on their own when a wave fails too often. The decisions
//!   are pure functions of the counts and `now` ([`clock`]); the store applies them in the
//!   transaction of the check-in or event that triggers them. The device learns its
//!   assignment from its check-in answer and still installs only what the repository signs.
//! - **Routes** ([`app`]): one [`Router`] built from an [`AppState`]; `main` and the tests
//!   build the same one.
//! - **Dashboard** ([`dashboard`], `--dashboard`): server-rendered pages under `/dashboard` on
//!   the same listener, with operator-token login to a server-side session and CSRF tokens on
//!   every form. With mutual TLS the handshake then admits browsers without a certificate, and
//!   [`dashboard::app_with_dashboard`] refuses them on every other route.
//! - **Wire format**: the `update-protocol` crate, shared with the device (`libupdate::fleet`):
//!   device ids, check-ins, events (a kind this server does not know is stored and listed
//!   back), push event names, routes and limits. This crate only adds transport and storage.
//! - **hawkBit DDI** ([`ddi`], `--ddi`): hawkBit's Direct Device Integration API on the same
//!   listener, so hawkBit clients (SWUpdate's suricatta) follow the same deployments; their
//!   feedback becomes events counted like a native device's.
//! - **Errors** ([`error`]): one [`ApiError`] that becomes the response and never shows
//!   internals.

pub(crate) mod api;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod dashboard;
pub mod ddi;
pub mod device;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod operator;
pub mod push;
pub mod repo;
pub mod retention;
pub mod rollout;
pub mod serve;
pub mod store;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::middleware;
use axum::routing::{delete, get, post};
use update_protocol::limits::MAX_BODY;
use update_protocol::routes;

use crate::clock::Clock;
use crate::device::DeviceIdSource;
use crate::error::ApiError;
use crate::operator::{OperatorAccess, Role};
use crate::push::PushHub;
use crate::repo::ServedRepository;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The repository served under `/repo/`.
    pub repo: Arc<ServedRepository>,
    /// Devices and events.
    pub store: Arc<dyn Store>,
    /// Where device ids come from.
    pub device_ids: DeviceIdSource,
    /// The devices' open push streams.
    pub push: Arc<PushHub>,
    /// Who may use the operator API.
    pub operator: OperatorAccess,
    /// Where `now` comes from.
    pub clock: Clock,
}

/// Every route of the server (the paths are [`update_protocol::routes`]).
pub fn app(state: AppState) -> Router {
    use api::{operator as op, rollout as ro};
    let role = |r: Role| middleware::from_fn_with_state((state.clone(), r), op::require_role);
    let viewer = Router::new()
        .route(routes::DEVICES, get(op::list_devices))
        .route(routes::DEVICE, get(op::get_device))
        .route(routes::DEVICE_EVENTS, get(op::list_events))
        .route(routes::RELEASES, get(ro::list_releases))
        .route(routes::RELEASE, get(ro::get_release))
        .route(routes::TAG_DEVICES, get(ro::list_tag))
        .route(routes::DEPLOYMENTS, get(ro::list_deployments))
        .route(routes::DEPLOYMENT, get(ro::get_deployment))
        .route_layer(role(Role::Viewer));
    let operator = Router::new()
        .route(routes::CHECK_NOW, post(op::check_now))
        .route(routes::RELEASES, post(ro::create_release))
        .route(routes::TAG_DEVICES, post(ro::tag_devices))
        .route(routes::TAG_DEVICE, delete(ro::untag_device))
        .route(routes::DEPLOYMENTS, post(ro::create_deployment))
        .route(routes::DEPLOYMENT_PAUSE, post(ro::pause))
        .route(routes::DEPLOYMENT_RESUME, post(ro::resume))
        .route(routes::DEPLOYMENT_ABORT, post(ro::abort))
        .route_layer(role(Role::Operator));
    let admin = Router::new()
        .route(routes::AUDIT, get(ro::audit_log))
        .route(routes::AUDIT_VERIFY, get(ro::audit_verify))
        .route_layer(role(Role::Admin));
    Router::new()
        .route(routes::REPO, get(repo::serve_file))
        .route(routes::HEALTH, get(api::health))
        .route(routes::CHECKIN, post(api::device::check_in))
        .route(routes::EVENTS, post(api::device::post_event))
        .route(routes::PUSH, get(api::device::push))
        .merge(viewer)
        .merge(operator)
        .merge(admin)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(api::log_request))
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
