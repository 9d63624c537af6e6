//! [`RemoteFile`]: a file on an HTTP(S) server read in place by `Range` requests, so an update
//! can be installed while it arrives (docs/reference/fetch.md, "Streaming").
//!
//! - Reads go front to back through one response at a time. The first request of a reader, and
//!   the first after a seek, asks for a small window (64 KiB: enough for a bundle's head, so an
//!   inspection does not pull the payload); each following request asks for four times more,
//!   and from 4 MiB on the rest of the file is asked for at once.
//! - A cut (an error, a body that ends early, a stalled body past its time limit) is resumed at
//!   the byte it stopped at, with the same backoff as downloads; the attempts count again after
//!   every byte that arrives.
//! - Every 206 answer's `Content-Range` is checked before a byte of it is used (start, end,
//!   length), and the length must stay what the signed metadata says, or what the first answer
//!   said. `If-Range` carries the first answer's validator, so a file replaced on the server
//!   comes back whole (200) and is refused rather than spliced.
//! - A server without Range support (200 to a Range request) still works from the start of the
//!   file; later positions are reached by reading and discarding.
//!
//! - Readers made by one [`HeadCache`] share the first bytes of the file (up to 1 MiB, as
//!   they were read): a bundle's head is read once per install, not once per open.
//!
//! Nothing here trusts the bytes: the reader of a bundle checks every chunk against its signed
//! hash before using it.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use update_core::{Error, Result};

use crate::{Fetcher, backoff, source_err};

/// The first window asked for (and after a seek).
const FIRST_WINDOW: u64 = 64 * 1024;
/// From this window on, the rest of the file is asked for in one request.
const OPEN_ENDED: u64 = 4 << 20;
/// A forward seek of at most this many bytes inside the current answer reads and discards
/// instead of opening a new request.
const SKIP_IN_PLACE: u64 = 256 * 1024;

/// Most bytes a [`HeadCache`] keeps.
const HEAD_CACHE_MAX: usize = 1 << 20;

/// The first bytes of a remote file as one reader read them, and the validator they came
/// with, for the next readers of the same file.
#[derive(Debug, Clone, Default)]
pub struct HeadCache(Arc<std::sync::Mutex<(Vec<u8>, Option<String>)>>);

