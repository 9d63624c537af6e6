//! Who may use the operator API: [`OperatorAccess`], named bearer tokens with a [`Role`] each,
//! read from files and compared in constant time. A token is kept only as its SHA-256, never
//! logged, and never shown by `Debug`.
//!
//! Roles are ordered: a `viewer` reads (inventory, events, releases, deployments); an
//! `operator` also acts (check-now, tags, releases, deployments and their pause, resume and
//! abort); an `admin` also reads and verifies the operator audit log. The token of
//! `--admin-token-file` is an admin named `admin`; `--operator-tokens` adds named tokens.

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
        let text = read_secret_file(path, "read the admin token file")?;
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

/// What an operator token allows; each role includes those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads the fleet and the rollouts.
    Viewer,
    /// Also acts on them.
    Operator,
    /// Also reads and verifies the operator audit log.
    Admin,
}

impl Role {
    /// The role's name (`viewer`, `operator`, `admin`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Role::Viewer, Role::Operator, Role::Admin].into_iter().find(|r| r.as_str() == name)
    }
}

/// Who made an operator request: its token's name and role (a request extension set by the
/// token check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The token's name (in the audit log).
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// Named tokens, each with a role.
#[derive(Clone, Default)]
pub struct OperatorTokens {
    tokens: Vec<(Operator, AdminToken)>,
}

impl fmt::Debug for OperatorTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.tokens.iter().map(|(o, _)| (&o.name, o.role))).finish()
    }
}

impl OperatorTokens {
    /// No tokens.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// One admin token named `admin` (what `--admin-token-file` gives).
    #[must_use]
    pub fn with_admin(token: AdminToken) -> Self {
        Self { tokens: vec![(Operator { name: "admin".to_owned(), role: Role::Admin }, token)] }
    }

    /// Adds a token.
    ///
    /// # Errors
    /// The name is not 1 to 64 of `A-Z a-z 0-9 . _ -`, or is taken, or the token is refused
    /// or already given to another name.
    pub fn add(&mut self, name: &str, role: Role, secret: &str) -> Result<(), String> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
        if !valid {
            return Err(format!("token name {name:?}: 1 to 64 of A-Z a-z 0-9 . _ -"));
        }
        if self.tokens.iter().any(|(o, _)| o.name == name) {
            return Err(format!("token name {name:?} is given twice"));
        }
        let token = AdminToken::new(secret).map_err(|e| format!("token {name:?}: {e}"))?;
        if self.authenticate(secret).is_some() {
            return Err(format!("token {name:?} is the same as another token"));
        }
        self.tokens.push((Operator { name: name.to_owned(), role }, token));
        Ok(())
    }

    /// Reads `path`: one token per line, `NAME ROLE TOKEN` separated by spaces; empty lines
    /// and lines starting with `#` are skipped. Warns when others than the owner may read it.
    ///
    /// # Errors
    /// The file cannot be read, or a line is wrong (the error names the line, never a token).
    pub fn read_file(&mut self, path: &Path) -> Result<(), ServerError> {
        let text = read_secret_file(path, "read the operator tokens file")?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |reason: String| ServerError::Invalid {
                path: path.to_owned(),
                reason: format!("line {}: {reason}", i + 1),
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, role, secret] = fields[..] else {
                return Err(invalid("expected NAME ROLE TOKEN".to_owned()));
            };
            let role = Role::from_name(role)
                .ok_or_else(|| invalid(format!("role {role:?} is not viewer, operator or admin")))?;
            self.add(name, role, secret).map_err(invalid)?;
        }
        Ok(())
    }

    /// The operator `presented` belongs to. Every token's digest is compared, each in constant
    /// time.
    #[must_use]
    pub fn authenticate(&self, presented: &str) -> Option<Operator> {
        let mut found = None;
        for (operator, token) in &self.tokens {
            if token.verify(presented) {
                found = Some(operator.clone());
            }
        }
        found
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Whether the operator API can be used.
#[derive(Debug, Clone, Default)]
pub enum OperatorAccess {
    /// No token files: every operator request is refused.
    #[default]
    Disabled,
    /// Requests must carry `Authorization: Bearer <token>` with one of these.
    Tokens(OperatorTokens),
}

impl OperatorAccess {
    /// One admin token named `admin` (what `--admin-token-file` gives).
    #[must_use]
    pub fn admin(token: AdminToken) -> Self {
        OperatorAccess::Tokens(OperatorTokens::with_admin(token))
    }
}

fn read_secret_file(path: &Path, op: &'static str) -> Result<String, ServerError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServerError::Io { op, path: path.to_owned(), source })?;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "a token file is readable by others than its owner (chmod 600)");
    }
    Ok(text)
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
    fn named_tokens_with_roles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(
            &path,
            "# name role token\nalice admin alice-token-0123456789\n\nwall viewer wall-token-0123456789\n\
             ci operator ci-token-0123456789abc\n",
        )
        .unwrap();
        let mut t = OperatorTokens::new();
        t.read_file(&path).unwrap();
        assert_eq!(t.authenticate("wall-token-0123456789"), Some(Operator { name: "wall".into(), role: Role::Viewer }));
        assert_eq!(t.authenticate("ci-token-0123456789abc").unwrap().role, Role::Operator);
        assert_eq!(t.authenticate("alice-token-0123456789").unwrap().role, Role::Admin);
        assert_eq!(t.authenticate("alice-token-012345678"), None);
        assert!(!format!("{t:?}").contains("token-0123"), "{t:?}");
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for (text, problem) in [
            ("a viewer", "line 1: expected NAME ROLE TOKEN"),
            ("a root x-token-0123456789abc", "line 1: role \"root\""),
            (
                "a viewer x-token-0123456789abc\na viewer y-token-0123456789abc",
                "line 2: token name \"a\" is given twice",
            ),
            ("a viewer x-token-0123456789abc\nb admin x-token-0123456789abc", "line 2: token \"b\" is the same"),
            ("a/b viewer x-token-0123456789abc", "line 1: token name"),
            ("a viewer short", "line 1: token \"a\": the token must be at least"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = OperatorTokens::new().read_file(&path).unwrap_err().to_string();
            assert!(e.contains(problem), "{e}");
            assert!(!e.contains("0123456789abc"), "never the token: {e}");
        }
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
