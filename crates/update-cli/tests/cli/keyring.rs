//! `update config key add|update|delete|list`: the happy paths, duplicates, missing names and
//! malformed keys (each refused with exit code 11, the keyring file unchanged).

use base64::Engine as _;

use crate::common::Dev;

fn key(seed: u8) -> String {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    base64::engine::general_purpose::STANDARD.encode(sk.verifying_key().as_bytes())
}

fn list(dev: &Dev) -> Vec<(String, String)> {
    let r = dev.ok(&["config", "key", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap().to_owned(), k["public-key"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn add_update_delete_list() {
    let dev = Dev::new();
    dev.ok(&["config", "key", "add", "vendor", &key(1)]);
    dev.ok(&["config", "key", "add", "backup", &format!("ed25519:{}", key(2))]);
    assert_eq!(list(&dev), vec![("backup".into(), key(2)), ("vendor".into(), key(1))]);
    dev.ok(&["config", "key", "update", "vendor", &key(3)]);
    assert_eq!(list(&dev), vec![("backup".into(), key(2)), ("vendor".into(), key(3))]);
    // From a file, and from PEM.
    let pem_path = dev.root().join("k.pem");
    let sk = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    let pem =
        ed25519_dalek::pkcs8::EncodePublicKey::to_public_key_pem(&sk.verifying_key(), Default::default()).unwrap();
    std::fs::write(&pem_path, pem).unwrap();
    dev.ok(&["config", "key", "add", "pem", &format!("@{}", pem_path.display())]);
    assert!(list(&dev).contains(&("pem".into(), key(4))));
    dev.ok(&["config", "key", "delete", "vendor"]);
    dev.ok(&["config", "key", "delete", "pem"]);
    assert_eq!(list(&dev), vec![("backup".into(), key(2))]);
    let text = dev.ok(&["config", "key", "list"]).stdout;
    assert!(text.contains("backup") && text.contains(&key(2)), "{text}");
    let history = dev.ok(&["history", "--json"]).stdout;
    for action in ["key-add", "key-update", "key-delete"] {
        assert!(history.contains(action), "{action} not audited");
    }
}

#[test]
fn refusals_leave_the_keyring_unchanged() {
    let dev = Dev::new();
    dev.ok(&["config", "key", "add", "vendor", &key(1)]);
    let file = dev.root().join("etc/update/keys.toml");
    let before = std::fs::read(&file).unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["add".into(), "vendor".into(), key(2)], 11, "exists"),
        (vec!["add".into(), "again".into(), key(1)], 11, "already trusted"),
        (vec!["update".into(), "missing".into(), key(2)], 11, "no key named"),
        (vec!["delete".into(), "missing".into()], 11, "no key named"),
        (vec!["add".into(), "short".into(), "AAAA".into()], 11, "malformed"),
        (vec!["add".into(), "junk".into(), "not a key at all".into()], 11, "malformed"),
        (
            vec!["add".into(), "zero".into(), base64::engine::general_purpose::STANDARD.encode([0u8; 32])],
            11,
            "malformed",
        ),
        (vec!["add".into(), "bad/name".into(), key(5)], 2, "key name"),
        (vec!["add".into(), "file".into(), "@/nonexistent/key.pub".into()], 9, "/nonexistent/key.pub"),
    ];
    for (args, code, needle) in cases {
        let mut full = vec!["config", "key"];
        full.extend(args.iter().map(String::as_str));
        let r = dev.run(&full);
        assert_eq!(r.code, code, "{full:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{full:?}: {}", r.stderr);
        assert_eq!(std::fs::read(&file).unwrap(), before, "{full:?} changed the keyring");
    }
}
