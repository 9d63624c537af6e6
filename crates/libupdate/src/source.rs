//! Resolving the update source to local update files.
//!
//! A `file://PATH` source is one of:
//! - **one update file** (any name): that file;
//! - **a signed repository** (a directory with `metadata/root.json`, TUF format, see
//!   docs/reference/repository.md): the client workflow runs first — root chain, timestamp,
//!   snapshot, targets with their freshness, rollback, mix-and-match and size checks — and the
//!   candidates are the targets with an update-file extension, each checked against its signed
//!   length and hashes before it is offered. The trust anchor is `/etc/update/root.json` when
//!   present, else the first root signed by `signature-threshold` keys of the keyring; trusted
//!   metadata is kept in `/var/lib/update/tuf/<source>/`;
//! - **a plain directory**: its update files (by extension: the ones the registered drivers
//!   name, [`update_core::driver::DriverFactory::update_extensions`], e.g. `.bundle`, `.raucb`,
//!   `.swu`, `.mender`); other files (a README, an index page) are ignored.
//!
//! An `https://` (or, for repositories only, `http://`) source is fetched with update-fetch:
//! - a URL ending in an update-file extension is offered as a single file (its own signatures
//!   protect it): streamed (read by Range while it is installed) when the driver has
//!   [`update_core::driver::Capability::Streaming`], else downloaded (resumable) into
//!   `/var/cache/update/`;
//! - any other URL is a signed repository: metadata is read with size limits through the same
//!   TUF client workflow. A target whose signed metadata gives its bundle head hash
//!   ([`update_core::driver::BUNDLE_HEAD_SHA256`]) is streamed by such a driver (the head is
//!   checked against it before any payload is read); every other target is downloaded with its
//!   signed length and SHA-256 as hard limits. Plain `http://` is allowed only here, because
//!   every byte is verified against signed metadata.
//!
//! TLS: the server is verified against the system CA store, or `tls.server-ca`; with
//! `secure = true` the device presents `tls.client-cert`/`tls.client-key` (mutual TLS).
//!
//! The driver then inspects each candidate (the bundle's own signatures) and the newest
//! eligible one wins.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Digest;
use update_core::config::SourceUrl;
use update_core::driver::{BUNDLE_HEAD_SHA256, InstallRequest, Stream};
use update_core::keyring::Keyring;
use update_core::{Error, Paths, Result};
use update_repo::{DirTransport, TrustAnchor, TrustedMetadata};

/// What a source offers.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    /// Local update files, and the URLs (as paths, for messages) of streamed ones.
    pub files: Vec<PathBuf>,
    /// Whether the source names one file (then an ineligible file is an error, not "no update").
    pub single: bool,
    /// The files of `files` that are read from the network as they are installed.
    pub streams: BTreeMap<PathBuf, Stream>,
}

impl Offer {
    /// The install request for one offered file.
    #[must_use]
    pub fn request(&self, file: &Path, verify: update_core::config::Verify) -> InstallRequest {
        InstallRequest { bundle: file.to_owned(), verify, stream: self.streams.get(file).cloned() }
    }
}

/// What resolving a source needs besides the URL.
#[derive(Clone, Copy)]
pub struct Trust<'a> {
    /// The device keyring (trust anchor for a repository's first root).
    pub keyring: &'a Keyring,
    /// How many keyring keys must sign that root.
    pub threshold: u32,
    /// The time metadata expiry is checked against.
    pub now: time::OffsetDateTime,
    /// TLS files and policy for https:// sources.
    pub config: &'a update_core::config::Config,
    /// Download progress.
    pub progress: &'a dyn update_core::driver::Progress,
    /// Called with the file name before each download starts (not for a cached file).
    pub on_download: &'a dyn Fn(&str),
    /// Whether a file extension (without the dot) names an update file.
    pub is_update_extension: &'a dyn Fn(&str) -> bool,
    /// Only this repository target is considered (a fleet assignment); others are neither
    /// downloaded nor offered. Plain directories and single files ignore it.
    pub only: Option<&'a str>,
    /// Whether the driver installs while reading from the network
    /// ([`update_core::driver::Capability::Streaming`]): remote bundles are then offered as
    /// streams instead of being downloaded first.
    pub streaming: bool,
}

impl std::fmt::Debug for Trust<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").field("threshold", &self.threshold).field("now", &self.now).finish_non_exhaustive()
    }
}

/// The largest single update file fetched without signed metadata giving its length.
pub const MAX_UNSIGNED_DOWNLOAD: u64 = 16 << 30;

impl Trust<'_> {
    fn is_update_file(&self, p: &Path) -> bool {
        p.extension().and_then(|e| e.to_str()).is_some_and(|e| (self.is_update_extension)(e))
    }

    /// Whether a repository target is an update file to consider.
    fn wants(&self, name: &update_repo::TargetName) -> bool {
        let name = name.to_string();
        self.only.is_none_or(|o| o == name) && self.is_update_file(Path::new(&name))
    }
}

