//! Keys in TUF's format, and TUF key ids.
//!
//! An ed25519 key in `root.json` is the object
//! `{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "<64 hex digits>"}}` and its
//! TUF key id is the lowercase hex SHA-256 of that object's canonical JSON.
//!
//! **Mapping to the device keyring.** [`update_core::keyring::Keyring`] stores raw 32-byte
//! ed25519 keys and names them by a different id: the hex SHA-256 of the *raw key bytes*
//! ([`PublicKey::key_id`]). The two ids never coincide. The repository layer never compares the
//! two kinds of id: it compares keys by their raw bytes, and computes a TUF key id from a
//! keyring key with [`tuf_key_id`] when it needs one.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use update_core::keyring::PublicKey;

use crate::canonical::{NotCanonical, to_canonical_json};

/// A TUF key id: lowercase hex digits (the SHA-256 of the key's canonical JSON).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The TUF JSON object of an ed25519 key (what `root.json` lists under `keys`).
#[must_use]
pub fn tuf_key(key: &PublicKey) -> Value {
    json!({
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyval": { "public": hex::encode(key.as_bytes()) },
    })
}

/// The TUF key id of an ed25519 key: hex SHA-256 of the canonical JSON of [`tuf_key`].
/// (Not the keyring's [`PublicKey::key_id`], which hashes the raw key bytes.)
#[must_use]
pub fn tuf_key_id(key: &PublicKey) -> KeyId {
    key_id_of(&tuf_key(key)).expect("an ed25519 key object is canonical JSON")
}

/// The TUF key id of a key object as given (extra fields included, as the spec requires).
pub(crate) fn key_id_of(key: &Value) -> Result<KeyId, NotCanonical> {
    Ok(KeyId(hex::encode(Sha256::digest(to_canonical_json(key)?))))
}

/// A key listed in `root.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootKey {
    /// An ed25519 key we can verify with.
    Ed25519(PublicKey),
    /// A key type or scheme this client does not verify (its signatures never count).
    Unsupported {
        /// `keytype` as written.
        keytype: String,
        /// `scheme` as written.
        scheme: String,
    },
}

impl RootKey {
    /// Reads a TUF key object. An ed25519 key with a malformed public value is an error; other
    /// key types are [`RootKey::Unsupported`] (tolerated, never trusted).
    ///
    /// # Errors
    /// A message saying what is wrong with the key.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (keytype, scheme) = (field("keytype"), field("scheme"));
        if keytype != "ed25519" || scheme != "ed25519" {
            return Ok(RootKey::Unsupported { keytype, scheme });
        }
        let public = value
            .get("keyval")
            .and_then(|k| k.get("public"))
            .and_then(Value::as_str)
            .ok_or("ed25519 key without keyval.public")?;
        if public.len() != 64 || !public.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err("ed25519 keyval.public must be 64 lowercase hex digits".into());
        }
        PublicKey::parse(public).map(RootKey::Ed25519).map_err(|e| e.to_string())
    }

    /// The ed25519 key, if this is one.
    #[must_use]
    pub fn ed25519(&self) -> Option<&PublicKey> {
        match self {
            RootKey::Ed25519(k) => Some(k),
            RootKey::Unsupported { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;

    #[test]
    fn tuf_key_id_is_the_hash_of_the_canonical_key_object_not_of_the_raw_key() {
        let key = PublicKey::from_verifying_key(SigningKey::from_bytes(&[9; 32]).verifying_key());
        let canonical = format!(
            r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
            hex::encode(key.as_bytes())
        );
        let id = tuf_key_id(&key);
        assert_eq!(id.as_str(), hex::encode(Sha256::digest(canonical.as_bytes())));
        assert_ne!(id.as_str(), key.key_id());
        assert_eq!(RootKey::from_json(&tuf_key(&key)).unwrap(), RootKey::Ed25519(key));
    }

    #[test]
    fn other_key_types_are_tolerated_but_unsupported() {
        let rsa = json!({"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": "PEM"}});
        assert!(matches!(RootKey::from_json(&rsa).unwrap(), RootKey::Unsupported { .. }));
        let bad = json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "00"}});
        assert!(RootKey::from_json(&bad).is_err());
    }
}
