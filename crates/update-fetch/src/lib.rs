//! Transports for libupdate's update sources: `file://` and `https://` (rustls), with mutual
//! TLS, resumable downloads and hard size limits. Synchronous and small: no async runtime on
//! the device.
//!
//! - [`Fetcher::get_bytes`] reads small files (repository metadata) with a byte limit.
//! - [`Fetcher::open_stream`] / [`RemoteFile`] read a large file in place by `Range`, for an
//!   install that streams from the network (no copy on the device).
//! - [`Fetcher::download`] fetches a large file (a bundle) into `DEST.partial`, resuming with
//!   `Range` after a cut, retrying with exponential backoff and jitter, never writing more than
//!   the limit the signed metadata allows, checking length and SHA-256, and only then renaming
//!   it to `DEST` (fsync file and directory). A failed download stays `DEST.partial` with its
//!   marker `DEST.partial.json`, and is never reported complete.
//!
//! Trust: the server is always verified. By default against the platform's CA store
//! (rustls-platform-verifier); with [`TlsSettings::server_ca`], against that CA only. With
//! [`Secure::MutualTls`] the device presents [`TlsSettings::client_cert`]/`client_key`.
//! Plain `http://` is accepted only with [`Plaintext::AllowVerifiedContent`]: the content must
//! be verified by signed metadata, because the channel is not.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use update_core::config::Secure;
use update_core::driver::Progress;
use update_core::{Error, Result};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

mod remote;
pub use remote::{HeadCache, RemoteFile, RemoteStats};

/// Whether plain `http://` may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Plaintext {
    /// Refuse `http://` (the default).
    #[default]
    Refuse,
    /// Allow `http://` because everything fetched is verified by signed metadata.
    AllowVerifiedContent,
}

/// TLS files (absolute paths on this host).
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// CA that signs the server's certificate; the platform store when `None`.
    pub server_ca: Option<PathBuf>,
    /// The device certificate (PEM), for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// The device key (PEM), for mutual TLS.
    pub client_key: Option<PathBuf>,
}

/// How the fetcher behaves.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// TLS files.
    pub tls: TlsSettings,
    /// Server-only or mutual TLS.
    pub secure: Secure,
    /// `http://` policy.
    pub plaintext: Plaintext,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Time to the response headers.
    pub response_timeout: Duration,
    /// Slowest acceptable body rate, in bytes per second (a body that arrives slower is cut and
    /// resumed); sets the per-request body timeout from the bytes still expected.
    pub min_rate: u64,
    /// Attempts per download (the first try included).
    pub attempts: u32,
    /// First backoff delay; doubles each retry, with up to 50% jitter.
    pub backoff: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            tls: TlsSettings::default(),
            secure: Secure::ServerAuth,
            plaintext: Plaintext::Refuse,
            connect_timeout: Duration::from_secs(15),
            response_timeout: Duration::from_secs(30),
            min_rate: 16 * 1024,
            attempts: 6,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The marker beside a partial download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PartialMarker {
    /// Where it comes from.
    pub url: String,
    /// The validator to resume against (ETag or Last-Modified), if the server sent one.
    pub validator: Option<String>,
    /// Bytes on disk.
    pub bytes: u64,
    /// The whole file's length as the server gave it (`Content-Length` of a 200,
    /// `Content-Range` of a 206), if it did: a resumed answer must agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// `partial` — never a complete, verified file.
    pub state: String,
}

/// Fetches URLs.
#[derive(Debug, Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
    opts: FetchOptions,
}

fn source_err(url: &str, reason: impl Into<String>) -> Error {
    Error::Source { url: url.to_owned(), reason: reason.into() }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::io(if what == "key" { "read TLS key" } else { "read TLS certificate" }, path, e))
}

fn certificates(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let pem = read_pem(path, "certificate")?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::InvalidValue {
            what: "certificate".into(),
            value: path.display().to_string(),
            reason: "no PEM certificate in the file".into(),
        });
    }
    Ok(certs)
}

