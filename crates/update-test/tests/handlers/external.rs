//! Out-of-tree handlers: the example handler (a real versioned directory installer) through the
//! shared suite, and the protocol's refusals with small handlers written for each case.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use update_components::external::ExternalHandler;
use update_core::component::{Component, ComponentName, DeviceComponent, Handler, HandlerContext, Kind};
use update_test::handler_suite::{Device, HandlerFixture, RecordingEvents, Release, run_suite};

use crate::support::{component, raw_tar, tar_of};

const KIND: &str = "example-dir";

fn install_handler(root: &Path, kind: &str, program: &[u8]) -> PathBuf {
    let dir = root.join("usr/lib/update/handlers");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(kind);
    fs::write(&path, program).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn device_entry(kind: &str) -> DeviceComponent {
    let mut settings = update_core::component::Settings::new();
    settings.insert("path".into(), json!("/opt/example"));
    DeviceComponent { name: ComponentName::new("web").unwrap(), kind: Kind::External(kind.into()), settings }
}

struct ExampleFixture;

fn content(release: Release) -> &'static [u8] {
    if release == Release::V1 { b"hello from 1\n" } else { b"hello from 2\n" }
}

impl HandlerFixture for ExampleFixture {
    fn name(&self) -> String {
        "external example-dir".into()
    }
    fn device(&mut self, root: &Path) -> DeviceComponent {
        let program = fs::read(env!("CARGO_BIN_EXE_update-handler-example-dir")).unwrap();
        install_handler(root, KIND, &program);
        device_entry(KIND)
    }
    fn handler(&mut self) -> Box<dyn Handler> {
        Box::new(ExternalHandler::new(KIND))
    }
    fn payload(&mut self, release: Release) -> (Component, Vec<u8>) {
        let (version, bytes) = match release {
            Release::V1 => ("1.0.0", tar_of(&[("www/", b""), ("www/index.txt", content(release))])),
            Release::V2 => {
                ("2.0.0", tar_of(&[("www/", b""), ("www/index.txt", content(release)), ("www/new.txt", b"new")]))
            }
            Release::Broken => ("2.0.0", raw_tar(b"../../etc/passwd", tar::EntryType::Regular, "", b"x")),
        };
        (component("web", Kind::External(KIND.into()), version, &bytes, json!({})), bytes)
    }
    fn break_health(&mut self, root: &Path, _device: &DeviceComponent) -> bool {
        fs::write(root.join("opt/example/current/www/index.txt"), b"damaged").unwrap();
        true
    }
    fn verify_active(&mut self, root: &Path, _device: &DeviceComponent, release: Release) -> Result<(), String> {
        let got = fs::read(root.join("opt/example/current/www/index.txt")).map_err(|e| e.to_string())?;
        if got != content(release) {
            return Err(format!("current/www/index.txt is {:?}", String::from_utf8_lossy(&got)));
        }
        let new = root.join("opt/example/current/www/new.txt").exists();
        if new != (release == Release::V2) {
            return Err(format!("new.txt present: {new}"));
        }
        Ok(())
    }
}

#[test]
fn the_example_out_of_tree_handler_passes_the_shared_handler_suite() {
    run_suite(&mut ExampleFixture);
}

/// A device whose `kind` handler is the shell script `script`, and a component for it.
fn scripted(kind: &str, script: &str) -> (Device, Component) {
    struct Scripted(String, String);
    impl HandlerFixture for Scripted {
        fn name(&self) -> String {
            self.0.clone()
        }
        fn device(&mut self, root: &Path) -> DeviceComponent {
            install_handler(root, &self.0, format!("#!/bin/sh\n{}\n", self.1).as_bytes());
            device_entry(&self.0)
        }
        fn handler(&mut self) -> Box<dyn Handler> {
            Box::new(ExternalHandler::new(&self.0))
        }
        fn payload(&mut self, _: Release) -> (Component, Vec<u8>) {
            unreachable!()
        }
        fn break_health(&mut self, _: &Path, _: &DeviceComponent) -> bool {
            false
        }
        fn verify_active(&mut self, _: &Path, _: &DeviceComponent, _: Release) -> Result<(), String> {
            Ok(())
        }
    }
    let d = Device::new(&mut Scripted(kind.into(), script.into()));
    let c = component("web", Kind::External(kind.into()), "1.0.0", b"payload", json!({}));
    (d, c)
}

const OK: &str = r#"{"protocol":{"major":1,"minor":0},"ok":true}"#;

#[test]
fn an_unknown_protocol_major_is_refused_clearly() {
    for answer in [r#"{"protocol":{"major":2,"minor":0},"ok":true}"#, r#"{"ok":true}"#] {
        let (mut d, c) = scripted("future", &format!("cat >/dev/null; echo '{answer}'"));
        let e = d.phase("tx", "commit", &c).unwrap_err();
        assert_eq!(e.kind(), update_core::ErrorKind::Refused, "{e}");
        assert!(
            e.to_string().contains("speaks protocol major") && e.to_string().contains("this update speaks 1"),
            "{e}"
        );
    }
}

