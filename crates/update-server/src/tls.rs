//! TLS: the server certificate and key from PEM files, rustls with the *ring* provider, ALPN
//! `h2` and `http/1.1`.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ServerError;

/// The crypto provider every TLS object of the server uses.
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|source| ServerError::Io { op: what, path: path.to_owned(), source })
}

/// Every certificate in a PEM file (a chain: the leaf first).
///
/// # Errors
/// The file cannot be read, or holds no valid `CERTIFICATE` block.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let pem = read(path, "read the certificate file")?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Invalid { path: path.to_owned(), reason: format!("bad PEM: {e}") })?;
    if certs.is_empty() {
        return Err(ServerError::Invalid { path: path.to_owned(), reason: "no CERTIFICATE block".to_owned() });
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1). Errors never quote the file.
///
/// # Errors
/// The file cannot be read or holds no private key.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerError> {
    let pem = read(path, "read the private key file")?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| ServerError::Invalid { path: path.to_owned(), reason: format!("no usable private key: {e}") })
}

/// The rustls configuration for `--tls-cert` and `--tls-key`.
///
/// # Errors
/// A file is unreadable or invalid, or the key does not match the certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ServerError> {
    let chain = load_certificates(cert)?;
    let private_key = load_private_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let mut config =
        builder.with_no_client_auth().with_single_cert(chain, private_key).map_err(|e| ServerError::Invalid {
            path: key.to_owned(),
            reason: format!("the key does not fit the certificate {}: {e}", cert.display()),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
