//! Every `--json` document validates against its schema (docs/reference/schemas/, draft
//! 2020-12), and matches its golden fixture (tests/fixtures/json/<state>/) for each device state:
//! idle, pending reboot, trying, fell back. The documents come from the real `update` binary run
//! with `--root` on a simulated device (plain files, the native driver) that installs a real
//! signed bundle.
//!
//! Fixtures are written by the test, never by hand: `UPDATE_BLESS=1 cargo test -p update-cli
//! --test cli json_schema` rewrites them after a deliberate change of the output. Before the
//! comparison, what differs from run to run is replaced: times (by 2000-01-01T00:00:00Z), the
//! temporary root (`<root>`), user and process ids, and SHA-256 values (audit hashes, key ids: by
//! 64 zeros), so that a fixture is still a valid document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use ed25519_dalek::SigningKey;
use serde_json::Value;
use update_cli::json::Doc;
use update_core::{KeyName, SlotGroupName};
use update_test::device::{SimDevice, SimOptions, make_kernel, make_rootfs, reboot_root};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema_path(doc: Doc) -> PathBuf {
    repo().join(format!("docs/reference/schemas/{}.schema.json", doc.name()))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/json")
}

/// A validator per schema, each schema checked against the 2020-12 meta-schema first.
struct Schemas(BTreeMap<&'static str, jsonschema::Validator>);

impl Schemas {
    fn load() -> Self {
        let mut m = BTreeMap::new();
        for doc in Doc::ALL {
            let path = schema_path(doc);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
                panic!("{} is not a valid 2020-12 schema: {e}", path.display());
            }
            assert_eq!(
                schema["$schema"],
                "https://json-schema.org/draft/2020-12/schema",
                "{}: declares its draft",
                path.display()
            );
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            m.insert(doc.name(), validator);
        }
        Self(m)
    }

    /// Asserts that `v` is a valid `doc` and says `schema: libupdate/<doc>/1`.
    fn check(&self, doc: Doc, v: &Value, what: &str) {
        let errors: Vec<String> =
            self.0[doc.name()].iter_errors(v).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{what} does not match {}.schema.json:\n{}\n{v:#}", doc.name(), errors.join("\n"));
        assert_eq!(v["schema"], Value::String(doc.id()), "{what}");
    }
}

struct Device {
    dir: tempfile::TempDir,
    schemas: Schemas,
    /// Fixture name → normalized document, for the state being recorded.
    docs: BTreeMap<String, Value>,
}

struct Out {
    code: i32,
    json: Value,
    stderr: String,
}

impl Device {
    fn root(&self) -> PathBuf {
        self.dir.path().join("device")
    }

    /// Runs `update --root ROOT ARGS`.
    fn output(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_update"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .env_remove("UPDATE_ROOT")
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Out {
        let out = self.output(args);
        let stdout = String::from_utf8(out.stdout).unwrap();
        let json = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("update {args:?}: stdout is not one JSON document ({e}):\n{stdout}"));
        Out { code: out.status.code().unwrap_or(-1), json, stderr: String::from_utf8_lossy(&out.stderr).into() }
    }

    /// Runs `update ARGS` without `--json`: (exit code, stderr).
    fn run_text(&self, args: &[&str]) -> (i32, String) {
        let out = self.output(args);
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into())
    }

    /// Runs `update ARGS` (which must print `doc`), checks the exit code and the schema, and
    /// keeps the normalized document as fixture `name`.
    fn record(&mut self, name: &str, doc: Doc, args: &[&str], code: i32) -> Value {
        let out = self.run(args);
        assert_eq!(out.code, code, "update {args:?}: {:#}\n{}", out.json, out.stderr);
        self.schemas.check(doc, &out.json, &format!("update {args:?}"));
        let normal = normalize(out.json.clone(), &self.root());
        self.docs.insert(name.to_owned(), normal);
        out.json
    }

    /// Compares (or with UPDATE_BLESS=1 writes) the documents recorded for `state`.
    fn compare(&mut self, state: &str) {
        let dir = fixtures().join(state);
        let bless = std::env::var_os("UPDATE_BLESS").is_some();
        if bless {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
        }
        for (name, doc) in std::mem::take(&mut self.docs) {
            let path = dir.join(format!("{name}.json"));
            let text = format!("{doc:#}\n");
            if bless {
                std::fs::write(&path, text).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_BLESS=1 writes the fixtures)", path.display()));
            assert_eq!(text, want, "{} differs from the output (UPDATE_BLESS=1 rewrites it)", path.display());
        }
        if !bless {
            // The fixtures themselves are valid documents.
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let v: Value = serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
                let name = v["schema"].as_str().unwrap().split('/').nth(1).unwrap().to_owned();
                let doc = Doc::ALL.into_iter().find(|d| d.name() == name).unwrap();
                self.schemas.check(doc, &v, &e.path().display().to_string());
            }
        }
    }
}

