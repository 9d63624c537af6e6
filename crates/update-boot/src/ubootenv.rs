//! The U-Boot environment as `fw_printenv`/`fw_setenv` (libubootenv) and U-Boot's `saveenv`
//! store it.
//!
//! One copy of `size` bytes (`CONFIG_ENV_SIZE`, the third column of `fw_env.config`):
//!
//! | bytes | single env | redundant env |
//! |---|---|---|
//! | 0..4 | CRC-32 (IEEE, little-endian) of the data | same |
//! | 4 | data starts | flag byte (a counter) |
//! | then | `name=value\0` … `\0` (an empty entry ends the list), padded to the end | same |
//!
//! The CRC covers the whole data area, padding included. With a redundant environment
//! (`CONFIG_ENV_OFFSET_REDUND`, a second line in `fw_env.config`) the copy with a valid CRC is
//! used; when both are valid the flag decides ([`newer_copy`]): the higher flag is newer, except
//! that 0 is newer than 255 (the counter wrapped); equal flags pick the first copy. A writer
//! writes the *other* copy with the current copy's flag plus one (wrapping), so a write cut short
//! leaves a copy with a bad CRC and the previous copy stays current. These rules were checked
//! against libubootenv 0.3.2 (`tests/ubootenv_interop.rs`) and match U-Boot's
//! `env_import_redund`.

use std::collections::BTreeMap;

use update_core::{Error, Result};

/// The bytes in front of the data: CRC-32 and, for a redundant environment, the flag.
#[must_use]
pub fn header_len(redundant: bool) -> usize {
    if redundant { 5 } else { 4 }
}

/// The variables of a U-Boot environment (kept sorted by name, as U-Boot exports them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UbootEnv {
    vars: BTreeMap<String, String>,
}

/// One decoded copy: its flag (redundant environments only) and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UbootEnvCopy {
    /// The flag byte of a redundant copy.
    pub flag: Option<u8>,
    /// The variables.
    pub env: UbootEnv,
}

impl UbootEnv {
    /// An empty environment.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Sets a variable.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for an empty name, a name containing `=` or NUL, or a value
    /// containing NUL.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
            return Err(Error::InvalidValue {
                what: "U-Boot environment variable".into(),
                value: format!("{name}={value}").escape_debug().to_string(),
                reason: "names must be non-empty without '=' or NUL; values cannot contain NUL".into(),
            });
        }
        self.vars.insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    /// Removes a variable; returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.vars.remove(name).is_some()
    }

    /// The variables, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Parses the data area: `name=value\0` entries up to an empty entry (or the end).
    /// Entries without `=` are skipped, as U-Boot's importer does. Non-UTF-8 bytes are replaced.
    #[must_use]
    pub fn parse_data(data: &[u8]) -> Self {
        let mut env = Self::new();
        for entry in data.split(|&b| b == 0) {
            if entry.is_empty() {
                break;
            }
            env.import(&String::from_utf8_lossy(entry));
        }
        env
    }

    /// Parses what `fw_printenv` prints: one `name=value` line per variable, read with the
    /// rules of [`UbootEnv::parse_data`] (lines without `=` are skipped).
    #[must_use]
    pub fn parse_printenv(text: &str) -> Self {
        let mut env = Self::new();
        for line in text.lines() {
            env.import(line);
        }
        env
    }

    fn import(&mut self, entry: &str) {
        if let Some((n, v)) = entry.split_once('=')
            && !n.is_empty()
        {
            self.vars.insert(n.to_owned(), v.to_owned());
        }
    }

    /// The data area of `len` bytes: entries, the terminating empty entry, zero padding.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the variables do not fit.
    pub fn encode_data(&self, len: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len);
        for (n, v) in &self.vars {
            out.extend_from_slice(n.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        out.push(0);
        if out.len() > len {
            return Err(Error::InvalidValue {
                what: "U-Boot environment".into(),
                value: format!("{} variables", self.vars.len()),
                reason: format!("needs {} bytes, the environment holds {len}", out.len()),
            });
        }
        out.resize(len, 0);
        Ok(out)
    }

    /// Encodes one copy of `size` bytes: CRC, the flag when `flag` is given (redundant
    /// environment), data.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the variables do not fit.
    pub fn encode_copy(&self, size: usize, flag: Option<u8>) -> Result<Vec<u8>> {
        let header = header_len(flag.is_some());
        let data = self.encode_data(size.saturating_sub(header))?;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&crate::crc32::hash(&data).to_le_bytes());
        out.extend(flag);
        out.extend_from_slice(&data);
        Ok(out)
    }
}