/// The local files a source offers.
///
/// # Errors
/// [`Error::Source`] when the source cannot be read; [`Error::Verification`] when repository
/// metadata or a target fails its checks.
pub fn candidates(paths: &Paths, url: &SourceUrl, trust: Trust<'_>) -> Result<Offer> {
    let Some(p) = url.file_path() else {
        return remote(paths, url, trust);
    };
    let path = paths.resolve(p);
    let meta = std::fs::metadata(&path)
        .map_err(|e| Error::Source { url: url.to_string(), reason: format!("{}: {e}", path.display()) })?;
    if meta.is_file() {
        return Ok(Offer { files: vec![path], single: true, ..Offer::default() });
    }
    if path.join("metadata/root.json").is_file() || path.join("metadata/1.root.json").is_file() {
        return repository(paths, url, &path, trust);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
        .map_err(|e| Error::Source { url: url.to_string(), reason: format!("{}: {e}", path.display()) })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .filter(|p| trust.is_update_file(p))
        .collect();
    update_core::sort::sort(&mut files);
    // An empty directory is a source with no releases yet: "no update", not an error.
    Ok(Offer { files, single: false, ..Offer::default() })
}

/// Where the trusted metadata of a source is kept.
fn state_dir(paths: &Paths, url: &SourceUrl) -> PathBuf {
    let id = hex::encode(&sha2::Sha256::digest(url.as_str().as_bytes())[..8]);
    paths.state_dir().join("tuf").join(id)
}

fn anchor(paths: &Paths, trust: Trust<'_>) -> TrustAnchor {
    match std::fs::read(paths.config_dir().join("root.json")) {
        Ok(bytes) => TrustAnchor::PinnedRoot(bytes),
        Err(_) => TrustAnchor::Keyring { keyring: trust.keyring.clone(), threshold: u64::from(trust.threshold) },
    }
}

fn fetcher(paths: &Paths, trust: Trust<'_>, plaintext: update_fetch::Plaintext) -> Result<update_fetch::Fetcher> {
    let tls = &trust.config.tls;
    update_fetch::Fetcher::new(update_fetch::FetchOptions {
        tls: update_fetch::TlsSettings {
            server_ca: tls.server_ca.as_ref().map(|p| paths.resolve(p)),
            client_cert: tls.client_cert.as_ref().map(|p| paths.resolve(p)),
            client_key: tls.client_key.as_ref().map(|p| paths.resolve(p)),
        },
        secure: trust.config.secure,
        plaintext,
        ..update_fetch::FetchOptions::default()
    })
}

/// A repository over HTTP(S), for the TUF client.
struct HttpTransport {
    base: String,
    fetcher: update_fetch::Fetcher,
}

impl update_repo::Transport for HttpTransport {
    fn fetch(&self, path: &str, max_bytes: u64) -> std::result::Result<Vec<u8>, update_repo::FetchError> {
        let url = format!("{}/{path}", self.base);
        match self.fetcher.get_bytes(&url, max_bytes) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(update_repo::FetchError::NotFound),
            Err(Error::Verification { .. }) => Err(update_repo::FetchError::TooLarge { limit: max_bytes }),
            Err(e) => Err(update_repo::FetchError::Failed(e.to_string())),
        }
    }
}

fn cache_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

fn remote(paths: &Paths, url: &SourceUrl, trust: Trust<'_>) -> Result<Offer> {
    let cache = paths.cache_dir();
    update_core::atomic::ensure_dir(&cache)?;
    let text = url.as_str().trim_end_matches('/');
    let last = text.rsplit('/').next().unwrap_or("");
    if trust.is_update_file(Path::new(last)) {
        let f = fetcher(paths, trust, update_fetch::Plaintext::Refuse)?;
        if trust.streaming {
            // Its own signatures protect it; nothing is stored on the device.
            let mut offer = Offer { single: true, ..Offer::default() };
            offer.add_stream(&f, url.as_str(), None, None);
            return Ok(offer);
        }
        let dest = cache.join(cache_name(last));
        (trust.on_download)(last);
        f.download(url.as_str(), &dest, MAX_UNSIGNED_DOWNLOAD, None, trust.progress)?;
        return Ok(Offer { files: vec![dest], single: true, ..Offer::default() });
    }
    let f = fetcher(paths, trust, update_fetch::Plaintext::AllowVerifiedContent)?;
    let transport = HttpTransport { base: text.to_owned(), fetcher: f.clone() };
    let state = state_dir(paths, url);
    update_core::atomic::ensure_dir(&state)?;
    let client = update_repo::TufClient::new(transport, &state, anchor(paths, trust));
    let trusted = client.refresh(trust.now)?;
    let mut offer = Offer::default();
    let mut files = Vec::new();
    for name in trusted.target_names() {
        if !trust.wants(&name) {
            continue;
        }
        let info = trusted.target(&name)?;
        let sha = info.hashes.get("sha256").ok_or_else(|| Error::Verification {
            what: format!("target {name}"),
            reason: "no sha256 in the signed metadata".into(),
        })?;
        // A target whose signed metadata gives its head hash is streamed: that hash, checked
        // before anything else is read, binds the whole bundle to the repository. Without it
        // (a repository made by another tool) the target is downloaded and checked whole.
        let head = info.custom.as_ref().and_then(|c| c.get(BUNDLE_HEAD_SHA256)).and_then(|v| v.as_str());
        if let (true, Some(head)) = (trust.streaming, head) {
            let remote_url = format!("{text}/targets/{}", trusted.target_file(&name)?);
            offer.add_stream(&f, &remote_url, Some(info.length), Some(head.to_owned()));
            continue;
        }
        let dest = cache.join(cache_name(&name.to_string()));
        if cached_matches(&dest, info.length, sha) {
            files.push(dest);
            continue;
        }
        (trust.on_download)(&name.to_string());
        let remote_url = format!("{text}/targets/{}", trusted.target_file(&name)?);
        f.download(&remote_url, &dest, info.length, Some((info.length, sha)), trust.progress)?;
        files.push(dest);
    }
    prune_cache(&cache, &files, trust);
    offer.files.extend(files);
    update_core::sort::sort(&mut offer.files);
    Ok(offer)
}