/// What a time becomes in a fixture (a valid RFC 3339 time, so the fixtures stay valid documents).
const TIME: &str = "2000-01-01T00:00:00Z";
/// What a SHA-256 (an audit hash, a key id) becomes in a fixture.
const HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Replaces what differs between runs (see the module docs).
fn normalize(v: Value, root: &Path) -> Value {
    let root = root.to_str().unwrap().to_owned();
    match v {
        Value::String(s) => {
            let s = s.replace(&root, "<root>");
            if time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).is_ok() {
                return Value::String(TIME.into());
            }
            let is_hash = s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
            if s.starts_with("uid=") {
                // The actor: `uid=0 pid=123 …`.
                let words: Vec<String> = s
                    .split(' ')
                    .map(|w| match w.split_once('=') {
                        Some((k @ ("uid" | "pid"), _)) => format!("{k}=<{k}>"),
                        _ => w.to_owned(),
                    })
                    .collect();
                return Value::String(words.join(" "));
            }
            Value::String(if is_hash { HASH.into() } else { s })
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| normalize(x, Path::new(&root))).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, x)| (k, normalize(x, Path::new(&root)))).collect()),
        other => other,
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// Publishes a signed release `version` into the device's source directory.
fn publish(dev: &Device, version: &str) {
    let images = dev.dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let rootfs = images.join(format!("rootfs-{version}.img"));
    let kernel = images.join(format!("kernel-{version}.img"));
    make_rootfs(&rootfs, version, "ok", 12, 512).unwrap();
    make_kernel(&kernel, version, 256 << 10).unwrap();
    let mut o = update_bundle::CreateOptions::new(update_core::parse_version(version).unwrap(), "demo-board");
    o.images = vec![(SlotGroupName::new("rootfs").unwrap(), rootfs), (SlotGroupName::new("kernel").unwrap(), kernel)];
    o.signers = vec![(KeyName::new("vendor").unwrap(), key(7))];
    o.chunk_size = 256 << 10;
    let source = dev.root().join("srv/update");
    std::fs::create_dir_all(&source).unwrap();
    let mut scratch = tempfile::tempfile().unwrap();
    let mut out = std::fs::File::create(source.join(format!("release-{version}.bundle"))).unwrap();
    update_bundle::create(&o, &mut scratch, &mut out).unwrap();
}

