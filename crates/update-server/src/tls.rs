//! TLS: the server certificate and key from PEM files, rustls with the *ring* provider, ALPN
//! `h2` and `http/1.1`, and mutual TLS.
//!
//! With mutual TLS ([`ClientAuth::Required`]) every client must present a certificate that
//! chains to the configured CA (and is not revoked by a configured CRL), or the handshake fails
//! and no request is read. A device's identity is its certificate's subject common name
//! ([`ClientCertificate`]).
//!
//! With the dashboard on ([`ClientAuth::RequiredOutsideDashboard`]) a browser, which has no
//! client certificate, may finish the handshake; a certificate that *is* presented is still
//! verified the same way (a bad or revoked one fails the handshake), and the router refuses a
//! client without one on every route outside `/dashboard`
//! ([`DeviceRoutes::RequireClientCertificate`](crate::dashboard::DeviceRoutes)).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

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

/// Every CRL in a PEM file.
///
/// # Errors
/// The file cannot be read, or holds no valid `X509 CRL` block.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, ServerError> {
    let pem = read(path, "read the CRL file")?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Invalid { path: path.to_owned(), reason: format!("bad PEM: {e}") })?;
    if crls.is_empty() {
        return Err(ServerError::Invalid { path: path.to_owned(), reason: "no X509 CRL block".to_owned() });
    }
    Ok(crls)
}

/// Whether clients must authenticate. There is deliberately no general "optional certificate"
/// mode: a server that identifies devices by certificate refuses clients without one, either at
/// the handshake ([`Required`](Self::Required)) or, when the dashboard shares the listener, at
/// the HTTP layer on every route but the dashboard's ([`RequiredOutsideDashboard`](Self::RequiredOutsideDashboard)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// Server authentication only (devices are not identified by TLS).
    NotRequested,
    /// Mutual TLS: every client presents a certificate issued by a CA in `ca` (PEM, one or
    /// more certificates) that no CRL in `crls` revokes.
    Required {
        /// The CA bundle devices' certificates must chain to.
        ca: PathBuf,
        /// Revocation lists (PEM) issued by that CA; only the client's own certificate is
        /// checked, and a certificate whose status no list gives is refused.
        crls: Vec<PathBuf>,
    },
    /// Mutual TLS for everything but the dashboard (`--dashboard`): a client certificate, when
    /// presented, is verified exactly as with [`Required`](Self::Required), but a client
    /// without one (a browser) finishes the handshake. The router must then refuse such a
    /// client outside `/dashboard`: [`crate::dashboard::app_with_dashboard`] with
    /// [`DeviceRoutes::RequireClientCertificate`](crate::dashboard::DeviceRoutes), which
    /// [`ClientAuth::device_routes`] gives.
    RequiredOutsideDashboard {
        /// The CA bundle devices' certificates must chain to.
        ca: PathBuf,
        /// Revocation lists (PEM) issued by that CA.
        crls: Vec<PathBuf>,
    },
}

impl ClientAuth {
    /// The listener's setting when the dashboard is on: [`Required`](Self::Required) becomes
    /// [`RequiredOutsideDashboard`](Self::RequiredOutsideDashboard); the others stay.
    #[must_use]
    pub fn with_dashboard(self) -> Self {
        match self {
            ClientAuth::Required { ca, crls } => ClientAuth::RequiredOutsideDashboard { ca, crls },
            other => other,
        }
    }

    /// What the router must check itself on routes outside the dashboard.
    #[must_use]
    pub fn device_routes(&self) -> crate::dashboard::DeviceRoutes {
        match self {
            ClientAuth::RequiredOutsideDashboard { .. } => crate::dashboard::DeviceRoutes::RequireClientCertificate,
            ClientAuth::NotRequested | ClientAuth::Required { .. } => crate::dashboard::DeviceRoutes::AsTheListener,
        }
    }
}

