//! Repositories written by hand in code (not by `update_repo::publish`), for what our tool
//! never writes: ECDSA and RSA-PSS keys (signed with aws-lc-rs, an implementation independent
//! of the verifier's ring), delegated targets roles, thresholds above the key count. Keys are
//! throwaway: ed25519 ones derived from a `snakeoil` name, ECDSA and RSA ones generated per run.
//!
//! Layout: `consistent_snapshot: false`, so `metadata/{1.root,timestamp,snapshot,targets,
//! <role>}.json` and `targets/<name>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair};
use ed25519_dalek::Signer as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use update_repo::canonical::to_canonical_json;
use update_repo::metadata::expires;
use update_repo::{DirTransport, TrustAnchor, TufClient};

use crate::fixture::snakeoil;

/// Signs a message (the canonical `signed` bytes).
type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A signing key with its TUF key object.
pub struct TestKey {
    pub json: Value,
    pub id: String,
    signer: SignFn,
}

impl TestKey {
    fn new(json: Value, signer: SignFn) -> Self {
        let id = hex::encode(Sha256::digest(to_canonical_json(&json).unwrap()));
        Self { json, id, signer }
    }

    /// A key object that cannot sign (for malformed or unknown keys).
    pub fn with_json(json: Value) -> Self {
        Self::new(json, Box::new(|_| Vec::new()))
    }

    /// An ed25519 key derived from `name`.
    pub fn ed25519(name: &str) -> Self {
        let key = snakeoil(name);
        let json = json!({"keytype": "ed25519", "scheme": "ed25519",
            "keyval": {"public": hex::encode(key.verifying_key().as_bytes())}});
        Self::new(json, Box::new(move |m| key.sign(m).to_bytes().to_vec()))
    }

    /// A fresh ECDSA P-256 key, named as python-securesystemslib names it.
    pub fn ecdsa_p256() -> Self {
        let key = signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let json = json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
            "keyval": {"public": pem(key.public_key().as_der().unwrap().as_ref())}});
        Self::new(json, Box::new(move |m| key.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec()))
    }

    /// A fresh 2048-bit RSA key for RSASSA-PSS with SHA-256.
    pub fn rsa_pss() -> Self {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let json = json!({"keytype": "rsa", "scheme": "rsassa-pss-sha256",
            "keyval": {"public": pem(key.public_key().as_der().unwrap().as_ref())}});
        Self::new(
            json,
            Box::new(move |m| {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(&signature::RSA_PSS_SHA256, &SystemRandom::new(), m, &mut sig).unwrap();
                sig
            }),
        )
    }

    /// This key's signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        (self.signer)(message)
    }
}

/// A PEM `PUBLIC KEY` block, as securesystemslib writes it.
pub fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
}

/// The file bytes of metadata `signed`, signed by `keys`.
pub fn envelope(signed: &Value, keys: &[&TestKey]) -> Vec<u8> {
    let canonical = to_canonical_json(signed).unwrap();
    let signatures: Vec<Value> =
        keys.iter().map(|k| json!({"keyid": k.id, "sig": hex::encode(k.sign(&canonical))})).collect();
    serde_json::to_vec_pretty(&json!({"signatures": signatures, "signed": signed})).unwrap()
}

/// A delegation from one targets role to another.
pub struct Delegation {
    pub name: String,
    pub keys: Vec<usize>,
    pub threshold: u64,
    pub terminating: bool,
    pub paths: Vec<String>,
}

