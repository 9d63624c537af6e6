//! `cargo xtask demo --server`: the main job against a local `update-server` over HTTPS with
//! mutual TLS.
//!
//! A fleet PKI from `update-tool cert` (CA, server certificate, device certificate whose CN is
//! the device id), the vendor's signed TUF repository from `update-tool repo`, the real
//! `update-server` serving it on 127.0.0.1, and a simulated device at 1.0 that pulls 2.0 with
//! `update --now`, reboots, and commits it with `update daemon --once` (health check, then
//! mark-good). The server's own record of the device's events is printed and checked: in
//! order, downloading → installed → rebooted → committed, and the device reports 2.0 on B.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{build_binaries, p, say, step};
use crate::sys::{Result, run, workspace};

/// The device id: the CN of the device's certificate.
const DEVICE: &str = "device-0001";

/// Kills the server when the demo ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Fleet {
    bin: PathBuf,
    server_bin: PathBuf,
    out: PathBuf,
    root: PathBuf,
}

impl Fleet {
    fn tool(&self, args: &[&str]) -> Result {
        step(&format!("update-tool {}", args.join(" ")));
        run(Command::new(self.bin.join("update-tool")).args(args))
    }

    fn update(&self, args: &[&str]) -> Result {
        step(&format!("update {}", args.join(" ")));
        run(Command::new(self.bin.join("update")).arg("--root").arg(&self.root).args(args))
    }

    fn sim(&self, args: &[&str]) -> Result {
        step(&format!("update-sim {}", args.join(" ")));
        run(Command::new(self.bin.join("update-sim")).arg("--root").arg(&self.root).args(args))
    }

