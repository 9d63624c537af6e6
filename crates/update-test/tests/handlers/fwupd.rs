//! The built-in `fwupd` handler against the real fwupd daemon (Debian's `fwupd` package).
//!
//! Each device is a real `fwupd` daemon on a private D-Bus system bus inside the device root,
//! with its configuration, state and keyring in the root (`FWUPD_SYSCONFDIR`,
//! `FWUPD_LOCALSTATEDIR`, `CACHE_DIRECTORY`, `FWUPD_LOCKDIR`). Its device is the one fwupd
//! ships for testing: the `test` plugin's fake device (GUID b585990a-…, version 1.2.2 at every
//! daemon start), enabled with `TestDevices=true`. That plugin is compiled into Debian's fwupd
//! (libfwupdengine) and writes the version named in the first 9 bytes of the firmware
//! (`0x1020004` is 1.2.4). The daemon enforces signatures (`OnlyTrusted=true`, its default); the
//! cabs are built with `fwupdtool build-cabinet` and signed with `fwupdtool firmware-sign` by a
//! throwaway snakeoil CA that the device's `etc/pki/fwupd` trusts. The root's `usr/bin/fwupdmgr`
//! is a two-line wrapper that points the real `fwupdmgr` at the device's bus.
//!
//! Without fwupd installed the tests that need it are skipped, unless
//! `UPDATE_COMPONENTS_REQUIRE_FWUPD` is set (CI sets it): then they fail.

use std::collections::HashMap;
use std::fs;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use update_core::Paths;
use update_core::component::{
    Activation, Component, ComponentName, ComponentState, DeviceComponent, Handler, Kind, Settings,
};
use update_test::handler_suite::{Device, HandlerFixture, Release, run_suite};

use crate::support::component;

/// The `test` plugin's fake device.
const FAKE_GUID: &str = "b585990a-003e-5270-89d5-3705a17f9a43";
/// Its version at every daemon start.
const FACTORY: &str = "1.2.2";
const DAEMON: &str = "/usr/libexec/fwupd/fwupd";
const REQUIRE_VAR: &str = "UPDATE_COMPONENTS_REQUIRE_FWUPD";

/// Whether fwupd and the tools the rig needs are installed; when not, `false` (skip) unless
/// [`REQUIRE_VAR`] is set.
fn available(test: &str) -> bool {
    let missing: Vec<&str> =
        [DAEMON, "/usr/bin/fwupdmgr", "/usr/bin/fwupdtool", "/usr/bin/dbus-daemon", "/usr/bin/openssl"]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os(REQUIRE_VAR).is_none(),
        "{REQUIRE_VAR} is set, but {} missing (apt-get install fwupd dbus-daemon openssl)",
        missing.join(", ")
    );
    eprintln!("{test}: skipped: {} missing (apt-get install fwupd dbus-daemon openssl)", missing.join(", "));
    false
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A throwaway PKI and a cab builder in one temporary directory.
struct Lab {
    dir: tempfile::TempDir,
}