impl Fetcher {
    /// A fetcher with these options.
    ///
    /// # Errors
    /// When a TLS file cannot be read or parsed, or mutual TLS lacks its certificate or key.
    pub fn new(opts: FetchOptions) -> Result<Self> {
        let mut tls = TlsConfig::builder();
        tls = match &opts.tls.server_ca {
            Some(ca) => tls.root_certs(RootCerts::new_with_certs(&certificates(ca)?)),
            None => tls.root_certs(RootCerts::PlatformVerifier),
        };
        if opts.secure == Secure::MutualTls {
            let (Some(cert), Some(key)) = (&opts.tls.client_cert, &opts.tls.client_key) else {
                return Err(Error::InvalidValue {
                    what: "secure".into(),
                    value: "true".into(),
                    reason: "mutual TLS needs `update config client-cert PATH` and `update config client-key PATH`"
                        .into(),
                });
            };
            let chain = certificates(cert)?;
            let key_pem = read_pem(key, "key")?;
            // Never echo key material: the message names the file only.
            let key = PrivateKey::from_pem(&key_pem).map_err(|_| Error::InvalidValue {
                what: "client-key".into(),
                value: key.display().to_string(),
                reason: "not a PEM private key".into(),
            })?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.response_timeout))
            .http_status_as_error(false)
            .build();
        Ok(Self { agent: config.into(), opts })
    }

    fn check_scheme(&self, url: &str) -> Result<()> {
        match url.split_once("://").map(|(s, _)| s) {
            Some("https" | "file") => Ok(()),
            Some("http") if self.opts.plaintext == Plaintext::AllowVerifiedContent => Ok(()),
            Some("http") => Err(source_err(
                url,
                "plain http:// is refused here; use https:// (or signed repository metadata, which allows http://)",
            )),
            _ => Err(source_err(url, "expected an https://, http:// or file:// URL")),
        }
    }

    /// Reads a small file, refusing more than `max_bytes`. `Ok(None)` for 404 / a missing file.
    ///
    /// # Errors
    /// [`Error::Source`] for network and HTTP errors; [`Error::Verification`] when over the limit.
    pub fn get_bytes(&self, url: &str, max_bytes: u64) -> Result<Option<Vec<u8>>> {
        self.check_scheme(url)?;
        if let Some(path) = url.strip_prefix("file://") {
            return match File::open(path) {
                Ok(f) => read_limited(f, max_bytes, url).map(Some),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io("read", path, e)),
            };
        }
        let resp = self.agent.get(url).call().map_err(|e| source_err(url, e.to_string()))?;
        match resp.status().as_u16() {
            200 => read_limited(resp.into_body().into_reader(), max_bytes, url).map(Some),
            404 => Ok(None),
            s => Err(source_err(url, format!("HTTP status {s}"))),
        }
    }

    /// Sends a JSON body with `POST` (one attempt: callers that must not lose the message keep
    /// it and send it again later) and returns the HTTP status and at most `max_bytes` of the
    /// answer. Only `https://` (or `http://` where allowed): a report is never sent to a file.
    ///
    /// # Errors
    /// [`Error::Source`] when the server cannot be reached or the answer cannot be read;
    /// [`Error::Verification`] when the answer is over the limit.
    pub fn post_json(&self, url: &str, body: &serde_json::Value, max_bytes: u64) -> Result<(u16, Vec<u8>)> {
        self.check_scheme(url)?;
        if url.starts_with("file://") {
            return Err(source_err(url, "cannot POST to a file:// URL"));
        }
        let bytes = serde_json::to_vec(body).map_err(|e| source_err(url, e.to_string()))?;
        let resp = self
            .agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(&bytes[..])
            .map_err(|e| source_err(url, e.to_string()))?;
        let status = resp.status().as_u16();
        let answer = read_limited(resp.into_body().into_reader(), max_bytes, url)?;
        Ok((status, answer))
    }

    /// Opens a stream of server-sent events (`text/event-stream`). The stream ends, with an
    /// error, after `lifetime` even if the server keeps it open: a connection that died without
    /// a word (a NAT dropping it) is noticed at the latest then, and the caller reconnects.
    ///
    /// # Errors
    /// [`Error::Source`] when the server cannot be reached or does not answer 200.
    pub fn event_stream(&self, url: &str, lifetime: Duration) -> Result<EventStream> {
        self.check_scheme(url)?;
        if url.starts_with("file://") {
            return Err(source_err(url, "cannot stream events from a file:// URL"));
        }
        let resp = self
            .agent
            .get(url)
            .header("Accept", "text/event-stream")
            .config()
            .timeout_recv_body(Some(lifetime))
            .build()
            .call()
            .map_err(|e| source_err(url, e.to_string()))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let answer = read_limited(resp.into_body().into_reader(), 4096, url).unwrap_or_default();
            return Err(source_err(url, format!("HTTP status {status}: {}", String::from_utf8_lossy(&answer).trim())));
        }
        Ok(EventStream::from_reader(Box::new(resp.into_body().into_reader()), url))
    }

    /// Opens `url` for reading in place: a `file://` URL as the local file, anything else as a
    /// [`RemoteFile`] read by HTTP Range. `length` is the exact length when signed metadata
    /// gives it; the file may not be longer than `max_bytes`.
    ///
    /// # Errors
    /// [`Error::Source`] for a refused scheme or a local file that cannot be opened.
    pub fn open_stream(
        &self,
        url: &str,
        length: Option<u64>,
        max_bytes: u64,
    ) -> Result<Box<dyn update_core::driver::ReadSeek>> {
        self.check_scheme(url)?;
        if let Some(path) = url.strip_prefix("file://") {
            let f = File::open(path).map_err(|e| source_err(url, e.to_string()))?;
            return Ok(Box::new(f));
        }
        Ok(Box::new(RemoteFile::new(self, url, length, max_bytes)?))
    }

    /// Like [`Fetcher::open_stream`], the readers sharing `head`: what one of them read of
    /// the file's first MiB, the next ones take from memory.
    ///
    /// # Errors
    /// As [`Fetcher::open_stream`].
    pub fn open_stream_cached(
        &self,
        url: &str,
        length: Option<u64>,
        max_bytes: u64,
        head: &HeadCache,
    ) -> Result<Box<dyn update_core::driver::ReadSeek>> {
        if url.starts_with("file://") {
            return self.open_stream(url, length, max_bytes);
        }
        self.check_scheme(url)?;
        Ok(Box::new(RemoteFile::new(self, url, length, max_bytes)?.with_head_cache(head.clone())))
    }

    /// Reads byte ranges of `url` ([`update_core::driver::ReadRanges`]): one exact `Range`
    /// request each (a `file://` URL is read in place), passing `(file offset, bytes)` to
    /// `sink` in order.
    ///
    /// # Errors
    /// As [`RemoteFile::read_range`]; the sink's errors.
    pub fn read_ranges(
        &self,
        url: &str,
        length: Option<u64>,
        ranges: &[std::ops::Range<u64>],
        sink: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.check_scheme(url)?;
        if let Some(path) = url.strip_prefix("file://") {
            use std::io::{Seek, SeekFrom};
            let mut f = File::open(path).map_err(|e| source_err(url, e.to_string()))?;
            let mut buf = vec![0u8; 64 * 1024];
            for r in ranges {
                f.seek(SeekFrom::Start(r.start)).map_err(|e| source_err(url, e.to_string()))?;
                let mut at = r.start;
                while at < r.end {
                    let want = usize::try_from((r.end - at).min(buf.len() as u64)).expect("at most 64 KiB");
                    let n = f.read(&mut buf[..want]).map_err(|e| source_err(url, e.to_string()))?;
                    if n == 0 {
                        return Err(Error::verification(url, format!("the file ends at byte {at}, inside a range")));
                    }
                    sink(at, &buf[..n])?;
                    at += n as u64;
                }
            }
            return Ok(());
        }
        let mut file = RemoteFile::new(self, url, length, length.unwrap_or(u64::MAX))?.ranged_only();
        for r in ranges {
            file.read_range(r.clone(), sink)?;
        }
        Ok(())
    }

    /// Downloads `url` to `dest` (see the crate docs). `max_bytes` is the most the signed
    /// metadata allows; `expected` is (exact length, SHA-256 hex) when known.
    ///
    /// # Errors
    /// [`Error::Source`] after the last attempt; [`Error::Verification`] for size or hash
    /// violations (the partial file is then discarded: it cannot become right by resuming).
    pub fn download(
        &self,
        url: &str,
        dest: &Path,
        max_bytes: u64,
        expected: Option<(u64, &str)>,
        progress: &dyn Progress,
    ) -> Result<()> {
        self.check_scheme(url)?;
        let partial = with_suffix(dest, ".partial");
        let marker = with_suffix(dest, ".partial.json");
        progress.start("downloading", expected.map_or(0, |e| e.0));
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match self.attempt(url, &partial, &marker, max_bytes, expected.map(|e| e.0), progress) {
                Ok(()) => break Ok(()),
                Err(e) if matches!(e, Error::Verification { .. }) => break Err(e),
                Err(e) if attempt >= self.opts.attempts => break Err(e),
                Err(_) => std::thread::sleep(backoff(self.opts.backoff, attempt)),
            }
        };
        progress.finish();
        result?;
        let got = std::fs::metadata(&partial).map_err(|e| Error::io("stat", &partial, e))?.len();
        if let Some((len, sha)) = expected {
            if got != len {
                let _ = std::fs::remove_file(&partial);
                return Err(Error::verification(url, format!("downloaded {got} bytes, the signed length is {len}")));
            }
            let digest = sha256_file(&partial)?;
            if digest != sha {
                let _ = std::fs::remove_file(&partial);
                let _ = std::fs::remove_file(&marker);
                return Err(Error::verification(url, format!("SHA-256 is {digest}, the signed hash is {sha}")));
            }
        }
        File::open(&partial).and_then(|f| f.sync_all()).map_err(|e| Error::io("fsync", &partial, e))?;
        std::fs::rename(&partial, dest).map_err(|e| Error::io("rename into place", dest, e))?;
        let _ = std::fs::remove_file(&marker);
        if let Some(dir) = dest.parent() {
            update_core::atomic::sync_dir(dir)?;
        }
        Ok(())
    }

    fn attempt(
        &self,
        url: &str,
        partial: &Path,
        marker: &Path,
        max_bytes: u64,
        signed_length: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<()> {
        if let Some(path) = url.strip_prefix("file://") {
            let f = File::open(path).map_err(|e| source_err(url, e.to_string()))?;
            let mut out = File::create(partial).map_err(|e| Error::io("create", partial, e))?;
            copy_limited(f, &mut out, max_bytes, url, progress)?;
            return Ok(());
        }
        let mark: Option<PartialMarker> = std::fs::read(marker).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let have = match (&mark, std::fs::metadata(partial)) {
            (Some(m), Ok(meta)) if m.url == url => meta.len(),
            _ => 0,
        };
        let mut req = self.agent.get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
            if let Some(v) = mark.as_ref().and_then(|m| m.validator.clone()) {
                req = req.header("If-Range", v);
            }
        }
        let (resp, validator) = self.call(req, url, max_bytes.saturating_sub(have))?;
        let status = resp.status().as_u16();
        let (mut out, start, total) = match status {
            206 if have > 0 => {
                // Checked before a byte is appended: bytes placed at the wrong offset would
                // only be caught by the final hash, or never without one.
                let known = signed_length.or(mark.as_ref().and_then(|m| m.total));
                let header = resp.headers().get("content-range").map(|v| v.to_str().unwrap_or("(not text)"));
                let total = check_content_range(header, have, known, max_bytes).map_err(|reason| {
                    // Resuming from this server cannot be trusted: the next attempt starts
                    // over with a plain GET (the partial file stays as it was until then).
                    let _ = std::fs::remove_file(marker);
                    source_err(url, format!("206 answer to Range: bytes={have}- refused: {reason}"))
                })?;
                let out = OpenOptions::new().append(true).open(partial).map_err(|e| Error::io("open", partial, e))?;
                (out, have, total)
            }
            200 => {
                let total = resp.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse().ok());
                (File::create(partial).map_err(|e| Error::io("create", partial, e))?, 0, total)
            }
            416 if have > 0 => return Ok(()), // we already have every byte
            s => return Err(source_err(url, format!("HTTP status {s}"))),
        };
        progress.advance(start);
        let mark = PartialMarker { url: url.to_owned(), validator, bytes: start, total, state: "partial".into() };
        let mark_bytes = serde_json::to_vec(&mark).map_err(|e| Error::Other(e.to_string()))?;
        update_core::atomic::write_atomic(marker, &mark_bytes, 0o644)?;
        // A 206 body longer than its range would be bytes past the end of the file.
        let limit = if status == 206 { total.map_or(max_bytes, |t| t.min(max_bytes)) } else { max_bytes };
        copy_limited(resp.into_body().into_reader(), &mut out, limit - start, url, progress)?;
        out.sync_data().map_err(|e| Error::io("fsync", partial, e))
    }
}

