//! Signing keys: generation, PEM (PKCS#8) storage, and the public text form.
//!
//! Private keys are written as `-----BEGIN PRIVATE KEY-----` PKCS#8 PEM with mode 0600 (what
//! `openssl genpkey -algorithm ed25519` writes, so either tool can make keys). The public text
//! form is base64 of the 32 raw bytes, which `update config key add` accepts. Private material
//! never appears in messages.

use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use update_core::keyring::PublicKey;
use update_core::{Error, Result};

/// A new random key.
///
/// # Errors
/// When the system random source fails.
pub fn generate() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Other(format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

/// The PEM text of a private key.
///
/// # Errors
/// Encoding errors.
pub fn private_pem(key: &SigningKey) -> Result<String> {
    key.to_pkcs8_pem(Default::default())
        .map(|z| z.to_string())
        .map_err(|e| Error::Other(format!("cannot encode key: {e}")))
}

/// Reads a private key from a PEM file.
///
/// # Errors
/// [`Error::Io`] or [`Error::Keyring`] naming the file (never its content).
pub fn read_private(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read private key", path, e))?;
    SigningKey::from_pkcs8_pem(&text)
        .map_err(|_| Error::Keyring(format!("{} is not an ed25519 PKCS#8 PEM private key", path.display())))
}

/// The public key's text form (base64 of the raw bytes).
#[must_use]
pub fn public_text(key: &SigningKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes())
}

/// The public key as the keyring type.
#[must_use]
pub fn public_key(key: &SigningKey) -> PublicKey {
    PublicKey::from_verifying_key(key.verifying_key())
}