fn device() -> Device {
    let dir = tempfile::tempdir().unwrap();
    let opts = SimOptions { loop_devices: false, rootfs_mib: 16, boot_mib: 2, data_mib: 8, ..SimOptions::default() };
    SimDevice::create(&dir.path().join("device"), &opts).unwrap();
    let dev = Device { dir, schemas: Schemas::load(), docs: BTreeMap::new() };
    let public = base64::engine::general_purpose::STANDARD.encode(key(7).verifying_key().as_bytes());
    for args in [
        &["config", "key", "add", "vendor", public.as_str()][..],
        &["config", "source", "file:///srv/update"],
        &["config", "log", "/var/log/update.log"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_update")).arg("--root").arg(dev.root()).args(args).output().unwrap();
        assert!(out.status.success(), "update {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    dev
}

/// The documents every state records.
fn record_state(dev: &mut Device, status_code: i32) {
    dev.record("status", Doc::Status, &["status", "--json"], status_code);
    dev.record("history", Doc::History, &["history", "--json"], 0);
    dev.record("history-verify", Doc::HistoryVerify, &["history", "--verify", "--json"], 0);
}

#[test]
fn every_json_document_matches_its_schema_and_fixture_in_each_device_state() {
    let mut dev = device();

    // Idle: 1.0.0 committed in A, 2.0.0 published.
    publish(&dev, "2.0.0");
    record_state(&mut dev, 0);
    dev.record("check", Doc::Check, &["--json"], 0);
    dev.record("key-list", Doc::KeyList, &["config", "key", "list", "--json"], 0);
    dev.record("config-show", Doc::ConfigShow, &["config", "show", "--json"], 0);
    let set = dev.record("config-set", Doc::Change, &["config", "schedule", "off", "--json"], 0);
    assert_eq!((&set["setting"], &set["value"]), (&Value::from("schedule"), &Value::from("off")), "{set:#}");
    let verify = dev.record("config-verify", Doc::Change, &["config", "verify", "true", "--json"], 0);
    assert_eq!(verify["value"], true, "{verify:#}");
    let drivers = dev.run(&["drivers", "--json"]);
    assert_eq!(drivers.code, 0);
    // Which other drivers decline depends on the tools installed here: schema only, no fixture.
    dev.schemas.check(Doc::Drivers, &drivers.json, "update drivers --json");
    let native = &drivers.json["drivers"].as_array().unwrap().iter().find(|d| d["name"] == "native").unwrap();
    assert_eq!(native["state"], "available", "{native:#}");
    // Errors: a usage error found by the parser and one found by the command.
    dev.record("error-usage", Doc::Error, &["--json", "status", "--bogus"], 2);
    dev.record("error-refused", Doc::Error, &["--json", "cancel"], 7);
    dev.compare("idle");

    // Pending reboot: 2.0.0 installed into B, not booted yet.
    let install = dev.record("install", Doc::Install, &["--now", "--noreboot", "--json"], 0);
    assert_eq!(install["installed"]["reboot-required"], true);
    assert_eq!(install["installed"]["reboot_required"], true, "the version-1 legacy key");
    let status = dev.record("status", Doc::Status, &["status", "--json"], 0);
    assert_eq!(status["pending"]["version"], "2.0.0", "{status:#}");
    dev.record("history", Doc::History, &["history", "--json"], 0);
    dev.record("check", Doc::Check, &["--json"], 0);
    dev.record("error-refused", Doc::Error, &["mark-good", "--json"], 7);
    dev.compare("pending-reboot");

    // Trying: booted into B, not committed.
    assert_eq!(reboot_root(&dev.root()).unwrap().to_string(), "B");
    record_state(&mut dev, 0);
    let status = &dev.docs["status"];
    let b = &status["slots"][1];
    assert_eq!((&b["state"], &b["booted"]), (&Value::from("trying"), &Value::from(true)), "{status:#}");
    assert_eq!(b["tries-left"], b["tries_left"], "the version-1 legacy key");
    dev.compare("trying");

    // Fell back: B ran out of boot attempts; the bootloader went back to A. Exit 12.
    for _ in 0..10 {
        if reboot_root(&dev.root()).unwrap().to_string() == "A" {
            break;
        }
    }
    record_state(&mut dev, 12);
    let status = &dev.docs["status"];
    assert!(status["fallback"].is_string(), "{status:#}");
    let good = dev.record("mark-good", Doc::Change, &["mark-good", "--json"], 0);
    assert_eq!(good["slot"], "A", "{good:#}");
    dev.compare("fell-back");
}

#[test]
fn a_tampered_audit_log_is_one_document_with_its_error_and_exit_6() {
    let dev = device();
    let log = dev.root().join("var/log/update/audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("\"source\"", "\"sources\"", 1)).unwrap();
    let out = dev.run(&["history", "--verify", "--json"]);
    assert_eq!(out.code, 6, "{:#}", out.json);
    dev.schemas.check(Doc::HistoryVerify, &out.json, "history --verify --json");
    assert_eq!(out.json["error"]["kind"], "verification");
    assert_eq!(out.json["error"]["exit-code"], 6);
    assert!(!out.json["problems"].as_array().unwrap().is_empty());
}

#[test]
fn errors_with_json_go_to_stdout_and_keep_their_exit_code() {
    let dev = device();
    for (args, code, kind) in [
        (&["--json", "config", "verify", "maybe"][..], 2, "usage"),
        (&["config", "key", "add", "vendor", "AAAA", "--json"], 11, "keyring"),
        (&["--json", "--source", "file:///missing", "--now"], 10, "source"),
        (&["--json", "--progress-fd", "1"], 2, "usage"),
    ] {
        let out = dev.run(args);
        assert_eq!(out.code, code, "{args:?}: {:#}", out.json);
        dev.schemas.check(Doc::Error, &out.json, &format!("update {args:?}"));
        assert_eq!(out.json["error"]["kind"], kind, "{args:?}");
        assert_eq!(out.json["error"]["exit-code"], code, "{args:?}");
        assert!(!out.stderr.contains("error:"), "{args:?}: the error was also printed on stderr: {}", out.stderr);
    }
}

#[test]
fn progress_fd_gets_json_lines_and_a_stderr_that_is_no_terminal_gets_plain_lines() {
    let dev = device();
    publish(&dev, "2.0.0");
    let lines = dev.dir.path().join("progress.jsonl");
    // The caller opens descriptor 3 (here: the shell, onto a file) and names it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$@" 3>"$PROGRESS""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_update"))
        .args(["--root", dev.root().to_str().unwrap(), "--now", "--noreboot", "--progress-fd", "3"])
        .env("PROGRESS", &lines)
        .env_remove("UPDATE_ROOT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // stderr is a pipe here: plain lines, no carriage-return redraws.
    assert!(!stderr.contains('\r'), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("update: installing 50% (")), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("update: installing done (")), "{stderr}");
    let text = std::fs::read_to_string(&lines).unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for e in &events {
        dev.schemas.check(Doc::Progress, e, "a --progress-fd line");
    }
    let installing: Vec<&Value> = events.iter().filter(|e| e["phase"] == "installing").collect();
    assert_eq!(installing.first().map(|e| &e["event"]), Some(&Value::from("start")), "{text}");
    assert_eq!(installing.last().map(|e| &e["event"]), Some(&Value::from("finish")), "{text}");
    let last = installing.last().unwrap();
    assert_eq!((&last["percent"], &last["bytes-done"]), (&Value::from(100), &last["bytes-total"]), "{text}");
    let percents: Vec<u64> = installing.iter().filter_map(|e| e["percent"].as_u64()).collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "percent goes up: {percents:?}");
    assert!(percents.len() > 10, "a line per whole percent: {percents:?}");
}

