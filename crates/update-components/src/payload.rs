//! Payload bytes as a handler reads them: counted and hashed while they stream, so a payload
//! that is shorter, longer or other than the signed manifest says is an error in every handler
//! (the engine verifies too; a handler does not rely on it).

use std::io::{self, Read};

use sha2::{Digest, Sha256};
use update_core::component::Component;
use update_core::{Error, Result};

/// A reader over a component's payload that checks its size while reading and its SHA-256 at
/// [`Checked::finish`].
pub struct Checked<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
    read: u64,
    size: u64,
    sha256: String,
    what: String,
}

impl<'a> Checked<'a> {
    /// Wraps `payload` for `component` (its `size` and `sha256`).
    pub fn new(component: &Component, payload: &'a mut dyn Read) -> Self {
        Self {
            inner: payload,
            hasher: Sha256::new(),
            read: 0,
            size: component.size,
            sha256: component.sha256.to_ascii_lowercase(),
            what: format!("payload of component {} {}", component.name, component.version),
        }
    }

    /// Reads the rest of the payload and checks its size and digest.
    ///
    /// # Errors
    /// [`Error::Verification`] when the payload is shorter or longer than declared or its digest
    /// differs; [`Error::Io`]-like [`Error::Other`] when it cannot be read.
    pub fn finish(mut self) -> Result<()> {
        io::copy(&mut self, &mut io::sink()).map_err(|e| Error::verification(&self.what, e.to_string()))?;
        let digest = hex::encode(self.hasher.finalize_reset());
        if self.read != self.size {
            return Err(Error::verification(&self.what, format!("{} bytes read, {} declared", self.read, self.size)));
        }
        if digest != self.sha256 {
            return Err(Error::verification(&self.what, format!("SHA-256 {digest}, {} declared", self.sha256)));
        }
        Ok(())
    }
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.read < self.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the {} ended after {} of {} bytes", self.what, self.read, self.size),
            ));
        }
        self.read += n as u64;
        if self.read > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the {} is longer than its declared {} bytes", self.what, self.size),
            ));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Refuses keys of `map` outside `known`: `what` is `setting` or `option`.
///
/// # Errors
/// [`Error::Refused`] naming the component and the unknown key.
pub fn known_keys(map: &update_core::component::Settings, known: &[&str], what: &str, component: &str) -> Result<()> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(Error::Refused(format!(
            "component {component}: unknown {what} '{}' (known: {})",
            update_core::text::escape(k),
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use update_core::component::{ComponentName, Kind, Settings};

    fn component(bytes: &[u8]) -> Component {
        Component {
            name: ComponentName::new("c").unwrap(),
            kind: Kind::Data,
            version: update_core::Version::new(1, 0, 0),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
            requires: vec![],
            options: Settings::new(),
        }
    }

    #[test]
    fn exact_bytes_pass_and_others_fail() {
        let good = b"hello world".to_vec();
        let c = component(&good);
        let mut r: &[u8] = &good;
        let mut checked = Checked::new(&c, &mut r);
        let mut first = [0u8; 5];
        checked.read_exact(&mut first).unwrap();
        checked.finish().unwrap();

        let mut short: &[u8] = &good[..5];
        let e = Checked::new(&c, &mut short).finish().unwrap_err();
        assert!(e.to_string().contains("ended after 5 of 11 bytes"), "{e}");
        let long = b"hello world!".to_vec();
        let mut r: &[u8] = &long;
        let e = Checked::new(&c, &mut r).finish().unwrap_err();
        assert!(e.to_string().contains("longer than its declared 11 bytes"), "{e}");
        let other = b"hello World".to_vec();
        let mut r: &[u8] = &other;
        let e = Checked::new(&c, &mut r).finish().unwrap_err();
        assert!(e.to_string().contains("SHA-256"), "{e}");
    }
}
