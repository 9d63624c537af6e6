//! The whole path over the network: a signed repository served over HTTPS with mutual TLS on
//! loopback (a small rustls file server), the device configured with `secure = true`, its
//! certificate and the server CA; `update --now` installs. Without the client certificate the
//! server refuses the connection and nothing changes on the device.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use update_core::config::{Config, Secure, SourceUrl};
use update_core::{ErrorKind, Paths};
use update_repo::TargetName;
use update_repo::publish::{Expiries, Repository, RoleKeySet};
use update_test::pki::Pki;

use crate::common::Fixture;

/// Serves files below `dir` over HTTPS with the PKI's server certificate, requiring a client
/// certificate from its client CA.
fn serve(dir: PathBuf, pki: &Pki) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(&pki.client_ca_cert).unwrap()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from_pem_file(&pki.server.cert).unwrap()],
                PrivateKeyDer::from_pem_file(&pki.server.key).unwrap(),
            )
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else { continue };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut reader = BufReader::new(&mut tls);
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            drop(reader);
            let path = first.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_owned();
            let file = dir.join(&path);
            let _ = match (path.contains(".."), std::fs::read(&file)) {
                (false, Ok(body)) => {
                    write!(tls, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                        .and_then(|()| tls.write_all(&body))
                }
                _ => write!(tls, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            };
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

#[test]
fn installs_from_a_repository_over_https_with_mutual_tls() {
    let fx = Fixture::new();
    // The vendor's repository, outside the device.
    let repo_dir = fx.dir.path().join("repo");
    let signers = [fx.key.clone()];
    let now = OffsetDateTime::now_utc();
    let mut repo = Repository::init(
        &repo_dir,
        &RoleKeySet::all(&[update_bundle::signing::public_key(&fx.key)]),
        1,
        &signers,
        &Expiries::default(),
        now,
    )
    .unwrap();
    let bundle = fx.publish_version("2.0", "ok");
    repo.add_target(&bundle, &TargetName::new("release-2.0.0.bundle").unwrap(), None).unwrap();
    repo.sign(&signers, &Expiries::default(), now).unwrap();
    std::fs::remove_file(&bundle).unwrap();
    // The snakeoil PKI: a server certificate for localhost, a device certificate.
    let pki = Pki::new(&fx.dir.path().join("pki"), &["localhost"]).unwrap();
    let device = pki.client("device-1").unwrap();
    let etc = fx.root().join("etc/update");
    std::fs::copy(&pki.server_ca, etc.join("ca.pem")).unwrap();
    std::fs::copy(&device.cert, etc.join("device.pem")).unwrap();
    std::fs::copy(&device.key, etc.join("device.key")).unwrap();
    let port = serve(repo_dir, &pki);
    let paths = Paths::new(fx.root());
    let mut c = Config::load(&paths).unwrap();
    c.source = Some(SourceUrl::new(&format!("https://localhost:{port}/")).unwrap());
    c.tls.server_ca = Some("/etc/update/ca.pem".into());
    c.tls.client_cert = Some("/etc/update/device.pem".into());
    c.tls.client_key = Some("/etc/update/device.key".into());
    c.secure = Secure::ServerAuth;
    c.store(&paths).unwrap();
    // secure = false: no client certificate, the server refuses, nothing changes.
    let before = fx.fingerprint();
    let e = fx.updater().install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Source, "{e}");
    assert_eq!(fx.fingerprint(), before);
    // secure = true: mutual TLS, the repository is verified and 2.0 installs.
    let mut c = Config::load(&paths).unwrap();
    c.secure = Secure::MutualTls;
    c.store(&paths).unwrap();
    let r = fx.updater().install_now(true).unwrap();
    assert_eq!(r.installed.unwrap().version.to_string(), "2.0.0");
    assert!(fx.root().join("var/cache/update/release-2.0.0.bundle").exists());
}
