//! Delegated targets (TUF 1.0.31 §5.6.7): a target not in the top-level targets is searched
//! pre-order, depth-first through the roles whose `paths` name it; `terminating` stops the
//! search; each role is verified against the keys and threshold its delegator gives; at most
//! `Limits::max_delegations` roles are visited.

use time::OffsetDateTime;
use update_repo::{DirTransport, Error, Limits, Refusal, Role, TargetName, TrustedMetadata, TufClient};

use crate::fixture::assert_refused;
use crate::handmade::{Delegation, Handmade, RoleSpec, TestKey};

/// Keys 0 (top level), 1, 2, 3 (delegated roles).
fn keys() -> Vec<TestKey> {
    (0..4).map(|i| TestKey::ed25519(&format!("delegation-{i}"))).collect()
}

fn role(h: &mut Handmade, name: &str, signer: usize, targets: &[(&str, &[u8])]) {
    let mut spec = RoleSpec { signers: vec![signer], ..RoleSpec::default() };
    for (path, data) in targets {
        spec.targets.insert((*path).to_owned(), data.to_vec());
    }
    h.targets_roles.insert(name.to_owned(), spec);
}

fn delegate(h: &mut Handmade, from: &str, d: Delegation) {
    h.targets_roles.get_mut(from).unwrap().delegations.push(d);
}

fn find(
    h: &Handmade,
    device: &str,
    target: &str,
) -> (TufClient<DirTransport>, TrustedMetadata, update_repo::Result<Vec<u8>>) {
    let updater = h.updater(device);
    let mut trusted = updater.refresh(h.now).unwrap();
    let name = TargetName::new(target).unwrap();
    let result = updater.find_target(&mut trusted, &name, h.now).and_then(|_| updater.fetch_target(&trusted, &name));
    (updater, trusted, result)
}

fn now(h: &Handmade) -> OffsetDateTime {
    h.now
}

#[test]
fn a_delegated_target_is_found_verified_and_its_role_persisted() {
    let mut h = Handmade::new(keys(), 0);
    role(&mut h, "team-a", 1, &[("a/app.bin", b"app from team a")]);
    delegate(&mut h, "targets", Delegation::new("team-a", 1, &["a/*"]));
    h.publish();
    let (_, trusted, data) = find(&h, "d", "a/app.bin");
    assert_eq!(data.unwrap(), b"app from team a");
    assert!(trusted.is_trusted_via("team-a", "targets"));
    assert!(h.state("d").join("team-a.json").is_file(), "the delegated role is persisted");
    // The top-level lookup alone never sees it.
    assert!(matches!(
        h.updater("e").refresh(h.now).unwrap().target(&TargetName::new("a/app.bin").unwrap()),
        Err(Error::UnknownTarget(_))
    ));
}

#[test]
fn a_role_whose_paths_do_not_name_the_target_is_never_fetched() {
    let mut h = Handmade::new(keys(), 0);
    role(&mut h, "team-a", 1, &[("b/app.bin", b"not delegated to team a")]);
    delegate(&mut h, "targets", Delegation::new("team-a", 1, &["a/*"]));
    h.publish();
    for target in ["b/app.bin", "a/sub/app.bin", "A/app.bin"] {
        let (_, _, result) = find(&h, target, target);
        assert!(matches!(result, Err(Error::UnknownTarget(_))), "{target}: {result:?}");
        assert!(!h.state(target).join("team-a.json").exists(), "{target}: team-a was fetched");
    }
}

