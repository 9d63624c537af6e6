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

/// A key listed in `root.json` or in a delegation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootKey {
    /// An ed25519 key (`keytype` and `scheme` `ed25519`, `keyval.public` 64 hex digits).
    Ed25519(PublicKey),
    /// An ECDSA key on NIST P-256 (`keytype` `ecdsa` or `ecdsa-sha2-nistp256`, `scheme`
    /// `ecdsa-sha2-nistp256`, `keyval.public` a PEM SubjectPublicKeyInfo). Holds the
    /// uncompressed point; signatures are ASN.1 DER, hex.
    EcdsaP256(Vec<u8>),
    /// An ECDSA key on NIST P-384 (`ecdsa-sha2-nistp384`), as [`RootKey::EcdsaP256`].
    EcdsaP384(Vec<u8>),
    /// An RSA key with RSASSA-PSS over SHA-256 (`keytype` `rsa`, `scheme` `rsassa-pss-sha256`,
    /// `keyval.public` a PEM SubjectPublicKeyInfo, 2048 to 8192 bits). Holds the PKCS #1
    /// `RSAPublicKey`.
    RsaPssSha256(Vec<u8>),
    /// A key type or scheme this client does not verify (its signatures never count).
    Unsupported {
        /// `keytype` as written.
        keytype: String,
        /// `scheme` as written.
        scheme: String,
    },
}

impl RootKey {
    /// Reads a TUF key object (key types and schemes named as the specification and
    /// python-securesystemslib name them). A supported key with a malformed public value is an
    /// error; other key types are [`RootKey::Unsupported`] (tolerated, never trusted).
    ///
    /// # Errors
    /// A message saying what is wrong with the key.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (keytype, scheme) = (field("keytype"), field("scheme"));
        let public = || {
            value
                .get("keyval")
                .and_then(|k| k.get("public"))
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{keytype} key without keyval.public"))
        };
        match (keytype.as_str(), scheme.as_str()) {
            ("ed25519", "ed25519") => {
                let public = public()?;
                if public.len() != 64 || !public.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                    return Err("ed25519 keyval.public must be 64 lowercase hex digits".into());
                }
                PublicKey::parse(public).map(RootKey::Ed25519).map_err(|e| e.to_string())
            }
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                spki::ec_point(&spki::from_pem(public()?)?, spki::P256).map(RootKey::EcdsaP256)
            }
            ("ecdsa" | "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384") => {
                spki::ec_point(&spki::from_pem(public()?)?, spki::P384).map(RootKey::EcdsaP384)
            }
            ("rsa", "rsassa-pss-sha256") => spki::rsa_key(&spki::from_pem(public()?)?).map(RootKey::RsaPssSha256),
            _ => Ok(RootKey::Unsupported { keytype, scheme }),
        }
    }

    /// Whether `signature` (raw bytes, hex-decoded from the metadata) is this key's valid
    /// signature of `message`. Unsupported keys verify nothing.
    #[must_use]
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature as sig;
        let (algorithm, key): (&dyn sig::VerificationAlgorithm, &[u8]) = match self {
            RootKey::Ed25519(key) => return key.verify(message, signature),
            RootKey::EcdsaP256(point) => (&sig::ECDSA_P256_SHA256_ASN1, point),
            RootKey::EcdsaP384(point) => (&sig::ECDSA_P384_SHA384_ASN1, point),
            RootKey::RsaPssSha256(der) => (&sig::RSA_PSS_2048_8192_SHA256, der),
            RootKey::Unsupported { .. } => return false,
        };
        sig::UnparsedPublicKey::new(algorithm, key).verify(message, signature).is_ok()
    }

    /// The ed25519 key, if this is one.
    #[must_use]
    pub fn ed25519(&self) -> Option<&PublicKey> {
        match self {
            RootKey::Ed25519(k) => Some(k),
            _ => None,
        }
    }
}

/// Just enough DER to take a public key out of a PEM `SubjectPublicKeyInfo` (RFC 5280 §4.1):
/// `SEQUENCE { SEQUENCE { OID algorithm, parameters }, BIT STRING subjectPublicKey }`.
mod spki {
    use base64::Engine as _;