#[test]
fn the_daemon_reports_its_install_as_plain_progress_lines() {
    let dev = device();
    publish(&dev, "2.0.0");
    assert_eq!(dev.run_text(&["config", "schedule", "daily", "1"]).0, 0);
    // The device's own `reboot` (inside the root) only leaves a mark.
    let reboot = dev.root().join("usr/sbin/reboot");
    std::fs::create_dir_all(reboot.parent().unwrap()).unwrap();
    std::fs::write(&reboot, "#!/bin/sh\ntouch \"$(dirname \"$0\")/../../rebooted\"\n").unwrap();
    std::fs::set_permissions(&reboot, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // Never checked before: the one round of --once is due, finds 2.0.0, installs and reboots.
    let (code, stderr) = dev.run_text(&["daemon", "--once"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(dev.root().join("rebooted").exists(), "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr}");
    for line in ["update: installing 0% (", "update: installing 50% (", "update: installing done ("] {
        assert!(stderr.lines().any(|l| l.starts_with(line)), "no '{line}' line: {stderr}");
    }
    let status = dev.run(&["status", "--json"]);
    assert_eq!(status.json["pending"]["version"], "2.0.0", "{:#}", status.json);
}

#[test]
fn a_progress_fd_that_is_not_open_for_writing_is_a_usage_error() {
    let dev = device();
    let before = std::fs::read(dev.root().join("var/log/update/audit.jsonl")).unwrap();
    for (fd, why) in [("9", "is not open"), ("0", "standard input"), ("1", "standard input and output")] {
        let out = dev.run_text(&["--now", "--progress-fd", fd]);
        assert_eq!(out.0, 2, "--progress-fd {fd}: {}", out.1);
        assert!(out.1.contains(&format!("--progress-fd {fd}: ")) && out.1.contains(why), "{}", out.1);
    }
    // Opened for reading only: refused, never reopened for writing.
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$@" 3</dev/null"#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_update"))
        .args(["--root", dev.root().to_str().unwrap(), "--now", "--progress-fd", "3"])
        .env_remove("UPDATE_ROOT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("file descriptor 3 is open for reading only"), "{stderr}");
    // `--progress-fd` belongs to `update` itself, not to a subcommand.
    assert_eq!(dev.run_text(&["status", "--progress-fd", "2"]).0, 2);
    assert_eq!(std::fs::read(dev.root().join("var/log/update/audit.jsonl")).unwrap(), before, "nothing was done");
}

#[test]
fn the_schemas_are_strict_and_one_per_document() {
    let schemas = Schemas::load();
    let names: Vec<String> = std::fs::read_dir(repo().join("docs/reference/schemas"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for name in &names {
        let doc = name.strip_suffix(".schema.json").unwrap_or_else(|| panic!("{name}: not a schema"));
        assert!(Doc::ALL.iter().any(|d| d.name() == doc), "{name} describes no document of update");
    }
    let good = serde_json::json!({
        "schema": "libupdate/error/1",
        "error": {"kind": "busy", "message": "another update runs", "exit-code": 8}
    });
    schemas.check(Doc::Error, &good, "a good error");
    let v = &schemas.0["error"];
    let mut unknown_key = good.clone();
    unknown_key["error"]["exit_code"] = 8.into();
    let mut unknown_kind = good.clone();
    unknown_kind["error"]["kind"] = "weird".into();
    let mut other_major = good.clone();
    other_major["schema"] = "libupdate/error/2".into();
    let mut missing = good.clone();
    missing["error"].as_object_mut().unwrap().remove("exit-code");
    for bad in [unknown_key, unknown_kind, other_major, missing] {
        assert!(!v.is_valid(&bad), "accepted {bad:#}");
    }
}