/// Decodes one copy, checking its CRC.
///
/// # Errors
/// [`Error::Verification`] when the copy is too small or its CRC does not match.
pub fn decode_copy(bytes: &[u8], redundant: bool) -> Result<UbootEnvCopy> {
    let header = header_len(redundant);
    if bytes.len() <= header {
        return Err(Error::verification("U-Boot environment", format!("{} bytes is too small", bytes.len())));
    }
    let stored = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let data = &bytes[header..];
    let actual = crate::crc32::hash(data);
    if stored != actual {
        return Err(Error::verification(
            "U-Boot environment",
            format!("CRC mismatch (stored {stored:08x}, computed {actual:08x})"),
        ));
    }
    Ok(UbootEnvCopy { flag: redundant.then_some(bytes[4]), env: UbootEnv::parse_data(data) })
}

/// Which of two valid redundant copies is current (0 or 1), from their flags.
#[must_use]
pub fn newer_copy(flag0: u8, flag1: u8) -> usize {
    match (flag0, flag1) {
        (0xff, 0) => 1,
        (0, 0xff) => 0,
        (a, b) if b > a => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printenv_output() {
        // As libubootenv 0.3.2's fw_printenv prints it.
        let env =
            UbootEnv::parse_printenv("bootcount=0\nbootcmd=run a; run b\nmender_boot_part=2\nnot a variable\n=x\n");
        assert_eq!(env.get("mender_boot_part"), Some("2"));
        assert_eq!(env.get("bootcmd"), Some("run a; run b"));
        assert_eq!(env.iter().count(), 3);
        assert_eq!(UbootEnv::parse_printenv("").iter().count(), 0);
    }

    #[test]
    fn copy_round_trip_and_crc() {
        let mut env = UbootEnv::new();
        env.set("bootcmd", "run update_boot").unwrap();
        env.set("A", "multi\nline").unwrap();
        let bytes = env.encode_copy(256, Some(7)).unwrap();
        assert_eq!(bytes.len(), 256);
        assert_eq!(bytes[4], 7);
        assert_eq!(&bytes[5..12], b"A=multi");
        let copy = decode_copy(&bytes, true).unwrap();
        assert_eq!((copy.flag, &copy.env), (Some(7), &env));
        let mut torn = bytes.clone();
        torn[200] = 0x55;
        assert!(decode_copy(&torn, true).is_err());
        assert_eq!(decode_copy(&env.encode_copy(64, None).unwrap(), false).unwrap().env, env);
        assert!(env.encode_copy(20, None).is_err());
        assert!(env.set("a=b", "x").is_err());
    }

    #[test]
    fn flag_rules() {
        assert_eq!(newer_copy(0, 0xff), 0);
        assert_eq!(newer_copy(0xff, 0), 1);
        assert_eq!(newer_copy(1, 0xff), 1);
        assert_eq!(newer_copy(5, 3), 0);
        assert_eq!(newer_copy(3, 5), 1);
        assert_eq!(newer_copy(2, 2), 0);
    }

    #[test]
    fn entries_without_equals_are_skipped() {
        let env = UbootEnv::parse_data(b"a=1\0junk\0=x\0b=2=3\0\0c=4\0");
        assert_eq!(env.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2=3")]);
    }
}