    /// id-ecPublicKey (1.2.840.10045.2.1).
    const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// rsaEncryption (1.2.840.113549.1.1.1).
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// prime256v1 (1.2.840.10045.3.1.7) and its uncompressed point length.
    pub(super) const P256: (&[u8], usize) = (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07], 65);
    /// secp384r1 (1.3.132.0.34) and its uncompressed point length.
    pub(super) const P384: (&[u8], usize) = (&[0x2b, 0x81, 0x04, 0x00, 0x22], 97);

    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    const BIT_STRING: u8 = 0x03;
    const NULL: u8 = 0x05;

    /// The parts of a `SubjectPublicKeyInfo`.
    pub(super) struct Spki {
        algorithm: Vec<u8>,
        parameters: Option<(u8, Vec<u8>)>,
        key: Vec<u8>,
    }

    /// Decodes a PEM `PUBLIC KEY` block and parses it.
    pub(super) fn from_pem(pem: &str) -> Result<Spki, String> {
        let body = pem
            .trim()
            .strip_prefix("-----BEGIN PUBLIC KEY-----")
            .and_then(|b| b.strip_suffix("-----END PUBLIC KEY-----"))
            .ok_or("keyval.public is not a PEM PUBLIC KEY block")?;
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("keyval.public: bad base64: {e}"))?;
        parse(&der)
    }

    fn parse(der: &[u8]) -> Result<Spki, String> {
        let bad = |what: &str| format!("keyval.public: malformed SubjectPublicKeyInfo ({what})");
        let (info, rest) = tlv(der, SEQUENCE).ok_or_else(|| bad("outer SEQUENCE"))?;
        if !rest.is_empty() {
            return Err(bad("bytes after the key"));
        }
        let (algorithm_id, info) = tlv(info, SEQUENCE).ok_or_else(|| bad("AlgorithmIdentifier"))?;
        let (bits, rest) = tlv(info, BIT_STRING).ok_or_else(|| bad("subjectPublicKey"))?;
        if !rest.is_empty() {
            return Err(bad("bytes after subjectPublicKey"));
        }
        let (algorithm, params) = tlv(algorithm_id, OID).ok_or_else(|| bad("algorithm OID"))?;
        let parameters = match params {
            [] => None,
            [tag, ..] => {
                let (value, rest) = tlv(params, *tag).ok_or_else(|| bad("parameters"))?;
                if !rest.is_empty() {
                    return Err(bad("bytes after parameters"));
                }
                Some((*tag, value.to_vec()))
            }
        };
        let key = match bits {
            [0, key @ ..] => key.to_vec(),
            _ => return Err(bad("BIT STRING with unused bits")),
        };
        Ok(Spki { algorithm: algorithm.to_vec(), parameters, key })
    }

    /// One DER element of type `tag`: its contents and what follows it.
    fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&first, rest) = input.split_first()?;
        if first != tag {
            return None;
        }
        let (&len, mut rest) = rest.split_first()?;
        let len = if len < 0x80 {
            usize::from(len)
        } else {
            let count = usize::from(len & 0x7f);
            if count == 0 || count > 3 || rest.len() < count {
                return None;
            }
            let (digits, after) = rest.split_at(count);
            rest = after;
            digits.iter().fold(0usize, |n, &d| (n << 8) | usize::from(d))
        };
        (rest.len() >= len).then(|| rest.split_at(len))
    }

    /// The uncompressed point of an EC key on `curve` (its OID and point length).
    pub(super) fn ec_point(spki: &Spki, (curve, len): (&[u8], usize)) -> Result<Vec<u8>, String> {
        if spki.algorithm != EC_PUBLIC_KEY {
            return Err("keyval.public is not an EC public key".into());
        }
        if spki.parameters.as_ref().is_none_or(|(tag, oid)| *tag != OID || oid != curve) {
            return Err("keyval.public is an EC key on another curve than the scheme names".into());
        }
        if spki.key.len() != len || spki.key[0] != 0x04 {
            return Err("keyval.public is not an uncompressed EC point".into());
        }
        Ok(spki.key.clone())
    }

    /// The PKCS #1 `RSAPublicKey` of an RSA key.
    pub(super) fn rsa_key(spki: &Spki) -> Result<Vec<u8>, String> {
        if spki.algorithm != RSA_ENCRYPTION || spki.parameters.as_ref().is_some_and(|(tag, _)| *tag != NULL) {
            return Err("keyval.public is not an RSA public key".into());
        }
        let (_, rest) = tlv(&spki.key, SEQUENCE).ok_or("keyval.public: malformed RSAPublicKey")?;
        if !rest.is_empty() {
            return Err("keyval.public: bytes after RSAPublicKey".into());
        }
        Ok(spki.key.clone())
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
        let dsa = json!({"keytype": "dsa", "scheme": "dsa-sha1", "keyval": {"public": "PEM"}});
        assert!(matches!(RootKey::from_json(&dsa).unwrap(), RootKey::Unsupported { .. }));
        let rsa = json!({"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": "PEM"}});
        assert!(RootKey::from_json(&rsa).is_err(), "a supported key type with a bad value is an error");
        let bad = json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "00"}});
        assert!(RootKey::from_json(&bad).is_err());
    }
}
