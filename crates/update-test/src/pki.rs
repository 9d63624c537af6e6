//! A throwaway ("snakeoil") PKI for tests, made with rcgen and written as PEM files: a CA for
//! server certificates, a CA for clients (devices and operators), a server certificate for the
//! names given, and client certificates whose CN is the device id a fleet server records.
//! Nothing here is fit for a real fleet (`update-tool cert` makes those).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use update_core::{Error, Result};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate.
    pub cert: PathBuf,
    /// The private key (PKCS#8).
    pub key: PathBuf,
}

/// The PKI, written under one directory: `server-ca.crt`, `client-ca.crt`, `server.crt` and
/// `server.key`, and `<cn>.crt`/`<cn>.key` for each client.
pub struct Pki {
    dir: PathBuf,
    client_ca: CertifiedIssuer<'static, KeyPair>,
    /// The CA that signed the server certificate (clients trust it).
    pub server_ca: PathBuf,
    /// The CA that signs clients (the server trusts it).
    pub client_ca_cert: PathBuf,
    /// The server's certificate.
    pub server: Identity,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn err(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Other(format!("snakeoil PKI: {what}: {e}"))
}

fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err(name))?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().map_err(err(name))?).map_err(err(name))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io("write", path, e))
}

impl Pki {
    /// Generates both CAs and a server certificate for `server_names` (DNS names or IP
    /// addresses) into `dir`.
    ///
    /// # Errors
    /// When a key or certificate cannot be made or a file cannot be written.
    pub fn new(dir: &Path, server_names: &[&str]) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let server_ca = ca("libupdate snakeoil server CA")?;
        let client_ca = ca("libupdate snakeoil client CA")?;
        let key = KeyPair::generate().map_err(err("server key"))?;
        let names: Vec<String> = server_names.iter().map(|n| (*n).to_owned()).collect();
        let mut p = CertificateParams::new(names).map_err(err("server certificate"))?;
        p.distinguished_name.push(DnType::CommonName, "update-server (snakeoil)");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &server_ca).map_err(err("server certificate"))?;
        let server = Identity { cert: dir.join("server.crt"), key: dir.join("server.key") };
        write(&server.cert, &cert.pem())?;
        write(&server.key, &key.serialize_pem())?;
        let pki = Pki {
            dir: dir.to_owned(),
            server_ca: dir.join("server-ca.crt"),
            client_ca_cert: dir.join("client-ca.crt"),
            server,
            client_ca,
        };
        write(&pki.server_ca, &server_ca.pem())?;
        write(&pki.client_ca_cert, &pki.client_ca.pem())?;
        Ok(pki)
    }

    /// A client certificate from the client CA with this CN (`<dir>/<cn>.crt` and `.key`).
    ///
    /// # Errors
    /// When the certificate cannot be made or written.
    pub fn client(&self, cn: &str) -> Result<Identity> {
        let key = KeyPair::generate().map_err(err(cn))?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err(cn))?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &self.client_ca).map_err(err(cn))?;
        let id = Identity { cert: self.dir.join(format!("{cn}.crt")), key: self.dir.join(format!("{cn}.key")) };
        write(&id.cert, &cert.pem())?;
        write(&id.key, &key.serialize_pem())?;
        Ok(id)
    }
}
