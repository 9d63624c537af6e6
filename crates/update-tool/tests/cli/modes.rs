//! Issue 11 item 8: files others must read are 0644 (bundles, repository targets and metadata,
//! public keys, certificates); private keys stay 0600 — whatever the publisher's umask.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use crate::assert_exit;

/// Runs `update-tool` in `dir` under `umask`.
fn tool_umask(dir: &Path, umask: &str, args: &[&str]) -> Output {
    Command::new("sh")
        .current_dir(dir)
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_update-tool"))
        .args(args)
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// Every regular file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(files(&p)) } else { out.push(p) }
    }
    out
}

/// Publishes a key, a bundle, a repository with the bundle and a fleet PKI under `umask`, then
/// checks every mode.
fn publish_and_check(umask: &str) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(dir.join("rootfs.img"), b"rootfs ".repeat(5000)).unwrap();
    let run = |args: &[&str]| assert_exit(&tool_umask(dir, umask, args), 0);
    run(&["key", "generate", "vendor", "--out", "keys"]);
    run(&[
        "bundle",
        "create",
        "--out",
        "app.bundle",
        "--version",
        "2.0",
        "--compatible",
        "board",
        "--key",
        "keys/vendor.key",
        "--image",
        "rootfs=rootfs.img",
    ]);
    run(&["repo", "init", "repo", "--key", "keys/vendor.key"]);
    run(&["repo", "add", "repo", "app.bundle", "--key", "keys/vendor.key"]);
    run(&["repo", "refresh", "repo", "--key", "keys/vendor.key"]);
    run(&["cert", "ca", "fleet-ca", "--out", "pki"]);
    run(&["cert", "issue", "device-0001", "--ca", "pki/fleet-ca", "--out", "pki"]);

    assert_eq!(mode(&dir.join("keys/vendor.key")), 0o600, "umask {umask}: private key");
    assert_eq!(mode(&dir.join("keys/vendor.pub")), 0o644, "umask {umask}: public key");
    assert_eq!(mode(&dir.join("app.bundle")), 0o644, "umask {umask}: bundle");
    let published = files(&dir.join("repo/targets"));
    assert_eq!(published.len(), 1, "{published:?}");
    let metadata = files(&dir.join("repo/metadata"));
    assert!(metadata.len() >= 4, "{metadata:?}");
    for f in published.iter().chain(&metadata) {
        assert_eq!(mode(f), 0o644, "umask {umask}: {}", f.display());
    }
    for key in ["fleet-ca.key", "device-0001.key"] {
        assert_eq!(mode(&dir.join("pki").join(key)), 0o600, "umask {umask}: {key}");
    }
    for crt in ["fleet-ca.crt", "device-0001.crt"] {
        assert_eq!(mode(&dir.join("pki").join(crt)), 0o644, "umask {umask}: {crt}");
    }
}

#[test]
fn public_artefacts_are_0644_and_private_keys_0600_under_the_usual_umask() {
    publish_and_check("022");
}

#[test]
fn public_artefacts_are_0644_and_private_keys_0600_under_a_strict_umask() {
    publish_and_check("077");
}

#[test]
fn a_permissive_umask_never_opens_a_private_key() {
    publish_and_check("000");
}
