//! Throwaway certificates for one run (rcgen): a CA for the server's certificate (which names
//! 10.0.2.2, where the guest reaches the host, and 127.0.0.1), a CA for devices, one client
//! certificate per device (its CN is the device id the server records), and one for the
//! operator's requests.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

use super::util::io;
use crate::sys::Result;

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// The run's PKI, written under one directory.
pub struct Pki {
    dir: PathBuf,
    device_ca: CertifiedIssuer<'static, KeyPair>,
    /// The CA that signed the server certificate (devices trust it).
    pub server_ca: PathBuf,
    /// The CA that signs devices (the server trusts it).
    pub device_ca_cert: PathBuf,
    /// The server's certificate.
    pub server: Identity,
}

fn err(e: rcgen::Error) -> String {
    format!("rcgen: {e}")
}

fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().map_err(err)?).map_err(err)
}

fn write(path: &Path, text: &str) -> Result {
    std::fs::write(path, text).map_err(io("write", path))
}

impl Pki {
    /// Generates the CAs and the server certificate into `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let server_ca = ca("libupdate system-test server CA")?;
        let device_ca = ca("libupdate system-test device CA")?;
        let key = KeyPair::generate().map_err(err)?;
        let mut p = CertificateParams::new(vec!["10.0.2.2".to_owned(), "127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(err)?;
        p.distinguished_name.push(DnType::CommonName, "update-server (system test)");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &server_ca).map_err(err)?;
        let server = Identity { cert: dir.join("server.crt"), key: dir.join("server.key") };
        write(&server.cert, &cert.pem())?;
        write(&server.key, &key.serialize_pem())?;
        let pki = Pki {
            dir: dir.to_owned(),
            server_ca: dir.join("server-ca.crt"),
            device_ca_cert: dir.join("device-ca.crt"),
            server,
            device_ca,
        };
        write(&pki.server_ca, &server_ca.pem())?;
        write(&pki.device_ca_cert, &pki.device_ca.pem())?;
        Ok(pki)
    }

    /// A client certificate from the device CA with this CN.
    pub fn client(&self, cn: &str) -> Result<Identity> {
        let key = KeyPair::generate().map_err(err)?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &self.device_ca).map_err(err)?;
        let id = Identity { cert: self.dir.join(format!("{cn}.crt")), key: self.dir.join(format!("{cn}.key")) };
        write(&id.cert, &cert.pem())?;
        write(&id.key, &key.serialize_pem())?;
        Ok(id)
    }
}
