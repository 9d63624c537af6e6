//! `update-tool cert ca|issue`: the fleet PKI. Checked with OpenSSL, an independent
//! implementation: the server certificate verifies for TLS servers with its names, the device
//! certificate for TLS clients with its CN, keys are private, and nothing is overwritten.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::{assert_exit, stderr, tool};

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn a_ca_issues_server_and_device_certificates_that_openssl_verifies() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    assert_exit(&tool(dir, &["cert", "ca", "fleet-ca", "--out", "pki"]), 0);
    assert_exit(
        &tool(
            dir,
            &[
                "cert",
                "issue",
                "server",
                "--ca",
                "pki/fleet-ca",
                "--server-name",
                "localhost",
                "--server-name",
                "10.0.2.2",
                "--out",
                "pki",
            ],
        ),
        0,
    );
    assert_exit(&tool(dir, &["cert", "issue", "device-0001", "--ca", "pki/fleet-ca", "--out", "pki"]), 0);
    for key in ["fleet-ca.key", "server.key", "device-0001.key"] {
        let mode = std::fs::metadata(dir.join("pki").join(key)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    let (ok, text) = openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            "pki/fleet-ca.crt",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "localhost",
            "pki/server.crt",
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl(
        dir,
        &["verify", "-CAfile", "pki/fleet-ca.crt", "-purpose", "sslserver", "-verify_ip", "10.0.2.2", "pki/server.crt"],
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            "pki/fleet-ca.crt",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "evil.example",
            "pki/server.crt",
        ],
    );
    assert!(!ok, "a name the certificate does not carry must fail: {text}");
    let (ok, text) =
        openssl(dir, &["verify", "-CAfile", "pki/fleet-ca.crt", "-purpose", "sslclient", "pki/device-0001.crt"]);
    assert!(ok, "{text}");
    let (ok, text) =
        openssl(dir, &["verify", "-CAfile", "pki/fleet-ca.crt", "-purpose", "sslserver", "pki/device-0001.crt"]);
    assert!(!ok, "a device certificate is not a server certificate: {text}");
    let (ok, text) = openssl(dir, &["x509", "-noout", "-subject", "-in", "pki/device-0001.crt"]);
    assert!(ok && text.contains("CN = device-0001"), "{text}");
    // Another CA's certificate does not verify against this one.
    assert_exit(&tool(dir, &["cert", "ca", "other-ca", "--out", "other"]), 0);
    let (ok, text) = openssl(dir, &["verify", "-CAfile", "other/other-ca.crt", "pki/device-0001.crt"]);
    assert!(!ok, "{text}");
}

#[test]
fn existing_files_are_not_overwritten_and_a_missing_ca_is_named() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    assert_exit(&tool(dir, &["cert", "ca", "fleet-ca", "--out", "pki"]), 0);
    let before = std::fs::read(dir.join("pki/fleet-ca.key")).unwrap();
    let out = tool(dir, &["cert", "ca", "fleet-ca", "--out", "pki"]);
    assert_exit(&out, 7);
    assert!(stderr(&out).contains("fleet-ca.key exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.join("pki/fleet-ca.key")).unwrap(), before);
    let out = tool(dir, &["cert", "issue", "device-1", "--ca", "pki/nope", "--out", "pki"]);
    assert_exit(&out, 9);
    assert!(stderr(&out).contains("pki/nope.key"), "{}", stderr(&out));
}
