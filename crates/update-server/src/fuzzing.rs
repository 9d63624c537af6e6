//! Entry points for the fuzz targets in `fuzz/` (`cargo xtask fuzz`): the server's parsers of
//! what a client sends, reachable without a socket, a database or a runtime. Not an API.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};

/// Parses `body` as every JSON request body of the device API (check-in, event) and of the
/// rollout API (release, tag devices, deployment with its waves and maintenance window) and of
/// the hawkBit DDI API (feedback with the event it becomes, configData), and
/// `query` as every query string (push, event list, audit log), then runs the checks the
/// handlers run before the store sees anything. Returns how many of them were accepted.
#[must_use]
pub fn request_bodies(body: &[u8], query: &str) -> usize {
    crate::api::device::parse_bodies(body, query)
        + crate::api::operator::parse_queries(query)
        + crate::api::rollout::parse_bodies(body, query)
        + crate::ddi::parse_bodies(body)
}

/// What a GET or HEAD with these headers gets for a file of `length` bytes, tagged `etag` and
/// last modified at `last_modified` (seconds since the epoch): `Ok(None)` for the whole file,
/// `Ok(Some((first, last)))` for a 206, `Err(status)` for 304, 412 and 416.
///
/// # Errors
/// The status code of an answer without a body.
pub fn range_decision(
    head: bool,
    headers: &[(&[u8], &[u8])],
    length: u64,
    etag: &str,
    last_modified: Option<u64>,
) -> Result<Option<(u64, u64)>, u16> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    let validators = crate::repo::Validators {
        etag: etag.to_owned(),
        last_modified: last_modified.map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)),
        length,
    };
    let method = if head { Method::HEAD } else { Method::GET };
    match crate::repo::decide(&method, &map, &validators) {
        crate::repo::Decision::Full => Ok(None),
        crate::repo::Decision::Partial { first, last } => Ok(Some((first, last))),
        crate::repo::Decision::NotModified => Err(304),
        crate::repo::Decision::PreconditionFailed => Err(412),
        crate::repo::Decision::Unsatisfiable => Err(416),
    }
}
