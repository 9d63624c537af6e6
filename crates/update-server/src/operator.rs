//! Who may use the operator API: [`OperatorAccess`], a bearer token read from a file and
//! compared in constant time. The token is kept only as its SHA-256, never logged, and never
//! shown by `Debug`.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ServerError;

/// Shortest accepted token, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// The operator's bearer token.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    /// A token from its text: at least 16 visible ASCII characters (it travels in an HTTP
    /// header), no spaces.
    ///
    /// # Errors
    /// Why the token is refused (never the token).
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_TOKEN_LEN {
            return Err(format!("the token must be at least {MIN_TOKEN_LEN} characters"));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be visible ASCII characters without spaces".to_owned());
        }
        Ok(Self { digest: Sha256::digest(secret.as_bytes()).into() })
    }

    /// The token in `path`: its content without surrounding whitespace (a trailing newline is
    /// fine). Warns when others than the owner may read the file.
    ///
    /// # Errors
    /// The file cannot be read or the token is refused.
    pub fn from_file(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::Io {
            op: "read the admin token file",
            path: path.to_owned(),
            source,
        })?;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the admin token file is readable by others than its owner (chmod 600)");
        }
        Self::new(text.trim()).map_err(|reason| ServerError::Invalid { path: path.to_owned(), reason })
    }

    /// Whether `presented` is the token, in time independent of where they differ (and of
    /// their lengths: digests are compared).
    #[must_use]
    pub fn verify(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Whether the operator API can be used.
#[derive(Debug, Clone, Default)]
pub enum OperatorAccess {
    /// No `--admin-token-file`: every operator request is refused.
    #[default]
    Disabled,
    /// Requests must carry `Authorization: Bearer <token>`.
    Token(AdminToken),
}

/// The token of an `Authorization: Bearer <token>` header value.
pub(crate) fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = AdminToken::new("0123456789abcdef-snakeoil").unwrap();
        assert!(t.verify("0123456789abcdef-snakeoil"));
        assert!(!t.verify("0123456789abcdef-snakeoiL"));
        assert!(!t.verify(""));
        assert!(!t.verify("0123456789abcdef-snakeoil "));
        assert_eq!(format!("{t:?}"), "AdminToken(<redacted>)");
        assert!(AdminToken::new("short").is_err());
        assert!(AdminToken::new("sixteen chars with spaces").is_err());
        assert!(AdminToken::new("0123456789abcdef\u{e9}").is_err());
    }

    #[test]
    fn token_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        std::fs::write(&path, "0123456789abcdef-snakeoil\n").unwrap();
        assert!(AdminToken::from_file(&path).unwrap().verify("0123456789abcdef-snakeoil"));
        std::fs::write(&path, "short\n").unwrap();
        let e = AdminToken::from_file(&path).unwrap_err();
        assert!(e.to_string().contains("admin-token") && !e.to_string().contains("short\n"), "{e}");
        let e = AdminToken::from_file(&dir.path().join("missing")).unwrap_err();
        assert_eq!(e.exit_code(), 3);
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("abc"), None);
    }
}
