//! The keyring: named trusted public keys, stored in `/etc/update/keys.toml`.
//!
//! Accepted text forms for an ed25519 public key (docs/reference/config.md):
//! - base64 of the 32 raw key bytes (what `update-tool key generate` writes to `NAME.pub`),
//!   optionally prefixed `ed25519:`;
//! - 64 hexadecimal digits of the raw key;
//! - PEM `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo, as `openssl pkey -pubout` writes).
//!
//! Every key has a key id: the lowercase hex SHA-256 of its raw bytes (the form TUF uses).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::{read_bounded, write_atomic};
use crate::error::{Error, Result};
use crate::names::KeyName;
use crate::paths::Paths;

/// The most bytes [`PublicKey::read_from`] reads (a PEM public key is about 113 bytes).
pub const MAX_KEY_INPUT: usize = 8 * 1024;

/// An ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(ed25519:{})", self.to_base64())
    }
}

impl PublicKey {
    /// Parses any of the accepted text forms.
    ///
    /// # Errors
    /// [`Error::Keyring`] saying which form was recognised and why it is not a valid key.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let bad = |why: &str| Error::Keyring(format!("malformed public key: {why}"));
        if t.starts_with("-----BEGIN") {
            if !t.starts_with("-----BEGIN PUBLIC KEY-----") {
                return Err(bad("PEM must be a PUBLIC KEY (never a private key)"));
            }
            let vk = VerifyingKey::from_public_key_pem(t)
                .map_err(|e| bad(&format!("PEM is not an ed25519 SubjectPublicKeyInfo ({e})")))?;
            return Ok(Self(vk));
        }
        let body = t.strip_prefix("ed25519:").unwrap_or(t);
        let raw: Vec<u8> = if body.len() == 64 && body.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(body).map_err(|e| bad(&e.to_string()))?
        } else {
            B64.decode(body).map_err(|_| bad("expected base64 of 32 bytes, 64 hex digits, or PEM"))?
        };
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| bad(&format!("an ed25519 key is 32 bytes, this is {}", raw.len())))?;
        let vk = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a valid ed25519 curve point"))?;
        if vk.is_weak() {
            return Err(bad("weak (small-order) ed25519 key"));
        }
        Ok(Self(vk))
    }

    /// Reads and parses a key given as `@FILE` or on standard input, at most
    /// [`MAX_KEY_INPUT`] bytes (a device, a FIFO or a huge file is refused after that).
    ///
    /// # Errors
    /// [`Error::Keyring`] for too much input, non-text or a malformed key; [`Error::Io`].
    pub fn read_from(reader: impl std::io::Read, what: &str) -> Result<Self> {
        let bytes = read_bounded(reader, MAX_KEY_INPUT, what).map_err(|e| match e {
            Error::InvalidValue { .. } => {
                Error::Keyring(format!("{what} holds more than {MAX_KEY_INPUT} bytes; a public key is about a hundred"))
            }
            other => other,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Keyring(format!("{what} is not text")))?;
        Self::parse(&text)
    }

    /// Wraps a verifying key.
    #[must_use]
    pub fn from_verifying_key(vk: VerifyingKey) -> Self {
        Self(vk)
    }

    /// The raw 32 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The canonical text form: base64 of the raw bytes.
    #[must_use]
    pub fn to_base64(&self) -> String {
        B64.encode(self.0.as_bytes())
    }

    /// The key id: lowercase hex SHA-256 of the raw bytes.
    #[must_use]
    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// Verifies an ed25519 signature (strict: rejects malleable and small-order forms).
    #[must_use]
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else { return false };
        self.0.verify_strict(message, &sig).is_ok() && self.0.verify(message, &sig).is_ok()
    }
}

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct StoredKey {
    algorithm: String,
    public_key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    added: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    #[serde(default)]
    keys: BTreeMap<KeyName, StoredKey>,
}

/// A trusted key as listed by `update config key list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeyEntry {
    /// The key's name.
    pub name: KeyName,
    /// `ed25519`.
    pub algorithm: String,
    /// The key.
    #[serde(serialize_with = "ser_key")]
    pub public_key: PublicKey,
    /// The key id (hex SHA-256 of the raw key).
    pub key_id: String,
    /// When it was added or last updated (RFC 3339), if known.
    pub added: String,
}

fn ser_key<S: serde::Serializer>(k: &PublicKey, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&k.to_base64())
}

/// The set of trusted keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: BTreeMap<KeyName, KeyEntry>,
}

impl Keyring {
    /// Reads the keyring; a missing file is an empty keyring.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::ConfigParse`] naming the file.
    pub fn load(paths: &Paths) -> Result<Self> {
        let path = paths.keyring_file();
        let Some(text) = crate::config::read_text(&path)? else { return Ok(Self::default()) };
        Self::parse(&text, &path)
    }

