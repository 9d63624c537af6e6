//! The happy path: publish, refresh, fetch; the tool-side commands; what a device persists.

use serde_json::{Value, json};
use time::Duration;
use update_repo::canonical::to_canonical_json;
use update_repo::publish::Expiries;
use update_repo::{Root, Signed, TargetName, Targets, Timestamp, tuf_key_id};

use crate::fixture::{BUNDLE, BUNDLE_DATA, Fixture, public};

#[test]
fn published_targets_are_fetched_and_verified() {
    let f = Fixture::new();
    assert_eq!(f.fetch_bundle("a").unwrap(), BUNDLE_DATA);
    let trusted = f.refresh("a").unwrap();
    let name = TargetName::new(BUNDLE).unwrap();
    let info = trusted.target(&name).unwrap();
    assert_eq!(info.length, BUNDLE_DATA.len() as u64);
    // Consistent snapshots: the file is named by its hash.
    assert_eq!(trusted.target_file(&name).unwrap(), format!("{}.{BUNDLE}", info.hashes["sha256"]));
    assert!(f.dir().join("targets").join(trusted.target_file(&name).unwrap()).is_file());
    assert_eq!(trusted.target_names().collect::<Vec<_>>(), vec![name]);
}

#[test]
fn a_new_release_is_seen_on_the_next_refresh() {
    let mut f = Fixture::new();
    f.fetch_bundle("a").unwrap();
    f.add("bundle-1.1.0.upd", b"release 1.1.0");
    f.add("boards/pi4/bundle-1.1.0.upd", b"release 1.1.0 for pi4");
    // Staged, not yet published: the device still sees one target.
    assert_eq!(f.refresh("a").unwrap().target_names().count(), 1);
    let published = f.sign();
    assert_eq!((published.targets_version, published.snapshot_version, published.timestamp_version), (3, 3, 3));
    let trusted = f.refresh("a").unwrap();
    assert_eq!(trusted.target_names().count(), 3);
    let pi4 = TargetName::new("boards/pi4/bundle-1.1.0.upd").unwrap();
    assert!(trusted.target_file(&pi4).unwrap().starts_with("boards/pi4/"));
    assert_eq!(f.updater("a").fetch_target(&trusted, &pi4).unwrap(), b"release 1.1.0 for pi4");
}

#[test]
fn refresh_re_signs_only_the_timestamp() {
    let f = Fixture::new();
    f.refresh("a").unwrap();
    let before = f.parse::<Timestamp>("metadata/timestamp.json");
    let snapshot_before = f.read(&f.snapshot_file());
    let version = f
        .repo
        .refresh_timestamp(std::slice::from_ref(&f.keys.timestamp), Duration::days(1), f.now + Duration::hours(20))
        .unwrap();
    assert_eq!(version, before.version() + 1);
    let after = f.parse::<Timestamp>("metadata/timestamp.json");
    assert_eq!(after.signed.meta, before.signed.meta);
    assert_eq!(f.read(&f.snapshot_file()), snapshot_before);
    // 30 hours later the old timestamp has expired and the refreshed one has not.
    let later = f.now + Duration::hours(30);
    let trusted = f.updater("a").refresh(later).unwrap();
    assert_eq!(trusted.timestamp().unwrap().version(), version);
    // The timestamp key alone cannot publish targets.
    let mut repo = f.repo.clone();
    let err = repo.sign(std::slice::from_ref(&f.keys.timestamp), &Expiries::default(), f.now).unwrap_err();
    assert!(err.to_string().contains("targets role needs 1 signature"), "{err}");
}

#[test]
fn the_state_dir_holds_the_last_trusted_files() {
    let f = Fixture::new();
    f.refresh("a").unwrap();
    let state = f.state("a");
    assert_eq!(std::fs::read(state.join("timestamp.json")).unwrap(), f.read("metadata/timestamp.json"));
    assert_eq!(std::fs::read(state.join("snapshot.json")).unwrap(), f.read(&f.snapshot_file()));
    assert_eq!(std::fs::read(state.join("targets.json")).unwrap(), f.read(&f.targets_file()));
    assert_eq!(std::fs::read(state.join("root.json")).unwrap(), f.read("metadata/1.root.json"));
    f.updater("a").reset().unwrap();
    assert!(!state.join("timestamp.json").exists());
}

