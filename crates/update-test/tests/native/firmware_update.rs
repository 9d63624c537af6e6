//! The built-in firmware handler through the whole chain: `[components.mcu]` with `kind =
//! "firmware"` in update.toml, a signed components-only bundle in the source, `install_now` (what
//! `update --now` runs), the engine's transaction, and a simulated MCUboot MCU on a pty.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use update_bundle::{ComponentSource, CreateOptions};
use update_core::component::{ComponentName, Kind, Settings};
use update_core::config::ComponentConfig;
use update_core::{KeyName, Paths};
use update_test::mcu::{Fault, McuOptions, SimMcu};

use crate::common::{Fixture, v};

const SLOT: usize = 256 << 10;

/// `[components.mcu]` (the MCU on /dev/ttyACM0 under the root) and `[components.web]` (an app
/// whose health script fails when its tree says "broken").
fn configure(fx: &Fixture) -> SimMcu {
    let flash = fx.dir.path().join("mcu.flash");
    SimMcu::create_flash(&flash, SLOT, &SimMcu::image("1.0.0", 30_000)).unwrap();
    let opts = McuOptions { slot_size: SLOT, boot_time: Duration::from_millis(100), mtu: 1024 };
    let mcu = SimMcu::start(&flash, &fx.root().join("dev/ttyACM0"), opts).unwrap();
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
    let mcu_settings = serde_json::json!({
        "port": "/dev/ttyACM0", "baud": 115_200, "timeout-ms": 2000, "mtu": 1024, "reset-timeout-ms": 5000,
    });
    let web = serde_json::json!({ "restart": ["/usr/lib/web/restart"], "health": ["/usr/lib/web/health"] });
    for (name, kind, settings) in [("mcu", Kind::Firmware, mcu_settings), ("web", Kind::App, web)] {
        let serde_json::Value::Object(settings) = settings else { unreachable!() };
        config.components.insert(ComponentName::new(name).unwrap(), ComponentConfig { kind, settings });
    }
    config.store(&paths).unwrap();
    mcu
}

fn firmware(fx: &Fixture, version: &str, size: usize) -> ComponentSource {
    let path = fx.images.join(format!("mcu-{version}.bin"));
    std::fs::write(&path, SimMcu::image(version, size)).unwrap();
    part("mcu", Kind::Firmware, version, path)
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

fn os_state(fx: &Fixture) -> std::collections::BTreeMap<String, String> {
    let mut m = fx.fingerprint();
    m.remove("var/lib/update/slots.json");
    m
}

#[test]
fn mcu_firmware_updates_in_a_transaction_and_is_reverted_with_a_broken_app() {
    let fx = Fixture::new();
    let mcu = configure(&fx);
    let up = fx.updater();
    let os = os_state(&fx);

    // Firmware 2.0.0 with app 1.0.0: no reboot of the Linux side, the MCU runs 2.0.0 confirmed.
    fx.publish(&release(&fx, "1.1", vec![firmware(&fx, "2.0.0", 120_000), app(&fx, "1.0.0", "ok")]));
    let t = Instant::now();
    let outcome = up.install_now(false).unwrap().installed.unwrap();
    eprintln!("firmware 2.0.0 (120 000 bytes) + app, install_now to committed: {:?}", t.elapsed());
    assert!(!outcome.reboot_required);
    assert_eq!(mcu.running(), ("2.0.0".into(), true));
    assert_eq!(mcu.secondary(), (Some("1.0.0".into()), false), "the old image stays in the secondary slot");
    assert_eq!(mcu.stats().resets, 1);
    let status = up.status().unwrap();
    let entry = status.components.iter().find(|c| c.name == "mcu").unwrap();
    assert_eq!(entry.status.as_ref().unwrap().active, Some(v("2.0.0")));

    // Firmware 3.0.0 with a broken app: the app's health check fails, the whole transaction
    // rolls back, and the MCU (which ran 3.0.0 on trial) is back on 2.0.0, confirmed.
    fx.publish(&release(&fx, "1.2", vec![firmware(&fx, "3.0.0", 100_000), app(&fx, "2.0.0", "broken")]));
    let e = up.install_now(false).unwrap_err().to_string();
    assert!(e.contains("health check"), "{e}");
    assert_eq!(mcu.running(), ("2.0.0".into(), true));
    assert!(!mcu.secondary().1, "nothing pending");
    assert_eq!(mcu.stats().resets, 3, "one reset into 3.0.0, one back");
    assert_eq!(mcu.stats().swaps, 3);

    // Firmware 4.0.0 that the bootloader never boots (a lying bootloader): activation reads
    // back the old version, the transaction rolls back, the MCU still runs 2.0.0.
    mcu.set_fault(Some(Fault::Lying));
    fx.publish(&release(&fx, "1.3", vec![firmware(&fx, "4.0.0", 50_000)]));
    let e = up.install_now(false).unwrap_err().to_string();
    assert!(e.contains("did not swap"), "{e}");
    mcu.set_fault(None);
    assert_eq!(mcu.running(), ("2.0.0".into(), true));
    assert!(!mcu.secondary().1, "nothing pending");
    assert_eq!(up.status().unwrap().version, Some(v("1.1")));
    assert_eq!(os_state(&fx), os, "no OS slot, boot environment or data partition changed");
}
