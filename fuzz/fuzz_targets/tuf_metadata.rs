//! TUF metadata of every role, through the client's workflow (`TrustedMetadata`): a trusted
//! root from bytes, the next root, timestamp, snapshot and targets on top of a valid chain,
//! rollback floors, target lookups, and each role's parser alone. The first input byte picks
//! the step; the rest is the file.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use time::Duration;
use update_core::keyring::PublicKey;
use update_repo::metadata::{Root, Signed, Snapshot, Targets, Timestamp};
use update_repo::publish::{Expiries, Repository, RoleKeySet};
use update_repo::{TargetName, TrustedMetadata};

/// A trusted chain: after the root, after the timestamp, after the snapshot, after the targets.
struct Chain {
    root: TrustedMetadata,
    timestamp: TrustedMetadata,
    snapshot: TrustedMetadata,
    full: TrustedMetadata,
}

fn chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let now = libupdate_fuzz::now();
        let made = now - Duration::hours(1);
        let key = libupdate_fuzz::signing_key();
        let dir = tempfile::tempdir().expect("temporary directory");
        let public = PublicKey::from_verifying_key(key.verifying_key());
        let expiries = Expiries::default();
        let mut repo = Repository::init(dir.path(), &RoleKeySet::all(&[public]), 1, &[key.clone()], &expiries, made)
            .expect("init");
        let file = dir.path().join("app.bundle");
        std::fs::write(&file, b"a target's bytes").expect("write");
        repo.add_target(&file, &TargetName::new("app.bundle").expect("name"), None).expect("add");
        repo.sign(&[key], &expiries, made).expect("sign");
        let read = |name: &str| std::fs::read(dir.path().join("metadata").join(name)).expect("read metadata");
        let root_bytes = read("1.root.json");
        let ts_bytes = read("timestamp.json");
        let root = TrustedMetadata::from_root(&root_bytes, "1.root.json").expect("root");
        let mut timestamp = root.clone();
        timestamp.update_timestamp(&ts_bytes, "timestamp.json", now).expect("timestamp");
        let (snap_file, _) = timestamp.snapshot_file().expect("snapshot file");
        let snap_bytes = read(&snap_file);
        let mut snapshot = timestamp.clone();
        snapshot.update_snapshot(&snap_bytes, &snap_file, now).expect("snapshot");
        let (targets_file, _) = snapshot.targets_file().expect("targets file");
        let targets_bytes = read(&targets_file);
        let mut full = snapshot.clone();
        full.update_targets(&targets_bytes, &targets_file, now).expect("targets");
        let mut seeds = Vec::new();
        for (step, bytes) in
            [(0u8, &root_bytes), (1, &root_bytes), (2, &ts_bytes), (3, &snap_bytes), (4, &targets_bytes)]
        {
            let mut seed = vec![step];
            seed.extend_from_slice(bytes);
            seeds.push((format!("step{step}"), seed));
        }
        for (i, bytes) in [&root_bytes, &ts_bytes, &snap_bytes, &targets_bytes].into_iter().enumerate() {
            let mut seed = vec![7u8, u8::try_from(i).unwrap_or(0)];
            seed.extend_from_slice(bytes);
            seeds.push((format!("parse{i}"), seed));
        }
        let mut lookup = vec![5u8];
        lookup.extend_from_slice(b"app.bundle\0a target's bytes");
        seeds.push(("lookup".into(), lookup));
        let seeds: Vec<(&str, Vec<u8>)> = seeds.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        libupdate_fuzz::write_seeds("tuf_metadata", &seeds);
        Chain { root, timestamp, snapshot, full }
    })
}

fuzz_target!(|data: &[u8]| {
    let chain = chain();
    let now = libupdate_fuzz::now();
    let Some((&step, file)) = data.split_first() else { return };
    match step % 8 {
        0 => {
            let _ = TrustedMetadata::from_root(file, "root.json");
        }
        1 => {
            let _ = chain.root.clone().update_root(file, "2.root.json");
        }
        2 => {
            let _ = chain.root.clone().update_timestamp(file, "timestamp.json", now);
        }
        3 => {
            let _ = chain.timestamp.clone().update_snapshot(file, "snapshot.json", now);
        }
        4 => {
            let mut t = chain.snapshot.clone();
            if t.update_targets(file, "targets.json", now).is_ok() {
                let names: Vec<TargetName> = t.target_names().collect();
                for name in names {
                    let _ = t.target_file(&name);
                }
            }
        }
        5 => {
            // A target name, NUL, the bytes that claim to be it.
            let (name, bytes) = match file.iter().position(|&b| b == 0) {
                Some(i) => (&file[..i], &file[i + 1..]),
                None => (file, &[][..]),
            };
            if let Ok(name) = TargetName::new(&String::from_utf8_lossy(name)) {
                let _ = chain.full.target(&name);
                let _ = chain.full.target_file(&name);
                let _ = chain.full.verify_target(&name, bytes);
            }
        }
        6 => {
            let mut t = chain.root.clone();
            let _ = t.set_previous_timestamp(file, "timestamp.json");
            let _ = t.set_previous_snapshot(file, "snapshot.json");
            let _ = t.update_timestamp(file, "timestamp.json", now);
        }
        _ => {
            let Some((&role, file)) = file.split_first() else { return };
            let value = match role % 4 {
                0 => Signed::<Root>::parse(file, "root.json").map(|s| {
                    let _ = s.signed.checked_keys();
                }),
                1 => Signed::<Timestamp>::parse(file, "timestamp.json").map(drop),
                2 => Signed::<Snapshot>::parse(file, "snapshot.json").map(drop),
                _ => Signed::<Targets>::parse(file, "targets.json").map(drop),
            };
            if value.is_ok()
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(file)
            {
                let _ = update_repo::canonical::to_canonical_json(&v);
            }
        }
    }
});
