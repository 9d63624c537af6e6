//! `cargo xtask system-test [--long] [--seed N] [--cuts N] [--skip NAME]… [FILTER]`: installs the Debian
//! packages the QEMU system test needs (when root and missing), then runs its scenarios,
//! `cargo test -p update-systest -- --ignored`, with the options as environment variables
//! (docs/system-test.md). The harness and scenarios are the `update-systest` crate.

use std::path::Path;
use std::process::Command;

use crate::sys::{Result, run, workspace};

const USAGE: &str = "usage: cargo xtask system-test [--long] [--seed N] [--cuts N] [--skip NAME]... [FILTER]";

/// `cargo xtask system-test`.
pub fn main(args: &[String]) -> Result {
    let mut env: Vec<(&str, String)> = Vec::new();
    let mut filter: Option<&str> = None;
    let mut skip: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |name: &str| {
            it.next().filter(|v| v.parse::<u64>().is_ok()).cloned().ok_or(format!("{name} needs a number; {USAGE}"))
        };
        match a.as_str() {
            "--long" => env.push(("UPDATE_SYSTEST_LONG", "1".into())),
            "--seed" => env.push(("UPDATE_SYSTEST_SEED", number("--seed")?)),
            "--cuts" => env.push(("UPDATE_SYSTEST_CUTS", number("--cuts")?)),
            "--skip" => skip.push(it.next().cloned().ok_or(format!("--skip needs a scenario name; {USAGE}"))?),
            f if !f.starts_with('-') && filter.is_none() => filter = Some(f),
            other => return Err(format!("unknown option {other}; {USAGE}")),
        }
    }
    install_packages()?;
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["test", "-p", "update-systest", "--test", "scenarios", "--", "--ignored", "--nocapture"]);
    cmd.args(filter);
    for s in &skip {
        cmd.args(["--skip", s]);
    }
    cmd.envs(env);
    run(&mut cmd)
}

/// Installs the packages of tests/system/packages whose file is missing (as root; otherwise
/// names them).
fn install_packages() -> Result {
    let list = workspace().join("tests/system/packages");
    let text = std::fs::read_to_string(&list).map_err(|e| format!("read {}: {e}", list.display()))?;
    let mut missing: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, file)| !Path::new(file.trim()).exists())
        .map(|(package, _)| package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !crate::sys::is_root() {
        return Err(format!("the system test needs these Debian packages: {}", missing.join(" ")));
    }
    if missing.contains(&"qemu-system-x86") {
        // Alone, qemu-system-x86 would remove a qemu-utils from bookworm-backports (TEST-RIG.md).
        missing.push("qemu-utils/bookworm");
    }
    run(Command::new("apt-get").args(["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", "--allow-downgrades"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