#[test]
fn unknown_fields_are_kept_and_signatures_still_verify() {
    let f = Fixture::new();
    // Another tool adds fields this client has never heard of, and signs the canonical form of
    // the JSON value (not of our structs).
    let file = f.targets_file();
    let mut envelope: Value = serde_json::from_slice(&f.read(&file)).unwrap();
    envelope["signed"]["x-vendor"] = json!({"channel": "stable", "rollout": [1, 5, 100]});
    envelope["signed"]["targets"][BUNDLE]["x-annotation"] = json!("kept");
    let canonical = to_canonical_json(&envelope["signed"]).unwrap();
    let sig = ed25519_dalek::Signer::sign(&f.keys.targets, &canonical);
    envelope["signatures"] = json!([{
        "keyid": tuf_key_id(&public(&f.keys.targets)).as_str(),
        "sig": hex::encode(sig.to_bytes()),
        "x-signature-note": "also kept",
    }]);
    // Written compactly and with its keys in another order: only the canonical form matters.
    f.write(&file, serde_json::to_string(&envelope).unwrap().as_bytes());
    f.relink();
    let trusted = f.refresh("a").unwrap();
    let targets = &trusted.targets().unwrap().signed;
    assert_eq!(targets.extra["x-vendor"]["channel"], "stable");
    assert_eq!(targets.targets[BUNDLE].extra["x-annotation"], "kept");
    // The tool keeps them through an edit.
    let mut f = f;
    f.add("bundle-2.upd", b"2");
    f.sign();
    let targets = f.parse::<Targets>(&f.targets_file());
    assert_eq!(targets.signed.extra["x-vendor"]["rollout"], json!([1, 5, 100]));
    assert_eq!(targets.signed.targets[BUNDLE].extra["x-annotation"], "kept");
}

#[test]
fn custom_target_data_is_signed_and_returned() {
    let mut f = Fixture::new();
    let src = f.tmp_path("in/b2.upd");
    std::fs::write(&src, b"two").unwrap();
    let custom = json!({"version": "2.0.0", "compatible": "pi4"});
    f.repo.add_target(&src, &TargetName::new("b2.upd").unwrap(), Some(custom.clone())).unwrap();
    assert!(f.repo.add_target(&src, &TargetName::new("b3.upd").unwrap(), Some(json!([1]))).is_err());
    f.sign();
    let trusted = f.refresh("a").unwrap();
    assert_eq!(trusted.target(&TargetName::new("b2.upd").unwrap()).unwrap().custom, Some(custom));
    // Removing a target unlists it.
    f.repo.remove_target(&TargetName::new("b2.upd").unwrap()).unwrap();
    f.sign();
    assert!(f.refresh("a").unwrap().target(&TargetName::new("b2.upd").unwrap()).is_err());
}

#[test]
fn init_refuses_an_existing_repository_and_unreachable_thresholds() {
    let f = Fixture::new();
    let set = update_repo::publish::RoleKeySet::all(&[public(&f.keys.root)]);
    let err = update_repo::publish::Repository::init(&f.dir(), &set, 1, &f.signers(), &Expiries::default(), f.now)
        .unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    let other = f.tmp_path("other");
    let err =
        update_repo::publish::Repository::init(&other, &set, 2, &f.signers(), &Expiries::default(), f.now).unwrap_err();
    assert!(err.to_string().contains("fewer than the threshold 2"), "{err}");
}

#[test]
fn published_metadata_has_the_tuf_shape() {
    let f = Fixture::new();
    let root: Signed<Root> = f.parse("metadata/root.json");
    assert!(root.signed.consistent_snapshot);
    assert_eq!(root.raw["_type"], "root");
    let key_id = tuf_key_id(&public(&f.keys.root));
    assert_eq!(root.raw["roles"]["root"]["keyids"], json!([key_id.as_str()]));
    assert_eq!(root.raw["keys"][key_id.as_str()]["keytype"], "ed25519");
    assert_eq!(root.raw["keys"][key_id.as_str()]["scheme"], "ed25519");
    assert_eq!(root.raw["keys"][key_id.as_str()]["keyval"]["public"], hex::encode(public(&f.keys.root).as_bytes()));
    let expires = root.raw["expires"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() == 20, "{expires}");
    let ts: Value = serde_json::from_slice(&f.read("metadata/timestamp.json")).unwrap();
    assert_eq!(ts["signed"]["meta"]["snapshot.json"]["hashes"]["sha256"].as_str().unwrap().len(), 64);
    assert!(ts["signed"]["meta"]["snapshot.json"]["length"].is_u64());
}
