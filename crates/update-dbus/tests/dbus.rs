//! The D-Bus service against a private `dbus-daemon` (never the host's buses), driven by the
//! stock clients `busctl` and `gdbus`, on a simulated device (plain files, the native driver)
//! that installs real signed bundles.
//!
//! Needs root (the service writes the device as root; an unprivileged caller is simulated with
//! `setpriv --reuid=65534`), `dbus-daemon`, `busctl` (systemd), `gdbus` (libglib2.0-bin),
//! `stdbuf` and `setpriv`, and the `update` binary beside this test's (built by
//! `cargo test --workspace` or `cargo build -p update-cli`).
//!
//! The committed introspection XML (docs/reference/org.libupdate.Update1.xml) is compared with
//! the live one; `UPDATE_BLESS=1` rewrites it after a deliberate change of the interface.

#![allow(clippy::unwrap_used, reason = "test helpers: a failed setup step is a test failure")]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use ed25519_dalek::SigningKey;
use libupdate::{Setting, Updater};
use update_boot::Slot;
use update_core::config::{LogTarget, SourceUrl};
use update_core::keyring::PublicKey;
use update_core::{KeyName, SlotGroupName, atomic};
use update_test::device::{SimDevice, SimOptions, make_kernel, make_rootfs};

const NAME: &str = "org.libupdate.Update1";
const PATH: &str = "/org/libupdate/Update1";
const NOBODY: &str = "65534";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// The `update` binary of this build (target/debug/update).
fn update_cli() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let cli = exe.parent().and_then(Path::parent).unwrap().join("update");
    assert!(cli.exists(), "{} is missing: run `cargo build -p update-cli` first", cli.display());
    cli
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// A private bus: `dbus-daemon` with a session-like config in a temporary directory that lets
/// every user connect (the unprivileged caller) and own names.
struct Bus {
    daemon: Child,
    address: String,
}

impl Bus {
    fn start(dir: &Path) -> Self {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
                dir.display()
            ),
        )
        .unwrap();
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--print-address", "--nofork", "--nopidfile"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (apt install dbus-daemon)");
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let address = line.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {line:?}");
        Bus { daemon, address }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// `update-dbus --root … --address …`, killed when dropped.
struct Service(Child);

