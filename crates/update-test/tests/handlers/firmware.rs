//! The built-in `firmware` handler through the shared handler suite: each device is a simulated
//! MCUboot MCU on its own pty (`<root>/dev/ttyACM0`), its banks in a flash file beside the root.
//! The handler comes from `update_components::handler_for(Kind::Firmware)`, as the engine gets it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use update_core::Paths;
use update_core::component::{Component, ComponentName, DeviceComponent, Handler, Kind, Settings};
use update_test::handler_suite::{HandlerFixture, Release, run_suite};
use update_test::mcu::{McuOptions, SimMcu};

use crate::support::component;

const SLOT: usize = 64 << 10;

fn options() -> McuOptions {
    McuOptions { slot_size: SLOT, boot_time: Duration::from_millis(50), mtu: 1024 }
}

/// The MCUs of the suite's devices, by root.
#[derive(Default)]
struct FirmwareFixture {
    mcus: HashMap<PathBuf, (SimMcu, PathBuf)>,
}

fn version(release: Release) -> &'static str {
    if release == Release::V1 { "1.0.0" } else { "2.0.0" }
}

impl HandlerFixture for FirmwareFixture {
    fn name(&self) -> String {
        "firmware".into()
    }
    fn device(&mut self, root: &Path) -> DeviceComponent {
        // The factory image (0.9.0) runs confirmed; the suite installs v1 through the handler.
        let flash = root.join("sim-mcu.flash");
        SimMcu::create_flash(&flash, SLOT, &SimMcu::image("0.9.0", 8_000)).unwrap();
        let mcu = SimMcu::start(&flash, &root.join("dev/ttyACM0"), options()).unwrap();
        self.mcus.insert(root.to_owned(), (mcu, flash));
        let mut settings = Settings::new();
        for (k, v) in [("port", json!("/dev/ttyACM0")), ("timeout-ms", json!(2000)), ("mtu", json!(1024))] {
            settings.insert(k.into(), v);
        }
        settings.insert("reset-timeout-ms".into(), json!(5000));
        DeviceComponent { name: ComponentName::new("mcu").unwrap(), kind: Kind::Firmware, settings }
    }
    fn handler(&mut self) -> Box<dyn Handler> {
        update_components::handler_for(&Kind::Firmware, &Paths::new("/")).expect("firmware is built in")
    }
    fn payload(&mut self, release: Release) -> (Component, Vec<u8>) {
        let mut bytes = SimMcu::image(version(release), if release == Release::V1 { 20_000 } else { 30_000 });
        if release == Release::Broken {
            // Tampered after signing the bundle's manifest entry: the image's own SHA-256 TLV
            // no longer matches its body.
            bytes[2_000] ^= 0x40;
        }
        (component("mcu", Kind::Firmware, version(release), &bytes, json!({})), bytes)
    }
    fn break_health(&mut self, root: &Path, _: &DeviceComponent) -> bool {
        // The new image crashes before it confirms itself: a power cycle (watchdog), and MCUboot
        // reverts the unconfirmed test image.
        let (mcu, flash) = self.mcus.remove(root).expect("a device of this fixture");
        mcu.power_cut();
        let mcu = SimMcu::start(&flash, &root.join("dev/ttyACM0"), options()).unwrap();
        self.mcus.insert(root.to_owned(), (mcu, flash));
        true
    }
    fn verify_active(&mut self, root: &Path, _: &DeviceComponent, release: Release) -> Result<(), String> {
        let (mcu, _) = self.mcus.get(root).ok_or("no MCU for this root")?;
        let running = mcu.running();
        if running != (version(release).to_owned(), true) {
            return Err(format!("the MCU's primary slot runs {running:?} (version, confirmed)"));
        }
        if mcu.secondary().1 {
            return Err("an image is still pending in the secondary slot".into());
        }
        Ok(())
    }
}

#[test]
fn the_firmware_handler_passes_the_shared_handler_suite() {
    let mut fixture = FirmwareFixture::default();
    run_suite(&mut fixture);
    let resets: u64 = fixture.mcus.values().map(|(m, _)| m.stats().resets).sum();
    assert!(resets > 10, "the suite reset the simulated MCUs {resets} times");
}
