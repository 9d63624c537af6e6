//! The `data` handler with real files: the shared suite, the per-file policies, the snapshot,
//! the journal after a cut, and hostile payloads and planted links.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use update_components::data::DataHandler;
use update_core::component::{Component, ComponentName, ComponentState, DeviceComponent, Handler, Kind};
use update_test::handler_suite::{Device, HandlerFixture, Release, run_suite};

use crate::support::{component, raw_tar, tar_of};

const BASE_CONF: &str = "# site\nname=plant\nport=80\nmode=normal\nlevel=3\nretries=5\n";
const USER_NOTE: &[u8] = b"the user's own notes, not part of the data set\n";

fn data_dir(root: &Path) -> PathBuf {
    root.join("data/config")
}

fn device_entry() -> DeviceComponent {
    let mut settings = update_core::component::Settings::new();
    settings.insert("path".into(), json!("/data/config"));
    DeviceComponent { name: ComponentName::new("site").unwrap(), kind: Kind::Data, settings }
}

/// The files of each release (all under the default policy `replace`).
fn files(release: Release) -> Vec<(&'static str, Vec<u8>)> {
    match release {
        Release::V1 => vec![
            ("etc/site.conf", BASE_CONF.as_bytes().to_vec()),
            ("calibration.bin", vec![1u8; 300]),
            ("old-only.txt", b"dropped in v2\n".to_vec()),
        ],
        Release::V2 | Release::Broken => vec![
            ("etc/site.conf", BASE_CONF.replace("port=80", "port=8080").into_bytes()),
            ("calibration.bin", vec![2u8; 400]),
            ("tables/new.csv", b"a,b\n1,2\n".to_vec()),
        ],
    }
}

struct DataFixture;

impl HandlerFixture for DataFixture {
    fn name(&self) -> String {
        "data".into()
    }
    fn device(&mut self, root: &Path) -> DeviceComponent {
        fs::create_dir_all(data_dir(root).join("user")).unwrap();
        fs::write(data_dir(root).join("user/notes.txt"), USER_NOTE).unwrap();
        device_entry()
    }
    fn handler(&mut self) -> Box<dyn Handler> {
        Box::new(DataHandler::new())
    }
    fn payload(&mut self, release: Release) -> (Component, Vec<u8>) {
        let (version, bytes) = match release {
            Release::V1 | Release::V2 => {
                let f = files(release);
                let entries: Vec<(&str, &[u8])> = f.iter().map(|(n, b)| (*n, b.as_slice())).collect();
                (if release == Release::V1 { "1.0.0" } else { "2.0.0" }, tar_of(&entries))
            }
            Release::Broken => ("2.0.0", raw_tar(b"../escape.txt", tar::EntryType::Regular, "", b"x")),
        };
        (component("site", Kind::Data, version, &bytes, json!({})), bytes)
    }
    fn break_health(&mut self, root: &Path, _device: &DeviceComponent) -> bool {
        fs::write(data_dir(root).join("calibration.bin"), b"damaged").unwrap();
        true
    }
    fn verify_active(&mut self, root: &Path, _device: &DeviceComponent, release: Release) -> Result<(), String> {
        let dir = data_dir(root);
        for (name, bytes) in files(release) {
            let got = fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
            if got != bytes {
                return Err(format!("{name} differs"));
            }
        }
        let other = if release == Release::V1 { Release::V2 } else { Release::V1 };
        for (name, _) in files(other) {
            if !files(release).iter().any(|(n, _)| *n == name) && dir.join(name).exists() {
                return Err(format!("{name} of {other:?} is still there"));
            }
        }
        if fs::read(dir.join("user/notes.txt")).map_err(|e| e.to_string())? != USER_NOTE {
            return Err("the user's notes changed".into());
        }
        Ok(())
    }
}

#[test]
fn the_data_handler_passes_the_shared_handler_suite() {
    run_suite(&mut DataFixture);
}

/// A device whose data directory holds `v1` of a component with `options`, committed.
fn device_with(v1: &[(&str, &[u8])], options: serde_json::Value) -> Device {
    let mut d = Device::new(&mut DataFixture);
    let bytes = tar_of(v1);
    d.update("tx-1", &component("site", Kind::Data, "1.0.0", &bytes, options), &bytes).unwrap();
    d
}

fn update_to(d: &mut Device, v2: &[(&str, &[u8])], options: serde_json::Value) -> Component {
    let bytes = tar_of(v2);
    let c = component("site", Kind::Data, "2.0.0", &bytes, options);
    d.update("tx-2", &c, &bytes).unwrap();
    c
}

