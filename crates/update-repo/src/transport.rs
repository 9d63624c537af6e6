//! How the verifier gets bytes: a [`Transport`] the caller passes in.
//!
//! The verifier never opens a socket or a file of the repository itself. Paths are relative to
//! the repository's base (`metadata/timestamp.json`, `targets/<sha256>.bundle.upd`), so one
//! transport serves a directory (`file://`, USB stick), a web server or a CDN. This crate ships
//! [`DirTransport`] for a local directory; HTTPS lives in `update-fetch`.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The file does not exist (HTTP 404): for `N.root.json` this ends the root chain.
    #[error("not found")]
    NotFound,
    /// The file is larger than `max_bytes` (the transport stopped reading).
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The `max_bytes` asked for.
        limit: u64,
    },
    /// Anything else: connection, TLS, permissions, server error.
    #[error("{0}")]
    Failed(String),
}

/// Fetches repository files.
pub trait Transport {
    /// Returns the whole file at `path` (relative to the repository base, `/`-separated).
    /// Implementations must not read more than `max_bytes + 1` bytes: past `max_bytes` they
    /// stop and return [`FetchError::TooLarge`] (the endless-data defence; the verifier checks
    /// the length again).
    ///
    /// # Errors
    /// [`FetchError::NotFound`] when the file does not exist; other failures otherwise.
    fn fetch(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>, FetchError>;
}

impl<T: Transport + ?Sized> Transport for &T {
    fn fetch(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        (**self).fetch(path, max_bytes)
    }
}

/// A repository in a local directory (`file://`): `<base>/metadata/…`, `<base>/targets/…`.
#[derive(Debug, Clone)]
pub struct DirTransport {
    base: PathBuf,
}

impl DirTransport {
    /// A transport reading below `base`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        Self { base: base.into() }
    }

    /// The base directory.
    #[must_use]
    pub fn base(&self) -> &Path {
        &self.base
    }
}

impl Transport for DirTransport {
    fn fetch(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        let rel = Path::new(path);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(FetchError::Failed(format!("refusing path {path:?} outside the repository")));
        }
        let full = self.base.join(rel);
        let file = match std::fs::File::open(&full) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FetchError::NotFound),
            Err(e) => return Err(FetchError::Failed(format!("open {}: {e}", full.display()))),
        };
        let mut data = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| FetchError::Failed(format!("read {}: {e}", full.display())))?;
        if data.len() as u64 > max_bytes {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_transport_stops_at_the_limit_and_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("metadata")).unwrap();
        std::fs::write(dir.path().join("metadata/x.json"), b"0123456789").unwrap();
        let t = DirTransport::new(dir.path());
        assert_eq!(t.fetch("metadata/x.json", 10).unwrap().len(), 10);
        assert!(matches!(t.fetch("metadata/x.json", 9), Err(FetchError::TooLarge { limit: 9 })));
        assert!(matches!(t.fetch("metadata/none.json", 9), Err(FetchError::NotFound)));
        assert!(matches!(t.fetch("../etc/passwd", 9), Err(FetchError::Failed(_))));
        assert!(matches!(t.fetch("/etc/passwd", 9), Err(FetchError::Failed(_))));
    }
}
