//! The repository directory, served read-only under `/repo/`.
//!
//! Devices fetch TUF metadata and bundles here, and resume interrupted downloads with
//! `Range: bytes=N-` and `If-Range` (docs/reference/fetch.md), so this module implements the
//! parts of RFC 9110 they rely on: single byte ranges (206, 416), `If-Range` against a strong
//! ETag or the Last-Modified date, and the conditional requests a cache or CDN in front sends
//! (`If-None-Match`/`If-Modified-Since` → 304, `If-Match`/`If-Unmodified-Since` → 412).
//!
//! The ETag is strong: `"<inode>-<length>-<mtime in ns>"`, all hex. The repository tool writes
//! every file by renaming a new one into place, so any change gives a new inode and mtime.
//!
//! Paths are checked segment by segment: no `..`, no `.`, no empty segment, no hidden file
//! (`.git`), no backslash or NUL. The resolved path must stay under the repository after
//! symlinks are followed. Directories are not listed.

use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::AppState;
use crate::error::{ApiError, ServerError};

/// Bytes read from disk per chunk of a response body.
const READ_CHUNK: usize = 64 * 1024;

/// The repository directory (canonical path).
#[derive(Debug, Clone)]
pub struct ServedRepository {
    root: PathBuf,
}

impl ServedRepository {
    /// Opens `dir`, which must be a readable directory.
    ///
    /// # Errors
    /// [`ServerError::Io`] when it does not exist or is not a directory.
    pub fn open(dir: &Path) -> Result<Self, ServerError> {
        let root = std::fs::canonicalize(dir).map_err(|source| ServerError::Io {
            op: "open the repository directory",
            path: dir.to_owned(),
            source,
        })?;
        if !root.is_dir() {
            return Err(ServerError::Invalid { path: dir.to_owned(), reason: "not a directory".to_owned() });
        }
        if !root.join("metadata/root.json").is_file() {
            tracing::warn!(repo = %root.display(), "the repository has no metadata/root.json (not made by `update-tool repo init`?)");
        }
        Ok(Self { root })
    }

    /// The canonical directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the repository's newest targets metadata (`metadata/N.targets.json` with the
    /// highest N, else `metadata/targets.json`) lists `name`: its `custom` object (`null` when
    /// it has none), or `None`. The signatures are not checked here (the device checks them);
    /// this catches an operator registering a release that was never published.
    ///
    /// # Errors
    /// The metadata cannot be read or parsed (the message names the file).
    pub async fn signed_target(&self, name: &str) -> Result<Option<serde_json::Value>, String> {
        Ok(self
            .newest_targets()
            .await?
            .and_then(|meta| meta.pointer("/signed/targets").and_then(|t| t.get(name)).cloned())
            .map(|t| t.get("custom").cloned().unwrap_or(serde_json::Value::Null)))
    }

    /// The newest targets metadata (see [`ServedRepository::signed_target`]), parsed; `None`
    /// when there is none.
    async fn newest_targets(&self) -> Result<Option<serde_json::Value>, String> {
        let dir = self.root.join("metadata");
        let mut newest: Option<(u64, PathBuf)> = None;
        if let Ok(mut entries) = tokio::fs::read_dir(&dir).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                let file = entry.file_name();
                let Some(n) = file.to_str().and_then(|f| f.strip_suffix(".targets.json")).and_then(|n| n.parse().ok())
                else {
                    continue;
                };
                if newest.as_ref().is_none_or(|(m, _)| n > *m) {
                    newest = Some((n, entry.path()));
                }
            }
        }
        let path = newest.map_or_else(|| dir.join("targets.json"), |(_, p)| p);
        let text = match tokio::fs::read(&path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_slice(&text).map(Some).map_err(|e| format!("{} is not JSON: {e}", path.display()))
    }

    /// Where the bytes of the signed target `name` are: `targets/DIR/SHA256.BASE` (consistent
    /// snapshots) when that file exists, else `targets/NAME`, with the length and SHA-256 the
    /// newest targets metadata gives. `None` when the metadata does not list `name` or no file
    /// is there. The path is checked like a request path (no `..`, stays in the repository).
    ///
    /// # Errors
    /// The metadata cannot be read, or lists `name` without a length or a hexadecimal SHA-256.
    pub async fn target_file(&self, name: &str) -> Result<Option<TargetFile>, String> {
        let Some(meta) = self.newest_targets().await? else {
            return Ok(None);
        };
        let Some(info) = meta.pointer("/signed/targets").and_then(|t| t.get(name)) else {
            return Ok(None);
        };
        let length = info.get("length").and_then(serde_json::Value::as_u64);
        let sha256 = info.pointer("/hashes/sha256").and_then(serde_json::Value::as_str);
        let (Some(length), Some(sha256)) = (length, sha256) else {
            return Err(format!("the targets metadata lists {name:?} without a length and a SHA-256"));
        };
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("the targets metadata gives {name:?} a SHA-256 that is not 64 hex digits"));
        }
        let hashed = match name.rsplit_once('/') {
            Some((dir, base)) => format!("targets/{dir}/{sha256}.{base}"),
            None => format!("targets/{sha256}.{name}"),
        };
        let path = match self.resolve(&hashed).await {
            Some(p) => Some(p),
            None => self.resolve(&format!("targets/{name}")).await,
        };
        Ok(path.map(|path| TargetFile { path, length, sha256: sha256.to_ascii_lowercase() }))
    }

    /// The file for a request path (relative, already percent-decoded), or `None` when the path
    /// is refused or leaves the repository.
    async fn resolve(&self, request_path: &str) -> Option<PathBuf> {
        let mut path = self.root.clone();
        for segment in request_path.split('/') {
            let refused =
                segment.is_empty() || segment.starts_with('.') || segment.contains('\\') || segment.contains('\0');
            if refused {
                return None;
            }
            path.push(segment);
        }
        let real = tokio::fs::canonicalize(&path).await.ok()?;
        real.starts_with(&self.root).then_some(real)
    }
}

