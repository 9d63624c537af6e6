//! A real fwupd daemon for tests: one per device root, on a private D-Bus system bus, with its
//! configuration, state, cache, lock and run directories and its keyring inside the root
//! (`FWUPD_SYSCONFDIR`, `FWUPD_LOCALSTATEDIR`, `CACHE_DIRECTORY`, `FWUPD_LOCKDIR`,
//! `FWUPD_RUNDIR`), so nothing of the host's fwupd is read or written. The root's
//! `usr/bin/fwupdmgr` is a two-line wrapper that points the real `fwupdmgr` at that bus.
//!
//! The device is the one fwupd ships for testing: the `test` plugin (compiled into Debian 12's
//! fwupd 2.0) lists, with `TestDevices=true`, a fake webcam ([`FAKE_GUID`], version
//! [`FACTORY`] at every daemon start) whose "write" sets the version named by the first 9 bytes
//! of the firmware (`0x1020004` is 1.2.4). Options of the plugin go in the `[test]` section
//! (`NeedsReboot=true`: the write flags the device `needs-reboot` instead).
//!
//! Signatures are satisfied, not disabled: [`Lab`] makes a snakeoil CA (trusted by every
//! device's `etc/pki/fwupd`) and a rogue one (trusted by none), builds cabs with `fwupdtool
//! build-cabinet` and signs them with `fwupdtool firmware-sign`; the daemon keeps its default
//! `OnlyTrusted=true`.

#![allow(clippy::unwrap_used)] // a test rig: a failed unwrap is a failed test

use std::fs;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

/// The `test` plugin's fake device.
pub const FAKE_GUID: &str = "b585990a-003e-5270-89d5-3705a17f9a43";
/// Its version at every daemon start.
pub const FACTORY: &str = "1.2.2";
/// The daemon (Debian's path).
pub const DAEMON: &str = "/usr/libexec/fwupd/fwupd";
/// Set (CI sets it) to make the fwupd tests fail instead of skipping when fwupd is missing.
pub const REQUIRE_VAR: &str = "UPDATE_COMPONENTS_REQUIRE_FWUPD";

/// Whether fwupd and the tools the rig needs are installed; when not, `false` (skip) unless
/// [`REQUIRE_VAR`] is set.
/// # Panics
/// When something is missing and [`REQUIRE_VAR`] is set.
#[must_use]
pub fn available(test: &str) -> bool {
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
pub struct Lab {
    dir: tempfile::TempDir,
}

/// How a cab is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// By the snakeoil signer, whose CA the devices trust.
    Trusted,
    /// By a signer of another CA, which no device trusts.
    Rogue,
    /// Not at all.
    Unsigned,
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Lab {
    /// A lab with both CAs.
    ///
    /// # Panics
    /// When openssl fails.
    #[must_use]
    pub fn new() -> Lab {
        let lab = Lab { dir: tempfile::tempdir().unwrap() };
        for ca in ["snakeoil", "rogue"] {
            lab.make_pki(ca);
        }
        for d in ["etc", "var/cache", "lock"] {
            fs::create_dir_all(lab.dir.path().join(d)).unwrap();
        }
        lab
    }

    /// A file of the lab (`snakeoil-ca.pem`, `rogue-signer.key`, …).
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
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
    ///
    /// # Panics
    /// When fwupdtool fails.
    #[must_use]
    pub fn cab(&self, version: &str, guid: &str, signer: Signer) -> Vec<u8> {
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
pub struct Fwupd {
    root: PathBuf,
    bus: Child,
    daemon: Option<Child>,
}

impl Fwupd {
    /// Sets up `root` (config with `test_config` lines in the `[test]` section, the lab's CA as
    /// the keyring, the `fwupdmgr` wrapper) and starts the bus and the daemon.
    ///
    /// # Panics
    /// When the bus or the daemon does not start.
    pub fn start(root: &Path, lab: &Lab, test_config: &str) -> Fwupd {
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

    /// `unix:path=<root>/run/dbus/system_bus_socket`.
    #[must_use]
    pub fn bus_address(&self) -> String {
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
    pub fn restart(&mut self) {
        self.stop_daemon();
        self.start_daemon();
    }

    /// The fake device as the host's `fwupdmgr` lists it (not through the handler).
    #[must_use]
    pub fn fake_device(&self) -> Option<serde_json::Value> {
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

    /// The fake device's version, read by the host's `fwupdmgr`.
    ///
    /// # Panics
    /// When the daemon does not list it.
    #[must_use]
    pub fn version(&self) -> String {
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
