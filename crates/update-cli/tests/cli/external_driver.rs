//! External drivers through the real `update` binary: the example apt driver found under
//! `--root` is listed by `update drivers` and used by `update --now`; hostile manifests and
//! hostile driver output (not JSON, oversized, another protocol major, too slow, control
//! characters) each give a clear error and change nothing.

use std::path::Path;

use update_test::apt::{self, AptDevice, Archive};

use crate::common::Dev;

/// Whether the apt tools are here (and we are root); otherwise SKIPPED, unless
/// `UPDATE_ADAPTERS_REQUIRE` names `apt` (CI).
fn apt_available() -> bool {
    let tools = ["apt-get", "dpkg", "dpkg-deb", "dpkg-scanpackages", "gpg", "python3"];
    let missing: Vec<&str> =
        tools.iter().copied().filter(|t| update_core::process::locate(Path::new(t), None).is_none()).collect();
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if missing.is_empty() && root {
        return true;
    }
    let required = std::env::var("UPDATE_ADAPTERS_REQUIRE")
        .unwrap_or_default()
        .split(',')
        .any(|d| d.trim() == "apt" || d.trim() == "all");
    assert!(!required, "UPDATE_ADAPTERS_REQUIRE names apt, but missing: {missing:?} (root: {root})");
    use std::io::Write;
    let _ =
        writeln!(std::io::stderr(), "SKIPPED: update --now with the apt driver: missing {missing:?} (root: {root})");
    false
}

