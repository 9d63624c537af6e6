//! The built-in `fwupd` handler against the real fwupd daemon (Debian's `fwupd` package) and
//! its test device, one daemon per device root ([`update_test::fwupd`]: private bus, config,
//! state and keyring inside the root; cabs signed by a snakeoil CA the device trusts).
//!
//! Without fwupd installed the tests that need it are skipped, unless
//! `UPDATE_COMPONENTS_REQUIRE_FWUPD` is set (CI sets it): then they fail.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use update_core::Paths;
use update_core::component::{
    Activation, Component, ComponentName, ComponentState, DeviceComponent, Handler, Kind, Settings,
};
use update_test::fwupd::{FACTORY, FAKE_GUID, Fwupd, Lab, Signer, available};
use update_test::handler_suite::{Device, HandlerFixture, Release, run_suite};

use crate::support::component;

fn entry(device: &str) -> DeviceComponent {
    let mut settings = Settings::new();
    settings.insert("device".into(), json!(device));
    DeviceComponent { name: ComponentName::new("bios").unwrap(), kind: Kind::Fwupd, settings }
}

fn handler() -> Box<dyn Handler> {
    update_components::handler_for(&Kind::Fwupd, &Paths::new("/")).expect("fwupd is built in")
}

/// The suite's fixture: one daemon per device root.
struct FwupdFixture {
    lab: Lab,
    daemons: HashMap<PathBuf, Fwupd>,
}

fn version(release: Release) -> &'static str {
    if release == Release::V1 { "1.2.3" } else { "1.2.4" }
}

impl HandlerFixture for FwupdFixture {
    fn name(&self) -> String {
        "fwupd".into()
    }
    fn device(&mut self, root: &Path) -> DeviceComponent {
        // Devices of earlier scenarios are gone with their roots: stop their daemons.
        self.daemons.retain(|r, _| r.exists());
        self.daemons.insert(root.to_owned(), Fwupd::start(root, &self.lab, ""));
        entry(FAKE_GUID)
    }
    fn handler(&mut self) -> Box<dyn Handler> {
        handler()
    }
    fn payload(&mut self, release: Release) -> (Component, Vec<u8>) {
        // The broken one is a well-formed cab of v2 signed by a key the devices do not trust.
        let signer = if release == Release::Broken { Signer::Rogue } else { Signer::Trusted };
        let bytes = self.lab.cab(version(release), FAKE_GUID, signer);
        (component("bios", Kind::Fwupd, version(release), &bytes, json!({})), bytes)
    }
    fn break_health(&mut self, root: &Path, _: &DeviceComponent) -> bool {
        self.daemons.get_mut(root).expect("a daemon for this root").restart();
        true
    }
    fn verify_active(&mut self, root: &Path, _: &DeviceComponent, release: Release) -> Result<(), String> {
        let fwupd = self.daemons.get(root).ok_or("no daemon for this root")?;
        let got = fwupd.version();
        if got == version(release) { Ok(()) } else { Err(format!("fwupd's test device runs {got}")) }
    }
}

#[test]
fn the_fwupd_handler_passes_the_shared_handler_suite() {
    if !available("the_fwupd_handler_passes_the_shared_handler_suite") {
        return;
    }
    let mut fixture = FwupdFixture { lab: Lab::new(), daemons: HashMap::new() };
    run_suite(&mut fixture);
}

/// A device with its own daemon, a handler and the lab.
struct Bench {
    lab: Lab,
    device: Device,
    fwupd: Fwupd,
}

struct NoFixture<'a>(&'a Lab, &'a str, DeviceComponent, Option<Fwupd>);