/// What a [`RemoteFile`] fetched: requests sent and body bytes received. Shared, so it can be
/// read after the reader was handed on.
#[derive(Debug, Clone, Default)]
pub struct RemoteStats {
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl RemoteStats {
    /// HTTP requests sent.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Body bytes received (discarded ones included).
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

struct Body {
    reader: Box<dyn Read + Send>,
    /// The file offset of the next byte `reader` gives.
    at: u64,
    /// The file offset after its last byte (exclusive), when known.
    end: Option<u64>,
}

/// A remote file read by HTTP `Range` (see the module docs).
pub struct RemoteFile {
    fetcher: Fetcher,
    url: String,
    max_bytes: u64,
    length: Option<u64>,
    validator: Option<String>,
    pos: u64,
    body: Option<Body>,
    window: u64,
    stats: RemoteStats,
    head: Option<HeadCache>,
    /// Refuse a 200 answer (a server that ignores `Range`) instead of reading from the start.
    ranged_only: bool,
}

impl std::fmt::Debug for RemoteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFile")
            .field("url", &self.url)
            .field("length", &self.length)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

/// Carries the error itself, so a reader above (the bundle reader) can report it as what it is
/// (a source or verification error), not as a local I/O error.
fn io_err(e: Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl RemoteFile {
    /// A reader of `url` (nothing is sent until the first read). `length` is the exact length
    /// when signed metadata gives it; either way the file may not be longer than `max_bytes`.
    ///
    /// # Errors
    /// [`Error::Source`] for a URL that is not `https://` (or `http://` where the fetcher allows
    /// it).
    pub fn new(fetcher: &Fetcher, url: &str, length: Option<u64>, max_bytes: u64) -> Result<Self> {
        fetcher.check_scheme(url)?;
        if url.starts_with("file://") {
            return Err(source_err(url, "a file:// URL is read as a local file, not by Range"));
        }
        Ok(Self {
            fetcher: fetcher.clone(),
            url: url.to_owned(),
            max_bytes: length.map_or(max_bytes, |l| l.min(max_bytes)),
            length,
            validator: None,
            pos: 0,
            body: None,
            window: FIRST_WINDOW,
            stats: RemoteStats::default(),
            head: None,
            ranged_only: false,
        })
    }

    /// Makes a server that ignores `Range` (answers 200) an error rather than read from the
    /// start: for readers of scattered pieces, where reading from the start each time would
    /// move far more than the whole file.
    #[must_use]
    pub fn ranged_only(mut self) -> Self {
        self.ranged_only = true;
        self
    }

    /// Shares the file's first bytes with the other readers of `cache` (and takes the
    /// validator they came with, so later requests refuse a file that changed since).
    #[must_use]
    pub fn with_head_cache(mut self, cache: HeadCache) -> Self {
        if let Ok(shared) = cache.0.lock()
            && shared.1.is_some()
        {
            self.validator.clone_from(&shared.1);
        }
        self.head = Some(cache);
        self
    }

    /// The counters of this reader.
    #[must_use]
    pub fn stats(&self) -> RemoteStats {
        self.stats.clone()
    }

    /// The file's length, once known.
    #[must_use]
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// Reads `range` with one request for exactly its bytes (a retry after a cut asks for the
    /// rest), passing `(file offset, bytes)` to `sink` as they arrive.
    ///
    /// # Errors
    /// As reading; a file that ends inside the range is a [`Error::Verification`].
    pub fn read_range(
        &mut self,
        range: std::ops::Range<u64>,
        sink: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        use std::io::Read as _;
        self.body = None;
        self.pos = range.start;
        let mut buf = vec![0u8; 64 * 1024];
        while self.pos < range.end {
            self.window = range.end - self.pos;
            let want = usize::try_from((range.end - self.pos).min(buf.len() as u64)).expect("at most 64 KiB");
            let at = self.pos;
            let n = self.read(&mut buf[..want]).map_err(|e| match e.downcast::<Error>() {
                Ok(inner) => inner,
                Err(e) => source_err(&self.url, e.to_string()),
            })?;
            if n == 0 {
                return Err(Error::verification(&self.url, format!("the file ends at byte {at}, inside a range")));
            }
            sink(at, &buf[..n])?;
        }
        Ok(())
    }

    /// Sends one request for the bytes from `self.pos`.
    fn request(&mut self) -> Result<Body> {
        let url = &self.url;
        let first = self.pos;
        let last = (self.window < OPEN_ENDED).then(|| {
            let end = first.saturating_add(self.window);
            self.length.map_or(end, |l| end.min(l)).saturating_sub(1).max(first)
        });
        let range = match last {
            Some(last) => format!("bytes={first}-{last}"),
            None => format!("bytes={first}-"),
        };
        let mut req = self.fetcher.agent.get(url).header("Range", &range);
        if let Some(v) = &self.validator {
            req = req.header("If-Range", v);
        }
        let expected = last.map_or_else(|| self.max_bytes.saturating_sub(first), |l| l - first + 1);
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let (resp, validator) = self.fetcher.call(req, url, expected)?;
        let status = resp.status().as_u16();
        match status {
            206 => {
                let header = resp.headers().get("content-range").map(|v| v.to_str().unwrap_or("(not text)"));
                let (got_last, total) = check_partial(header, first, last, self.length, self.max_bytes)
                    .map_err(|reason| source_err(url, format!("206 answer to Range: {range} refused: {reason}")))?;
                if self.length.is_none() {
                    self.length = total;
                }
                if self.validator.is_none() {
                    self.validator = validator;
                }
                self.window = self.window.saturating_mul(4);
                let reader: Box<dyn Read + Send> = Box::new(resp.into_body().into_reader().take(got_last - first + 1));
                Ok(Body { reader, at: first, end: Some(got_last + 1) })
            }
            200 if self.ranged_only => Err(source_err(url, "the server ignores Range requests (answered 200)")),
            200 => {
                // The whole file: a server without Range support, or (with If-Range) a file
                // that changed since the first answer, which cannot be spliced.
                if self.validator.is_some() && validator != self.validator {
                    return Err(Error::verification(url, "the file changed on the server while it was read"));
                }
                let total: Option<u64> =
                    resp.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse().ok());
                if let Some(t) = total {
                    if t > self.max_bytes {
                        return Err(Error::verification(
                            url,
                            format!("{t} bytes, more than the {} allowed", self.max_bytes),
                        ));
                    }
                    if self.length.is_some_and(|l| l != t) {
                        return Err(Error::verification(
                            url,
                            format!("{t} bytes, the file was {} bytes", self.length.unwrap_or_default()),
                        ));
                    }
                    self.length = Some(t);
                }
                if self.validator.is_none() {
                    self.validator = validator;
                }
                let limit = self.length.unwrap_or(self.max_bytes);
                let mut body =
                    Body { reader: Box::new(resp.into_body().into_reader().take(limit)), at: 0, end: Some(limit) };
                skip(&mut body, first, &self.stats).map_err(|e| source_err(url, e.to_string()))?;
                Ok(body)
            }
            416 if self.length.is_some_and(|l| first >= l) => {
                Ok(Body { reader: Box::new(std::io::empty()), at: first, end: Some(first) })
            }
            s => Err(source_err(url, format!("HTTP status {s} to Range: {range}"))),
        }
    }

    fn read_once(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.length.is_some_and(|l| self.pos >= l) || buf.is_empty() {
            return Ok(0);
        }
        if let Some(cache) = &self.head
            && let Ok(shared) = cache.0.lock()
            && let Some(have) = usize::try_from(self.pos).ok().filter(|p| *p < shared.0.len())
        {
            let n = buf.len().min(shared.0.len() - have);
            buf[..n].copy_from_slice(&shared.0[have..have + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        if self.body.as_ref().is_some_and(|b| b.at != self.pos || b.end.is_some_and(|e| e <= b.at)) {
            self.body = None;
        }
        if self.body.is_none() {
            self.body = Some(self.request()?);
        }
        let body = self.body.as_mut().expect("set above");
        let n =
            body.reader.read(buf).map_err(|e| source_err(&self.url, format!("reading at byte {}: {e}", self.pos)))?;
        if n == 0 {
            self.body = None;
            if self.length.is_some_and(|l| self.pos >= l) {
                return Ok(0);
            }
            if self.length.is_none() {
                // No length was ever given: the end of the body is the end of the file.
                self.length = Some(self.pos);
                return Ok(0);
            }
            return Err(source_err(&self.url, format!("the answer ended at byte {}", self.pos)));
        }
        if let Some(cache) = &self.head
            && let Ok(mut shared) = cache.0.lock()
            && shared.0.len() as u64 == self.pos
            && shared.0.len() + n <= HEAD_CACHE_MAX
        {
            shared.0.extend_from_slice(&buf[..n]);
            if shared.1.is_none() {
                shared.1.clone_from(&self.validator);
            }
        }
        body.at += n as u64;
        self.pos += n as u64;
        self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if self.pos > self.max_bytes {
            return Err(Error::verification(&self.url, format!("more than the {} bytes allowed", self.max_bytes)));
        }
        Ok(n)
    }
}

/// Reads and discards from `body` until it is at `to`.
fn skip(body: &mut Body, to: u64, stats: &RemoteStats) -> std::io::Result<()> {
    let want = to.saturating_sub(body.at);
    let n = std::io::copy(&mut (&mut body.reader).take(want), &mut std::io::sink())?;
    stats.bytes.fetch_add(n, Ordering::Relaxed);
    body.at += n;
    if n < want {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the answer ended at byte {}", body.at),
        ));
    }
    Ok(())
}

impl Read for RemoteFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.read_once(buf) {
                Ok(n) => return Ok(n),
                Err(e @ Error::Verification { .. }) => return Err(io_err(e)),
                Err(e) if attempt >= self.fetcher.opts.attempts => return Err(io_err(e)),
                Err(_) => {
                    self.body = None;
                    std::thread::sleep(backoff(self.fetcher.opts.backoff, attempt));
                }
            }
        }
    }
}

