//! The built-in app and files handlers through the whole chain: a signed components-only bundle
//! (format 2) in the source, `install_now` (what `update --now` runs), the engine's transaction
//! and the real handlers with real processes. The payloads are packed by GNU tar.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Instant;

use update_bundle::{ComponentSource, CreateOptions};
use update_core::component::{ComponentName, Kind, Settings};
use update_core::config::ComponentConfig;
use update_core::{KeyName, Paths};

use crate::common::{Fixture, v};

/// Appends "<VERSION in current> <version it was told>" to /run/web.started.
const RESTART: &str = "#!/bin/sh\nset -e\nv=$(cat \"$UPDATE_ROOT$UPDATE_APP_DIR/VERSION\")\necho \"$v $UPDATE_APP_VERSION\" >> \"$UPDATE_ROOT/run/web.started\"\n";
const HEALTH: &str = "#!/bin/sh\nexec grep -q '^ok' \"$UPDATE_ROOT$UPDATE_APP_DIR/health\"\n";

fn script(fx: &Fixture, device_path: &str, text: &str) {
    let p = fx.root().join(device_path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `[components.web]` (an app with restart and health scripts) and `[components.site]` (files
/// at /opt/site).
fn configure(fx: &Fixture) {
    script(fx, "/usr/lib/web/restart", RESTART);
    script(fx, "/usr/lib/web/health", HEALTH);
    std::fs::create_dir_all(fx.root().join("run")).unwrap();
    let paths = Paths::new(fx.root());
    let mut config = update_core::config::Config::load(&paths).unwrap();
    let web = serde_json::json!({
        "restart": ["/usr/lib/web/restart"],
        "health": ["/usr/lib/web/health"],
        "health-timeout": 10,
    });
    let site = serde_json::json!({ "path": "/opt/site" });
    for (name, kind, settings) in [("web", Kind::App, web), ("site", Kind::Files, site)] {
        let serde_json::Value::Object(settings) = settings else { unreachable!() };
        config.components.insert(ComponentName::new(name).unwrap(), ComponentConfig { kind, settings });
    }
    config.store(&paths).unwrap();
}

/// A tar of a tree with `files`, packed by GNU tar.
fn tar_of(fx: &Fixture, label: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let src = fx.images.join(format!("{label}.d"));
    for (name, data) in files {
        let p = src.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let out = fx.images.join(format!("{label}.tar"));
    let st = std::process::Command::new("tar").arg("-C").arg(&src).arg("-cf").arg(&out).arg(".").status().unwrap();
    assert!(st.success());
    out
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

fn app(fx: &Fixture, version: &str, health: &str, blob: &[u8]) -> ComponentSource {
    let label = format!("web-{version}-{health}");
    let path =
        tar_of(fx, &label, &[("VERSION", version.as_bytes()), ("health", health.as_bytes()), ("lib/web.bin", blob)]);
    part("web", Kind::App, version, path)
}

fn started(fx: &Fixture) -> Vec<String> {
    std::fs::read_to_string(fx.root().join("run/web.started")).unwrap_or_default().lines().map(str::to_owned).collect()
}

fn read(fx: &Fixture, device_path: &str) -> String {
    std::fs::read_to_string(fx.root().join(device_path.trim_start_matches('/'))).unwrap()
}

fn os_state(fx: &Fixture) -> std::collections::BTreeMap<String, String> {
    let mut m = fx.fingerprint();
    m.remove("var/lib/update/slots.json");
    m
}

#[test]
fn an_app_and_a_file_tree_update_without_a_reboot_and_a_broken_app_is_rolled_back() {
    let fx = Fixture::new();
    configure(&fx);
    let up = fx.updater();
    let os = os_state(&fx);
    let site1 = tar_of(&fx, "site-1", &[("index.html", b"site one")]);
    fx.publish(&release(
        &fx,
        "1.1",
        vec![app(&fx, "1.0.0", "ok", b"app one"), part("site", Kind::Files, "1.0.0", site1)],
    ));
    let outcome = up.install_now(false).unwrap().installed.unwrap();
    assert!(!outcome.reboot_required);
    assert_eq!(started(&fx), ["1.0.0 1.0.0"]);
    assert_eq!(read(&fx, "/opt/site/index.html"), "site one");

    // A 10 MiB app: timed from install_now (what `update --now` runs) to committed.
    let blob: Vec<u8> = (0..10u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0]).collect();
    fx.publish(&release(&fx, "1.2", vec![app(&fx, "2.0.0", "ok", &blob)]));
    let t = Instant::now();
    let outcome = up.install_now(false).unwrap().installed.unwrap();
    let took = t.elapsed();
    eprintln!("app-only update of a 10 MiB app, install_now to committed: {took:?}");
    assert!(!outcome.reboot_required);
    assert_eq!(started(&fx).last().unwrap(), "2.0.0 2.0.0");
    assert_eq!(std::fs::read(fx.root().join("var/lib/update/apps/web/current/lib/web.bin")).unwrap(), blob);
    let status = up.status().unwrap();
    let web = status.components.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web.status.as_ref().unwrap().active, Some(v("2.0.0")));

    // A broken app and a new site in one transaction: both go back, the old app runs again.
    let site2 = tar_of(&fx, "site-2", &[("index.html", b"site two")]);
    fx.publish(&release(
        &fx,
        "1.3",
        vec![app(&fx, "3.0.0", "broken", b"app three"), part("site", Kind::Files, "2.0.0", site2)],
    ));
    let e = up.install_now(false).unwrap_err().to_string();
    assert!(e.contains("health check"), "{e}");
    assert_eq!(started(&fx).last().unwrap(), "2.0.0 2.0.0", "the old version restarted: {:?}", started(&fx));
    assert!(started(&fx).contains(&"3.0.0 3.0.0".to_owned()), "the broken one did run");
    assert_eq!(read(&fx, "/opt/site/index.html"), "site one");
    assert_eq!(read(&fx, "/var/lib/update/apps/web/current/VERSION"), "2.0.0");
    assert_eq!(up.status().unwrap().version, Some(v("1.2")));
    assert_eq!(os_state(&fx), os, "no OS slot, boot environment or data partition changed");
}