#[test]
fn the_search_is_pre_order_depth_first() {
    // targets → [first → [first-child], second]; every one of them lists the target.
    let mut h = Handmade::new(keys(), 0);
    role(&mut h, "first", 1, &[]);
    role(&mut h, "first-child", 2, &[("app.bin", b"from first-child")]);
    role(&mut h, "second", 3, &[("app.bin", b"from second")]);
    delegate(&mut h, "targets", Delegation::new("first", 1, &["*"]));
    delegate(&mut h, "targets", Delegation::new("second", 3, &["*"]));
    delegate(&mut h, "first", Delegation::new("first-child", 2, &["*"]));
    h.publish();
    // (Both write targets/app.bin: compare what the search found, not the file.)
    let updater = h.updater("d");
    let mut trusted = updater.refresh(h.now).unwrap();
    let info = updater.find_target(&mut trusted, &TargetName::new("app.bin").unwrap(), h.now).unwrap();
    assert_eq!(info.length, b"from first-child".len() as u64);
    assert!(trusted.targets_role("second").is_none(), "a later sibling was visited");
}

#[test]
fn a_terminating_role_ends_the_search_below_it() {
    let mut h = Handmade::new(keys(), 0);
    role(&mut h, "stop", 1, &[]);
    role(&mut h, "after", 2, &[("app.bin", b"from after")]);
    delegate(&mut h, "targets", Delegation::new("stop", 1, &["*.bin"]).terminating());
    delegate(&mut h, "targets", Delegation::new("after", 2, &["*"]));
    h.publish();
    let (_, trusted, result) = find(&h, "d", "app.bin");
    assert!(matches!(result, Err(Error::UnknownTarget(_))), "{result:?}");
    assert!(trusted.targets_role("after").is_none());
    // A target the terminating role's paths do not name still reaches the next role.
    let mut h2 = h;
    role(&mut h2, "after", 2, &[("app.txt", b"from after")]);
    h2.publish();
    assert_eq!(find(&h2, "e", "app.txt").2.unwrap(), b"from after");
}

#[test]
fn a_delegated_role_below_its_threshold_is_refused() {
    let mut h = Handmade::new(keys(), 0);
    role(&mut h, "team-a", 1, &[("a/app.bin", b"app")]);
    let mut d = Delegation::new("team-a", 1, &["a/*"]);
    d.keys = vec![1, 2];
    d.threshold = 2;
    delegate(&mut h, "targets", d);
    h.publish();
    let (_, _, result) = find(&h, "d", "a/app.bin");
    assert_refused(result, Role::Targets, "team-a.json", |r| {
        matches!(r, Refusal::Signatures { valid: 1, threshold: 2, .. })
    });
    // Signed by a key the delegation does not name: refused too.
    let mut h = Handmade::new(keys(), 0);
    role(&mut h, "team-a", 3, &[("a/app.bin", b"app")]);
    delegate(&mut h, "targets", Delegation::new("team-a", 1, &["a/*"]));
    h.publish();
    let (_, _, result) = find(&h, "d", "a/app.bin");
    assert_refused(result, Role::Targets, "team-a.json", |r| matches!(r, Refusal::Signatures { valid: 0, .. }));
}

#[test]
fn a_role_reached_through_another_delegator_is_verified_against_it() {
    // Both parents delegate to "release", with different keys; release is signed by parent
    // a's key only: valid through a, not through b.
    let mut h = Handmade::new(keys(), 0);
    role(&mut h, "parent-a", 0, &[]);
    role(&mut h, "parent-b", 0, &[]);
    role(&mut h, "release", 1, &[("team-a/x", b"trusted a"), ("team-b/x", b"malicious b")]);
    delegate(&mut h, "targets", Delegation::new("parent-a", 0, &["team-a/*"]));
    delegate(&mut h, "targets", Delegation::new("parent-b", 0, &["team-b/*"]));
    delegate(&mut h, "parent-a", Delegation::new("release", 1, &["team-a/*"]));
    delegate(&mut h, "parent-b", Delegation::new("release", 2, &["team-b/*"]));
    h.publish();
    let updater = h.updater("d");
    let mut trusted = updater.refresh(now(&h)).unwrap();
    let a = TargetName::new("team-a/x").unwrap();
    updater.find_target(&mut trusted, &a, h.now).unwrap();
    assert_eq!(updater.fetch_target(&trusted, &a).unwrap(), b"trusted a");
    let b = TargetName::new("team-b/x").unwrap();
    assert_refused(updater.find_target(&mut trusted, &b, h.now), Role::Targets, "release.json", |r| {
        matches!(r, Refusal::Signatures { valid: 0, .. })
    });
    // And in a new run, with release.json in the state directory from the first path.
    let mut trusted = updater.refresh(now(&h)).unwrap();
    assert!(updater.find_target(&mut trusted, &b, h.now).is_err());
}

