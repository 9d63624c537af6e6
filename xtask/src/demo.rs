//! The main job: an end-to-end update of a simulated device from a local signed source.
//!
//! Builds the binaries, creates a signing key, a simulated A/B device at version 1.0 (GPT image
//! on a loop device when root, plain files otherwise), a signed 2.0 bundle with a real ext4
//! rootfs, installs it with `update --now` (which reboots the simulated device through its
//! bootloader algorithm), runs the health check, marks good, shows status and history; then
//! installs a broken 3.0 whose health check fails, reboots until the boot-retry limit runs out,
//! and shows the automatic rollback to 2.0. Finally a tampered bundle is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sys::{Result, run, workspace};

#[path = "demo_components.rs"]
mod components;
#[path = "demo_fleet.rs"]
mod fleet;

struct Demo {
    bin: PathBuf,
    root: PathBuf,
}

impl Demo {
    fn tool(&self, name: &str) -> Command {
        Command::new(self.bin.join(name))
    }

    fn update(&self, args: &[&str]) -> Result {
        step(&format!("update {}", args.join(" ")));
        run(self.tool("update").arg("--root").arg(&self.root).args(args))
    }

    fn update_expect(&self, args: &[&str], code: i32) -> Result {
        step(&format!("update {}   (expected to fail with exit code {code})", args.join(" ")));
        let status =
            self.tool("update").arg("--root").arg(&self.root).args(args).status().map_err(|e| e.to_string())?;
        if status.code() == Some(code) { Ok(()) } else { Err(format!("expected exit {code}, got {status}")) }
    }

    fn sim(&self, args: &[&str]) -> Result {
        step(&format!("update-sim {}", args.join(" ")));
        run(self.tool("update-sim").arg("--root").arg(&self.root).args(args))
    }

    fn healthy(&self) -> Result<bool> {
        step("update-sim health");
        let status =
            self.tool("update-sim").arg("--root").arg(&self.root).arg("health").status().map_err(|e| e.to_string())?;
        Ok(status.success())
    }
}

fn step(s: &str) {
    eprintln!("\n\x1b[1m$ {s}\x1b[0m");
}

fn say(s: &str) {
    eprintln!("\n\x1b[1;34m== {s}\x1b[0m");
}

/// `cargo xtask demo [--server | --components] [--keep]`.
pub fn main_job(args: &[String]) -> Result {
    crate::sys::ensure_packages()?;
    let keep = args.iter().any(|a| a == "--keep");
    if args.iter().any(|a| a == "--server") {
        return fleet::main_job(keep);
    }
    if args.iter().any(|a| a == "--components") {
        return components::main_job(keep);
    }
    say("building update, update-tool and update-sim (release)");
    build_binaries()?;
    let ws = workspace();
    let out = ws.join("target/demo");
    if out.join("device/disk.img").exists() {
        let _ = Command::new(ws.join("target/release/update-sim"))
            .arg("--root")
            .arg(out.join("device"))
            .arg("destroy")
            .status();
    }
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let demo = Demo { bin: ws.join("target/release"), root: out.join("device") };
    let result = script(&demo, &out);
    if !keep {
        let _ = demo.tool("update-sim").arg("--root").arg(&demo.root).arg("destroy").status();
    }
    result?;
    say(
        "demo finished: 1.0 -> 2.0 installed, committed; broken 3.0 rolled back automatically; tampered bundle refused",
    );
    Ok(())
}