    /// Parses a keyring file's text. `path` is used in error messages only.
    ///
    /// # Errors
    /// [`Error::ConfigParse`] naming the file and the key.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let path = path.to_owned();
        let file: KeyringFile = toml::from_str(text)
            .map_err(|e| Error::ConfigParse { path: path.clone(), message: e.message().to_owned() })?;
        let mut ring = Self::default();
        for (name, stored) in file.keys {
            if stored.algorithm != "ed25519" {
                return Err(Error::ConfigParse {
                    path,
                    message: format!("key '{name}': algorithm '{}' is not supported (ed25519)", stored.algorithm),
                });
            }
            let key = PublicKey::parse(&stored.public_key)
                .map_err(|e| Error::ConfigParse { path: path.clone(), message: format!("key '{name}': {e}") })?;
            ring.keys.insert(name.clone(), entry(name, key, stored.added));
        }
        Ok(ring)
    }

    /// Writes the keyring atomically. Callers hold the config lock.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn store(&self, paths: &Paths) -> Result<()> {
        let file = KeyringFile {
            keys: crate::sort::collect_map(self.keys.iter().map(|(n, e)| {
                (
                    n.clone(),
                    StoredKey {
                        algorithm: e.algorithm.clone(),
                        public_key: e.public_key.to_base64(),
                        added: e.added.clone(),
                    },
                )
            })),
        };
        let text = toml::to_string_pretty(&file).map_err(|e| Error::Other(e.to_string()))?;
        write_atomic(&paths.keyring_file(), text.as_bytes(), 0o644)
    }

    /// Adds a key under a new name.
    ///
    /// # Errors
    /// [`Error::Keyring`] when the name exists or the same key is already trusted under another name.
    pub fn add(&mut self, name: KeyName, key: PublicKey, now: &str) -> Result<&KeyEntry> {
        if self.keys.contains_key(&name) {
            return Err(Error::Keyring(format!(
                "a key named '{name}' exists; use `update config key update` to replace it"
            )));
        }
        if let Some(other) = self.keys.values().find(|e| e.public_key == key) {
            return Err(Error::Keyring(format!("this key is already trusted as '{}'", other.name)));
        }
        self.keys.insert(name.clone(), entry(name.clone(), key, now.to_owned()));
        Ok(&self.keys[&name])
    }

    /// Replaces the key stored under an existing name; returns the old entry.
    ///
    /// # Errors
    /// [`Error::Keyring`] when there is no such name.
    pub fn update(&mut self, name: &KeyName, key: PublicKey, now: &str) -> Result<KeyEntry> {
        if !self.keys.contains_key(name) {
            return Err(Error::Keyring(format!("no key named '{name}'; use `update config key add` to add it")));
        }
        Ok(self.keys.insert(name.clone(), entry(name.clone(), key, now.to_owned())).expect("checked above"))
    }

    /// Removes a key; returns it.
    ///
    /// # Errors
    /// [`Error::Keyring`] when there is no such name.
    pub fn delete(&mut self, name: &KeyName) -> Result<KeyEntry> {
        self.keys.remove(name).ok_or_else(|| Error::Keyring(format!("no key named '{name}'")))
    }

    /// All keys, by name.
    pub fn iter(&self) -> impl Iterator<Item = &KeyEntry> {
        self.keys.values()
    }

    /// The key with this name.
    #[must_use]
    pub fn get(&self, name: &KeyName) -> Option<&KeyEntry> {
        self.keys.get(name)
    }

    /// The key with this key id.
    #[must_use]
    pub fn by_key_id(&self, key_id: &str) -> Option<&KeyEntry> {
        self.keys.values().find(|e| e.key_id == key_id)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn entry(name: KeyName, key: PublicKey, added: String) -> KeyEntry {
    KeyEntry { name, algorithm: "ed25519".into(), key_id: key.key_id(), public_key: key, added }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePublicKey;

    #[test]
    fn key_input_is_bounded() {
        let pk = PublicKey::from_verifying_key(SigningKey::from_bytes(&[7; 32]).verifying_key());
        let text = format!("{}\n", pk.to_base64());
        assert_eq!(PublicKey::read_from(text.as_bytes(), "standard input").unwrap(), pk);
        let padded = format!("{text}{}", " ".repeat(MAX_KEY_INPUT));
        let huge = vec![b'A'; 64 << 20];
        for (name, input) in [("padded", padded.into_bytes()), ("huge", huge), ("binary", vec![0xff; 100])] {
            let e = PublicKey::read_from(&input[..], "@/tmp/key").unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Keyring, "{name}: {e}");
        }
        // An endless source (a device, a FIFO nobody closes) stops at the bound.
        assert!(PublicKey::read_from(std::io::repeat(b'A'), "@/dev/zero").is_err());
        assert!(PublicKey::read_from(std::fs::File::open("/dev/zero").unwrap(), "@/dev/zero").is_err());
    }

    fn key(seed: u8) -> PublicKey {
        PublicKey::from_verifying_key(SigningKey::from_bytes(&[seed; 32]).verifying_key())
    }

    #[test]
    fn all_text_forms_parse_to_the_same_key() {
        let k = key(7);
        let pem = k.0.to_public_key_pem(Default::default()).unwrap();
        for text in [k.to_base64(), format!("ed25519:{}", k.to_base64()), hex::encode(k.as_bytes()), pem] {
            assert_eq!(PublicKey::parse(&text).unwrap(), k, "{text}");
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "abc",
            "AAAA",
            &B64.encode([0u8; 31]),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            &B64.encode([0u8; 32]),
        ] {
            assert!(PublicKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn add_update_delete() {
        let mut r = Keyring::default();
        let n = KeyName::new("vendor").unwrap();
        r.add(n.clone(), key(1), "t").unwrap();
        assert!(r.add(n.clone(), key(2), "t").is_err());
        assert!(r.add(KeyName::new("dup").unwrap(), key(1), "t").is_err());
        r.update(&n, key(2), "t").unwrap();
        assert_eq!(r.get(&n).unwrap().public_key, key(2));
        assert!(r.update(&KeyName::new("none").unwrap(), key(3), "t").is_err());
        r.delete(&n).unwrap();
        assert!(r.delete(&n).is_err());
        assert!(r.is_empty());
    }
}