impl HandlerFixture for NoFixture<'_> {
    fn name(&self) -> String {
        "fwupd".into()
    }
    fn device(&mut self, root: &Path) -> DeviceComponent {
        self.3 = Some(Fwupd::start(root, self.0, self.1));
        self.2.clone()
    }
    fn handler(&mut self) -> Box<dyn Handler> {
        handler()
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

fn bench(test_config: &str, device: &str) -> Bench {
    let lab = Lab::new();
    let (device, fwupd) = {
        let mut f = NoFixture(&lab, test_config, entry(device), None);
        let d = Device::new(&mut f);
        (d, f.3.take().expect("started"))
    };
    Bench { lab, device, fwupd }
}

/// `activate`, keeping its answer (the suite's `phase` drops it).
fn activate(d: &mut Device, tx: &str, c: &Component) -> update_core::Result<Activation> {
    let ctx = update_core::component::HandlerContext {
        paths: &d.paths,
        events: &d.events,
        transaction: tx,
        device: &d.device,
        state_dir: d.paths.resolve(format!("/var/lib/update/components/{}", d.device.name)),
        timeout: Duration::from_secs(60),
    };
    d.handler.activate(&ctx, c)
}

impl Bench {
    fn cab(&self, version: &str, guid: &str, signer: Signer) -> (Component, Vec<u8>) {
        let bytes = self.lab.cab(version, guid, signer);
        (component("bios", Kind::Fwupd, version, &bytes, json!({})), bytes)
    }
    fn staged(&self) -> bool {
        self.device.ctx("x").state_dir.join("staged.cab").exists()
    }
}

#[test]
fn a_cab_for_another_device_is_refused_before_anything_is_written() {
    if !available("a_cab_for_another_device_is_refused_before_anything_is_written") {
        return;
    }
    let mut b = bench("", FAKE_GUID);
    let (c, bytes) = b.cab("1.2.4", "00000000-1111-2222-3333-444444444444", Signer::Trusted);
    b.device.phase("tx", "check", &c).unwrap();
    let e = b.device.install("tx", &c, &bytes).unwrap_err().to_string();
    assert!(e.contains("does not apply to device") && e.contains("00000000-1111-2222-3333-444444444444"), "{e}");
    assert!(!b.staged());
    assert_eq!(b.fwupd.version(), FACTORY);
    assert!(b.device.phase("tx", "activate", &c).unwrap_err().to_string().contains("was not installed"));
    b.device.phase("tx", "rollback", &c).unwrap();
    let s = b.device.status();
    assert_eq!((s.active.map(|v| v.to_string()), s.state), (Some(FACTORY.into()), ComponentState::Committed));
}

#[test]
fn unsigned_and_untrusted_cabs_are_refused() {
    if !available("unsigned_and_untrusted_cabs_are_refused") {
        return;
    }
    let mut b = bench("", FAKE_GUID);
    for signer in [Signer::Unsigned, Signer::Rogue] {
        let (c, bytes) = b.cab("1.2.4", FAKE_GUID, signer);
        let e = b.device.install("tx", &c, &bytes).unwrap_err().to_string();
        assert!(e.contains("not signed by a key fwupd trusts"), "{e}");
        assert!(!b.staged());
    }
    assert_eq!(b.fwupd.version(), FACTORY);
    // What fwupd's daemon says when asked directly: it enforces the same rule.
    let (_, bytes) = b.cab("1.2.4", FAKE_GUID, Signer::Rogue);
    let cab = b.lab.path("rogue.cab");
    fs::write(&cab, bytes).unwrap();
    let out = Command::new("/usr/bin/fwupdmgr")
        .args(["install", "--json", "--assume-yes", "--no-reboot-check"])
        .arg(&cab)
        .env("DBUS_SYSTEM_BUS_ADDRESS", b.fwupd.bus_address())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && said.contains("signature missing or not trusted"), "{said}");
}

#[test]
fn a_cab_of_another_version_than_the_component_is_refused() {
    if !available("a_cab_of_another_version_than_the_component_is_refused") {
        return;
    }
    let mut b = bench("", FAKE_GUID);
    let bytes = b.lab.cab("1.2.4", FAKE_GUID, Signer::Trusted);
    let c = component("bios", Kind::Fwupd, "1.2.5", &bytes, json!({}));
    let e = b.device.install("tx", &c, &bytes).unwrap_err().to_string();
    assert!(e.contains("the cab holds version 1.2.4, the component is version 1.2.5"), "{e}");
    assert_eq!(b.fwupd.version(), FACTORY);
}

#[test]
fn a_full_update_by_device_id_reads_the_new_version_back_from_fwupd() {
    if !available("a_full_update_by_device_id_reads_the_new_version_back_from_fwupd") {
        return;
    }
    // Learn the device id the way an administrator does, then configure the device by it.
    let probe = bench("", FAKE_GUID);
    let id = probe.fwupd.fake_device().unwrap()["DeviceId"].as_str().unwrap().to_owned();
    drop(probe);
    let mut b = bench("", &id);
    let s = b.device.status();
    assert_eq!(s.active.map(|v| v.to_string()).as_deref(), Some(FACTORY));
    let detail = s.detail.unwrap();
    assert!(detail.contains(&id) && detail.contains("plugin test") && detail.contains("version 1.2.2"), "{detail}");
    let (c, bytes) = b.cab("1.2.4", FAKE_GUID, Signer::Trusted);
    b.device.phase("tx", "check", &c).unwrap();
    b.device.install("tx", &c, &bytes).unwrap();
    assert_eq!(b.device.status().state, ComponentState::Installed);
    assert_eq!(b.fwupd.version(), FACTORY, "install only stages the cab");
    assert_eq!(activate(&mut b.device, "tx", &c).unwrap(), Activation::Now);
    assert_eq!(b.fwupd.version(), "1.2.4");
    let s = b.device.status();
    assert_eq!((s.active.map(|v| v.to_string()), s.state), (Some("1.2.4".into()), ComponentState::Trial));
    b.device.phase("tx", "health", &c).unwrap();
    b.device.phase("tx", "commit", &c).unwrap();
    assert_eq!(b.device.status().state, ComponentState::Committed);
    // fwupd's own history has it.
    let out = Command::new("/usr/bin/fwupdmgr")
        .args(["get-history", "--json"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", b.fwupd.bus_address())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"Version\" : \"1.2.4\""));
}

