//! `cargo xtask demo --components`: one signed bundle updates the OS, an MCU's firmware, an
//! application and the device's own data as one transaction; then a broken application and a
//! broken firmware are each rolled back as a whole, without a reboot (docs/components.md, "The
//! demo").
//!
//! The device is the simulated A/B device of the main job plus three components in its
//! update.toml: `mcu` (firmware: a simulated MCUboot microcontroller speaking MCUmgr SMP on a
//! pty, `update-sim mcu`), `web` (an app with restart and health scripts) and `site` (data
//! with a three-way merge for `site.conf`). Each step's outcome is checked from outside the tool:
//! the MCU's own report, the app's start log, the data file and `update --json status`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Demo, build_binaries, p, say, step};
use crate::sys::{Result, run, workspace};

/// The app's restart command: appends the version it finds in `current` to /var/log/web.log.
const RESTART: &str = "#!/bin/sh\nset -e\necho \"started $(cat \"$UPDATE_ROOT$UPDATE_APP_DIR/VERSION\")\" >> \"$UPDATE_ROOT/var/log/web.log\"\n";
/// The app's health check: its own file says `ok`.
const HEALTH: &str = "#!/bin/sh\nexec grep -qx ok \"$UPDATE_ROOT$UPDATE_APP_DIR/health\"\n";

/// The device's component tables, appended to its update.toml as an integrator writes them.
const COMPONENTS: &str = r#"
# Components beside the OS (docs/components.md)
[components.mcu]
kind = "firmware"
port = "/dev/ttyACM0"
mtu = 1024
timeout-ms = 3000
reset-timeout-ms = 10000

[components.web]
kind = "app"
restart = ["/usr/lib/web/restart"]
health = ["/usr/lib/web/health"]
health-timeout = 10

[components.site]
kind = "data"
path = "/data/site"
"#;