fn read(d: &Device, name: &str) -> String {
    fs::read_to_string(data_dir(d.root.path()).join(name)).unwrap()
}

#[test]
fn merge_keeps_the_users_and_the_vendors_changes_to_different_lines() {
    let options = json!({ "policy": { "etc/site.conf": "merge" } });
    let mut d = device_with(&[("etc/site.conf", BASE_CONF.as_bytes())], options.clone());
    let user = BASE_CONF.replace("name=plant", "name=north-plant").replace("retries=5\n", "retries=5\nlocal=1\n");
    fs::write(data_dir(d.root.path()).join("etc/site.conf"), &user).unwrap();
    let vendor = format!("# generated\n{}", BASE_CONF.replace("level=3", "level=4"));
    update_to(&mut d, &[("etc/site.conf", vendor.as_bytes())], options.clone());
    let merged = read(&d, "etc/site.conf");
    assert_eq!(merged, "# generated\n# site\nname=north-plant\nport=80\nmode=normal\nlevel=4\nretries=5\nlocal=1\n");
    assert!(!data_dir(d.root.path()).join("etc/site.conf.update-conflict").exists());

    // The next update merges against v2 (the committed vendor version), not v1.
    let vendor3 = vendor.replace("mode=normal", "mode=eco");
    let bytes = tar_of(&[("etc/site.conf", vendor3.as_bytes())]);
    d.update("tx-3", &component("site", Kind::Data, "3.0.0", &bytes, options), &bytes).unwrap();
    assert_eq!(read(&d, "etc/site.conf"), merged.replace("mode=normal", "mode=eco"));
}

#[test]
fn a_merge_conflict_keeps_the_users_lines_and_is_recorded() {
    let options = json!({ "policy": { "etc/site.conf": "merge" } });
    let mut d = device_with(&[("etc/site.conf", BASE_CONF.as_bytes())], options.clone());
    let user = BASE_CONF.replace("port=80", "port=8443").replace("retries=5", "retries=9");
    fs::write(data_dir(d.root.path()).join("etc/site.conf"), &user).unwrap();
    let vendor = BASE_CONF.replace("port=80", "port=8080").replace("# site\n", "# site v2\n");
    let bytes = tar_of(&[("etc/site.conf", vendor.as_bytes())]);
    let c = component("site", Kind::Data, "2.0.0", &bytes, options);
    d.install("tx-2", &c, &bytes).unwrap();
    d.phase("tx-2", "activate", &c).unwrap();
    // The user's port kept, the vendor's header and the user's retries merged.
    assert_eq!(read(&d, "etc/site.conf"), user.replace("# site\n", "# site v2\n"));
    let note = read(&d, "etc/site.conf.update-conflict");
    assert!(note.contains("@@ line 3\n<<<<<<< user (kept)\nport=8443\n||||||| previous vendor\nport=80\n=======\nport=8080\n>>>>>>> vendor 2.0.0"), "{note}");
    let lines = d.events.lines.borrow().join("\n");
    assert!(
        lines.contains("audit Install Ok site merge conflict in etc/site.conf line 3 (transaction tx-2)"),
        "{lines}"
    );
    let s = d.status();
    assert_eq!(s.state, ComponentState::Trial);
    assert!(s.detail.unwrap().contains("1 merge conflicts"));

    // Rollback: the user's file byte for byte, the conflict note gone.
    d.phase("tx-2", "rollback", &c).unwrap();
    assert_eq!(read(&d, "etc/site.conf"), user);
    assert!(!data_dir(d.root.path()).join("etc/site.conf.update-conflict").exists());
}

#[test]
fn keep_if_changed_keeps_only_what_the_user_changed() {
    let options = json!({ "policy": { "default": "keep-if-changed" } });
    let mut d = device_with(&[("cal/a.bin", b"factory a"), ("cal/b.bin", b"factory b")], options.clone());
    fs::write(data_dir(d.root.path()).join("cal/a.bin"), b"calibrated on site").unwrap();
    update_to(
        &mut d,
        &[("cal/a.bin", b"factory a v2"), ("cal/b.bin", b"factory b v2"), ("cal/c.bin", b"new")],
        options,
    );
    assert_eq!(read(&d, "cal/a.bin"), "calibrated on site");
    assert_eq!(read(&d, "cal/b.bin"), "factory b v2");
    assert_eq!(read(&d, "cal/c.bin"), "new");
}