impl Delegation {
    /// Delegates `paths` to `name`, signed by key `key` (index into [`Handmade::keys`]).
    pub fn new(name: &str, key: usize, paths: &[&str]) -> Self {
        Self {
            name: name.into(),
            keys: vec![key],
            threshold: 1,
            terminating: false,
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// The same, terminating.
    pub fn terminating(mut self) -> Self {
        self.terminating = true;
        self
    }
}

/// One targets role (top-level `targets` or delegated): its targets, its delegations, and who
/// signs it.
#[derive(Default)]
pub struct RoleSpec {
    pub targets: BTreeMap<String, Vec<u8>>,
    pub delegations: Vec<Delegation>,
    pub signers: Vec<usize>,
}

/// A hand-made repository in a temporary directory.
pub struct Handmade {
    pub tmp: tempfile::TempDir,
    pub keys: Vec<TestKey>,
    /// Key indexes and threshold per top-level role.
    pub roles: BTreeMap<&'static str, (Vec<usize>, u64)>,
    /// Key indexes that sign each top-level role's metadata (defaults to the role's keys).
    pub root_signers: Vec<usize>,
    pub targets_roles: BTreeMap<String, RoleSpec>,
    pub version: u64,
    pub now: OffsetDateTime,
}

impl Handmade {
    /// Every top-level role uses key `key` of `keys`, threshold 1; targets signs one target.
    pub fn new(keys: Vec<TestKey>, key: usize) -> Self {
        let roles = ["root", "timestamp", "snapshot", "targets"].into_iter().map(|r| (r, (vec![key], 1))).collect();
        let mut top = RoleSpec { signers: vec![key], ..RoleSpec::default() };
        top.targets.insert("top.txt".into(), b"top-level target".to_vec());
        Self {
            tmp: tempfile::tempdir().unwrap(),
            keys,
            roles,
            root_signers: vec![key],
            targets_roles: BTreeMap::from([("targets".to_owned(), top)]),
            version: 1,
            now: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        }
    }

    /// The repository directory.
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }

    fn key_map(&self, indexes: impl IntoIterator<Item = usize>) -> Value {
        Value::Object(indexes.into_iter().map(|i| (self.keys[i].id.clone(), self.keys[i].json.clone())).collect())
    }

    fn signed_by(&self, indexes: &[usize]) -> Vec<&TestKey> {
        indexes.iter().map(|i| &self.keys[*i]).collect()
    }

    fn expires(&self) -> String {
        expires::format(self.now + time::Duration::days(30))
    }

    /// The root's `signed` value.
    pub fn root(&self) -> Value {
        let all: std::collections::BTreeSet<usize> = self.roles.values().flat_map(|(k, _)| k.iter().copied()).collect();
        let roles: serde_json::Map<String, Value> = self
            .roles
            .iter()
            .map(|(r, (keys, t))| {
                let ids: Vec<&str> = keys.iter().map(|i| self.keys[*i].id.as_str()).collect();
                ((*r).to_owned(), json!({"keyids": ids, "threshold": t}))
            })
            .collect();
        json!({"_type": "root", "spec_version": "1.0.31", "version": 1, "expires": self.expires(),
            "consistent_snapshot": false, "keys": self.key_map(all), "roles": roles})
    }

    /// Writes every file (version `self.version` of each role but the root, version 1).
    pub fn publish(&self) {
        let meta = self.dir().join("metadata");
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::create_dir_all(self.dir().join("targets")).unwrap();
        write(&meta.join("1.root.json"), &envelope(&self.root(), &self.signed_by(&self.root_signers)));
        let mut snapshot_meta = serde_json::Map::new();
        for (name, spec) in &self.targets_roles {
            let mut targets = serde_json::Map::new();
            for (path, data) in &spec.targets {
                let file = self.dir().join("targets").join(path);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                write(&file, data);
                targets.insert(
                    path.clone(),
                    json!({"length": data.len(), "hashes": {"sha256": hex::encode(Sha256::digest(data))}}),
                );
            }
            let mut signed = json!({"_type": "targets", "spec_version": "1.0.31", "version": self.version,
                "expires": self.expires(), "targets": targets});
            if !spec.delegations.is_empty() {
                let keys = self.key_map(spec.delegations.iter().flat_map(|d| d.keys.iter().copied()));
                let roles: Vec<Value> = spec
                    .delegations
                    .iter()
                    .map(|d| {
                        let ids: Vec<&str> = d.keys.iter().map(|i| self.keys[*i].id.as_str()).collect();
                        json!({"name": d.name, "keyids": ids, "threshold": d.threshold,
                            "terminating": d.terminating, "paths": d.paths})
                    })
                    .collect();
                signed["delegations"] = json!({"keys": keys, "roles": roles});
            }
            let bytes = envelope(&signed, &self.signed_by(&spec.signers));
            write(&meta.join(format!("{}.json", update_repo::target_name::role_file_name(name))), &bytes);
            snapshot_meta.insert(format!("{name}.json"), json!({"version": self.version}));
        }
        let snapshot = json!({"_type": "snapshot", "spec_version": "1.0.31", "version": self.version,
            "expires": self.expires(), "meta": snapshot_meta});
        let snapshot_bytes = envelope(&snapshot, &self.signed_by(&self.roles["snapshot"].0));
        write(&meta.join("snapshot.json"), &snapshot_bytes);
        let timestamp = json!({"_type": "timestamp", "spec_version": "1.0.31", "version": self.version,
            "expires": self.expires(), "meta": {"snapshot.json": {"version": self.version,
                "length": snapshot_bytes.len(),
                "hashes": {"sha256": hex::encode(Sha256::digest(&snapshot_bytes))}}}});
        write(&meta.join("timestamp.json"), &envelope(&timestamp, &self.signed_by(&self.roles["timestamp"].0)));
    }

    /// The state directory of `device`.
    pub fn state(&self, device: &str) -> PathBuf {
        self.tmp.path().join(format!("state-{device}"))
    }

    /// An updater for `device` pinning `metadata/1.root.json`.
    pub fn updater(&self, device: &str) -> TufClient<DirTransport> {
        let root = std::fs::read(self.dir().join("metadata/1.root.json")).unwrap();
        TufClient::new(DirTransport::new(self.dir()), self.state(device), TrustAnchor::PinnedRoot(root))
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
