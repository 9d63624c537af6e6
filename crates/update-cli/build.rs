//! Links the release `update` binary with identical code folding (docs/drivers.md, "Binary
//! size"): after LTO many monomorphised functions compile to the same machine code, and
//! `--icf=all` keeps one copy of each (-48 KB on x86_64). Only where the linker is known to be
//! LLD: rustc's default for x86_64-unknown-linux-gnu since 1.90, unless a linker is configured.
//! GNU ld does not know the option, so every other target and linker links as before.
//!
//! With `UPDATE_RELR=1` (opt-in, same conditions) the relative relocations of the PIE are packed
//! (`-z pack-relative-relocs`, RELR): `.rela.dyn` shrinks from 104 KB to 4 KB (-98 KB). The
//! binary then needs glibc >= 2.36 on the device (it names `GLIBC_ABI_DT_RELR`; an older loader
//! refuses to start it), instead of 2.34, so it is not the default.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=UPDATE_NO_ICF");
    println!("cargo:rerun-if-env-changed=UPDATE_RELR");
    let lld = env::var("PROFILE").as_deref() == Ok("release")
        && env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu")
        && env::var_os("RUSTC_LINKER").is_none()
        && !rustflags_choose_linker()
        && rustc_minor().is_some_and(|minor| minor >= 90);
    if lld && env::var_os("UPDATE_NO_ICF").is_none() {
        println!("cargo:rustc-link-arg-bin=update=-Wl,--icf=all");
    }
    if lld && env::var_os("UPDATE_RELR").is_some_and(|v| v == "1") {
        println!("cargo:rustc-link-arg-bin=update=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether RUSTFLAGS pick the linker themselves (then it may not be LLD).
fn rustflags_choose_linker() -> bool {
    env::var("CARGO_ENCODED_RUSTFLAGS")
        .unwrap_or_default()
        .split('\x1f')
        .any(|flag| flag.contains("linker") || flag.contains("link-self-contained") || flag.contains("fuse-ld"))
}

/// The minor version of the compiler building us: `rustc 1.95.0 (…)` gives 95.
fn rustc_minor() -> Option<u32> {
    let rustc = env::var_os("RUSTC")?;
    let out = Command::new(rustc).arg("-V").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}