impl Offer {
    /// Offers `url` as a stream.
    fn add_stream(
        &mut self,
        fetcher: &update_fetch::Fetcher,
        url: &str,
        length: Option<u64>,
        head_sha: Option<String>,
    ) {
        let (f, u) = (fetcher.clone(), url.to_owned());
        // One head for every open: a check and the install's opens read it once.
        let head = update_fetch::HeadCache::default();
        let open = move || f.open_stream_cached(&u, length, length.unwrap_or(MAX_UNSIGNED_DOWNLOAD), &head);
        let (f, u) = (fetcher.clone(), url.to_owned());
        let ranges = move |ranges: &[std::ops::Range<u64>],
                           sink: &mut dyn FnMut(u64, &[u8]) -> update_core::Result<()>| {
            f.read_ranges(&u, length, ranges, sink)
        };
        let stream = Stream {
            url: url.to_owned(),
            length,
            head_sha256: head_sha,
            open: Arc::new(open),
            ranges: Some(Arc::new(ranges)),
        };
        let key = PathBuf::from(url);
        self.files.push(key.clone());
        self.streams.insert(key, stream);
    }
}

/// Removes update files from the cache that the repository no longer lists (old releases),
/// with their partial downloads, so the cache holds at most the current targets.
fn prune_cache(cache: &Path, keep: &[PathBuf], trust: Trust<'_>) {
    let Ok(entries) = std::fs::read_dir(cache) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let base = name.strip_suffix(".partial.json").or_else(|| name.strip_suffix(".partial")).unwrap_or(&name);
        let target = cache.join(base);
        if trust.is_update_file(&target) && !keep.contains(&target) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Whether `dest` already holds exactly the signed target (length, then SHA-256): a target
/// downloaded by an earlier check is not fetched again.
fn cached_matches(dest: &Path, length: u64, sha256_hex: &str) -> bool {
    let Ok(meta) = std::fs::metadata(dest) else { return false };
    if meta.len() != length {
        return false;
    }
    let Ok(mut f) = std::fs::File::open(dest) else { return false };
    let mut h = sha2::Sha256::new();
    if std::io::copy(&mut f, &mut h).is_err() {
        return false;
    }
    hex::encode(h.finalize()).eq_ignore_ascii_case(sha256_hex)
}

fn repository(paths: &Paths, url: &SourceUrl, dir: &Path, trust: Trust<'_>) -> Result<Offer> {
    let anchor = anchor(paths, trust);
    let state = state_dir(paths, url);
    update_core::atomic::ensure_dir(&state)?;
    let client = update_repo::TufClient::new(DirTransport::new(dir), &state, anchor);
    let trusted = client.refresh(trust.now)?;
    let mut files = Vec::new();
    for name in trusted.target_names() {
        if !trust.wants(&name) {
            continue;
        }
        let file = dir.join("targets").join(trusted.target_file(&name)?);
        check_target(&trusted, &name, &file)?;
        files.push(file);
    }
    update_core::sort::sort(&mut files);
    Ok(Offer { files, single: false, ..Offer::default() })
}

/// Streams a target file through its signed length and hashes.
fn check_target(trusted: &TrustedMetadata, name: &update_repo::TargetName, file: &Path) -> Result<()> {
    let info = trusted.target(name)?;
    let mut checker = info.checker();
    let f = std::fs::File::open(file).map_err(|e| Error::io("open target", file, e))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut buf = vec![0u8; 1 << 20];
    let refused = |reason: update_repo::Refusal| Error::Verification {
        what: format!("target {name} ({})", file.display()),
        reason: reason.to_string(),
    };
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::io("read target", file, e))?;
        if n == 0 {
            break;
        }
        checker.update(&buf[..n]).map_err(refused)?;
    }
    checker.finish().map_err(refused)
}
