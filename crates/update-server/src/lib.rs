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
//! - **Operators** ([`operator`]): a bearer token compared in constant time, or the operator
//!   API is disabled.
//! - **Routes** ([`app`]): one [`Router`] built from an [`AppState`]; `main` and the tests
//!   build the same one.
//! - **Wire format**: the `update-protocol` crate, shared with the device (`libupdate::fleet`):
//!   device ids, check-ins, events (a kind this server does not know is stored and listed
//!   back), push event names, routes and limits. This crate only adds transport and storage.
//! - **Errors** ([`error`]): one [`ApiError`] that becomes the response and never shows
//!   internals.

mod api;
pub mod device;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod operator;
pub mod push;
pub mod repo;
pub mod serve;
pub mod store;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::middleware;
use axum::routing::{get, post};
use update_protocol::limits::MAX_BODY;
use update_protocol::routes;

use crate::device::DeviceIdSource;
use crate::error::ApiError;
use crate::operator::OperatorAccess;
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
}

/// Every route of the server (the paths are [`update_protocol::routes`]).
pub fn app(state: AppState) -> Router {
    let operator = Router::new()
        .route(routes::DEVICES, get(api::operator::list_devices))
        .route(routes::DEVICE, get(api::operator::get_device))
        .route(routes::DEVICE_EVENTS, get(api::operator::list_events))
        .route(routes::CHECK_NOW, post(api::operator::check_now))
        .route_layer(middleware::from_fn_with_state(state.clone(), api::operator::require_token));
    Router::new()
        .route(routes::REPO, get(repo::serve_file))
        .route(routes::HEALTH, get(api::health))
        .route(routes::CHECKIN, post(api::device::check_in))
        .route(routes::EVENTS, post(api::device::post_event))
        .route(routes::PUSH, get(api::device::push))
        .merge(operator)
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