/// The rustls configuration for `--tls-cert`, `--tls-key` and the client authentication.
///
/// # Errors
/// A file is unreadable or invalid, or the key does not match the certificate.
pub fn server_config(cert: &Path, key: &Path, client_auth: &ClientAuth) -> Result<Arc<ServerConfig>, ServerError> {
    let chain = load_certificates(cert)?;
    let private_key = load_private_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let builder = match client_auth {
        ClientAuth::NotRequested => builder.with_no_client_auth(),
        ClientAuth::Required { ca, crls } | ClientAuth::RequiredOutsideDashboard { ca, crls } => {
            let mut roots = RootCertStore::empty();
            for anchor in load_certificates(ca)? {
                roots.add(anchor).map_err(|e| ServerError::Invalid {
                    path: ca.clone(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let mut revoked = Vec::new();
            for path in crls {
                revoked.extend(load_crls(path)?);
            }
            let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            if !revoked.is_empty() {
                verifier = verifier.with_crls(revoked).only_check_end_entity_revocation();
            }
            if matches!(client_auth, ClientAuth::RequiredOutsideDashboard { .. }) {
                // Browsers for the dashboard; the router refuses them everywhere else.
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| ServerError::Tls(format!("client verification: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, private_key).map_err(|e| ServerError::Invalid {
        path: key.to_owned(),
        reason: format!("the key does not fit the certificate {}: {e}", cert.display()),
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Stateless session tickets: a device reconnecting resumes without a new signature and
    // certificate check (the default in-memory cache holds only 256 sessions). The ticket keys
    // live in memory and die with the process, as do the CRLs read at start: a restart that
    // loads a new CRL also ends every session a revoked certificate could resume.
    config.ticketer =
        rustls::crypto::ring::Ticketer::new().map_err(|e| ServerError::Tls(format!("session tickets: {e}")))?;
    Ok(Arc::new(config))
}

/// What the server takes from a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The subject's common name, when there is exactly one and it is a string.
    pub common_name: Option<String>,
    /// The subject's organizational units (OU) that are valid [`Tag`](update_protocol::Tag)s:
    /// the device's tags from its certificate (others are ignored).
    pub tags: Vec<update_protocol::Tag>,
}

impl ClientCertificate {
    /// Reads the end-entity certificate the handshake verified. A certificate rustls accepted
    /// but x509-parser cannot read yields no common name (the device is then refused).
    #[must_use]
    pub fn from_der(der: &CertificateDer<'_>) -> Self {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
            return Self { common_name: None, tags: Vec::new() };
        };
        let mut names = cert.subject().iter_common_name();
        let common_name =
            names.next().and_then(|n| n.as_str().ok()).map(str::to_owned).filter(|_| names.next().is_none());
        let mut tags: Vec<update_protocol::Tag> = cert
            .subject()
            .iter_organizational_unit()
            .filter_map(|ou| ou.as_str().ok())
            .filter_map(|ou| update_protocol::Tag::parse(ou).ok())
            .collect();
        tags.sort();
        tags.dedup();
        Self { common_name, tags }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;

    fn cert_with(cns: &[&str]) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::OrganizationName, "snakeoil");
        for cn in cns {
            p.distinguished_name.push(DnType::CommonName, *cn);
        }
        (p.self_signed(&key).unwrap(), key)
    }

    #[test]
    fn the_device_id_is_the_single_common_name() {
        let (cert, _) = cert_with(&["device-0001"]);
        assert_eq!(ClientCertificate::from_der(cert.der()).common_name.as_deref(), Some("device-0001"));
        let (cert, _) = cert_with(&[]);
        assert_eq!(ClientCertificate::from_der(cert.der()).common_name, None);
        assert_eq!(ClientCertificate::from_der(&CertificateDer::from(vec![0x30, 0x00])).common_name, None);
    }

    #[test]
    fn organizational_units_are_the_certificate_tags() {
        let with_ou = |ou: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name.push(DnType::CommonName, "device-0001");
            p.distinguished_name.push(DnType::OrganizationalUnitName, ou);
            ClientCertificate::from_der(p.self_signed(&key).unwrap().der())
        };
        let c = with_ou("site:berlin");
        assert_eq!(c.common_name.as_deref(), Some("device-0001"));
        assert_eq!(c.tags.iter().map(update_protocol::Tag::as_str).collect::<Vec<_>>(), ["site:berlin"]);
        assert!(with_ou("not a tag").tags.is_empty(), "an OU that is not a tag is ignored");
        let (cert, _) = cert_with(&["device-0002"]);
        assert!(ClientCertificate::from_der(cert.der()).tags.is_empty());
    }

    #[test]
    fn the_dashboard_lets_clients_without_a_certificate_through_only_with_the_router_checking() {
        use crate::dashboard::DeviceRoutes;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = cert_with(&["server"]);
        let cert_path = dir.path().join("server.crt");
        let key_path = dir.path().join("server.key");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let required = ClientAuth::Required { ca: cert_path.clone(), crls: Vec::new() };
        assert_eq!(required.device_routes(), DeviceRoutes::AsTheListener);
        let open = required.clone().with_dashboard();
        assert_eq!(open, ClientAuth::RequiredOutsideDashboard { ca: cert_path.clone(), crls: Vec::new() });
        assert_eq!(open.device_routes(), DeviceRoutes::RequireClientCertificate);
        assert_eq!(ClientAuth::NotRequested.with_dashboard(), ClientAuth::NotRequested);
        assert_eq!(ClientAuth::NotRequested.device_routes(), DeviceRoutes::AsTheListener);
        // Both build (the handshakes themselves are tested over a real listener:
        // tests/server/mtls.rs and tests/server/dashboard.rs).
        server_config(&cert_path, &key_path, &required).unwrap();
        server_config(&cert_path, &key_path, &open).unwrap();
    }

    #[test]
    fn bad_files_are_named_and_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = server_config(&missing, &missing, &ClientAuth::NotRequested).unwrap_err();
        assert!(matches!(e, ServerError::Io { .. }) && e.to_string().contains("missing.pem"), "{e}");
        assert_eq!(e.exit_code(), 3);

        let (cert, key) = cert_with(&["server"]);
        let (_, other_key) = cert_with(&["server"]);
        let cert_path = dir.path().join("server.crt");
        let key_path = dir.path().join("server.key");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, other_key.serialize_pem()).unwrap();
        std::fs::write(&garbage, "SECRET-CONTENT").unwrap();
        let e = server_config(&cert_path, &key_path, &ClientAuth::NotRequested).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        server_config(&cert_path, &key_path, &ClientAuth::NotRequested).unwrap();

        for (c, k) in [(&garbage, &key_path), (&cert_path, &garbage)] {
            let e = server_config(c, k, &ClientAuth::NotRequested).unwrap_err();
            assert!(matches!(e, ServerError::Invalid { .. }), "{e}");
            assert!(!e.to_string().contains("SECRET"), "{e}");
        }
        let auth = ClientAuth::Required { ca: cert_path.clone(), crls: vec![garbage.clone()] };
        let e = server_config(&cert_path, &key_path, &auth).unwrap_err();
        assert!(e.to_string().contains("garbage.pem"), "{e}");
    }
}