impl Fetcher {
    /// Sends a GET for a large body, with a body time limit from the bytes `expected` and the
    /// slowest acceptable rate; returns the answer and its validator (ETag, else Last-Modified).
    fn call(
        &self,
        req: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
        url: &str,
        expected: u64,
    ) -> Result<(ureq::http::Response<ureq::Body>, Option<String>)> {
        let body_timeout = Duration::from_secs(60 + expected / self.opts.min_rate.max(1));
        let resp = req
            .config()
            .timeout_recv_body(Some(body_timeout))
            .build()
            .call()
            .map_err(|e| source_err(url, e.to_string()))?;
        let validator = resp
            .headers()
            .get("etag")
            .or_else(|| resp.headers().get("last-modified"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((resp, validator))
    }
}

/// Checks the `Content-Range` of a 206 answer to `Range: bytes={offset}-`: it must be
/// `bytes {offset}-{total - 1}/{total}` (or `…/*` when the server does not know the length),
/// with `total` no larger than `max_bytes` and equal to `known` when the length is known.
/// Returns the total, if given.
fn check_content_range(
    header: Option<&str>,
    offset: u64,
    known: Option<u64>,
    max_bytes: u64,
) -> std::result::Result<Option<u64>, String> {
    let (first, last, total) = remote::parse_content_range(header)?;
    let header = header.unwrap_or_default();
    if first != offset {
        return Err(format!("Content-Range {header:?} starts at byte {first}, not at {offset}"));
    }
    if last < first {
        return Err(format!("Content-Range {header:?} ends before it starts"));
    }
    if let Some(total) = total {
        if last.checked_add(1) != Some(total) {
            return Err(format!("Content-Range {header:?} does not run to the end of the {total} bytes"));
        }
        if total > max_bytes {
            return Err(format!("Content-Range {header:?}: more than the {max_bytes} bytes allowed"));
        }
        if let Some(known) = known.filter(|k| *k != total) {
            return Err(format!("Content-Range {header:?}: the file is {known} bytes, not {total}"));
        }
    }
    Ok(total)
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn backoff(first: Duration, attempt: u32) -> Duration {
    let base = first.saturating_mul(1 << attempt.min(8).saturating_sub(1));
    // Jitter up to 50% from the clock's low bits: enough to spread a fleet.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

/// One server-sent event: its `event:` name (`message` when the server names none) and its
/// `data:` lines joined with newlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    /// The event name.
    pub event: String,
    /// The data.
    pub data: String,
}

/// The longest line (and event) a stream may send; a longer one ends the stream with an error.
const MAX_EVENT_BYTES: usize = 64 * 1024;

/// An open event stream; iterate it for events. Comments (`: keep-alive`) are skipped.
pub struct EventStream {
    reader: std::io::BufReader<Box<dyn Read + Send>>,
    url: String,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").field("url", &self.url).finish_non_exhaustive()
    }
}

impl EventStream {
    /// A stream over any reader (the body of an HTTP response; tests and the fuzz target use
    /// plain bytes).
    #[doc(hidden)]
    #[must_use]
    pub fn from_reader(reader: Box<dyn Read + Send>, url: &str) -> Self {
        Self { reader: std::io::BufReader::new(reader), url: url.to_owned() }
    }

    /// Reads one line (without its line ending); `None` at the end of the stream.
    fn line(&mut self) -> Result<Option<String>> {
        use std::io::BufRead;
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_EVENT_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| source_err(&self.url, format!("event stream: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        if buf.len() > MAX_EVENT_BYTES {
            return Err(Error::verification(&self.url, format!("an event line over {MAX_EVENT_BYTES} bytes")));
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }
}

impl Iterator for EventStream {
    type Item = Result<ServerEvent>;

    /// The next event; `None` when the server closed the stream.
    fn next(&mut self) -> Option<Self::Item> {
        let mut event = String::new();
        let mut data: Vec<String> = Vec::new();
        loop {
            let line = match self.line() {
                Ok(Some(l)) => l,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            if line.is_empty() {
                if data.is_empty() && event.is_empty() {
                    continue;
                }
                let event = if event.is_empty() { "message".to_owned() } else { event };
                return Some(Ok(ServerEvent { event, data: data.join("\n") }));
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => value.clone_into(&mut event),
                "data" => {
                    if data.iter().map(String::len).sum::<usize>() + value.len() > MAX_EVENT_BYTES {
                        return Some(Err(Error::verification(
                            &self.url,
                            format!("an event over {MAX_EVENT_BYTES} bytes"),
                        )));
                    }
                    data.push(value.to_owned());
                }
                _ => {}
            }
        }
    }
}

fn read_limited(r: impl Read, max: u64, url: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(max + 1).read_to_end(&mut out).map_err(|e| source_err(url, e.to_string()))?;
    if out.len() as u64 > max {
        return Err(Error::verification(url, format!("more than the {max} bytes allowed")));
    }
    Ok(out)
}

fn copy_limited(mut r: impl Read, out: &mut File, max: u64, url: &str, progress: &dyn Progress) -> Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(|e| source_err(url, format!("after {total} bytes: {e}")))?;
        if n == 0 {
            return Ok(total);
        }
        if total + n as u64 > max {
            return Err(Error::verification(url, format!("the server sent more than the {max} bytes allowed")));
        }
        out.write_all(&buf[..n]).map_err(|e| Error::io("write", url, e))?;
        total += n as u64;
        progress.advance(n as u64);
    }
}

fn sha256_file(p: &Path) -> Result<String> {
    let mut f = File::open(p).map_err(|e| Error::io("open", p, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", p, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod sse_tests {
    use super::*;
    use proptest::prelude::*;

    /// Hands out the bytes in chunks of the given sizes (as a network would).
    struct Chunked {
        data: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        turn: usize,
    }

    impl Read for Chunked {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let size = self.sizes.get(self.turn % self.sizes.len().max(1)).copied().unwrap_or(1).max(1);
            self.turn += 1;
            let n = size.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn events(text: &[u8], sizes: Vec<usize>) -> Vec<Result<ServerEvent>> {
        let r = Chunked { data: text.to_vec(), at: 0, sizes, turn: 0 };
        EventStream::from_reader(Box::new(r), "https://s/push").collect()
    }

    fn ev(event: &str, data: &str) -> ServerEvent {
        ServerEvent { event: event.into(), data: data.into() }
    }

    const STREAM: &[u8] = b": connected\n\nevent: wake-up\ndata: {}\n\n: keep-alive\n\n\
data: line one\r\ndata:line two\r\n\r\nevent: bye\n\nretry: 10\nid: 7\nevent: last\ndata: x\n\n";

    #[test]
    fn comments_are_skipped_and_fields_are_parsed() {
        let got: Vec<ServerEvent> = events(STREAM, vec![4096]).into_iter().map(Result::unwrap).collect();
        assert_eq!(got, [ev("wake-up", "{}"), ev("message", "line one\nline two"), ev("bye", ""), ev("last", "x")]);
    }

    /// From the `sse` fuzz target (its assertion forgot the default name): a bare `data` line
    /// is a field with an empty value, and an event without `event:` is a "message".
    #[test]
    fn a_bare_data_line_is_an_empty_message() {
        let got: Vec<ServerEvent> = events(b"data\n\n", vec![4096]).into_iter().map(Result::unwrap).collect();
        assert_eq!(got, [ev("message", "")]);
    }

    #[test]
    fn an_event_cut_off_by_the_end_of_the_stream_is_not_delivered() {
        let got: Vec<_> = events(b"event: wake-up\ndata: {}\n", vec![7]).into_iter().collect();
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut text = b"data: ".to_vec();
        text.extend(std::iter::repeat_n(b'a', MAX_EVENT_BYTES + 10));
        text.extend(b"\n\n");
        let got = events(&text, vec![1000]);
        assert_eq!(got.len(), 1);
        let e = got.into_iter().next().unwrap().unwrap_err();
        assert!(e.to_string().contains("over 65536 bytes"), "{e}");
    }

    proptest! {
        /// However the network splits the bytes, the same events come out.
        #[test]
        fn chunking_does_not_change_the_events(sizes in proptest::collection::vec(1usize..40, 1..20)) {
            let whole: Vec<ServerEvent> = events(STREAM, vec![4096]).into_iter().map(Result::unwrap).collect();
            let split: Vec<ServerEvent> = events(STREAM, sizes).into_iter().map(Result::unwrap).collect();
            prop_assert_eq!(whole, split);
        }
    }
}
