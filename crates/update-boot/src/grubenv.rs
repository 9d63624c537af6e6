//! The GRUB environment block (`grubenv`): the file `load_env`, `save_env` and `grub-editenv`
//! read and write.
//!
//! Format (GRUB's `lib/envblk.c`): the signature line `# GRUB Environment Block\n`, then
//! `name=value\n` lines, then `#` padding up to the block size (1024 bytes by convention; the
//! block is the whole file). In values, `\` and newline are escaped by a preceding `\`. Lines
//! that start with `#` are comments. The parser here follows GRUB's iterator byte for byte,
//! including its quirks: a "line" without `=` runs on to the next `=` (newline included), and
//! parsing stops silently at the first broken entry (no `=` or no final newline before the
//! end of the block). A later duplicate of a name wins, as with GRUB's `load_env`.
//!
//! GRUB rewrites the block in place (`save_env` writes the file's sectors through its block
//! list), so a file holding an environment block must never be replaced by a rename: write
//! it in place, as [`crate::BootEnv`] does.

use update_core::{Error, Result};

/// The first line of every environment block.
pub const SIGNATURE: &str = "# GRUB Environment Block\n";

/// The conventional block size (`grub-editenv create`).
pub const BLOCK_SIZE: usize = 1024;

/// The variables of one environment block, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrubEnvBlock {
    vars: Vec<(String, String)>,
}

fn bad_name(name: &str, reason: &str) -> Error {
    Error::InvalidValue { what: "GRUB environment variable name".into(), value: name.into(), reason: reason.into() }
}

impl GrubEnvBlock {
    /// An empty block.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `bytes` starts with the environment block signature (what GRUB checks before
    /// `load_env` or `save_env` touch a file).
    #[must_use]
    pub fn has_signature(bytes: &[u8]) -> bool {
        bytes.starts_with(SIGNATURE.as_bytes())
    }

    /// Parses a block the way GRUB does. Bytes that are not UTF-8 are replaced (U+FFFD).
    ///
    /// # Errors
    /// [`Error::Verification`] when the signature is missing (GRUB: "invalid environment block").
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if !Self::has_signature(bytes) {
            return Err(Error::verification("GRUB environment block", "the signature line is missing"));
        }
        let mut block = Self::new();
        let end = bytes.len();
        let mut p = SIGNATURE.len();
        while p < end {
            if bytes[p] == b'#' {
                while p < end && bytes[p] != b'\n' {
                    p += 1;
                }
            } else {
                let name_start = p;
                while p < end && bytes[p] != b'=' {
                    p += 1;
                }
                if p == end {
                    break; // broken: GRUB stops here
                }
                let name_end = p;
                p += 1;
                let mut value = Vec::new();
                while p < end && bytes[p] != b'\n' {
                    if bytes[p] == b'\\' {
                        p += 1;
                        if p == end {
                            break;
                        }
                    }
                    value.push(bytes[p]);
                    p += 1;
                }
                if p >= end {
                    break; // broken: no newline before the end
                }
                let name = String::from_utf8_lossy(&bytes[name_start..name_end]).into_owned();
                block.insert(name, String::from_utf8_lossy(&value).into_owned());
            }
            p += 1;
        }
        Ok(block)
    }

    fn insert(&mut self, name: String, value: String) {
        if let Some(slot) = self.vars.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        } else {
            self.vars.push((name, value));
        }
    }

    /// The value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Sets `name` (kept in place if present, appended otherwise).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for an empty name, or one containing `=`, a newline or NUL, or
    /// starting with `#`; or a value containing NUL.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        if name.is_empty() {
            return Err(bad_name(name, "empty"));
        }
        if name.contains(['=', '\n', '\0']) || name.starts_with('#') {
            return Err(bad_name(name, "names cannot contain '=', newline or NUL, nor start with '#'"));
        }
        if value.contains('\0') {
            return Err(Error::InvalidValue {
                what: format!("GRUB environment variable {name}"),
                value: value.escape_debug().to_string(),
                reason: "values cannot contain NUL".into(),
            });
        }
        self.insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    /// Removes `name`; returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.vars.len();
        self.vars.retain(|(n, _)| n != name);
        self.vars.len() != before
    }

    /// The variables in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many bytes the block needs without padding.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        SIGNATURE.len()
            + self
                .vars
                .iter()
                .map(|(n, v)| n.len() + 2 + v.len() + v.bytes().filter(|b| matches!(b, b'\\' | b'\n')).count())
                .sum::<usize>()
    }

    /// Encodes the block padded with `#` to exactly `size` bytes.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the variables do not fit in `size` bytes.
    pub fn encode(&self, size: usize) -> Result<Vec<u8>> {
        let need = self.encoded_len();
        if need > size {
            return Err(Error::InvalidValue {
                what: "GRUB environment block".into(),
                value: format!("{} variables", self.vars.len()),
                reason: format!("needs {need} bytes, the block holds {size}"),
            });
        }
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(SIGNATURE.as_bytes());
        for (n, v) in &self.vars {
            out.extend_from_slice(n.as_bytes());
            out.push(b'=');
            for b in v.bytes() {
                if matches!(b, b'\\' | b'\n') {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'\n');
        }
        out.resize(size, b'#');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_escapes() {
        let mut b = GrubEnvBlock::new();
        b.set("plain", "A B").unwrap();
        b.set("tricky", "back\\slash\nnew line").unwrap();
        b.set("empty", "").unwrap();
        let bytes = b.encode(BLOCK_SIZE).unwrap();
        assert_eq!(bytes.len(), BLOCK_SIZE);
        assert!(bytes.starts_with(b"# GRUB Environment Block\nplain=A B\ntricky=back\\\\slash\\\nnew line\nempty=\n#"));
        assert_eq!(GrubEnvBlock::parse(&bytes).unwrap(), b);
        let need = b.encoded_len();
        assert_eq!((bytes[need - 1], bytes[need]), (b'\n', b'#'));
    }

    #[test]
    fn oversize_and_bad_names_are_refused() {
        let mut b = GrubEnvBlock::new();
        b.set("big", &"x".repeat(1000)).unwrap();
        assert!(b.encode(BLOCK_SIZE).is_err());
        assert!(b.encode(2048).is_ok());
        for bad in ["", "a=b", "#x", "a\nb"] {
            assert!(b.set(bad, "v").is_err(), "{bad:?}");
        }
        assert!(b.set("n", "nul\0").is_err());
    }

    #[test]
    fn parse_follows_grub_quirks() {
        assert!(GrubEnvBlock::parse(b"not an env").is_err());
        let b = GrubEnvBlock::parse(b"# GRUB Environment Block\n# comment\na=1\na=2\nb=x\\\ny\nc=no newline").unwrap();
        assert_eq!(b.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "x\ny")]);
        let mut b = GrubEnvBlock::parse(b"# GRUB Environment Block\njunk\nk=v\n").unwrap();
        assert_eq!(b.get("junk\nk"), Some("v"));
        assert!(b.remove("junk\nk"));
        assert!(!b.clone().remove("k"));
    }
}