/// The simulated MCU, powered off (its flash kept) when the demo ends, however it ends.
struct Mcu {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Mcu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mcu {
    /// Starts `update-sim mcu` and waits for its port; its report lines are echoed and kept.
    fn start(d: &Demo, flash: &Path) -> Result<Mcu> {
        step(&format!("update-sim mcu --flash {} --version 1.0.0   (in the background)", p(flash)));
        let mut child = d
            .tool("update-sim")
            .arg("--root")
            .arg(&d.root)
            .args(["mcu", "--version", "1.0.0", "--flash"])
            .arg(flash)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start update-sim mcu: {e}"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().ok_or("update-sim mcu: no stderr")?;
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(std::result::Result::ok) {
                eprintln!("    \x1b[2m[mcu] {line}\x1b[0m");
                lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
            }
        });
        let mcu = Mcu { child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !mcu.saw("MCU runs") {
            if Instant::now() > deadline {
                return Err("the simulated MCU did not start".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(mcu)
    }

    fn saw(&self, text: &str) -> bool {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().any(|l| l.contains(text))
    }

    /// Waits up to 2 s for the MCU's report of what it runs to read `want`.
    fn wait_running(&self, want: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.running() != want {
            if Instant::now() > deadline {
                eprintln!("    the MCU reports {:?}, not {want:?}", self.running());
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// The MCU's own last report of what it runs.
    fn running(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .rev()
            .find_map(|l| l.split_once("MCU runs ").map(|(_, r)| r.to_owned()))
            .unwrap_or_default()
    }
}

/// `cargo xtask demo --components [--keep]`.
pub fn main_job(keep: bool) -> Result {
    say("building update, update-tool and update-sim (release)");
    build_binaries()?;
    let ws = workspace();
    let out = ws.join("target/demo-components");
    let d = Demo { bin: ws.join("target/release"), root: out.join("device") };
    if d.root.join("disk.img").exists() {
        let _ = d.tool("update-sim").arg("--root").arg(&d.root).arg("destroy").status();
    }
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let result = script(&d, &out);
    if !keep {
        let _ = d.tool("update-sim").arg("--root").arg(&d.root).arg("destroy").status();
    }
    result?;
    say(
        "demo finished: OS + MCU firmware + app + data installed as one transaction and committed; a broken app and a crashing firmware each rolled back as a whole without a reboot; the user's data edit kept through a three-way merge",
    );
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> Result {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn check(ok: bool, what: &str) -> Result {
    if ok {
        eprintln!("    \x1b[32mchecked:\x1b[0m {what}");
        Ok(())
    } else {
        Err(format!("demo check failed: {what}"))
    }
}

/// Each component's active version and state, from `update --json status`.
fn components(d: &Demo) -> Result<Vec<(String, String, String)>> {
    let out = d
        .tool("update")
        .arg("--root")
        .arg(&d.root)
        .args(["--json", "status"])
        .output()
        .map_err(|e| format!("update --json status: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("update --json status: not JSON: {e}"))?;
    let list = v.get("components").and_then(serde_json::Value::as_array).ok_or("status has no components")?;
    Ok(list
        .iter()
        .map(|c| {
            let s = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_str).unwrap_or("-").to_owned();
            (s(c.get("name")), s(c.get("active")), s(c.get("state")))
        })
        .collect())
}

fn expect_versions(d: &Demo, want: &[(&str, &str)]) -> Result {
    let have = components(d)?;
    for (name, version) in want {
        let found = have.iter().find(|(n, _, _)| n == name);
        check(
            found.is_some_and(|(_, v, state)| v == version && state == "committed"),
            &format!("update status: {name} {version} committed (reads {found:?})"),
        )?;
    }
    Ok(())
}

fn booted(d: &Demo) -> String {
    read(&d.root.join("proc/cmdline")).trim().to_owned()
}

/// A tar of `files` (GNU tar, as a vendor's build makes one).
fn tar_of(dir: &Path, label: &str, files: &[(&str, &str)]) -> Result<PathBuf> {
    let src = dir.join(label);
    let _ = std::fs::remove_dir_all(&src);
    for (name, text) in files {
        write(&src.join(name), text, 0o644)?;
    }
    let tar = dir.join(format!("{label}.tar"));
    run(Command::new("tar").arg("-C").arg(&src).arg("--owner=0").arg("--group=0").arg("-cf").arg(&tar).arg("."))?;
    Ok(tar)
}

/// The parts of one release.
struct Parts<'a> {
    version: &'a str,
    os: bool,
    firmware: Option<(&'a str, bool)>,
    app: Option<(&'a str, &'a str)>,
    site: Option<(&'a str, &'a str)>,
}

/// `update-tool bundle create` with the given components (and the OS images when `os`).
fn release(d: &Demo, build: &Path, keys: &Path, parts: &Parts<'_>, bundle: &Path) -> Result {
    let v = parts.version;
    let mut args: Vec<String> = Vec::new();
    let mut shown: Vec<String> = Vec::new();
    if parts.os {
        let rootfs = build.join(format!("rootfs-{v}.img"));
        let kernel = build.join(format!("kernel-{v}.img"));
        step(&format!("update-sim make-image --version {v}"));
        run(d
            .tool("update-sim")
            .arg("--root")
            .arg(&d.root)
            .args(["make-image", "--version", v, "--rootfs"])
            .arg(&rootfs)
            .arg("--kernel")
            .arg(&kernel))?;
        args.extend([
            "--image".into(),
            format!("rootfs={}", p(&rootfs)),
            "--image".into(),
            format!("kernel={}", p(&kernel)),
        ]);
        shown.push("--image rootfs=… --image kernel=…".into());
    }
    if let Some((fw, crash)) = parts.firmware {
        let image = build.join(format!("mcu-{fw}.bin"));
        let mut cmd = d.tool("update-sim");
        cmd.arg("--root").arg(&d.root).args(["mcu-image", "--version", fw, "--size", "120000", "--out"]).arg(&image);
        if crash {
            cmd.arg("--crash-at-start");
        }
        step(&format!("update-sim mcu-image --version {fw}{}", if crash { " --crash-at-start" } else { "" }));
        run(&mut cmd)?;
        args.extend(["--component".into(), format!("mcu:firmware:{fw}={}", p(&image))]);
        shown.push(format!("--component mcu:firmware:{fw}=…"));
    }
    if let Some((app, health)) = parts.app {
        let tar = tar_of(build, &format!("web-{app}-{health}"), &[("VERSION", app), ("health", health)])?;
        args.extend(["--component".into(), format!("web:app:{app}={}", p(&tar))]);
        shown.push(format!("--component web:app:{app}=…"));
    }
    if let Some((data, conf)) = parts.site {
        let tar = tar_of(build, &format!("site-{data}"), &[("site.conf", conf)])?;
        args.extend([
            "--component".into(),
            format!("site:data:{data}={}", p(&tar)),
            "--option".into(),
            r#"site:policy={"site.conf":"merge"}"#.into(),
        ]);
        shown.push(format!(r#"--component site:data:{data}=… --option 'site:policy={{"site.conf":"merge"}}'"#));
    }
    step(&format!(
        "update-tool bundle create --out {} --version {v} --compatible demo-board --key vendor.key {}",
        p(bundle),
        shown.join(" ")
    ));
    run(d
        .tool("update-tool")
        .args(["bundle", "create", "--out"])
        .arg(bundle)
        .args(["--version", v, "--compatible", "demo-board", "--key"])
        .arg(keys.join("vendor.key"))
        .args(&args))?;
    Ok(())
}

#[allow(clippy::too_many_lines)] // one linear story, told in order
fn script(d: &Demo, out: &Path) -> Result {
    let keys = out.join("keys");
    let build = out.join("build");
    std::fs::create_dir_all(&build).map_err(|e| e.to_string())?;
    let source = d.root.join("srv/update");
    let web_log = d.root.join("var/log/web.log");
    let site_conf = d.root.join("data/site/site.conf");

    say("a signing key for the vendor (build machine)");
    step(&format!("update-tool key generate vendor --out {}", p(&keys)));
    run(d.tool("update-tool").args(["key", "generate", "vendor", "--out"]).arg(&keys))?;

    say("a simulated device at 1.0: OS slot A, an MCU running firmware 1.0.0, an app and a data directory");
    d.sim(&["create", "--version", "1.0.0"])?;
    d.update(&["config", "key", "add", "vendor", &format!("@{}", p(&keys.join("vendor.pub")))])?;
    d.update(&["config", "source", "file:///srv/update"])?;
    d.update(&["config", "boot-retry-limit", "3"])?;
    d.update(&["config", "log", "/var/log/update.log"])?;
    let mcu = Mcu::start(d, &out.join("mcu.flash"))?;
    write(&d.root.join("usr/lib/web/restart"), RESTART, 0o755)?;
    write(&d.root.join("usr/lib/web/health"), HEALTH, 0o755)?;
    std::fs::create_dir_all(d.root.join("data/site")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&source).map_err(|e| e.to_string())?;
    let config = d.root.join("etc/update/update.toml");
    step(&format!("cat >> {} <<EOF{COMPONENTS}EOF", p(&config)));
    let mut text = read(&config);
    text.push_str(COMPONENTS);
    write(&config, &text, 0o644)?;
    d.update(&["status"])?;

    say("release 2.0: OS images + MCU firmware 2.0.0 + app 1.0.0 + site data 1.0.0, signed into one bundle");
    let conf_v1 = "# site configuration\nname=unnamed\nport=8080\nlog=info\n";
    release(
        d,
        &build,
        &keys,
        &Parts {
            version: "2.0.0",
            os: true,
            firmware: Some(("2.0.0", false)),
            app: Some(("1.0.0", "ok")),
            site: Some(("1.0.0", conf_v1)),
        },
        &source.join("demo-2.0.0.bundle"),
    )?;
    d.update(&["--now"])?;
    say("the device rebooted into 2.0 on trial; the components are active and wait for the OS's verdict");
    d.update(&["status"])?;
    check(mcu.wait_running("2.0.0 (test run, unconfirmed)"), "the MCU reports 2.0.0 in a test run, not yet confirmed")?;
    if !d.healthy()? {
        return Err("2.0 should be healthy".into());
    }
    d.update(&["mark-good"])?;
    d.update(&["status"])?;
    expect_versions(d, &[("mcu", "2.0.0"), ("web", "1.0.0"), ("site", "1.0.0")])?;
    check(mcu.wait_running("2.0.0 (confirmed)"), "the MCU reports 2.0.0 confirmed")?;
    check(booted(d).contains("update.slot=B"), "the OS runs slot B")?;
    check(read(&web_log).lines().last() == Some("started 1.0.0"), "the app was started at 1.0.0")?;

    say("the user edits the site's configuration on the device");
    let edited = read(&site_conf).replace("name=unnamed", "name=plant-7");
    step(&format!("sed -i s/name=unnamed/name=plant-7/ {}", p(&site_conf)));
    write(&site_conf, &edited, 0o644)?;

    say("release 2.1: an app 1.1.0 whose health check fails, and new site data: no reboot, all rolled back");
    let conf_v2 = "# site configuration\nname=unnamed\nport=8080\nlog=debug\n";
    release(
        d,
        &build,
        &keys,
        &Parts {
            version: "2.1.0",
            os: false,
            firmware: None,
            app: Some(("1.1.0", "broken")),
            site: Some(("2.0.0", conf_v2)),
        },
        &source.join("demo-2.1.0.bundle"),
    )?;
    let starts = read(&web_log).lines().count();
    d.update_expect(&["--now"], 1)?;
    d.update(&["status"])?;
    expect_versions(d, &[("mcu", "2.0.0"), ("web", "1.0.0"), ("site", "1.0.0")])?;
    let log = read(&web_log);
    let new_starts: Vec<&str> = log.lines().skip(starts).collect();
    check(
        new_starts == ["started 1.1.0", "started 1.0.0"],
        "the app ran 1.1.0, failed its check and was started again at 1.0.0",
    )?;
    check(read(&site_conf) == edited, "site.conf is byte for byte the user's edited file again")?;
    check(booted(d).contains("update.slot=B"), "no reboot: the OS still runs slot B")?;

    say("release 2.2: the app fixed (1.2.0) and the same site data: committed without a reboot, the user's edit kept");
    release(
        d,
        &build,
        &keys,
        &Parts {
            version: "2.2.0",
            os: false,
            firmware: None,
            app: Some(("1.2.0", "ok")),
            site: Some(("2.0.0", conf_v2)),
        },
        &source.join("demo-2.2.0.bundle"),
    )?;
    let t = Instant::now();
    d.update(&["--now"])?;
    eprintln!("    app + data update, `update --now` to committed: {:.2} s", t.elapsed().as_secs_f64());
    expect_versions(d, &[("mcu", "2.0.0"), ("web", "1.2.0"), ("site", "2.0.0")])?;
    let merged = read(&site_conf);
    step(&format!("cat {}", p(&site_conf)));
    eprint!("{merged}");
    check(
        merged.contains("name=plant-7") && merged.contains("log=debug"),
        "three-way merge: the user's name=plant-7 kept, the vendor's log=debug applied",
    )?;
    check(booted(d).contains("update.slot=B"), "no reboot: the OS still runs slot B")?;

    say(
        "release 2.3: MCU firmware 3.0.0 that crashes at start, with app 1.3.0: MCUboot reverts it, the app goes back too",
    );
    release(
        d,
        &build,
        &keys,
        &Parts { version: "2.3.0", os: false, firmware: Some(("3.0.0", true)), app: Some(("1.3.0", "ok")), site: None },
        &source.join("demo-2.3.0.bundle"),
    )?;
    let starts = read(&web_log).lines().count();
    d.update_expect(&["--now"], 1)?;
    d.update(&["status"])?;
    check(mcu.saw("3.0.0 crashed at start"), "the MCU ran 3.0.0 on trial, crashed, and its watchdog reset it")?;
    check(mcu.wait_running("2.0.0 (confirmed)"), "MCUboot reverted: the MCU reports 2.0.0 confirmed")?;
    expect_versions(d, &[("mcu", "2.0.0"), ("web", "1.2.0"), ("site", "2.0.0")])?;
    let log = read(&web_log);
    let new_starts: Vec<&str> = log.lines().skip(starts).collect();
    check(
        !new_starts.contains(&"started 1.3.0") || new_starts.last() == Some(&"started 1.2.0"),
        "the app runs 1.2.0: 1.3.0 was never started, or 1.2.0 was started again after it",
    )?;
    check(booted(d).contains("update.slot=B"), "no reboot: the OS still runs slot B")?;
    d.update(&["history"])?;
    drop(mcu);
    Ok(())
}
