//! The built-in `files` and `app` handlers through the shared handler suite.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;
use update_components::app::AppHandler;
use update_components::files::FilesHandler;
use update_core::component::{Component, ComponentName, DeviceComponent, Handler, Kind, Settings};
use update_test::handler_suite::{HandlerFixture, Release, run_suite};

use crate::support::{component, raw_tar, tar_of};

fn index(release: Release) -> &'static [u8] {
    if release == Release::V1 { b"tree 1\n" } else { b"tree 2\n" }
}

fn payload(kind: Kind, release: Release) -> (Component, Vec<u8>) {
    let (version, bytes) = match release {
        Release::V1 => ("1.0.0", tar_of(&[("index.txt", index(release))])),
        Release::V2 => ("2.0.0", tar_of(&[("index.txt", index(release)), ("extra/new.txt", b"new")])),
        Release::Broken => ("2.0.0", raw_tar(b"../../escape.txt", tar::EntryType::Regular, "", b"x")),
    };
    (component("site", kind, version, &bytes, json!({})), bytes)
}

fn verify(dir: &Path, release: Release) -> Result<(), String> {
    let got = fs::read(dir.join("index.txt")).map_err(|e| format!("{}: {e}", dir.display()))?;
    if got != index(release) {
        return Err(format!("index.txt is {:?}", String::from_utf8_lossy(&got)));
    }
    if dir.join("extra/new.txt").exists() != (release == Release::V2) {
        return Err("extra/new.txt does not match the release".into());
    }
    Ok(())
}

struct FilesFixture;

impl HandlerFixture for FilesFixture {
    fn name(&self) -> String {
        "files".into()
    }
    fn device(&mut self, root: &Path) -> DeviceComponent {
        fs::create_dir_all(root.join("opt")).unwrap();
        let mut settings = Settings::new();
        settings.insert("path".into(), json!("/opt/site"));
        DeviceComponent { name: ComponentName::new("site").unwrap(), kind: Kind::Files, settings }
    }
    fn handler(&mut self) -> Box<dyn Handler> {
        Box::new(FilesHandler::new())
    }
    fn payload(&mut self, release: Release) -> (Component, Vec<u8>) {
        payload(Kind::Files, release)
    }
    fn break_health(&mut self, _: &Path, _: &DeviceComponent) -> bool {
        false
    }
    fn verify_active(&mut self, root: &Path, _: &DeviceComponent, release: Release) -> Result<(), String> {
        verify(&root.join("opt/site"), release)
    }
}

#[test]
fn the_files_handler_passes_the_shared_handler_suite() {
    run_suite(&mut FilesFixture);
}

struct AppFixture;

impl HandlerFixture for AppFixture {
    fn name(&self) -> String {
        "app".into()
    }
    fn device(&mut self, root: &Path) -> DeviceComponent {
        let bin = root.join("usr/bin");
        fs::create_dir_all(&bin).unwrap();
        for (name, script) in [
            ("site-restart", "#!/bin/sh\necho \"$UPDATE_APP_VERSION\" > \"$UPDATE_ROOT/restarted\"\n"),
            ("site-health", "#!/bin/sh\n! grep -q damaged \"$UPDATE_ROOT$UPDATE_APP_DIR/index.txt\"\n"),
        ] {
            fs::write(bin.join(name), script).unwrap();
            fs::set_permissions(bin.join(name), fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut settings = Settings::new();
        settings.insert("restart".into(), json!(["/usr/bin/site-restart"]));
        settings.insert("health".into(), json!(["/usr/bin/site-health"]));
        DeviceComponent { name: ComponentName::new("site").unwrap(), kind: Kind::App, settings }
    }
    fn handler(&mut self) -> Box<dyn Handler> {
        Box::new(AppHandler::new())
    }
    fn payload(&mut self, release: Release) -> (Component, Vec<u8>) {
        payload(Kind::App, release)
    }
    fn break_health(&mut self, root: &Path, _: &DeviceComponent) -> bool {
        fs::write(root.join("var/lib/update/apps/site/current/index.txt"), b"damaged").unwrap();
        true
    }
    fn verify_active(&mut self, root: &Path, _: &DeviceComponent, release: Release) -> Result<(), String> {
        verify(&root.join("var/lib/update/apps/site/current"), release)
    }
}

#[test]
fn the_app_handler_passes_the_shared_handler_suite() {
    run_suite(&mut AppFixture);
}
