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

/// Whether a delegation's path pattern names `target` (TUF 1.0 §5.6.7.2.1): the pattern and the
/// path have the same number of `/`-separated segments and each segment matches its pattern
/// shell-style (`*` any run of characters, `?` one character, `[abc]`, `[a-z]`, `[!abc]`).
/// `*` never crosses a `/`: `targets/*.tgz` does not name `targets/foo/bar.tgz`.
#[must_use]
pub fn path_matches(pattern: &str, target: &str) -> bool {
    let (patterns, segments): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), target.split('/').collect());
    patterns.len() == segments.len()
        && patterns.iter().zip(&segments).all(|(p, s)| {
            let (p, s): (Vec<char>, Vec<char>) = (p.chars().collect(), s.chars().collect());
            glob(&p, &s)
        })
}

/// Shell-style match of one segment (no `/` in either).
fn glob(pattern: &[char], text: &[char]) -> bool {
    // Iterative matching with one backtrack point for the last `*` (linear in practice).
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class(&pattern[p..], text[t]),
            Some(c) if *c == text[t] => Some(1),
            _ => None,
        };
        match (step, star) {
            (Some(len), _) => {
                p += len;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class at the start of `pattern` (`[…]`); returns the class's length
/// when it matches. An unclosed `[` is a literal `[`.
fn class(pattern: &[char], c: char) -> Option<usize> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some('!'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut found = false;
    while let Some(&x) = pattern.get(i) {
        if x == ']' && i > start {
            return (found != negate).then_some(i + 1);
        }
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|e| *e != ']') {
            found |= (x..=pattern[i + 2]).contains(&c);
            i += 3;
        } else {
            found |= x == c;
            i += 1;
        }
    }
    (c == '[').then_some(1)
}

/// A role name as it appears in a metadata file name: every byte but ASCII letters, digits and
/// `_.-~` percent-encoded (`a/b` → `a%2Fb`), so no role name can leave `metadata/` or the state
/// directory.
#[must_use]
pub fn role_file_name(role: &str) -> String {
    let mut out = String::with_capacity(role.len());
    for b in role.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
    fn path_patterns_match_segment_by_segment() {
        for (pattern, target) in [
            ("*", "a.txt"),
            ("targets/*.tgz", "targets/x.tgz"),
            ("a/*/c", "a/b/c"),
            ("file?.txt", "file1.txt"),
            ("[abc]-*", "b-x"),
            ("v[0-9].bin", "v7.bin"),
            ("[!x]y", "zy"),
            ("*.*", "a.b.c"),
            ("team-a/*", "team-a/trusted_root.json"),
        ] {
            assert!(path_matches(pattern, target), "{pattern} should name {target}");
        }
        for (pattern, target) in [
            ("*", "a/b"),
            ("targets/*.tgz", "targets/foo/bar.tgz"),
            ("a/*", "b/c"),
            ("file?.txt", "file10.txt"),
            ("[abc]-*", "d-x"),
            ("[!x]y", "xy"),
            ("team-a/*", "team-b/trusted_root.json"),
            ("", "a"),
        ] {
            assert!(!path_matches(pattern, target), "{pattern} must not name {target}");
        }
    }

    #[test]
    fn role_names_become_file_names_that_stay_in_their_directory() {
        assert_eq!(role_file_name("release"), "release");
        assert_eq!(role_file_name("../escape"), "..%2Fescape");
        assert_eq!(role_file_name("a b?#/é"), "a%20b%3F%23%2F%C3%A9");
        assert!(!role_file_name("..").contains('/'));
    }

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