/// Builds `update`, `update-tool` and `update-sim` (release) into target/release.
fn build_binaries() -> Result {
    run(Command::new(env!("CARGO")).args([
        "build",
        "--release",
        "-p",
        "update-cli",
        "-p",
        "update-tool",
        "-p",
        "update-test",
    ]))
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn script(d: &Demo, out: &Path) -> Result {
    let keys = out.join("keys");
    let build = out.join("build");
    std::fs::create_dir_all(&build).map_err(|e| e.to_string())?;
    let source = d.root.join("srv/update");

    say("a signing key for the vendor (build machine)");
    step(&format!("update-tool key generate vendor --out {}", p(&keys)));
    run(d.tool("update-tool").args(["key", "generate", "vendor", "--out"]).arg(&keys))?;

    say("a simulated device at version 1.0: slot A committed, slot B empty");
    d.sim(&["create", "--version", "1.0.0"])?;
    d.update(&["config", "key", "add", "vendor", &format!("@{}", p(&keys.join("vendor.pub")))])?;
    d.update(&["config", "source", "file:///srv/update"])?;
    d.update(&["config", "boot-retry-limit", "3"])?;
    d.update(&["config", "log", "/var/log/update.log"])?;
    d.update(&["status"])?;

    say("release 2.0: a real ext4 rootfs and a kernel image, signed into one bundle");
    std::fs::create_dir_all(&source).map_err(|e| e.to_string())?;
    make_release(d, &build, &keys, "2.0.0", "ok", &source.join("demo-2.0.0.bundle"))?;
    d.update(&[])?;

    say("install 2.0 now: streams verified chunks into slot B, switches the boot env, reboots");
    d.update(&["--now"])?;
    d.update(&["status"])?;
    if !d.healthy()? {
        return Err("2.0 should be healthy".into());
    }
    d.update(&["mark-good"])?;
    d.update(&["status"])?;

    say("release 3.0 is broken: its health check fails");
    make_release(d, &build, &keys, "3.0.0", "broken", &source.join("demo-3.0.0.bundle"))?;
    d.update(&["--now"])?;
    let mut boots = 0;
    loop {
        boots += 1;
        if d.healthy()? {
            break;
        }
        if boots > 10 {
            return Err("the device never fell back".into());
        }
        say("health check failed: not marking good; the watchdog reboots");
        d.sim(&["reboot"])?;
    }
    say(
        "the bootloader ran out of tries for 3.0 and fell back to 2.0: `update status` says so (exit 12) until mark-good",
    );
    d.update_expect(&["status"], 12)?;
    d.update(&["mark-good"])?;
    d.update(&["history"])?;

    say("a tampered bundle is refused: nothing is written");
    let tampered = d.root.join("srv/tampered");
    std::fs::create_dir_all(&tampered).map_err(|e| e.to_string())?;
    // A new release (3.0 already failed here and would be skipped before any byte is read).
    let fresh = build.join("demo-4.0.0.bundle");
    make_release(d, &build, &keys, "4.0.0", "ok", &fresh)?;
    let mut bytes = std::fs::read(&fresh).map_err(|e| e.to_string())?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(tampered.join("demo-4.0.0.bundle"), bytes).map_err(|e| e.to_string())?;
    d.update_expect(&["--source", "file:///srv/tampered/demo-4.0.0.bundle", "--now"], 6)?;
    d.update(&["status"])?;
    Ok(())
}

fn make_release(d: &Demo, build: &Path, keys: &Path, version: &str, health: &str, bundle: &Path) -> Result {
    let rootfs = build.join(format!("rootfs-{version}.img"));
    let kernel = build.join(format!("kernel-{version}.img"));
    step(&format!("update-sim make-image --version {version} --health {health}"));
    run(d
        .tool("update-sim")
        .arg("--root")
        .arg(&d.root)
        .args(["make-image", "--version", version, "--health", health, "--rootfs"])
        .arg(&rootfs)
        .arg("--kernel")
        .arg(&kernel))?;
    step(&format!(
        "update-tool bundle create --out {} --version {version} --compatible demo-board --key vendor.key --image rootfs=… --image kernel=…",
        p(bundle)
    ));
    run(d
        .tool("update-tool")
        .args(["bundle", "create", "--out"])
        .arg(bundle)
        .args(["--version", version, "--compatible", "demo-board", "--key"])
        .arg(keys.join("vendor.key"))
        .arg("--image")
        .arg(format!("rootfs={}", p(&rootfs)))
        .arg("--image")
        .arg(format!("kernel={}", p(&kernel))))?;
    step(&format!("update-tool bundle info {}", p(bundle)));
    run(d.tool("update-tool").args(["bundle", "info"]).arg(bundle))
}