    fn server_query(&self, args: &[&str]) -> Result<Vec<serde_json::Value>> {
        step(&format!("update-server {}", args.join(" ")));
        let out = Command::new(&self.server_bin)
            .args(args)
            .current_dir(&self.out)
            .output()
            .map_err(|e| format!("cannot run update-server: {e}"))?;
        if !out.status.success() {
            return Err(format!("update-server {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        eprint!("{text}");
        text.lines().map(|l| serde_json::from_str(l).map_err(|e| format!("{l}: {e}"))).collect()
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// `cargo xtask demo --server [--keep]`.
pub fn main_job(keep: bool) -> Result {
    say("building update, update-tool, update-sim (release) and update-server");
    build_binaries()?;
    run(Command::new(env!("CARGO")).args(["build", "-p", "update-server"]))?;
    let ws = workspace();
    let out = ws.join("target/demo-fleet");
    let f = Fleet {
        bin: ws.join("target/release"),
        server_bin: ws.join("target/debug/update-server"),
        root: out.join("device"),
        out: out.clone(),
    };
    if f.root.join("disk.img").exists() {
        let _ = Command::new(f.bin.join("update-sim")).arg("--root").arg(&f.root).arg("destroy").status();
    }
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let result = script(&f);
    if !keep {
        let _ = Command::new(f.bin.join("update-sim")).arg("--root").arg(&f.root).arg("destroy").status();
    }
    result?;
    say("fleet demo finished: 2.0 pulled from update-server over mutual TLS, committed, every step on the server");
    Ok(())
}

fn script(f: &Fleet) -> Result {
    let out = &f.out;
    let keys = out.join("keys");
    let pki = out.join("pki");
    let repo = out.join("repo");
    let build = out.join("build");
    std::fs::create_dir_all(&build).map_err(|e| e.to_string())?;

    say("the vendor's signing key and a fleet PKI: a CA, the server's certificate, the device's (CN = device id)");
    f.tool(&["key", "generate", "vendor", "--out", &p(&keys)])?;
    f.tool(&["cert", "ca", "fleet-ca", "--out", &p(&pki)])?;
    let ca = pki.join("fleet-ca");
    f.tool(&[
        "cert",
        "issue",
        "server",
        "--ca",
        &p(&ca),
        "--server-name",
        "localhost",
        "--server-name",
        "127.0.0.1",
        "--out",
        &p(&pki),
    ])?;
    f.tool(&["cert", "issue", DEVICE, "--ca", &p(&ca), "--out", &p(&pki)])?;

    say("the vendor's signed repository (TUF format) with release 2.0");
    let bundle = build.join("demo-2.0.0.bundle");
    make_release(f, &build, &keys, "2.0.0", &bundle)?;
    let vendor_key = p(&keys.join("vendor.key"));
    f.tool(&["repo", "init", &p(&repo), "--key", &vendor_key])?;
    f.tool(&["repo", "add", &p(&repo), &p(&bundle), "--key", &vendor_key])?;

    say("update-server: the repository and the fleet API over HTTPS, mutual TLS required");
    let port = free_port()?;
    let token = out.join("admin-token");
    std::fs::write(&token, "demo-admin-token-0123456789\n").map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
    }
    let db = format!("sqlite:{}", p(&out.join("server.db")));
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "serve".to_owned(),
        "--repo".into(),
        p(&repo),
        "--listen".into(),
        listen.clone(),
        "--tls-cert".into(),
        p(&pki.join("server.crt")),
        "--tls-key".into(),
        p(&pki.join("server.key")),
        "--client-ca".into(),
        p(&pki.join("fleet-ca.crt")),
        "--db".into(),
        db.clone(),
        "--admin-token-file".into(),
        p(&token),
    ];
    step(&format!("update-server {} &", args.join(" ")));
    let log = std::fs::File::create(out.join("server.log")).map_err(|e| e.to_string())?;
    let child = Command::new(&f.server_bin)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start update-server: {e}"))?;
    let _server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&listen).is_err() {
        if Instant::now() > deadline {
            return Err(format!("update-server did not listen on {listen}; see {}", p(&out.join("server.log"))));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    say("a simulated device at 1.0, with its certificate, the fleet CA, the source and the server");
    f.sim(&["create", "--version", "1.0.0"])?;
    // `update-sim create` put itself into the root and made it the reboot command: under
    // --root only programs inside the root run (the host's reboot never does).
    crate::demo_config::add_health_check(&f.root, "rootfs answers", "[\"/usr/sbin/update-sim\", \"health\"]")?;
    let etc = f.root.join("etc/update");
    for (from, to) in [
        (pki.join("fleet-ca.crt"), "fleet-ca.crt"),
        (pki.join(format!("{DEVICE}.crt")), "device.crt"),
        (pki.join(format!("{DEVICE}.key")), "device.key"),
    ] {
        std::fs::copy(&from, etc.join(to)).map_err(|e| format!("{}: {e}", p(&from)))?;
    }
    f.update(&["config", "key", "add", "vendor", &format!("@{}", p(&keys.join("vendor.pub")))])?;
    f.update(&["config", "server-ca", "/etc/update/fleet-ca.crt"])?;
    f.update(&["config", "client-cert", "/etc/update/device.crt"])?;
    f.update(&["config", "client-key", "/etc/update/device.key"])?;
    f.update(&["config", "secure", "true"])?;
    f.update(&["config", "source", &format!("https://localhost:{port}/repo")])?;
    f.update(&["config", "server", &format!("https://localhost:{port}")])?;
    f.update(&["config", "log", "/var/log/update.log"])?;
    f.update(&["status"])?;

    say("pull 2.0 over mutual TLS: repository metadata verified, bundle downloaded and installed into B, reboot");
    f.update(&["--now"])?;
    say("after the reboot the daemon health-checks the new slot, marks it good and reports to the server");
    f.update(&["daemon", "--once"])?;
    f.update(&["status"])?;

    say("what the server knows: the device's events (from its database) and its last check-in");
    let events = f.server_query(&["events", DEVICE, "--db", &db])?;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    let expected = ["downloading", "installed", "rebooted", "committed"];
    let mut it = kinds.iter();
    if !expected.iter().all(|k| it.any(|x| x == k)) {
        return Err(format!("the server's events {kinds:?} do not contain {expected:?} in order"));
    }
    let devices = f.server_query(&["devices", "--db", &db])?;
    let device = devices.iter().find(|d| d["id"] == DEVICE).ok_or("the server does not know the device")?;
    if device["version"] != "2.0.0" || device["booted"] != "B" {
        return Err(format!("the server's record of the device is not 2.0.0 on B: {device}"));
    }
    Ok(())
}

fn make_release(f: &Fleet, build: &Path, keys: &Path, version: &str, bundle: &Path) -> Result {
    let rootfs = build.join(format!("rootfs-{version}.img"));
    let kernel = build.join(format!("kernel-{version}.img"));
    f.sim(&["make-image", "--version", version, "--health", "ok", "--rootfs", &p(&rootfs), "--kernel", &p(&kernel)])?;
    f.tool(&[
        "bundle",
        "create",
        "--out",
        &p(bundle),
        "--version",
        version,
        "--compatible",
        "demo-board",
        "--key",
        &p(&keys.join("vendor.key")),
        "--image",
        &format!("rootfs={}", p(&rootfs)),
        "--image",
        &format!("kernel={}", p(&kernel)),
    ])
}
