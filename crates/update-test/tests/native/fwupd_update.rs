//! The built-in fwupd handler through the whole chain: `[components.bios]` with `kind = "fwupd"`
//! in update.toml, a signed components-only bundle in the source, `install_now`, the engine's
//! transaction, and a real fwupd daemon (its test device) inside the device root
//! ([`update_test::fwupd`]).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use update_bundle::{ComponentSource, CreateOptions};
use update_core::component::{ComponentName, Kind, Settings};
use update_core::config::ComponentConfig;
use update_core::{KeyName, Paths};
use update_test::fwupd::{FAKE_GUID, Fwupd, Lab, Signer, available};

use crate::common::{Fixture, v};

/// `[components.bios]` (fwupd's test device) and `[components.web]` (an app whose health script
/// fails when its tree says "broken").
fn configure(fx: &Fixture) {
    for (path, text) in [
        ("usr/lib/web/restart", "#!/bin/sh\nexit 0\n"),
        ("usr/lib/web/health", "#!/bin/sh\nexec grep -q '^ok' \"$UPDATE_ROOT$UPDATE_APP_DIR/health\"\n"),
    ] {
        let p = fx.root().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let paths = Paths::new(fx.root());
    let mut config = update_core::config::Config::load(&paths).unwrap();
    let bios = serde_json::json!({ "device": FAKE_GUID });
    let web = serde_json::json!({ "restart": ["/usr/lib/web/restart"], "health": ["/usr/lib/web/health"] });
    for (name, kind, settings) in [("bios", Kind::Fwupd, bios), ("web", Kind::App, web)] {
        let serde_json::Value::Object(settings) = settings else { unreachable!() };
        config.components.insert(ComponentName::new(name).unwrap(), ComponentConfig { kind, settings });
    }
    config.store(&paths).unwrap();
}

fn cab(fx: &Fixture, lab: &Lab, version: &str) -> ComponentSource {
    let path = fx.images.join(format!("bios-{version}.cab"));
    std::fs::write(&path, lab.cab(version, FAKE_GUID, Signer::Trusted)).unwrap();
    part("bios", Kind::Fwupd, version, path)
}

fn app(fx: &Fixture, version: &str, health: &str) -> ComponentSource {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in [("VERSION", version.as_bytes()), ("health", health.as_bytes())] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, bytes).unwrap();
    }
    let path = fx.images.join(format!("web-{version}.tar"));
    std::fs::write(&path, b.into_inner().unwrap()).unwrap();
    part("web", Kind::App, version, path)
}

fn part(name: &str, kind: Kind, version: &str, path: PathBuf) -> ComponentSource {
    ComponentSource {
        name: ComponentName::new(name).unwrap(),
        kind,
        version: v(version),
        requires: Vec::new(),
        options: Settings::new(),
        path,
    }
}

fn release(fx: &Fixture, version: &str, parts: Vec<ComponentSource>) -> CreateOptions {
    let mut o = CreateOptions::new(v(version), "demo-board");
    o.components = parts;
    o.signers = vec![(KeyName::new("vendor").unwrap(), fx.key.clone())];
    o
}

#[test]
fn fwupd_firmware_updates_in_a_transaction_and_is_reinstalled_when_an_app_fails() {
    if !available("fwupd_firmware_updates_in_a_transaction_and_is_reinstalled_when_an_app_fails") {
        return;
    }
    let fx = Fixture::new();
    let lab = Lab::new();
    let fwupd = Fwupd::start(fx.root(), &lab, "");
    configure(&fx);
    let up = fx.updater();

    // 1.2.3 with app 1.0.0: fwupd writes the device now, no reboot, the status reads it back.
    fx.publish(&release(&fx, "1.1", vec![cab(&fx, &lab, "1.2.3"), app(&fx, "1.0.0", "ok")]));
    let outcome = up.install_now(false).unwrap().installed.unwrap();
    assert!(!outcome.reboot_required);
    assert_eq!(fwupd.version(), "1.2.3");
    let status = up.status().unwrap();
    let entry = status.components.iter().find(|c| c.name == "bios").unwrap();
    assert_eq!(entry.status.as_ref().unwrap().active, Some(v("1.2.3")));

    // 1.2.4 with a broken app: the app's health check fails, the whole transaction rolls back,
    // and the device, which fwupd had flashed to 1.2.4, gets the kept 1.2.3 cab back.
    fx.publish(&release(&fx, "1.2", vec![cab(&fx, &lab, "1.2.4"), app(&fx, "2.0.0", "broken")]));
    let e = up.install_now(false).unwrap_err().to_string();
    assert!(e.contains("health check"), "{e}");
    assert_eq!(fwupd.version(), "1.2.3");
    let log = std::fs::read_to_string(fx.root().join("var/log/update.log")).unwrap();
    for step in ["fwupdmgr install 1.2.4", "fwupdmgr install --allow-older 1.2.3", "rolled back to version 1.2.3"] {
        assert!(log.contains(step), "the log does not say {step:?}:\n{log}");
    }
    assert_eq!(up.status().unwrap().version, Some(v("1.1")));

    // The same firmware with a working app goes through.
    fx.publish(&release(&fx, "1.3", vec![cab(&fx, &lab, "1.2.4"), app(&fx, "2.0.0", "ok")]));
    up.install_now(false).unwrap().installed.unwrap();
    assert_eq!(fwupd.version(), "1.2.4");
    assert_eq!(up.status().unwrap().version, Some(v("1.3")));
}
