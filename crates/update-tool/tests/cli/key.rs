//! `update-tool key generate`.

use std::os::unix::fs::PermissionsExt as _;

use update_core::keyring::PublicKey;

use crate::{assert_exit, stderr, stdout, tool};

#[test]
fn generate_writes_a_private_key_0600_and_a_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = tool(dir.path(), &["key", "generate", "snakeoil", "--out", "keys"]);
    assert_exit(&out, 0);
    let (key, public) = (dir.path().join("keys/snakeoil.key"), dir.path().join("keys/snakeoil.pub"));
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    let private = update_bundle::signing::read_private(&key).unwrap();
    let parsed = PublicKey::parse(&std::fs::read_to_string(&public).unwrap()).unwrap();
    assert_eq!(parsed, update_bundle::signing::public_key(&private), "the .pub belongs to the .key");
    assert!(stdout(&out).contains(&format!("key id {}", parsed.key_id())), "{}", stdout(&out));
    assert!(!stdout(&out).contains("PRIVATE"), "private material on stdout");
}

#[test]
fn generate_never_overwrites_a_key() {
    let dir = tempfile::tempdir().unwrap();
    assert_exit(&tool(dir.path(), &["key", "generate", "snakeoil", "--out", "."]), 0);
    let before = std::fs::read(dir.path().join("snakeoil.key")).unwrap();
    let out = tool(dir.path(), &["key", "generate", "snakeoil", "--out", "."]);
    assert_exit(&out, 7);
    assert!(stderr(&out).contains("snakeoil.key exists; refusing to overwrite a key"), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("snakeoil.key")).unwrap(), before);
    // Also when only the public half is there.
    std::fs::write(dir.path().join("other.pub"), "x").unwrap();
    assert_exit(&tool(dir.path(), &["key", "generate", "other", "--out", "."]), 7);
    assert!(!dir.path().join("other.key").exists());
}

#[test]
fn generate_refuses_a_bad_name() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["../escape", ".hidden", ""] {
        let out = tool(dir.path(), &["key", "generate", name, "--out", "keys"]);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains("invalid key name"), "{}", stderr(&out));
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing is written");
}
