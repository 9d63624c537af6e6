//! `update-tool bundle create|verify|info`.

use std::path::{Path, PathBuf};

use crate::{assert_exit, stderr, stdout, tool};

/// A build directory with two keys (`vendor`, `other`) and two images.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["vendor", "other"] {
        assert_exit(&tool(dir.path(), &["key", "generate", name, "--out", "keys"]), 0);
    }
    let rootfs: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(dir.path().join("rootfs.img"), rootfs).unwrap();
    std::fs::write(dir.path().join("kernel.img"), b"kernel ".repeat(1000)).unwrap();
    dir
}

fn create(dir: &Path, extra: &[&str]) -> std::process::Output {
    create_with_chunk(dir, "4", extra)
}

fn create_with_chunk(dir: &Path, chunk_kib: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "bundle",
        "create",
        "--out",
        "out/release.bundle",
        "--version",
        "1.2.3",
        "--compatible",
        "snakeoil-board",
        "--key",
        "keys/vendor.key",
        "--image",
        "rootfs=rootfs.img",
        "--image",
        "kernel=kernel.img",
        "--chunk-kib",
        chunk_kib,
    ];
    args.extend_from_slice(extra);
    std::fs::create_dir_all(dir.join("out")).unwrap();
    tool(dir, &args)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn create_then_verify_with_the_signers_key() {
    let dir = workdir();
    let out = create(dir.path(), &[]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("wrote out/release.bundle") && stdout(&out).contains("1 signature(s)"));
    // Only the bundle is left: the scratch and temporary files are gone.
    assert_eq!(files_in(&dir.path().join("out")), [dir.path().join("out/release.bundle")]);
    let out = tool(dir.path(), &["bundle", "verify", "out/release.bundle", "--pub", "keys/vendor.pub"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("OK")
            && text.contains("version 1.2.3")
            && text.contains("57000 image byte(s) and 0 component byte(s) verified"),
        "{text}"
    );
    assert!(text.contains("signed by vendor"), "{text}");
}

#[test]
fn two_keys_and_a_threshold_of_two() {
    let dir = workdir();
    assert_exit(&create(dir.path(), &["--key", "keys/other.key"]), 0);
    let verify = |extra: &[&str]| {
        let mut args = vec!["bundle", "verify", "out/release.bundle", "--pub", "keys/vendor.pub"];
        args.extend_from_slice(extra);
        tool(dir.path(), &args)
    };
    assert_exit(&verify(&["--pub", "keys/other.pub", "--threshold", "2"]), 0);
    let out = verify(&["--threshold", "2"]);
    assert_exit(&out, 6);
    assert!(stderr(&out).contains("2 required"), "{}", stderr(&out));
    // A threshold of 0 would accept anything: a usage error.
    assert_exit(&verify(&["--threshold", "0"]), 2);
}

#[test]
fn verify_with_another_key_fails_with_6() {
    let dir = workdir();
    assert_exit(&create(dir.path(), &[]), 0);
    let out = tool(dir.path(), &["bundle", "verify", "out/release.bundle", "--pub", "keys/other.pub"]);
    assert_exit(&out, 6);
    let err = stderr(&out);
    assert!(err.starts_with("update-tool: error: verification failed for out/release.bundle"), "{err}");
    assert!(err.contains("0 valid signature(s)"), "{err}");
}

#[test]
fn verify_names_the_damaged_chunk() {
    let dir = workdir();
    assert_exit(&create(dir.path(), &[]), 0);
    let path = dir.path().join("out/release.bundle");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let out = tool(dir.path(), &["bundle", "verify", "out/release.bundle", "--pub", "keys/vendor.pub"]);
    assert_exit(&out, 6);
    assert!(stderr(&out).contains("image 'kernel' chunk 1 (payload offset"), "{}", stderr(&out));
    // Truncated.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let out = tool(dir.path(), &["bundle", "verify", "out/release.bundle", "--pub", "keys/vendor.pub"]);
    assert_exit(&out, 6);
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));
}

