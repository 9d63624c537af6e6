//! Target names: validated at the boundary so that no name can escape `targets/`.

use std::fmt;

use crate::error::{Error, Result};

/// The name of a target (`bundle-2.1.0.upd`, `boards/pi4/bundle.upd`): `/`-separated segments,
/// none empty, `.` or `..`; no leading or trailing `/`, no backslash, no control character; at
/// most 1024 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetName(String);

impl TargetName {
    /// Validates a name.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] saying what is wrong.
    pub fn new(text: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidValue {
            what: "target name".into(),
            value: text.escape_debug().to_string(),
            reason: reason.into(),
        };
        if text.is_empty() || text.len() > 1024 {
            return Err(bad("must be 1 to 1024 bytes"));
        }
        if text.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad("control characters and backslashes are not allowed"));
        }
        if text.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(bad("segments between '/' must be non-empty and not '.' or '..'"));
        }
        Ok(Self(text.to_owned()))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path below `targets/` where the file lives: the name itself, or with consistent
    /// snapshots `DIR/HASH.BASENAME` (TUF 1.0 §5.7.3: the hash prefixes the file name, in the
    /// same directory).
    #[must_use]
    pub fn file_path(&self, consistent_hash: Option<&str>) -> String {
        match consistent_hash {
            None => self.0.clone(),
            Some(hash) => match self.0.rsplit_once('/') {
                Some((dir, base)) => format!("{dir}/{hash}.{base}"),
                None => format!("{hash}.{}", self.0),
            },
        }
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TargetName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_targets_are_refused() {
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "a/", "./a", "a\\b", "a\nb", "a\0b"] {
            assert!(TargetName::new(bad).is_err(), "{bad:?} accepted");
        }
        let n = TargetName::new("boards/pi4/bundle.upd").unwrap();
        assert_eq!(n.file_path(Some("ab12")), "boards/pi4/ab12.bundle.upd");
        assert_eq!(TargetName::new("b.upd").unwrap().file_path(Some("ab12")), "ab12.b.upd");
        assert_eq!(n.file_path(None), "boards/pi4/bundle.upd");
    }
}
