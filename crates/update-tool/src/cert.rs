//! `update-tool cert`: a small X.509 PKI for a fleet: a CA, a server certificate for
//! `update-server`, and one client certificate per device (its CN is the device id).
//!
//! Keys are ECDSA P-256, written as PKCS#8 PEM with mode 0600; certificates as PEM. This is
//! for test fleets, labs and small deployments; a fleet with an existing PKI uses that.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use update_core::{Error, Result};

/// `update-tool cert …`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Make a certificate authority: DIR/NAME.crt and DIR/NAME.key.
    Ca {
        /// The file name stem.
        name: String,
        /// The directory to write to.
        #[arg(long)]
        out: PathBuf,
        /// Days it is valid.
        #[arg(long, default_value_t = 3650)]
        days: i64,
    },
    /// Make a certificate signed by a CA: DIR/NAME.crt and DIR/NAME.key.
    Issue {
        /// The file name stem; also the subject CN (for a device: its id) unless --cn is given.
        name: String,
        /// The CA's files, without extension (`pki/fleet-ca` for pki/fleet-ca.crt and .key).
        #[arg(long)]
        ca: PathBuf,
        /// The directory to write to.
        #[arg(long)]
        out: PathBuf,
        /// The subject common name (default: NAME).
        #[arg(long)]
        cn: Option<String>,
        /// A server certificate for these DNS names and IP addresses (repeatable); without
        /// it, a client (device) certificate.
        #[arg(long = "server-name")]
        server_names: Vec<String>,
        /// Days it is valid.
        #[arg(long, default_value_t = 825)]
        days: i64,
    },
}

fn pki_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidValue { what: "certificate".into(), value: what.into(), reason: e.to_string() }
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => Error::Refused(format!("{} exists; not overwriting it", path.display())),
        _ => Error::io("create", path, e),
    })?;
    // Exactly `mode`, whatever the umask: a certificate is public (0644), a key private (0600).
    f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io("set the mode of", path, e))?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| Error::io("write", path, e))
}

fn validity(p: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // An hour of slack for devices whose clock is a little behind.
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(days);
}

fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// Runs one `cert` command.
///
/// # Errors
/// Usage errors, an existing output file (refused), I/O errors.
pub fn run(cmd: CertCommand) -> Result<()> {
    match cmd {
        CertCommand::Ca { name, out, days } => {
            std::fs::create_dir_all(&out).map_err(|e| Error::io("create", &out, e))?;
            let key = KeyPair::generate().map_err(|e| pki_err(&name, e))?;
            let mut p = CertificateParams::default();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages =
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, name.as_str());
            p.distinguished_name = dn;
            validity(&mut p, days);
            let cert = p.self_signed(&key).map_err(|e| pki_err(&name, e))?;
            let crt = out.join(format!("{name}.crt"));
            write(&out.join(format!("{name}.key")), &key.serialize_pem(), 0o600)?;
            write(&crt, &cert.pem(), 0o644)?;
            println!("{}", crt.display());
        }
        CertCommand::Issue { name, ca, out, cn, server_names, days } => {
            let ca_key_path = with_ext(&ca, ".key");
            let ca_crt_path = with_ext(&ca, ".crt");
            let ca_key_pem = std::fs::read_to_string(&ca_key_path).map_err(|e| Error::io("read", &ca_key_path, e))?;
            let ca_crt_pem = std::fs::read_to_string(&ca_crt_path).map_err(|e| Error::io("read", &ca_crt_path, e))?;
            let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|e| pki_err(&ca_key_path.display().to_string(), e))?;
            let issuer = Issuer::from_ca_cert_pem(&ca_crt_pem, ca_key)
                .map_err(|e| pki_err(&ca_crt_path.display().to_string(), e))?;
            std::fs::create_dir_all(&out).map_err(|e| Error::io("create", &out, e))?;
            let key = KeyPair::generate().map_err(|e| pki_err(&name, e))?;
            let mut p = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, cn.as_deref().unwrap_or(&name));
            p.distinguished_name = dn;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            if server_names.is_empty() {
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            } else {
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                for n in &server_names {
                    p.subject_alt_names.push(match n.parse::<IpAddr>() {
                        Ok(ip) => SanType::IpAddress(ip),
                        Err(_) => SanType::DnsName(n.as_str().try_into().map_err(|e| pki_err(n, e))?),
                    });
                }
            }
            validity(&mut p, days);
            let cert = p.signed_by(&key, &issuer).map_err(|e| pki_err(&name, e))?;
            let crt = out.join(format!("{name}.crt"));
            write(&out.join(format!("{name}.key")), &key.serialize_pem(), 0o600)?;
            write(&crt, &cert.pem(), 0o644)?;
            println!("{}", crt.display());
        }
    }
    Ok(())
}