impl Service {
    fn start(bus: &Bus, root: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_update-dbus"))
            .arg("--root")
            .arg(root)
            .arg("--address")
            .arg(&bus.address)
            .spawn()
            .unwrap();
        let service = Service(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !busctl(bus, &["get-property", NAME, PATH, NAME, "State"]).status.success() {
            assert!(Instant::now() < deadline, "update-dbus did not take its name");
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    fn signal(&self, sig: &str) {
        let s = Command::new("kill").arg(format!("-{sig}")).arg(self.0.id().to_string()).status().unwrap();
        assert!(s.success());
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn busctl(bus: &Bus, args: &[&str]) -> Output {
    Command::new("busctl")
        .arg(format!("--address={}", bus.address))
        .args(args)
        .output()
        .expect("busctl (apt install systemd)")
}

/// `gdbus call` of a method of the interface, as root or (with `user`) another uid.
fn gdbus_call(bus: &Bus, user: Option<&str>, method: &str, args: &[&str]) -> Output {
    let mut c = match user {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups", "gdbus"]);
            c
        }
        None => Command::new("gdbus"),
    };
    c.args(["call", "--address", &bus.address, "--dest", NAME, "--object-path", PATH, "--method"])
        .arg(format!("{NAME}.{method}"))
        .args(args)
        .output()
        .expect("gdbus (apt install libglib2.0-bin)")
}

fn property(bus: &Bus, name: &str) -> String {
    let o = busctl(bus, &["get-property", NAME, PATH, NAME, name]);
    assert!(o.status.success(), "get-property {name}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// `gdbus monitor` of the service's signals, line by line.
struct Monitor {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Monitor {
    fn start(bus: &Bus) -> Self {
        let mut child = Command::new("stdbuf")
            .args(["-oL", "gdbus", "monitor", "--address", &bus.address, "--dest", NAME, "--object-path", PATH])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut m = Monitor { child, lines, seen: Vec::new() };
        m.wait_for("the monitor subscribed", |l| l.contains("is owned by"));
        m
    }

    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no {what} within 120 s; seen:\n{}", self.seen.join("\n")),
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A simulated device at 1.0.0 that trusts `key()` and takes updates from /srv/update.
fn device(dir: &Path) -> SimDevice {
    let opts = SimOptions { loop_devices: false, rootfs_mib: 40, boot_mib: 2, data_mib: 8, ..SimOptions::default() };
    let dev = SimDevice::create(&dir.join("device"), &opts).unwrap();
    let mut u = Updater::open(dev.paths(), update_cli::drivers()).unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(key().verifying_key().as_bytes());
    u.key_add(&KeyName::new("vendor").unwrap(), PublicKey::parse(&public).unwrap()).unwrap();
    u.set(&Setting::Source(SourceUrl::new("file:///srv/update").unwrap())).unwrap();
    u.set(&Setting::Log(LogTarget::new("/var/log/update.log").unwrap())).unwrap();
    dev
}

/// Publishes a signed release into the device's source directory; the rootfs carries 16 MiB of
/// random bytes so that an install takes long enough to be caught holding the lock.
fn publish(dir: &Path, root: &Path, version: &str) {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let rootfs = images.join(format!("rootfs-{version}.img"));
    let kernel = images.join(format!("kernel-{version}.img"));
    make_rootfs(&rootfs, version, "ok", 40, 32 << 10).unwrap();
    make_kernel(&kernel, version, 256 << 10).unwrap();
    let mut o = update_bundle::CreateOptions::new(update_core::parse_version(version).unwrap(), "demo-board");
    o.images = vec![(SlotGroupName::new("rootfs").unwrap(), rootfs), (SlotGroupName::new("kernel").unwrap(), kernel)];
    o.signers = vec![(KeyName::new("vendor").unwrap(), key())];
    o.chunk_size = 256 << 10;
    let source = root.join("srv/update");
    std::fs::create_dir_all(&source).unwrap();
    let mut scratch = tempfile::tempfile().unwrap();
    let mut out = std::fs::File::create(source.join(format!("release-{version}.bundle"))).unwrap();
    update_bundle::create(&o, &mut scratch, &mut out).unwrap();
}

/// Waits until some process holds the install lock (an install is under way), or `done` says
/// the process that was to take it has finished.
fn wait_for_lock(root: &Path, mut done: impl FnMut() -> bool) {
    let lock = update_core::Paths::new(root).lock_file();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match atomic::Lock::acquire_within(&lock, Duration::ZERO) {
            Err(update_core::Error::Busy { .. }) => return,
            Ok(l) => drop(l),
            Err(e) => panic!("{e}"),
        }
        assert!(!done(), "the install finished before it was seen holding the lock");
        assert!(Instant::now() < deadline, "no install took the lock");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn install_over_dbus_with_signals_authorization_and_the_clis_lock() {
    if !is_root() {
        eprintln!("skipped: the D-Bus service test needs root (the service writes the simulated device as root)");
        return;
    }
    let cli = update_cli();
    let dir = tempfile::tempdir().unwrap();
    let dev = device(dir.path());
    let root = dev.paths().root().to_owned();
    publish(dir.path(), &root, "2.0.0");
    let bus_dir = tempfile::tempdir().unwrap();
    let bus = Bus::start(bus_dir.path());
    let service = Service::start(&bus, &root);

    // Properties, readable by everyone.
    assert_eq!(property(&bus, "Driver"), r#"s "native""#);
    assert_eq!(property(&bus, "BootedSlot"), r#"s "A""#);
    assert_eq!(property(&bus, "State"), r#"s "idle""#);
    assert_eq!(property(&bus, "PendingUpdate"), "a{ss} 0");
    let versions = property(&bus, "Versions");
    assert!(versions.contains(r#""A" "1.0.0""#), "{versions}");
    let o = Command::new("setpriv")
        .args([&format!("--reuid={NOBODY}"), &format!("--regid={NOBODY}"), "--clear-groups", "busctl"])
        .arg(format!("--address={}", bus.address))
        .args(["get-property", NAME, PATH, NAME, "State"])
        .output()
        .unwrap();
    assert!(o.status.success(), "an unprivileged caller reads properties: {}", text(&o));

    // Check finds the update.
    let o = gdbus_call(&bus, None, "Check", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).starts_with("(true, '2.0.0', "), "{}", text(&o));
    assert!(text(&o).contains("libupdate/check/1"), "{}", text(&o));

    // An unprivileged caller may not install (no polkit on this bus: root only).
    let o = gdbus_call(&bus, Some(NOBODY), "Install", &["false"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("org.libupdate.Update1.Error.AccessDenied"), "{}", text(&o));
    let o = gdbus_call(&bus, Some(NOBODY), "SetConfig", &["schedule", "off"]);
    assert!(text(&o).contains("org.libupdate.Update1.Error.AccessDenied"), "{}", text(&o));

    // Install over D-Bus (busctl), a real one; while it holds the lock, `update --now` is busy.
    let mut monitor = Monitor::start(&bus);
    let o = busctl(&bus, &["call", NAME, PATH, NAME, "Install", "b", "false"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for_lock(&root, || false);
    service.signal("STOP");
    let o = Command::new(&cli).arg("--root").arg(&root).args(["--now", "--noreboot"]).output().unwrap();
    service.signal("CONT");
    assert_eq!(o.status.code(), Some(8), "the CLI is busy while the D-Bus install runs: {}", text(&o));
    monitor.wait_for("a Progress signal", |l| l.contains(&format!("{NAME}.Progress (uint32 ")));
    let finished = monitor.wait_for("the Finished signal", |l| l.contains(&format!("{NAME}.Finished")));
    assert!(finished.contains("Finished (true, "), "{finished}\n{}", monitor.seen.join("\n"));
    assert!(finished.contains("2.0.0"), "{finished}");
    let seen = monitor.seen.join("\n");
    assert!(seen.contains("'State': <'installing'>"), "{seen}");
    assert!(seen.contains("'PendingUpdate': <{'slot': 'B', 'version': '2.0.0'}>"), "{seen}");
    assert!(seen.contains(&format!("{NAME}.StateChanged ('pending-reboot',)")), "{seen}");
    assert!(seen.contains("'100'") || seen.contains("uint32 100,"), "{seen}");

    // The slot and the status after the install.
    assert_eq!(dev.read_rootfs_file(Slot::B, "/etc/version").unwrap().trim(), "2.0.0");
    assert_eq!(property(&bus, "State"), r#"s "pending-reboot""#);
    let pending = property(&bus, "PendingUpdate");
    assert!(pending.contains(r#""slot" "B""#) && pending.contains(r#""version" "2.0.0""#), "{pending}");
    let o = Command::new(&cli).arg("--root").arg(&root).args(["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["pending"]["version"], "2.0.0", "{status:#}");

    // Errors carry the kind's name: mark-good is refused while an update waits for its reboot.
    let o = gdbus_call(&bus, None, "MarkGood", &[]);
    assert!(text(&o).contains("org.libupdate.Update1.Error.Refused"), "{}", text(&o));
    // Cancel drops it.
    let o = gdbus_call(&bus, None, "Cancel", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("cancelled the pending update 2.0.0"), "{}", text(&o));
    assert_eq!(property(&bus, "PendingUpdate"), "a{ss} 0");
    monitor.wait_for("State idle", |l| l.contains("'State': <'idle'>"));

    // The other way round: while `update --now` holds the lock, Install is busy.
    publish(dir.path(), &root, "3.0.0");
    let mut child = Command::new(&cli)
        .arg("--root")
        .arg(&root)
        .args(["--now", "--noreboot"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lock(&root, || child.try_wait().unwrap().is_some());
    let stop = |sig: &str| {
        assert!(Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status().unwrap().success());
    };
    stop("STOP");
    let o = gdbus_call(&bus, None, "Install", &["false"]);
    stop("CONT");
    assert!(text(&o).contains("org.libupdate.Update1.Error.Busy"), "{}", text(&o));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pending = property(&bus, "PendingUpdate");
    assert!(pending.contains(r#""version" "3.0.0""#), "{pending}");
}

#[test]
fn config_over_dbus_and_errors_per_kind() {
    if !is_root() {
        eprintln!("skipped: the D-Bus service test needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dev = device(dir.path());
    let root = dev.paths().root().to_owned();
    let bus_dir = tempfile::tempdir().unwrap();
    let bus = Bus::start(bus_dir.path());
    let _service = Service::start(&bus, &root);

    let o = gdbus_call(&bus, None, "GetConfig", &["source"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "('file:///srv/update',)", "{}", text(&o));
    let o = gdbus_call(&bus, None, "SetConfig", &["schedule", "daily 3"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = gdbus_call(&bus, Some(NOBODY), "GetConfig", &["schedule"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "('daily 3',)", "{}", text(&o));
    let stored = std::fs::read_to_string(dev.paths().config_file()).unwrap();
    assert!(stored.contains("daily 3"), "{stored}");
    for (key, value, error) in [
        ("verify", "maybe", "Usage"),
        ("no-such-key", "1", "Usage"),
        ("key", "list", "Usage"),
        ("source", "'--help'", "Usage"),
    ] {
        let o = gdbus_call(&bus, None, "SetConfig", &[key, value]);
        assert!(text(&o).contains(&format!("org.libupdate.Update1.Error.{error}")), "{key} {value}: {}", text(&o));
    }
    let o = gdbus_call(&bus, None, "GetConfig", &["nope"]);
    assert!(text(&o).contains("org.libupdate.Update1.Error.Usage"), "{}", text(&o));
    // Nothing to cancel: refused.
    let o = gdbus_call(&bus, None, "Cancel", &[]);
    assert!(text(&o).contains("org.libupdate.Update1.Error.Refused"), "{}", text(&o));
}

/// The live introspection of the interface is the committed XML.
#[test]
fn introspection_matches_the_committed_xml() {
    let dir = tempfile::tempdir().unwrap();
    let bus_dir = tempfile::tempdir().unwrap();
    // No device needed: introspection does not read it (the properties answer "unavailable").
    let bus = Bus::start(bus_dir.path());
    let _service = Service::start(&bus, dir.path());
    let o = Command::new("gdbus")
        .args(["introspect", "--address", &bus.address, "--dest", NAME, "--object-path", PATH, "--xml"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let live = String::from_utf8_lossy(&o.stdout).into_owned();
    let start = live.find(&format!("<interface name=\"{NAME}\">")).expect("the interface is introspected");
    let end = start + live[start..].find("</interface>").unwrap() + "</interface>".len();
    let interface = &live[start..end];
    let path = repo().join("docs/reference/org.libupdate.Update1.xml");
    let expected = format!(
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \
         \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n\
         <!-- org.libupdate.Update1 at /org/libupdate/Update1 (docs/reference/dbus.md).\n     \
         Written by the test introspection_matches_the_committed_xml (UPDATE_BLESS=1). -->\n\
         <node name=\"{PATH}\">\n  {interface}\n</node>\n"
    );
    if std::env::var_os("UPDATE_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed,
        expected,
        "{} differs from the live introspection (UPDATE_BLESS=1 rewrites it)",
        path.display()
    );
}