#[test]
fn the_request_carries_the_protocol_phase_component_and_settings() {
    let (mut d, c) = scripted("echoer", &format!("cat > \"$UPDATE_ROOT/request.json\"; echo '{OK}'"));
    d.phase("tx-42", "health", &c).unwrap();
    let req: serde_json::Value =
        serde_json::from_slice(&fs::read(d.root.path().join("request.json")).unwrap()).unwrap();
    assert_eq!(req["protocol"], json!({ "major": 1, "minor": 0 }));
    assert_eq!(req["phase"], "health");
    assert_eq!(req["transaction"], "tx-42");
    assert_eq!(req["component"]["version"], "1.0.0");
    assert_eq!(req["device"]["settings"]["path"], "/opt/example");
    assert_eq!(req["state_dir"], d.root.path().join("var/lib/update/components/web").display().to_string());
    assert!(req.get("payload").is_none());
}

#[test]
fn garbage_failures_silence_and_floods_fail_the_phase() {
    let cases = [
        ("garbage", "echo 'all good!'; exit 0", "did not answer one JSON object"),
        ("two objects", &format!("echo '{OK}'; echo '{OK}'"), "did not answer one JSON object"),
        ("silence", "exit 0", "did not answer one JSON object"),
        ("array", "echo '[1,2]'", "did not answer one JSON object"),
        ("not ok", r#"echo '{"protocol":{"major":1,"minor":0},"ok":false,"error":"disk on fire"}'"#, "disk on fire"),
        ("exit 3", &format!("echo broken >&2; echo '{OK}'; exit 3"), "exit status: 3"),
        ("crash", "kill -SEGV $$", "signal"),
        ("flood", "yes '{}' | head -c 200000", "printed more than 65536 bytes"),
        ("malformed", r#"echo '{"protocol":{"major":1,"minor":0},"ok":"yes"}'"#, "malformed response"),
    ];
    for (what, script, expected) in cases {
        let (mut d, c) = scripted("liar", script);
        let e = d.phase("tx", "activate", &c).unwrap_err();
        assert!(e.to_string().contains(expected), "{what}: {e}");
    }
    // status needs a status.
    let (mut d, _) = scripted("mute", &format!("echo '{OK}'"));
    let ctx = d.ctx("s");
    let mut h = ExternalHandler::new("mute");
    assert!(h.status(&ctx).unwrap_err().to_string().contains("without a status"));
    drop(ctx);
    let _ = &mut d;
}

#[test]
fn a_hung_handler_is_stopped_at_the_time_limit() {
    let (d, c) = scripted("sleeper", "sleep 30");
    let events = RecordingEvents::default();
    let ctx = HandlerContext {
        paths: &d.paths,
        events: &events,
        transaction: "tx",
        device: &d.device,
        state_dir: d.paths.resolve("/var/lib/update/components/web"),
        timeout: Duration::from_secs(1),
    };
    let start = Instant::now();
    let e = ExternalHandler::new("sleeper").health(&ctx, &c).unwrap_err();
    assert!(e.to_string().contains("did not finish within 1 s"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(10));
    // Also while it holds the payload pipe without reading it.
    let (d, c) = scripted("sleeper2", "sleep 30 < /dev/null");
    let big = vec![7u8; 4 << 20];
    let c = Component {
        size: big.len() as u64,
        sha256: component("x", c.kind.clone(), "1.0.0", &big, json!({})).sha256,
        ..c
    };
    let ctx = HandlerContext { paths: &d.paths, device: &d.device, ..ctx };
    let start = Instant::now();
    let mut reader: &[u8] = &big;
    assert!(ExternalHandler::new("sleeper2").install(&ctx, &c, &mut reader).is_err());
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn install_streams_the_payload_on_a_fifo_and_a_handler_that_ignores_it_fails() {
    let (mut d, _) = scripted(
        "reader",
        &format!(
            "req=$(cat); p=$(printf '%s' \"$req\" | sed 's/.*\"payload\":\"\\([^\"]*\\)\".*/\\1/'); cat \"$p\" > \"$UPDATE_ROOT/got\"; echo '{OK}'"
        ),
    );
    let payload = vec![42u8; 3 << 20];
    let c = component("web", Kind::External("reader".into()), "1.0.0", &payload, json!({}));
    d.install("tx", &c, &payload).unwrap();
    assert_eq!(fs::read(d.root.path().join("got")).unwrap(), payload);
    assert!(!d.root.path().join("var/lib/update/components/web/.update-payload.fifo").exists());
    // A truncated payload is an error even when the handler says ok.
    assert!(d.install("tx", &c, &payload[..1000]).is_err());

    let (mut d, _) = scripted("ignorer", &format!("cat >/dev/null; echo '{OK}'"));
    let e = d.install("tx", &c, &payload).unwrap_err();
    assert!(e.to_string().contains("without reading the payload"), "{e}");
}

#[test]
fn only_a_handler_inside_the_root_runs() {
    let (mut d, c) = scripted("present", &format!("echo '{OK}'"));
    let missing = Component { kind: Kind::External("absent".into()), ..c.clone() };
    d.handler = Box::new(ExternalHandler::new("absent"));
    let e = d.phase("tx", "check", &missing).unwrap_err();
    assert_eq!(e.kind(), update_core::ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("no handler for kind absent"), "{e}");
    // A link out of the root to a host program is refused.
    let dir = d.root.path().join("usr/lib/update/handlers");
    std::os::unix::fs::symlink("/bin/true", dir.join("escape")).unwrap();
    d.handler = Box::new(ExternalHandler::new("escape"));
    let e = d.phase("tx", "commit", &c).unwrap_err();
    assert!(e.to_string().contains("inside the device root"), "{e}");
}