#[test]
fn rollback_restores_the_snapshot_byte_for_byte_and_leaves_other_user_data_alone() {
    let mut d = device_with(&[("etc/site.conf", BASE_CONF.as_bytes()), ("gone.txt", b"v1 only")], json!({}));
    let dir = data_dir(d.root.path());
    // The user changed a data-set file (and its mode), and keeps files of their own.
    fs::write(dir.join("etc/site.conf"), b"edited by the user\n\0binary tail").unwrap();
    fs::set_permissions(dir.join("etc/site.conf"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir_all(dir.join("etc/local.d")).unwrap();
    fs::write(dir.join("etc/local.d/mine.conf"), b"mine").unwrap();
    let before = tree(&dir);

    let bytes = tar_of(&[("etc/site.conf", b"vendor v2\n"), ("new/deep/file.txt", b"new"), ("empty-dir/", b"")]);
    let c = component("site", Kind::Data, "2.0.0", &bytes, json!({}));
    d.install("tx-2", &c, &bytes).unwrap();
    d.phase("tx-2", "activate", &c).unwrap();
    assert_eq!(read(&d, "etc/site.conf"), "vendor v2\n");
    assert!(!dir.join("gone.txt").exists(), "an unchanged file the vendor dropped is removed");
    assert!(dir.join("empty-dir").is_dir() && dir.join("new/deep/file.txt").is_file());
    assert_eq!(fs::read(dir.join("etc/local.d/mine.conf")).unwrap(), b"mine");
    d.phase("tx-2", "rollback", &c).unwrap();
    assert_eq!(tree(&dir), before, "rollback restores every byte, mode and directory");
    assert_eq!(d.status().active.unwrap().to_string(), "1.0.0");
}

/// Every file and directory under `dir`: path, mode, bytes.
fn tree(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(p) = stack.pop() {
        for e in fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            let meta = fs::symlink_metadata(e.path()).unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if meta.is_dir() {
                stack.push(e.path());
                out.push((rel, meta.permissions().mode(), Vec::new()));
            } else {
                out.push((rel, meta.permissions().mode(), fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn an_activation_cut_in_the_middle_is_replayed_or_rolled_back_from_the_journal() {
    for finish in ["activate", "rollback"] {
        let mut d = device_with(&[("a.txt", b"a1"), ("b.txt", b"b1"), ("c.txt", b"c1")], json!({}));
        let dir = data_dir(d.root.path());
        let before = tree(&dir);
        let bytes = tar_of(&[("a.txt", b"a2"), ("b.txt", b"b2"), ("c.txt", b"c2")]);
        let c = component("site", Kind::Data, "2.0.0", &bytes, json!({}));
        d.install("tx-2", &c, &bytes).unwrap();
        d.phase("tx-2", "activate", &c).unwrap();
        // The cut: only a.txt was applied and the state was not yet written.
        fs::write(dir.join("b.txt"), b"b1").unwrap();
        fs::write(dir.join("c.txt"), b"c1").unwrap();
        let state = d.root.path().join("var/lib/update/components/site/state.json");
        let text = fs::read_to_string(&state).unwrap().replace("\"trial\": true", "\"trial\": false");
        fs::write(&state, text).unwrap();
        d.phase("tx-2", finish, &c).unwrap();
        if finish == "activate" {
            for (n, v) in [("a.txt", "a2"), ("b.txt", "b2"), ("c.txt", "c2")] {
                assert_eq!(read(&d, n), v);
            }
            assert_eq!(d.status().state, ComponentState::Trial);
        } else {
            assert_eq!(tree(&dir), before);
            assert_eq!(d.status().state, ComponentState::Committed);
        }
    }
}

#[test]
fn hostile_payloads_are_refused_and_change_nothing() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("parent", raw_tar(b"../escape.txt", tar::EntryType::Regular, "", b"x")),
        ("nested parent", raw_tar(b"etc/../../escape.txt", tar::EntryType::Regular, "", b"x")),
        ("absolute", raw_tar(b"/etc/passwd", tar::EntryType::Regular, "", b"x")),
        ("absolute 2", raw_tar(b"/data/config/x", tar::EntryType::Regular, "", b"x")),
        ("symlink", raw_tar(b"link", tar::EntryType::Symlink, "/etc/shadow", b"")),
        ("symlink 2", raw_tar(b"etc", tar::EntryType::Symlink, "../../..", b"")),
        ("hardlink", raw_tar(b"hard", tar::EntryType::Link, "/etc/passwd", b"")),
        ("device", raw_tar(b"dev", tar::EntryType::Char, "", b"")),
        ("fifo", raw_tar(b"fifo", tar::EntryType::Fifo, "", b"")),
        ("reserved name", raw_tar(b"x.update-conflict", tar::EntryType::Regular, "", b"x")),
        ("not a tar", b"this is not a tar archive at all, but long enough to be read as one".repeat(10)),
    ];
    for (what, bytes) in cases {
        let mut d = device_with(&[("a.txt", b"a1")], json!({}));
        let dir = data_dir(d.root.path());
        let before = tree(d.root.path());
        let c = component("site", Kind::Data, "2.0.0", &bytes, json!({}));
        let e = d.install("tx-2", &c, &bytes).unwrap_err();
        assert_eq!(e.kind(), update_core::ErrorKind::Refused, "{what}: {e}");
        assert!(!d.root.path().join("escape.txt").exists() && !dir.join("link").exists(), "{what}");
        d.phase("tx-2", "rollback", &c).unwrap();
        let after: Vec<_> =
            tree(d.root.path()).into_iter().filter(|(p, ..)| !p.starts_with("var/lib/update")).collect();
        let before: Vec<_> = before.into_iter().filter(|(p, ..)| !p.starts_with("var/lib/update")).collect();
        assert_eq!(after, before, "{what}");
        assert_eq!(d.status().active.unwrap().to_string(), "1.0.0", "{what}");
    }
}

#[test]
fn bad_options_and_settings_are_refused_at_check() {
    let bytes = tar_of(&[("a.txt", b"a")]);
    let mut d = Device::new(&mut DataFixture);
    for (what, options) in [
        ("unknown option", json!({ "allow-devices": true })),
        ("unknown policy word", json!({ "policy": { "a.txt": "overwrite" } })),
        ("policy path with ..", json!({ "policy": { "../a.txt": "merge" } })),
        ("absolute policy path", json!({ "policy": { "/a.txt": "merge" } })),
        ("policy not a table", json!({ "policy": "merge" })),
    ] {
        let c = component("site", Kind::Data, "1.0.0", &bytes, options);
        let e = d.phase("tx", "check", &c).unwrap_err();
        assert_eq!(e.kind(), update_core::ErrorKind::Refused, "{what}: {e}");
    }
    let c = component("site", Kind::Data, "1.0.0", &bytes, json!({}));
    d.device.settings.insert("colour".into(), json!("red"));
    assert!(d.phase("tx", "check", &c).unwrap_err().to_string().contains("unknown setting 'colour'"));
    d.device.settings.remove("colour");
    d.device.settings.insert("path".into(), json!("relative/dir"));
    assert!(d.phase("tx", "check", &c).is_err());
}

#[test]
fn a_link_planted_in_the_data_directory_is_never_written_through() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.conf");
    for plant in ["file", "directory"] {
        fs::write(&victim, b"outside, must not change").unwrap();
        let mut d = device_with(&[("etc/site.conf", BASE_CONF.as_bytes()), ("top.conf", b"t1")], json!({}));
        let dir = data_dir(d.root.path());
        match plant {
            "file" => {
                fs::remove_file(dir.join("top.conf")).unwrap();
                std::os::unix::fs::symlink(&victim, dir.join("top.conf")).unwrap();
            }
            _ => {
                fs::remove_dir_all(dir.join("etc")).unwrap();
                std::os::unix::fs::symlink(outside.path(), dir.join("etc")).unwrap();
                fs::write(outside.path().join("site.conf"), b"outside too").unwrap();
            }
        }
        let bytes = tar_of(&[("etc/site.conf", b"v2"), ("top.conf", b"t2")]);
        let c = component("site", Kind::Data, "2.0.0", &bytes, json!({}));
        d.install("tx-2", &c, &bytes).unwrap();
        let e = d.phase("tx-2", "activate", &c).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{plant}: {e}");
        assert_eq!(fs::read(&victim).unwrap(), b"outside, must not change", "{plant}");
        if plant == "directory" {
            assert_eq!(fs::read(outside.path().join("site.conf")).unwrap(), b"outside too");
        }
        d.phase("tx-2", "rollback", &c).unwrap();
        assert_eq!(d.status().active.unwrap().to_string(), "1.0.0");
    }
}