fn update(root: &Path, args: &[&str]) -> crate::common::Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_update"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("UPDATE_ROOT")
        .output()
        .unwrap();
    crate::common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn update_now_installs_through_the_apt_driver() {
    if !apt_available() {
        return;
    }
    let host = apt::host_dpkg_status();
    let mut dev = AptDevice::new();
    let root = dev.root().to_owned();
    let archive = dev.archive("2.0.0", Archive::Signed);
    let source = format!("file:///{}", archive.strip_prefix(&root).unwrap().display());
    // A second, broken manifest beside it is listed and never used.
    std::fs::write(root.join("usr/lib/update/drivers/yum.toml"), "name = \"yum\"\nprotocol = 9\n").unwrap();
    for args in [&["config", "source", source.as_str()][..], &["config", "log", "/var/log/update.log"]] {
        let r = update(&root, args);
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    }

    let r = update(&root, &["drivers"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = |name: &str| r.stdout.lines().find(|l| l.split_whitespace().next() == Some(name)).map(str::to_owned);
    let apt_line = line("apt").unwrap_or_else(|| panic!("apt not listed: {}", r.stdout));
    assert!(apt_line.contains("available") && apt_line.contains("signatures, inspect"), "{apt_line}");
    let yum = line("yum").unwrap_or_else(|| panic!("yum not listed: {}", r.stdout));
    assert!(yum.contains("broken"), "{yum}");
    assert!(r.stdout.contains("missing field"), "the reason is shown: {}", r.stdout);
    let json: serde_json::Value = serde_json::from_str(&update(&root, &["drivers", "--json"]).stdout).unwrap();
    let rows = json["drivers"].as_array().or_else(|| json.as_array()).cloned().unwrap_or_default();
    let row = rows.iter().find(|r| r["name"] == "apt").unwrap_or_else(|| panic!("{json}"));
    assert_eq!(row["state"], "available");

    // `update` (check): the archive offers 2.0.0.
    let r = update(&root, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("2.0.0"), "{}", r.stdout);

    let r = update(&root, &["--now"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(dev.installed("app"), "app 2.0.0");
    assert_eq!(dev.installed("gateway-release"), "gateway-release 2.0.0");
    let status: serde_json::Value = serde_json::from_str(&update(&root, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["driver"], "apt", "{status}");
    assert_eq!(status["version"], "2.0.0", "{status}");
    // Each package is in the audit log, and the host's dpkg database did not change.
    let history = update(&root, &["history"]).stdout;
    assert!(history.contains("app") && history.contains("gateway-release"), "{history}");
    assert!(host == apt::host_dpkg_status(), "the host's /var/lib/dpkg/status changed");

    // Again: nothing newer, nothing changes.
    let before = dev.snapshot();
    let r = update(&root, &["--now"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(before == dev.snapshot());
}

/// A device whose only driver is the external shell script `evil`, answering every call with
/// `body` (a shell snippet reading the request on standard input).
fn evil_device(body: &str, manifest_extra: &str) -> Dev {
    let dev = Dev::new();
    let dir = dev.root().join("usr/lib/update/drivers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("evil.toml"),
        format!(
            "name = \"evil\"\nexecutable = \"/usr/lib/update/drivers/evil\"\nprotocol = 1\n\
             capabilities = [\"inspect\"]\ninstall-hint = \"evil\"\n{manifest_extra}"
        ),
    )
    .unwrap();
    let script = dir.join("evil");
    std::fs::write(&script, format!("#!/bin/sh\ncat >/dev/null\n{body}\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dev.ok(&["config", "driver", "evil"]);
    dev.ok(&["config", "log", "/var/log/update.log"]);
    dev
}

/// Every file under the root but the log and the driver's state directory.
fn files(dev: &Dev) -> Vec<std::path::PathBuf> {
    dev.snapshot()
        .into_keys()
        .filter(|p| !p.ends_with("var/log/update.log") && !p.to_string_lossy().contains("var/lib/update/drivers"))
        .collect()
}

#[test]
fn hostile_driver_output_is_refused_and_changes_nothing() {
    const OK: &str = r#"{"protocol": {"major": 1, "minor": 0}, "ok": true, "probe": "available"}"#;
    for (what, body, extra, code, want) in [
        ("garbage", "printf 'all good\\033[2J\\n'", "", 1, "did not answer one JSON object (protocol 1): all good\\"),
        ("two answers", &format!("echo '{OK}'; echo '{OK}'"), "", 1, "did not answer one JSON object"),
        ("flood", "yes '{}' | head -c 200000", "", 1, "printed more than 65536 bytes"),
        (
            "another major",
            r#"echo '{"protocol": {"major": 2, "minor": 0}, "ok": true, "probe": "available"}'"#,
            "",
            7,
            "speaks protocol major 2, this update speaks 1: install a driver for protocol 1",
        ),
        ("too slow", "sleep 30", "timeout-seconds = 1\n", 1, "did not finish within 1 s"),
        ("a crash", "echo 'segfault\nat line 2' >&2; exit 139", "", 1, "probe failed (exit status: 139): segfault\\"),
        (
            "a failure with control characters",
            r#"printf '%s\n' '{"protocol": {"major": 1, "minor": 0}, "ok": false, "error": "disk\u001b[2J\nupdate: FORGED"}'"#,
            "",
            1,
            "probe failed (exit status: 0): disk\\",
        ),
    ] {
        let dev = evil_device(body, extra);
        let before = files(&dev);
        let r = dev.run(&["status"]);
        assert_eq!(r.code, code, "{what}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{what}: {}", r.stderr);
        // Escaped where the message is made, and again where it is printed: `\\u{1b}`.
        assert!(
            !r.stderr.contains('\u{1b}') && !r.stderr.lines().any(|l| l.starts_with("update: FORGED")),
            "{what}: raw control characters"
        );
        let r = dev.run(&["drivers"]);
        assert_eq!(r.code, 0, "{what}: {}", r.stderr);
        assert!(r.stdout.lines().any(|l| l.starts_with("evil") && l.contains("broken")), "{what}: {}", r.stdout);
        assert!(!r.stdout.contains('\u{1b}'), "{what}: an escape reached the terminal");
        assert_eq!(before, files(&dev), "{what}: a file changed");
    }
}

#[test]
fn driver_strings_reach_the_terminal_escaped() {
    // A driver whose status names a slot with a terminal escape and a forged line.
    let body = r#"printf '%s\n' '{"protocol": {"major": 1, "minor": 0}, "ok": true, "probe": "available",
 "status": {"version": "1.0.0", "booted": "s\u001b[2J", "primary": "s\u001b[2J",
  "slots": [{"name": "s\u001b[2J", "state": "good", "version": "1.0.0", "booted": true, "primary": true}]}}'"#;
    let dev = evil_device(body, "");
    let r = dev.run(&["status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("s\\u{1b}[2J"), "{}", r.stdout);
    assert!(!r.stdout.contains('\u{1b}'), "an escape reached the terminal: {}", r.stdout);
}

#[test]
fn hostile_manifests_are_listed_as_broken_and_never_run() {
    let dev = Dev::new();
    let dir = dev.root().join("usr/lib/update/drivers");
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dev.root().join("ran");
    let script = format!("#!/bin/sh\ntouch {}\n", marker.display());
    std::fs::write(dir.join("run"), script).unwrap();
    std::fs::set_permissions(dir.join("run"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let manifest = |name: &str, extra: &str| {
        format!(
            "name = \"{name}\"\nexecutable = \"/usr/lib/update/drivers/run\"\nprotocol = 1\ninstall-hint = \"x\"\n{extra}"
        )
    };
    std::fs::write(dir.join("future.toml"), manifest("future", "").replace("protocol = 1", "protocol = 2")).unwrap();
    std::fs::write(dir.join("native.toml"), manifest("native", "")).unwrap();
    std::fs::write(dir.join("unknown.toml"), manifest("unknown", "telepathy = true\n")).unwrap();
    std::fs::write(dir.join("huge.toml"), "#".repeat(1 << 20)).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("link.toml")).unwrap();
    std::fs::write(dir.join("esc\u{1b}[2J.toml"), manifest("esc", "")).unwrap();
    let r = dev.run(&["drivers"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (name, why) in [
        ("future", "speaks protocol major 2, this update speaks 1"),
        ("native", "taken by a built-in driver"),
        ("unknown", "unknown field `telepathy`"),
        ("huge", "larger than 16384 bytes"),
        ("link", "not a regular file"),
        ("esc\\u{1b}[2J", "is not the file's name"),
    ] {
        let row = r.stdout.lines().position(|l| l.split_whitespace().next() == Some(name) && l.contains("broken"));
        let row = row.unwrap_or_else(|| panic!("{name} not listed: {}", r.stdout));
        assert!(r.stdout.lines().nth(row + 1).unwrap().contains(why), "{name}: {}", r.stdout);
    }
    assert!(!r.stdout.contains('\u{1b}'), "an escape reached the terminal");
    // Configuring a broken one is refused at use, and its executable never ran.
    dev.ok(&["config", "driver", "future"]);
    let r = dev.run(&["status"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("broken") && r.stderr.contains("protocol major 2"), "{}", r.stderr);
    assert!(!marker.exists(), "a refused manifest's executable ran");
}