/// A signed target's file in the repository ([`ServedRepository::target_file`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFile {
    /// The file (canonical, inside the repository).
    pub path: PathBuf,
    /// The length the metadata signs.
    pub length: u64,
    /// The SHA-256 the metadata signs (lowercase hex).
    pub sha256: String,
}

/// `GET|HEAD /repo/{*path}`.
pub(crate) async fn serve_file(
    State(state): State<AppState>,
    axum::extract::Path(request_path): axum::extract::Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(path) = state.repo.resolve(&request_path).await else {
        return Err(ApiError::NotFound(format!("no file /repo/{request_path}")));
    };
    send_file(&path, &format!("/repo/{request_path}"), &method, &headers).await
}

/// Answers `GET` or `HEAD` of the regular file at `path` (already resolved and checked by the
/// caller), with byte ranges and validators; `shown` is the path a 404 names.
pub(crate) async fn send_file(
    path: &Path,
    shown: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no file {shown}"));
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) => {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                tracing::warn!(path = %path.display(), "repository file is not readable by the server");
            }
            return Err(not_found());
        }
        Err(e) => return Err(ApiError::internal(format!("cannot open {}: {e}", path.display()))),
    };
    let meta = file.metadata().await.map_err(|e| ApiError::internal(format!("cannot stat {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(not_found());
    }
    let validators = Validators::of(&meta);

    let mut common = HeaderMap::new();
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    common.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    // Clients revalidate every time (cheap with the ETag): timestamp.json changes daily and a
    // device must not be handed a stale one by a cache.
    common.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&validators.etag) {
        common.insert(header::ETAG, v);
    }
    if let Some(lm) = validators.last_modified
        && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(lm))
    {
        common.insert(header::LAST_MODIFIED, v);
    }

    let (status, start, length) = match decide(method, headers, &validators) {
        Decision::NotModified => return Ok((StatusCode::NOT_MODIFIED, common).into_response()),
        Decision::PreconditionFailed => return Ok((StatusCode::PRECONDITION_FAILED, common).into_response()),
        Decision::Unsatisfiable => {
            common.remove(header::CONTENT_TYPE);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", validators.length)) {
                common.insert(header::CONTENT_RANGE, v);
            }
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, common).into_response());
        }
        Decision::Full => (StatusCode::OK, 0, validators.length),
        Decision::Partial { first, last } => {
            let v = HeaderValue::from_str(&format!("bytes {first}-{last}/{}", validators.length))
                .map_err(ApiError::internal)?;
            common.insert(header::CONTENT_RANGE, v);
            (StatusCode::PARTIAL_CONTENT, first, last - first + 1)
        }
    };
    common.insert(header::CONTENT_LENGTH, HeaderValue::from(length));

    if *method == Method::HEAD {
        return Ok((status, common).into_response());
    }
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::internal(format!("cannot seek in {}: {e}", path.display())))?;
    }
    let body = Body::from_stream(ReaderStream::with_capacity(file.take(length), READ_CHUNK));
    Ok((status, common, body).into_response())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// What a client can compare against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Validators {
    /// Strong entity tag, quoted.
    pub(crate) etag: String,
    /// Modification time, whole seconds (HTTP dates have no fraction).
    pub(crate) last_modified: Option<SystemTime>,
    /// File length.
    pub(crate) length: u64,
}

