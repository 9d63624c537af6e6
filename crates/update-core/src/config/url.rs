//! URLs in the config: the update source and the fleet server.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An update source URL: `https://`, `http://` or `file://`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SourceUrl(String);

impl SourceUrl {
    /// The URL schemes accepted.
    pub const SCHEMES: [&'static str; 3] = ["https", "http", "file"];

    /// Validates a source URL.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for other schemes, a missing host, a relative `file://` path,
    /// characters that cannot appear in a URL, or credentials (`user:password@`) in it. The
    /// error never repeats the credentials ([`redact_userinfo`]).
    pub fn new(text: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidValue {
            what: "source URL".into(),
            value: redact_userinfo(text),
            reason: reason.into(),
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("expected https://, http:// or file://"))?;
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("URLs cannot contain spaces or control characters"));
        }
        match scheme {
            "https" | "http" => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                if host.contains('@') {
                    return Err(bad("credentials in a URL (user:password@) are refused: they would be stored in a \
                         world-readable file and appear in logs and the audit log; authenticate the device \
                         with its client certificate (update config secure true)"));
                }
                if host.is_empty() || host.starts_with(':') {
                    return Err(bad("the URL has no host"));
                }
            }
            "file" => {
                if !rest.starts_with('/') {
                    return Err(bad("file:// URLs need an absolute path (file:///srv/update)"));
                }
            }
            other => {
                return Err(bad(&format!("scheme '{other}' is not supported; use https://, http:// or file://")));
            }
        }
        Ok(Self(text.to_owned()))
    }

    /// The URL text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scheme (`https`, `http` or `file`).
    #[must_use]
    pub fn scheme(&self) -> &str {
        self.0.split_once("://").map_or("", |(s, _)| s)
    }

    /// For `file://` URLs, the local path.
    #[must_use]
    pub fn file_path(&self) -> Option<&Path> {
        self.0.strip_prefix("file://").map(Path::new)
    }
}

/// Replaces the userinfo (`user:password@`) of every URL in `text` with `***@`, for messages.
#[must_use]
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace());
        let authority = &tail[..end.unwrap_or(tail.len())];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

impl TryFrom<String> for SourceUrl {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}
impl From<SourceUrl> for String {
    fn from(s: SourceUrl) -> String {
        s.0
    }
}
impl fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a fleet server URL: `https://` with a host (device identity and reports need TLS).
///
/// # Errors
/// [`Error::InvalidValue`] for any other scheme.
pub fn check_server_url(url: &SourceUrl) -> Result<()> {
    if url.scheme() == "https" {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            what: "server".into(),
            value: url.as_str().into(),
            reason: "the fleet server must be an https:// URL (reports carry the device's identity)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_refused_and_never_echoed() {
        for bad in [
            "https://user:hunter2@u.example/repo",
            "https://hunter2@u.example/",
            "http://u:hunter2@10.0.2.2:8080/",
            "https://:hunter2@u.example",
            "https://a@b:hunter2@u.example/x",
            "https://user:hunter2@u.example?x=1",
        ] {
            let e = SourceUrl::new(bad).unwrap_err().to_string();
            assert!(e.contains("credentials"), "{bad}: {e}");
            assert!(!e.contains("hunter2"), "{bad}: {e}");
        }
        // An @ in the path or query is not userinfo.
        for ok in ["https://u.example/repo/@latest", "https://u.example/r?who=a@b", "file:///srv/a@b"] {
            SourceUrl::new(ok).unwrap();
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_userinfo("at `https://u:p@h/x` and http://q@h2"), "at `https://***@h/x` and http://***@h2");
        assert_eq!(redact_userinfo("no url here: a@b"), "no url here: a@b");
        assert_eq!(redact_userinfo("https://h/p@x"), "https://h/p@x");
    }

    #[test]
    fn source_urls() {
        for ok in ["https://u.example/repo", "http://10.0.2.2:8080/", "file:///srv/update"] {
            SourceUrl::new(ok).unwrap();
        }
        for bad in ["ftp://x/", "https://", "file://relative", "/srv", "https://a b/", "HTTPS//x"] {
            assert!(SourceUrl::new(bad).is_err(), "{bad} accepted");
        }
    }
}