#[test]
fn info_json_says_not_verified() {
    let dir = workdir();
    assert_exit(&create(dir.path(), &["--min-version", "1.0"]), 0);
    let out = tool(dir.path(), &["bundle", "info", "out/release.bundle", "--json"]);
    assert_exit(&out, 0);
    let j: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(j["verified"], false);
    assert_eq!(j["version"], "1.2.3");
    assert_eq!(j["compatible"], "snakeoil-board");
    assert_eq!(j["min-version"], "1.0.0");
    assert_eq!(j["chunk-size"], 4096);
    assert_eq!(j["signers"][0]["name"], "vendor");
    assert_eq!(j["images"][0]["slot-group"], "rootfs");
    assert_eq!(j["images"][0]["size"], 50_000);
    assert_eq!(j["images"][0]["chunks"], 13);
    assert_eq!(j["images"][1]["slot-group"], "kernel");
    // The text form says so too.
    let out = tool(dir.path(), &["bundle", "info", "out/release.bundle"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("not verified"), "{}", stdout(&out));
}

#[test]
fn info_on_something_else_fails_with_6() {
    let dir = workdir();
    let out = tool(dir.path(), &["bundle", "info", "rootfs.img"]);
    assert_exit(&out, 6);
    assert!(stderr(&out).contains("rootfs.img: header: not a libupdate bundle"), "{}", stderr(&out));
}

#[test]
fn an_image_without_equals_is_a_usage_error() {
    let dir = workdir();
    let out = tool(
        dir.path(),
        &[
            "bundle",
            "create",
            "--out",
            "b.bundle",
            "--version",
            "1.0",
            "--compatible",
            "x",
            "--key",
            "keys/vendor.key",
            "--image",
            "rootfs.img",
        ],
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("invalid --image 'rootfs.img': expected NAME=PATH"), "{}", stderr(&out));
    assert!(!dir.path().join("b.bundle").exists());
}

#[test]
fn a_missing_image_file_is_an_io_error() {
    let dir = workdir();
    let out = create(dir.path(), &["--image", "app=missing.img"]);
    assert_exit(&out, 9);
    assert!(stderr(&out).contains("cannot open image missing.img"), "{}", stderr(&out));
    assert!(files_in(&dir.path().join("out")).is_empty(), "a failed create leaves nothing behind");
}

#[test]
fn an_empty_image_file_is_refused() {
    let dir = workdir();
    std::fs::write(dir.path().join("empty.img"), b"").unwrap();
    let out = create(dir.path(), &["--image", "app=empty.img"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("invalid image 'app=empty.img': the file is empty"), "{}", stderr(&out));
    assert!(files_in(&dir.path().join("out")).is_empty());
}

#[test]
fn bad_values_are_usage_errors() {
    let dir = workdir();
    // Regression: a value whose byte count overflows u64 used to panic (or wrap in release).
    for chunk_kib in ["0", "16385", "18014398509481985", "4k"] {
        let out = create_with_chunk(dir.path(), chunk_kib, &[]);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains("--chunk-kib"), "{chunk_kib}: {}", stderr(&out));
    }
    assert_exit(&create_with_chunk(dir.path(), "16384", &[]), 0);
    let out = tool(
        dir.path(),
        &[
            "bundle",
            "create",
            "--out",
            "b",
            "--version",
            "not-a-version",
            "--compatible",
            "x",
            "--key",
            "keys/vendor.key",
            "--image",
            "a=rootfs.img",
        ],
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("not-a-version"), "{}", stderr(&out));
    let out = create(dir.path(), &["--hook", "pre-install=kernel.img"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("invalid hook kind 'pre-install'"), "{}", stderr(&out));
}

#[test]
fn a_public_key_as_signing_key_is_a_key_error() {
    let dir = workdir();
    let out = tool(
        dir.path(),
        &[
            "bundle",
            "create",
            "--out",
            "b",
            "--version",
            "1.0",
            "--compatible",
            "x",
            "--key",
            "keys/vendor.pub",
            "--image",
            "a=rootfs.img",
        ],
    );
    assert_exit(&out, 11);
    assert!(stderr(&out).contains("keys/vendor.pub is not an ed25519 PKCS#8 PEM private key"), "{}", stderr(&out));
}