impl Validators {
    fn of(meta: &std::fs::Metadata) -> Self {
        let mtime_ns =
            u128::try_from(meta.mtime()).unwrap_or(0) * 1_000_000_000 + u128::try_from(meta.mtime_nsec()).unwrap_or(0);
        let last_modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| UNIX_EPOCH + Duration::from_secs(d.as_secs()));
        Self {
            etag: format!("\"{:x}-{:x}-{:x}\"", meta.ino(), meta.len(), mtime_ns),
            last_modified,
            length: meta.len(),
        }
    }
}

/// How to answer, after the preconditions and the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// 200 with the whole file.
    Full,
    /// 206 with bytes `first..=last`.
    Partial {
        /// First byte.
        first: u64,
        /// Last byte (inclusive).
        last: u64,
    },
    /// 304.
    NotModified,
    /// 412.
    PreconditionFailed,
    /// 416.
    Unsatisfiable,
}

/// RFC 9110 §13.2.2: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, then
/// Range with If-Range. Pure, so every rule is unit-tested.
pub(crate) fn decide(method: &Method, headers: &HeaderMap, v: &Validators) -> Decision {
    let text = |name| headers.get(name).and_then(|h: &HeaderValue| h.to_str().ok()).map(str::trim);
    let lm_secs = v.last_modified.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs());
    let date_secs = |s: &str| {
        httpdate::parse_http_date(s).ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs())
    };

    if let Some(if_match) = text(header::IF_MATCH) {
        if !matches_any(if_match, &v.etag, Comparison::Strong) {
            return Decision::PreconditionFailed;
        }
    } else if let Some(since) = text(header::IF_UNMODIFIED_SINCE).and_then(date_secs)
        && lm_secs.is_none_or(|lm| lm > since)
    {
        return Decision::PreconditionFailed;
    }

    if let Some(if_none_match) = text(header::IF_NONE_MATCH) {
        if matches_any(if_none_match, &v.etag, Comparison::Weak) {
            return Decision::NotModified;
        }
    } else if let Some(since) = text(header::IF_MODIFIED_SINCE).and_then(date_secs)
        && lm_secs.is_some_and(|lm| lm <= since)
    {
        return Decision::NotModified;
    }

    if method != Method::GET && method != Method::HEAD {
        return Decision::Full;
    }
    let Some(range) = text(header::RANGE) else {
        return Decision::Full;
    };
    if let Some(if_range) = text(header::IF_RANGE) {
        let current = if if_range.starts_with('"') || if_range.starts_with("W/") {
            // A weak tag never matches in If-Range.
            if_range == v.etag
        } else {
            date_secs(if_range).is_some_and(|d| lm_secs == Some(d))
        };
        if !current {
            return Decision::Full;
        }
    }
    match parse_range(range) {
        None => Decision::Full,
        Some(spec) => spec.resolve(v.length),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

/// Whether a list of entity tags (`If-Match`, `If-None-Match`) names `etag`, or is `*`.
fn matches_any(list: &str, etag: &str, how: Comparison) -> bool {
    if list == "*" {
        return true;
    }
    list.split(',').map(str::trim).any(|tag| match how {
        Comparison::Strong => tag == etag,
        Comparison::Weak => tag.strip_prefix("W/").unwrap_or(tag) == etag,
    })
}

/// One byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// `first-` or `first-last`.
    From {
        /// First byte.
        first: u64,
        /// Last byte, inclusive.
        last: Option<u64>,
    },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl RangeSpec {
    fn resolve(self, length: u64) -> Decision {
        match self {
            RangeSpec::From { first, last } => {
                if first >= length || last.is_some_and(|l| l < first) {
                    return Decision::Unsatisfiable;
                }
                let last = last.map_or(length - 1, |l| l.min(length - 1));
                Decision::Partial { first, last }
            }
            RangeSpec::Suffix(n) => {
                if n == 0 || length == 0 {
                    return Decision::Unsatisfiable;
                }
                Decision::Partial { first: length.saturating_sub(n), last: length - 1 }
            }
        }
    }
}

/// Parses `bytes=first-last`, `bytes=first-` or `bytes=-suffix`. Anything else (another unit,
/// several ranges, bad syntax) is `None`, and the whole file is sent, as RFC 9110 allows.
pub(crate) fn parse_range(value: &str) -> Option<RangeSpec> {
    let (unit, set) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return None;
    }
    let (a, b) = set.trim().split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if a.is_empty() {
        return number(b).map(RangeSpec::Suffix);
    }
    let first = number(a)?;
    let last = if b.is_empty() { None } else { Some(number(b)?) };
    Some(RangeSpec::From { first, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v() -> Validators {
        Validators {
            etag: "\"1-64-5\"".to_owned(),
            last_modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            length: 100,
        }
    }

    fn decide_with(pairs: &[(header::HeaderName, &str)]) -> Decision {
        let mut h = HeaderMap::new();
        for (k, val) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(val).unwrap());
        }
        decide(&Method::GET, &h, &v())
    }

    #[test]
    fn range_syntax() {
        assert_eq!(parse_range("bytes=0-9"), Some(RangeSpec::From { first: 0, last: Some(9) }));
        assert_eq!(parse_range("bytes=10-"), Some(RangeSpec::From { first: 10, last: None }));
        assert_eq!(parse_range("bytes=-5"), Some(RangeSpec::Suffix(5)));
        assert_eq!(parse_range("Bytes = 1-2"), Some(RangeSpec::From { first: 1, last: Some(2) }));
        for bad in ["bytes=", "bytes=-", "bytes=a-b", "items=0-1", "bytes=0-1,3-4", "bytes=+1-2", "0-1"] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges_resolve_against_the_length() {
        let r = |s| decide_with(&[(header::RANGE, s)]);
        assert_eq!(r("bytes=0-9"), Decision::Partial { first: 0, last: 9 });
        assert_eq!(r("bytes=90-200"), Decision::Partial { first: 90, last: 99 });
        assert_eq!(r("bytes=-10"), Decision::Partial { first: 90, last: 99 });
        assert_eq!(r("bytes=-1000"), Decision::Partial { first: 0, last: 99 });
        assert_eq!(r("bytes=100-"), Decision::Unsatisfiable);
        assert_eq!(r("bytes=5-4"), Decision::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Decision::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Decision::Full);
        assert_eq!(RangeSpec::From { first: 0, last: None }.resolve(0), Decision::Unsatisfiable);
    }

    #[test]
    fn if_range_needs_the_current_strong_validator() {
        let lm = httpdate::fmt_http_date(v().last_modified.unwrap());
        let range = (header::RANGE, "bytes=10-");
        let partial = Decision::Partial { first: 10, last: 99 };
        assert_eq!(decide_with(&[range.clone(), (header::IF_RANGE, "\"1-64-5\"")]), partial);
        assert_eq!(decide_with(&[range.clone(), (header::IF_RANGE, lm.as_str())]), partial);
        assert_eq!(decide_with(&[range.clone(), (header::IF_RANGE, "\"old\"")]), Decision::Full);
        assert_eq!(decide_with(&[range.clone(), (header::IF_RANGE, "W/\"1-64-5\"")]), Decision::Full);
        assert_eq!(decide_with(&[range, (header::IF_RANGE, "Mon, 01 Jan 2001 00:00:00 GMT")]), Decision::Full);
    }

    #[test]
    fn conditional_requests() {
        let lm = httpdate::fmt_http_date(v().last_modified.unwrap());
        let earlier = "Mon, 01 Jan 2001 00:00:00 GMT";
        assert_eq!(decide_with(&[(header::IF_NONE_MATCH, "\"x\", W/\"1-64-5\"")]), Decision::NotModified);
        assert_eq!(decide_with(&[(header::IF_NONE_MATCH, "\"x\"")]), Decision::Full);
        assert_eq!(decide_with(&[(header::IF_MODIFIED_SINCE, lm.as_str())]), Decision::NotModified);
        assert_eq!(decide_with(&[(header::IF_MODIFIED_SINCE, earlier)]), Decision::Full);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            decide_with(&[(header::IF_NONE_MATCH, "\"x\""), (header::IF_MODIFIED_SINCE, lm.as_str())]),
            Decision::Full
        );
        assert_eq!(decide_with(&[(header::IF_MATCH, "\"x\"")]), Decision::PreconditionFailed);
        assert_eq!(decide_with(&[(header::IF_MATCH, "W/\"1-64-5\"")]), Decision::PreconditionFailed);
        assert_eq!(decide_with(&[(header::IF_MATCH, "\"1-64-5\"")]), Decision::Full);
        assert_eq!(decide_with(&[(header::IF_MATCH, "*")]), Decision::Full);
        assert_eq!(decide_with(&[(header::IF_UNMODIFIED_SINCE, earlier)]), Decision::PreconditionFailed);
        assert_eq!(decide_with(&[(header::IF_UNMODIFIED_SINCE, lm.as_str())]), Decision::Full);
    }
}