#[test]
fn the_search_visits_at_most_the_limit() {
    // A chain targets → r0 → r1 → … → r39; only the last lists the target.
    let mut h = Handmade::new(keys(), 0);
    let depth = 40;
    for i in 0..depth {
        let target: &[(&str, &[u8])] = if i == depth - 1 { &[("deep.bin", b"deep")] } else { &[] };
        role(&mut h, &format!("r{i}"), 1, target);
        let from = if i == 0 { "targets".to_owned() } else { format!("r{}", i - 1) };
        delegate(&mut h, &from, Delegation::new(&format!("r{i}"), 1, &["*"]));
    }
    h.publish();
    let (_, _, result) = find(&h, "d", "deep.bin");
    assert!(matches!(result, Err(Error::UnknownTarget(_))), "{result:?}");
    let updater = h.updater("e").with_limits(Limits { max_delegations: 64, ..Limits::default() });
    let mut trusted = updater.refresh(h.now).unwrap();
    let name = TargetName::new("deep.bin").unwrap();
    updater.find_target(&mut trusted, &name, h.now).unwrap();
    assert_eq!(updater.fetch_target(&trusted, &name).unwrap(), b"deep");
}

#[test]
fn a_delegated_role_missing_from_the_snapshot_is_refused() {
    let mut h = Handmade::new(keys(), 0);
    role(&mut h, "team-a", 1, &[("a/app.bin", b"app")]);
    delegate(&mut h, "targets", Delegation::new("team-a", 1, &["a/*"]));
    h.publish();
    // Re-publish the snapshot without team-a.json: drop the role, keep its file.
    let file = h.dir().join("metadata/team-a.json");
    let kept = std::fs::read(&file).unwrap();
    let spec = h.targets_roles.remove("team-a").unwrap();
    h.publish();
    std::fs::write(&file, kept).unwrap();
    h.targets_roles.insert("team-a".into(), spec);
    let (_, _, result) = find(&h, "d", "a/app.bin");
    assert_refused(
        result,
        Role::Targets,
        "team-a.json",
        |r| matches!(r, Refusal::Missing(m) if m.contains("team-a.json")),
    );
}

#[test]
fn role_names_never_leave_the_metadata_or_state_directory() {
    for name in ["../escape", "a/b", "..", "x?y#z"] {
        let mut h = Handmade::new(keys(), 0);
        role(&mut h, name, 1, &[("app.bin", b"odd role")]);
        delegate(&mut h, "targets", Delegation::new(name, 1, &["*"]));
        h.publish();
        let (_, _, data) = find(&h, "d", "app.bin");
        assert_eq!(data.unwrap(), b"odd role", "{name}");
        let encoded = update_repo::target_name::role_file_name(name);
        assert!(h.state("d").join(format!("{encoded}.json")).is_file(), "{name}");
        assert!(!h.tmp.path().join("escape.json").exists());
    }
}

#[test]
fn a_delegation_to_a_top_level_role_name_is_refused() {
    let mut h = Handmade::new(keys(), 0);
    delegate(&mut h, "targets", Delegation::new("snapshot", 1, &["*"]));
    h.publish();
    let (_, _, result) = find(&h, "d", "app.bin");
    assert!(result.is_err());
    assert!(h.state("d").join("snapshot.json").is_file(), "the real snapshot is still there");
    let snap: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.state("d").join("snapshot.json")).unwrap()).unwrap();
    assert_eq!(snap["signed"]["_type"], "snapshot");
}