impl Seek for RemoteFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => match self.length {
                Some(l) => l.checked_add_signed(d),
                None => {
                    return Err(std::io::Error::other(format!(
                        "{}: seek from the end of a file of unknown length",
                        self.url
                    )));
                }
            },
        };
        let target =
            target.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))?;
        if target == self.pos {
            return Ok(target);
        }
        let in_place = self.body.as_ref().is_some_and(|b| {
            b.at == self.pos
                && target > self.pos
                && target - self.pos <= SKIP_IN_PLACE
                && b.end.is_none_or(|e| target <= e)
        });
        if in_place {
            let body = self.body.as_mut().expect("checked");
            if skip(body, target, &self.stats).is_err() {
                self.body = None;
            }
        } else {
            self.body = None;
            self.window = FIRST_WINDOW;
        }
        self.pos = target;
        Ok(target)
    }
}

/// Parses a 206 answer's `Content-Range: bytes FIRST-LAST/LENGTH` (`LENGTH` may be `*`).
pub(crate) fn parse_content_range(header: Option<&str>) -> std::result::Result<(u64, u64, Option<u64>), String> {
    let header = header.ok_or("no Content-Range")?;
    let bad = || format!("Content-Range {header:?} is not \"bytes FIRST-LAST/LENGTH\"");
    let spec = header.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = spec.split_once('/').ok_or_else(bad)?;
    let (a, b) = range.split_once('-').ok_or_else(bad)?;
    let number =
        |s: &str| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u64>().ok() } else { None };
    let (a, b) = (number(a).ok_or_else(bad)?, number(b).ok_or_else(bad)?);
    let total = if total == "*" { None } else { Some(number(total).ok_or_else(bad)?) };
    Ok((a, b, total))
}