/// How a cab is signed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signer {
    /// By the snakeoil signer, whose CA the devices trust.
    Trusted,
    /// By a signer of another CA, which no device trusts.
    Rogue,
    /// Not at all.
    Unsigned,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab { dir: tempfile::tempdir().unwrap() };
        for ca in ["snakeoil", "rogue"] {
            lab.make_pki(ca);
        }
        for d in ["etc", "var/cache", "lock"] {
            fs::create_dir_all(lab.dir.path().join(d)).unwrap();
        }
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `<ca>-ca.pem` (self-signed CA) and `<ca>-signer.pem`/`.key` (a code-signing leaf).
    fn make_pki(&self, ca: &str) {
        let p = |s: &str| self.path(&format!("{ca}-{s}"));
        run(Command::new("openssl").args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650"]).args([
            "-keyout".as_ref(),
            p("ca.key").as_os_str(),
            "-out".as_ref(),
            p("ca.pem").as_os_str(),
            "-subj".as_ref(),
            format!("/CN=libupdate {ca} fwupd CA").as_ref(),
            "-addext".as_ref(),
            "basicConstraints=critical,CA:TRUE".as_ref(),
            "-addext".as_ref(),
            "keyUsage=critical,keyCertSign,cRLSign".as_ref(),
        ]));
        run(Command::new("openssl").args(["req", "-newkey", "rsa:2048", "-nodes"]).args([
            "-keyout".as_ref(),
            p("signer.key").as_os_str(),
            "-out".as_ref(),
            p("signer.csr").as_os_str(),
            "-subj".as_ref(),
            format!("/CN=libupdate {ca} firmware signer").as_ref(),
        ]));
        fs::write(
            p("ext.cnf"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n",
        )
        .unwrap();
        run(Command::new("openssl").args(["x509", "-req", "-days", "3650", "-set_serial", "2"]).args([
            "-in".as_ref(),
            p("signer.csr").as_os_str(),
            "-CA".as_ref(),
            p("ca.pem").as_os_str(),
            "-CAkey".as_ref(),
            p("ca.key").as_os_str(),
            "-out".as_ref(),
            p("signer.pem").as_os_str(),
            "-extfile".as_ref(),
            p("ext.cnf").as_os_str(),
        ]));
    }

    /// `fwupdtool` with its state in the lab, never the host's.
    fn fwupdtool(&self) -> Command {
        let mut c = Command::new("fwupdtool");
        c.env("FWUPD_SYSCONFDIR", self.path("etc"))
            .env("FWUPD_LOCALSTATEDIR", self.path("var"))
            .env("CACHE_DIRECTORY", self.path("var/cache"))
            .env("FWUPD_LOCKDIR", self.path("lock"));
        c
    }

    /// A cab for the device with `guid`, release `version` (`major.minor.patch`, written as the
    /// test plugin reads it), signed as `signer` says.
    fn cab(&self, version: &str, guid: &str, signer: Signer) -> Vec<u8> {
        let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
        let raw = (parts[0] << 24) | (parts[1] << 16) | parts[2];
        let work = tempfile::tempdir_in(self.dir.path()).unwrap();
        let firmware = work.path().join("firmware.bin");
        let text = format!("{raw:#x}");
        assert!(text.len() <= 9, "the test plugin reads 9 bytes: {text}");
        fs::write(&firmware, text).unwrap();
        let metainfo = work.path().join("firmware.metainfo.xml");
        fs::write(
            &metainfo,
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<component type="firmware">
  <id>org.libupdate.test.fakedevice</id>
  <name>FakeDevice</name>
  <summary>Firmware for fwupd's test device</summary>
  <provides>
    <firmware type="flashed">{guid}</firmware>
  </provides>
  <metadata_license>CC0-1.0</metadata_license>
  <project_license>proprietary</project_license>
  <releases>
    <release version="{version}" urgency="high">
      <description><p>libupdate test release {version}.</p></description>
    </release>
  </releases>
  <custom>
    <value key="LVFS::VersionFormat">triplet</value>
  </custom>
</component>
"#
            ),
        )
        .unwrap();
        let cab = work.path().join("firmware.cab");
        run(self.fwupdtool().arg("build-cabinet").args([&cab, &firmware, &metainfo]));
        let ca = match signer {
            Signer::Trusted => Some("snakeoil"),
            Signer::Rogue => Some("rogue"),
            Signer::Unsigned => None,
        };
        if let Some(ca) = ca {
            run(self
                .fwupdtool()
                .arg("firmware-sign")
                .arg(&cab)
                .args([self.path(&format!("{ca}-signer.pem")), self.path(&format!("{ca}-signer.key"))]));
        }
        fs::read(&cab).unwrap()
    }
}

