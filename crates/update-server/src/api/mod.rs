//! The JSON API under `/api/v1` (docs/reference/server-api.md): the device side in
//! [`device`], and the extractors both sides share.

pub(crate) mod device;

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
