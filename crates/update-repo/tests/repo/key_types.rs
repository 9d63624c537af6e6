//! Key types other than ed25519, as the TUF specification and python-securesystemslib name them:
//! `ecdsa` / `ecdsa-sha2-nistp256` and `rsa` / `rsassa-pss-sha256`, public keys as PEM
//! SubjectPublicKeyInfo. Repositories signed only with such keys load (tuf-on-ci, sigstore's
//! root and python-tuf write them); a wrong signature or a malformed key is refused.

use serde_json::{Value, json};
use update_repo::{Refusal, Role, TargetName};

use crate::fixture::assert_refused;
use crate::handmade::{Handmade, TestKey, pem};

fn all_roles_signed_by(key: TestKey) -> Handmade {
    let h = Handmade::new(vec![key], 0);
    h.publish();
    h
}

#[test]
fn repositories_signed_with_ecdsa_or_rsa_pss_keys_load() {
    for (what, key) in
        [("ecdsa", TestKey::ecdsa_p256()), ("rsa", TestKey::rsa_pss()), ("ed25519", TestKey::ed25519("k"))]
    {
        let h = all_roles_signed_by(key);
        let updater = h.updater("a");
        let trusted = updater.refresh(h.now).unwrap_or_else(|e| panic!("{what}: {e}"));
        let data = updater.fetch_target(&trusted, &TargetName::new("top.txt").unwrap()).unwrap();
        assert_eq!(data, b"top-level target", "{what}");
    }
}

#[test]
fn a_threshold_of_mixed_key_types_counts_each_key_once() {
    let keys = vec![TestKey::ed25519("mixed"), TestKey::ecdsa_p256(), TestKey::rsa_pss()];
    let mut h = Handmade::new(keys, 0);
    for role in ["root", "timestamp", "snapshot", "targets"] {
        h.roles.insert(role, (vec![0, 1, 2], 3));
    }
    h.root_signers = vec![0, 1, 2];
    h.targets_roles.get_mut("targets").unwrap().signers = vec![0, 1, 2];
    h.publish();
    h.updater("a").refresh(h.now).unwrap();

    // The timestamp signed by two of the three: below the threshold.
    h.roles.insert("timestamp", (vec![1, 2], 3));
    h.publish();
    h.roles.insert("timestamp", (vec![0, 1, 2], 3));
    assert_refused(h.updater("b").refresh(h.now), Role::Timestamp, "timestamp.json", |r| {
        matches!(r, Refusal::Signatures { valid: 2, threshold: 3, .. })
    });
}

#[test]
fn a_signature_by_another_key_of_the_same_type_is_refused() {
    for (listed, signer) in [(TestKey::ecdsa_p256(), TestKey::ecdsa_p256()), (TestKey::rsa_pss(), TestKey::rsa_pss())] {
        // The root lists `listed`; the timestamp carries `signer`'s signature under its id.
        let h = all_roles_signed_by(listed);
        let path = h.dir().join("metadata/timestamp.json");
        let mut file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let canonical = update_repo::canonical::to_canonical_json(&file["signed"]).unwrap();
        file["signatures"][0]["sig"] = Value::String(hex::encode(signer.sign(&canonical)));
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        assert_refused(h.updater("a").refresh(h.now), Role::Timestamp, "timestamp.json", |r| {
            matches!(r, Refusal::Signatures { valid: 0, threshold: 1, .. })
        });
    }
}

#[test]
fn malformed_ecdsa_and_rsa_public_keys_make_the_root_malformed() {
    let ec = TestKey::ecdsa_p256();
    let rsa = TestKey::rsa_pss();
    let ec_pem = ec.json["keyval"]["public"].as_str().unwrap().to_owned();
    let rsa_pem = rsa.json["keyval"]["public"].as_str().unwrap().to_owned();
    let cases = [
        // Not PEM at all.
        json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": "04abcd"}}),
        // Bad base64 inside the PEM block.
        json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
            "keyval": {"public": "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"}}),
        // An RSA key declared as ECDSA, and an EC key declared as RSA.
        json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": rsa_pem}}),
        json!({"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": ec_pem}}),
        // A P-256 key declared as P-384.
        json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp384", "keyval": {"public": ec_pem}}),
        // Truncated DER.
        json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": pem(&[0x30, 0x59, 0x30])}}),
        // No public value.
        json!({"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {}}),
    ];
    for bad in cases {
        let mut h = Handmade::new(vec![TestKey::ed25519("good"), TestKey::ed25519("x")], 0);
        // Key 1 is replaced by the malformed key object and given to the targets role.
        h.keys[1] = TestKey::with_json(bad);
        h.roles.insert("targets", (vec![1], 1));
        h.publish();
        assert_refused(
            h.updater("a").refresh(h.now),
            Role::Root,
            "root",
            |r| matches!(r, Refusal::Malformed(m) if m.contains("keyval.public") || m.contains("PEM")),
        );
    }
}

#[test]
fn unknown_key_types_are_tolerated_but_never_count() {
    let mut h = Handmade::new(vec![TestKey::ed25519("good"), TestKey::ed25519("x")], 0);
    h.keys[1] =
        TestKey::with_json(json!({"keytype": "sphincs", "scheme": "sphincs-shake", "keyval": {"public": "ab"}}));
    h.roles.insert("targets", (vec![0, 1], 2));
    h.publish();
    assert_refused(h.updater("a").refresh(h.now), Role::Targets, "targets.json", |r| {
        matches!(r, Refusal::Signatures { valid: 1, threshold: 2, .. })
    });
}