/// A real fwupd daemon on a private bus, everything it keeps inside `root`.
struct Fwupd {
    root: PathBuf,
    bus: Child,
    daemon: Option<Child>,
}

impl Fwupd {
    /// Sets up `root` (config with `test_config` lines in the `[test]` section, the lab's CA as
    /// the keyring, the `fwupdmgr` wrapper) and starts the bus and the daemon.
    fn start(root: &Path, lab: &Lab, test_config: &str) -> Fwupd {
        for d in ["etc/fwupd", "etc/pki/fwupd", "var/cache/fwupd", "run/lock", "run/dbus", "usr/bin"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let conf = root.join("etc/fwupd/fwupd.conf");
        fs::write(&conf, format!("[fwupd]\nTestDevices=true\n\n[test]\n{test_config}\n")).unwrap();
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o600)).unwrap();
        fs::copy(lab.path("snakeoil-ca.pem"), root.join("etc/pki/fwupd/libupdate-snakeoil-ca.pem")).unwrap();
        let socket = root.join("run/dbus/system_bus_socket");
        fs::write(
            root.join("run/dbus/bus.conf"),
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", root.join("run/dbus/bus.conf").display()))
            .args(["--nofork", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(root.join("dbus.log")).unwrap())
            .spawn()
            .expect("start dbus-daemon");
        let mut line = String::new();
        std::io::BufReader::new(bus.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("unix:"), "dbus-daemon printed {line:?}");
        let wrapper = root.join("usr/bin/fwupdmgr");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n# this device's fwupd listens on its own bus\nDBUS_SYSTEM_BUS_ADDRESS='unix:path={}' exec /usr/bin/fwupdmgr \"$@\"\n",
                socket.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        let mut f = Fwupd { root: root.to_owned(), bus, daemon: None };
        f.start_daemon();
        f
    }

    fn bus_address(&self) -> String {
        format!("unix:path={}", self.root.join("run/dbus/system_bus_socket").display())
    }

    fn start_daemon(&mut self) {
        let r = &self.root;
        let log = fs::OpenOptions::new().create(true).append(true).open(r.join("fwupd.log")).unwrap();
        let child = Command::new(DAEMON)
            .arg("--verbose")
            .env("FWUPD_SYSCONFDIR", r.join("etc"))
            .env("FWUPD_LOCALSTATEDIR", r.join("var"))
            .env("CACHE_DIRECTORY", r.join("var/cache/fwupd"))
            .env("FWUPD_LOCKDIR", r.join("run/lock"))
            // Where it flags a pending reboot (`reboot-required`), the host's /run otherwise.
            .env("FWUPD_RUNDIR", r.join("run"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address())
            .env_remove("STATE_DIRECTORY")
            .env_remove("CONFIGURATION_DIRECTORY")
            .env_remove("RUNTIME_DIRECTORY")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start fwupd");
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.fake_device().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "fwupd did not list its test device within 30 s; its log:\n{}",
            fs::read_to_string(r.join("fwupd.log")).unwrap_or_default()
        );
    }

    fn stop_daemon(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }

    /// The daemon restarted: the fake device comes back at its factory version, as a device
    /// whose firmware did not take comes back with its old one.
    fn restart(&mut self) {
        self.stop_daemon();
        self.start_daemon();
    }

    /// The fake device as the host's `fwupdmgr` lists it (not through the handler).
    fn fake_device(&self) -> Option<serde_json::Value> {
        let out = Command::new("/usr/bin/fwupdmgr")
            .args(["get-devices", "--json"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["Devices"]
            .as_array()?
            .iter()
            .find(|d| d["Guid"].as_array().is_some_and(|g| g.contains(&json!(FAKE_GUID))))
            .cloned()
    }

    fn version(&self) -> String {
        let d = self.fake_device().expect("the test device");
        d["Version"].as_str().unwrap_or_default().to_owned()
    }
}

impl Drop for Fwupd {
    fn drop(&mut self) {
        self.stop_daemon();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

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
