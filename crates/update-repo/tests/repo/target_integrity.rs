//! Targets: only the exact bytes that the trusted targets metadata signed are accepted.

use update_repo::{Error, Refusal, TargetName};

use crate::fixture::{BUNDLE, BUNDLE_DATA, Fixture};

fn bundle_file(f: &Fixture) -> String {
    let trusted = f.refresh("probe").unwrap();
    format!("targets/{}", trusted.target_file(&TargetName::new(BUNDLE).unwrap()).unwrap())
}

#[test]
fn target_hash_mismatch_is_refused() {
    let f = Fixture::new();
    let file = bundle_file(&f);
    let mut evil = BUNDLE_DATA.to_vec();
    evil[0] ^= 0x20;
    f.write(&file, &evil);
    let err = f.fetch_bundle("a").unwrap_err();
    assert!(matches!(err.refusal(), Some(Refusal::Hash { algorithm, .. }) if algorithm == "sha256"), "{err}");
    assert!(err.to_string().starts_with(&format!("target {BUNDLE} ({file}) refused: sha256 digest")), "{err}");
}

#[test]
fn truncated_target_is_refused() {
    let f = Fixture::new();
    let file = bundle_file(&f);
    f.write(&file, &BUNDLE_DATA[..5]);
    let err = f.fetch_bundle("a").unwrap_err();
    assert!(matches!(err.refusal(), Some(Refusal::Length { found: 5, .. })), "{err}");
}

#[test]
fn unknown_target_is_refused() {
    let f = Fixture::new();
    let trusted = f.refresh("a").unwrap();
    let err = f.updater("a").fetch_target(&trusted, &TargetName::new("other.upd").unwrap()).unwrap_err();
    assert!(matches!(err, Error::UnknownTarget(ref n) if n == "other.upd"), "{err}");
}

#[test]
fn a_digest_that_is_not_hex_never_becomes_a_path() {
    let f = Fixture::new();
    let file = f.targets_file();
    // Even the targets key cannot steer the fetch outside targets/ through the digest.
    f.edit::<update_repo::Targets>(&file, &[&f.keys.targets], |t| {
        t.targets.get_mut(BUNDLE).unwrap().hashes.insert("sha256".into(), "../../metadata/root".into());
    });
    f.relink();
    let err = f.fetch_bundle("a").unwrap_err();
    assert!(matches!(err.refusal(), Some(Refusal::Malformed(m)) if m.contains("not hexadecimal")), "{err}");
}
