//! What the tests that use the built C library share.

#![allow(dead_code, reason = "each test binary uses part of this module")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding libupdate.so and libupdate.a, built now: `cargo test` builds only
/// the rlib of the crate for its tests, so this asks cargo (the one running the test, same
/// profile and target directory) for the C library, and takes its paths from cargo's messages.
/// `UPDATE_CAPI_LIB_DIR=target/release-capi` tests a library built before instead.
pub fn lib_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("UPDATE_CAPI_LIB_DIR") {
            let dir = crate_dir().join("../..").join(dir);
            assert!(
                dir.join("libupdate.so").is_file(),
                "UPDATE_CAPI_LIB_DIR: no {}",
                dir.join("libupdate.so").display()
            );
            return dir;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "update-capi", "--lib", "--message-format=json"]).current_dir(crate_dir());
        // Without the variables cargo sets for a test (its CARGO_PKG_*, its LD_LIBRARY_PATH):
        // build scripts that watch the environment would run again and rebuild every crate
        // after them, here and in the next `cargo test`.
        cmd.env_clear();
        for (k, v) in std::env::vars_os() {
            let name = k.to_string_lossy();
            let keep = ["PATH", "HOME", "TMPDIR", "USER", "RUSTFLAGS", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO_HOME"]
                .contains(&name.as_ref())
                || ["CARGO_PROFILE_", "CARGO_BUILD_", "CARGO_TARGET_", "CARGO_REGISTRIES_", "CARGO_NET_"]
                    .iter()
                    .any(|p| name.starts_with(p));
            if keep && name != "CARGO_TARGET_TMPDIR" {
                cmd.env(k, v);
            }
        }
        let out = run(&mut cmd);
        let mut dirs = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            if msg["reason"] != "compiler-artifact" || msg["target"]["name"] != "update" {
                continue;
            }
            for f in msg["filenames"].as_array().into_iter().flatten().filter_map(|f| f.as_str()) {
                if f.ends_with("/libupdate.so") {
                    dirs.push(Path::new(f).parent().expect("a directory").to_owned());
                }
            }
        }
        let dir = dirs.pop().unwrap_or_else(|| panic!("cargo built no libupdate.so:\n{}", show(&out)));
        for lib in ["libupdate.so", "libupdate.a"] {
            assert!(dir.join(lib).is_file(), "{} is missing", dir.join(lib).display());
        }
        dir
    })
    .clone()
}

pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", show(&out));
    out
}
