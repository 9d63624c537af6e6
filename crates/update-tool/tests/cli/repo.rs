//! `repo add` signs a native bundle's head hash with the target, so devices can stream it; other
//! files and the publisher's own custom fields are left as they are.

use crate::{assert_exit, tool};

#[test]
fn repo_add_signs_the_head_hash_of_a_bundle_and_keeps_custom_fields() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(dir.join("rootfs.img"), b"rootfs ".repeat(5000)).unwrap();
    std::fs::write(dir.join("notes.txt"), b"not a bundle").unwrap();
    let run = |args: &[&str]| assert_exit(&tool(dir, args), 0);
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
    run(&["repo", "add", "repo", "app.bundle", "--custom", r#"{"version":"2.0"}"#]);
    run(&["repo", "add", "repo", "notes.txt", "--key", "keys/vendor.key"]);
    // The newest targets metadata (consistent snapshots: `N.targets.json`).
    let newest =
        (1..100).rev().map(|n| dir.join(format!("repo/metadata/{n}.targets.json"))).find(|p| p.exists()).unwrap();
    let targets: serde_json::Value = serde_json::from_slice(&std::fs::read(newest).unwrap()).unwrap();
    let f = std::fs::File::open(dir.join("app.bundle")).unwrap();
    let head = update_bundle::BundleReader::open(std::io::BufReader::new(f), "app.bundle").unwrap().head_sha256();
    let bundle = &targets["signed"]["targets"]["app.bundle"]["custom"];
    assert_eq!(bundle["bundle-head-sha256"], head.as_str(), "{targets}");
    assert_eq!(bundle["version"], "2.0", "the publisher's field is kept");
    assert!(
        targets["signed"]["targets"]["notes.txt"].get("custom").is_none_or(|c| c.get("bundle-head-sha256").is_none())
    );
}
