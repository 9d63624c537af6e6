//! The two error types: [`ServerError`] when the server cannot start, [`ApiError`] when a
//! request is refused. An `ApiError` becomes the HTTP response: a status code and a small JSON
//! body `{"error": CODE, "message": TEXT}`. Internal failures are logged with their cause and
//! answered with a generic message, so database paths, SQL and I/O details never reach a client.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// Why the server could not start. Each kind maps to a documented exit code
/// ([`ServerError::exit_code`], docs/server.md).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A file could not be read.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file was read but its content is not acceptable (a certificate, key or token file).
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the file's content).
        reason: String,
    },
    /// The TLS configuration cannot be built.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The listening socket cannot be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The database cannot be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A command-line value is not acceptable.
    #[error("{0}")]
    Usage(String),
}

impl ServerError {
    /// The process exit code: 2 usage, 3 configuration files (certificates, keys, token,
    /// repository), 9 socket or database.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            ServerError::Usage(_) => 2,
            ServerError::Io { .. } | ServerError::Invalid { .. } | ServerError::Tls(_) => 3,
            ServerError::Listen { .. } | ServerError::Store(_) => 9,
        }
    }
}

/// A refused or failed request. The variant decides the status code; see
/// docs/reference/server-api.md for the codes a client can see.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed (bad JSON, a missing or invalid field). 400.
    #[error("{0}")]
    InvalidRequest(String),
    /// An extractor refused the request with its own status (415 wrong content type, 413 body
    /// too large, 422 JSON of the wrong shape, 400 bad query).
    #[error("{message}")]
    Rejected {
        /// The status axum chose.
        status: StatusCode,
        /// axum's description (about the request, never about the server).
        message: String,
    },
    /// The operator API was called without the right bearer token. 401.
    #[error("a valid bearer token is required")]
    AdminTokenRequired,
    /// The operator API is disabled: the server was started without `--admin-token-file`. 401.
    #[error("the operator API is disabled (the server was started without --admin-token-file or --operator-tokens)")]
    OperatorApiDisabled,
    /// A device request could not be tied to a device. 401.
    #[error("{0}")]
    DeviceIdentityRequired(&'static str),
    /// The device identity is present but not acceptable. 403.
    #[error("{0}")]
    Forbidden(String),
    /// No such file or device. 404.
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on this path. 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The operator's token lacks the role this request needs. 403.
    #[error("this needs the {needed} role; the token {name:?} has {has}")]
    RoleRequired {
        /// The role the route needs.
        needed: &'static str,
        /// The token's name.
        name: String,
        /// Its role.
        has: &'static str,
    },
    /// The request conflicts with the current state (a release registered twice, resuming a
    /// running deployment). 409.
    #[error("{0}")]
    Conflict(String),
    /// The device sent more requests of a kind than its per-device limit allows
    /// ([`crate::limits::Limits`]). 429, with `Retry-After`.
    #[error("too many {what} from this device: at most {per_minute} a minute; retry in {retry_after} s")]
    TooManyRequests {
        /// What was limited (`check-ins`, `events`, `push streams`).
        what: &'static str,
        /// The limit.
        per_minute: u32,
        /// Seconds until one more is allowed.
        retry_after: u64,
    },
    /// Anything that is the server's fault. 500; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Rejected { status, .. } => *status,
            ApiError::AdminTokenRequired | ApiError::OperatorApiDisabled | ApiError::DeviceIdentityRequired(_) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RoleRequired { .. } => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `error` code in the JSON body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) | ApiError::Rejected { .. } => "invalid-request",
            ApiError::AdminTokenRequired => "unauthorized",
            ApiError::OperatorApiDisabled => "operator-api-disabled",
            ApiError::DeviceIdentityRequired(_) => "device-identity-required",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::RoleRequired { .. } => "role-required",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooManyRequests { .. } => "rate-limited",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Shorthand for [`ApiError::Internal`].
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(e.into())
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %chain(cause.as_ref()), "request failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(ErrorBody { error: self.code(), message })).into_response();
        if matches!(self, ApiError::AdminTokenRequired | ApiError::OperatorApiDisabled) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"update-server\""));
        }
        if let ApiError::TooManyRequests { retry_after, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            e => ApiError::Internal(Box::new(e)),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::Rejected { status: r.status(), message: r.body_text() }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::Rejected { status: r.status(), message: r.body_text() }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::Rejected { status: r.status(), message: r.body_text() }
    }
}

/// An error and its sources, `: `-separated, for the log.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