#[test]
fn rollback_says_so_when_no_cab_of_the_previous_version_is_kept() {
    if !available("rollback_says_so_when_no_cab_of_the_previous_version_is_kept") {
        return;
    }
    let mut b = bench("", FAKE_GUID);
    let (c, bytes) = b.cab("1.2.3", FAKE_GUID, Signer::Trusted);
    b.device.install("tx", &c, &bytes).unwrap();
    b.device.phase("tx", "activate", &c).unwrap();
    let e = b.device.phase("tx", "rollback", &c).unwrap_err().to_string();
    assert!(
        e.contains("fwupd cannot undo a firmware update by itself") && e.contains("no cab of version 1.2.2"),
        "{e}"
    );
    assert_eq!(b.fwupd.version(), "1.2.3");
}

#[test]
fn an_update_fwupd_schedules_for_the_next_boot_activates_at_reboot() {
    if !available("an_update_fwupd_schedules_for_the_next_boot_activates_at_reboot") {
        return;
    }
    // The test plugin's NeedsReboot: the write succeeds and the device is flagged needs-reboot,
    // as a UEFI capsule staged for the firmware to apply at the next boot.
    let mut b = bench("NeedsReboot=true", FAKE_GUID);
    let (c, bytes) = b.cab("1.2.4", FAKE_GUID, Signer::Trusted);
    b.device.install("tx", &c, &bytes).unwrap();
    assert_eq!(activate(&mut b.device, "tx", &c).unwrap(), Activation::AtReboot);
    assert_eq!(activate(&mut b.device, "tx", &c).unwrap(), Activation::AtReboot, "repeated");
    let s = b.device.status();
    assert_eq!(s.state, ComponentState::Installed);
    assert!(s.detail.as_deref().unwrap_or("").contains("pending a reboot"), "{s:?}");
    assert!(b.device.root.path().join("run/reboot-required").exists(), "fwupd flags the reboot in the root's /run");
    let e = b.device.phase("tx", "health", &c).unwrap_err().to_string();
    assert!(e.contains("runs 1.2.2, not version 1.2.4"), "{e}");
    let e = b.device.phase("tx", "rollback", &c).unwrap_err().to_string();
    assert!(e.contains("cannot cancel a scheduled update"), "{e}");
    // A second update is refused until the reboot.
    let (c5, _) = b.cab("1.2.5", FAKE_GUID, Signer::Trusted);
    let e = b.device.phase("tx2", "check", &c5).unwrap_err().to_string();
    assert!(e.contains("pending a reboot already"), "{e}");
}

#[test]
fn a_device_fwupd_does_not_know_is_refused_at_check() {
    if !available("a_device_fwupd_does_not_know_is_refused_at_check") {
        return;
    }
    let mut b = bench("", "0123456789abcdef0123456789abcdef01234567");
    let (c, _) = b.cab("1.2.4", FAKE_GUID, Signer::Trusted);
    let e = b.device.phase("tx", "check", &c).unwrap_err().to_string();
    assert!(e.contains("fwupd lists no device 0123456789abcdef0123456789abcdef01234567"), "{e}");
}

/// Settings and options are checked before fwupdmgr runs (no fwupd needed).
#[test]
fn settings_and_options_are_strict() {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::new(root.path());
    let events = update_test::handler_suite::RecordingEvents::default();
    let bytes = b"cab".to_vec();
    let plain = component("bios", Kind::Fwupd, "1.2.4", &bytes, json!({}));
    let mut h = handler();
    let cases: Vec<(Settings, &Component, &str)> = vec![
        (Settings::new(), &plain, "the setting device is missing"),
        (entry("../../dev/sda").settings, &plain, "use fwupd's device id"),
        (entry("b585990a-003e-5270-89d5").settings, &plain, "use fwupd's device id"),
        (
            {
                let mut s = entry(FAKE_GUID).settings;
                s.insert("tool".into(), json!("fwupdtool"));
                s
            },
            &plain,
            "unknown setting 'tool'",
        ),
    ];
    for (settings, c, want) in cases {
        let device = DeviceComponent { name: ComponentName::new("bios").unwrap(), kind: Kind::Fwupd, settings };
        let ctx = update_core::component::HandlerContext {
            paths: &paths,
            events: &events,
            transaction: "tx",
            device: &device,
            state_dir: root.path().to_owned(),
            timeout: Duration::from_secs(10),
        };
        let e = h.check(&ctx, c).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
    let with_option = component("bios", Kind::Fwupd, "1.2.4", &bytes, json!({"allow-older": true}));
    let device = entry(FAKE_GUID);
    let ctx = update_core::component::HandlerContext {
        paths: &paths,
        events: &events,
        transaction: "tx",
        device: &device,
        state_dir: root.path().to_owned(),
        timeout: Duration::from_secs(10),
    };
    let e = h.check(&ctx, &with_option).unwrap_err().to_string();
    assert!(e.contains("unknown option allow-older"), "{e}");
    // Under --root only the root's fwupdmgr runs; this root has none.
    let e = h.status(&ctx).unwrap_err().to_string();
    assert!(e.contains("not an executable file inside the device root"), "{e}");
}