/// Checks the `Content-Range` of a 206 answer to `Range: bytes={first}-{last}` (`last` `None`:
/// open-ended): `bytes {first}-{got}/{total}` with `got` inside the request and the file,
/// `total` (when given) equal to the known length and at most `max_bytes`. Returns `got` and
/// the total.
fn check_partial(
    header: Option<&str>,
    first: u64,
    last: Option<u64>,
    known: Option<u64>,
    max_bytes: u64,
) -> std::result::Result<(u64, Option<u64>), String> {
    let (a, b, total) = parse_content_range(header)?;
    let header = header.unwrap_or_default();
    if a != first {
        return Err(format!("Content-Range {header:?} starts at byte {a}, not at {first}"));
    }
    if b < a {
        return Err(format!("Content-Range {header:?} ends before it starts"));
    }
    if let Some(last) = last.filter(|l| b > *l) {
        return Err(format!("Content-Range {header:?} runs past the requested byte {last}"));
    }
    if b >= max_bytes {
        return Err(format!("Content-Range {header:?}: more than the {max_bytes} bytes allowed"));
    }
    if let Some(total) = total {
        if b >= total {
            return Err(format!("Content-Range {header:?} runs past the end of the file"));
        }
        if let Some(known) = known.filter(|k| *k != total) {
            return Err(format!("Content-Range {header:?}: the file is {known} bytes, not {total}"));
        }
        if total > max_bytes {
            return Err(format!("Content-Range {header:?}: more than the {max_bytes} bytes allowed"));
        }
        // A short answer to an open-ended request (or one that stops before the file ends
        // when the whole rest was asked for) is a server that cannot be followed.
        if last.is_none() && b + 1 != total {
            return Err(format!("Content-Range {header:?} does not run to the end of the {total} bytes"));
        }
    }
    Ok((b, total))
}

#[cfg(test)]
mod tests {
    use super::check_partial;

    #[test]
    fn content_ranges() {
        let ok = |h: &str, first, last, known| check_partial(Some(h), first, last, known, 1000);
        assert_eq!(ok("bytes 0-99/500", 0, Some(99), None), Ok((99, Some(500))));
        assert_eq!(ok("bytes 0-49/50", 0, Some(99), None), Ok((49, Some(50))), "a shorter file");
        assert_eq!(ok("bytes 100-499/500", 100, None, Some(500)), Ok((499, Some(500))));
        assert_eq!(ok("bytes 100-199/*", 100, Some(199), None), Ok((199, None)));
        for (h, first, last, known) in [
            ("bytes 1-99/500", 0, Some(99), None),
            ("bytes 0-100/500", 0, Some(99), None),
            ("bytes 0-99/99", 0, Some(99), None),
            ("bytes 0-99/500", 0, Some(99), Some(400)),
            ("bytes 0-99/5000", 0, Some(99), None),
            ("bytes 100-400/500", 100, None, Some(500)),
            ("bytes 0--1/500", 0, Some(99), None),
            ("bytes -99/500", 0, Some(99), None),
            ("items 0-99/500", 0, Some(99), None),
            ("bytes 0-99", 0, Some(99), None),
            ("bytes 9-3/500", 9, Some(99), None),
        ] {
            assert!(ok(h, first, last, known).is_err(), "{h} accepted");
        }
        assert!(check_partial(None, 0, Some(9), None, 1000).is_err());
    }
}
