//! Shared test machinery: the context a driver runs in, recorders for its events and progress,
//! the SKIPPED/REQUIRE logic, and small process helpers for the rigs.
// Shared by rigs compiled per cargo feature: with some features off, parts are unused.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use update_core::Paths;
use update_core::audit::{AuditAction, AuditRecord, Outcome};
use update_core::config::Config;
use update_core::driver::{Context, Driver, DriverFactory, Events, Probe, Progress};
use update_core::keyring::Keyring;

/// The variable that turns a missing tool into a failure (`rauc,swupdate,mender,ostree,native`
/// or `all`).
pub const REQUIRE_VAR: &str = "UPDATE_ADAPTERS_REQUIRE";

/// Whether `driver`'s tests can run here. With the tools, root or loop devices missing this
/// prints `SKIPPED` and returns false, unless [`REQUIRE_VAR`] names the driver: then it fails
/// the test.
pub fn available(driver: &str, tools: &[&str], need_root: bool, need_loop: bool) -> bool {
    let missing: Vec<&str> =
        tools.iter().copied().filter(|t| update_adapters::tool::locate(Path::new(t), None).is_none()).collect();
    let not_root = need_root && !is_root();
    let no_loop = need_loop && !Path::new("/dev/loop-control").exists();
    if missing.is_empty() && !not_root && !no_loop {
        return true;
    }
    let why = if !missing.is_empty() {
        format!("not installed: {}", missing.join(", "))
    } else if not_root {
        "these tests need root (loop mounts, mount namespaces)".to_owned()
    } else {
        "these tests need loop devices (no /dev/loop-control)".to_owned()
    };
    let required =
        std::env::var(REQUIRE_VAR).unwrap_or_default().split(',').any(|d| d.trim() == driver || d.trim() == "all");
    assert!(!required, "{REQUIRE_VAR} requires the {driver} driver's tests to run, but {why}");
    skipped(&format!("{driver} conformance test: {why}"));
    false
}

/// Prints `SKIPPED: …` where it is seen: straight to stderr, past libtest's output capture.
pub fn skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Records what a driver logs and audits.
#[derive(Debug, Default)]
pub struct Recorder {
    pub lines: RefCell<Vec<String>>,
}

impl Events for Recorder {
    fn audit(&self, record: AuditRecord) {
        self.lines.borrow_mut().push(format!("audit {record:?}"));
    }
    fn info(&self, message: &str) {
        self.lines.borrow_mut().push(format!("info {message}"));
    }
    fn warn(&self, message: &str) {
        self.lines.borrow_mut().push(format!("warn {message}"));
    }
    fn record(&self, action: AuditAction, outcome: Outcome) -> AuditRecord {
        AuditRecord::new("2026-01-01T00:00:00Z".into(), "test".into(), action, outcome)
    }
}

/// Records progress.
#[derive(Debug, Default)]
pub struct ProgressRecorder {
    pub started: RefCell<Vec<(String, u64)>>,
    pub advanced: RefCell<u64>,
}

impl Progress for ProgressRecorder {
    fn start(&self, label: &str, total: u64) {
        self.started.borrow_mut().push((label.into(), total));
    }
    fn advance(&self, n: u64) {
        *self.advanced.borrow_mut() += n;
    }
    fn finish(&self) {}
}

/// Everything a driver call needs.
pub struct Harness {
    pub paths: Paths,
    pub config: Config,
    pub keyring: Keyring,
    pub events: Recorder,
    pub progress: ProgressRecorder,
}

impl Harness {
    pub fn new(root: &Path, driver: &str) -> Self {
        Self {
            paths: Paths::new(root),
            config: Config { driver: driver.into(), ..Config::default() },
            keyring: Keyring::default(),
            events: Recorder::default(),
            progress: ProgressRecorder::default(),
        }
    }

    pub fn ctx(&self) -> Context<'_> {
        Context {
            paths: &self.paths,
            config: &self.config,
            keyring: &self.keyring,
            events: &self.events,
            progress: &self.progress,
        }
    }

    /// Probes `factory` and expects a driver.
    pub fn driver(&self, factory: &dyn DriverFactory) -> Box<dyn Driver> {
        match factory.probe(&self.ctx()) {
            Probe::Available(d) => d,
            other => panic!("{} did not probe as available: {other:?}", factory.name()),
        }
    }
}

/// Runs a command and fails the test with its output when it fails.
#[track_caller]
pub fn sh(mut cmd: impl std::borrow::BorrowMut<Command>) -> String {
    let cmd = cmd.borrow_mut();
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `Command::new(program).args(args)`.
pub fn cmd<I, S>(program: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// A child process the rig started; killed (by its own pid) and reaped on drop.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Service {
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        format!("{} log:\n{}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `ready` for up to `secs` seconds.
pub fn wait_until(secs: u64, mut ready: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A throwaway PKI for X.509-signed tools (rauc, swupdate): a CA, a signer it issued, and an
/// unrelated self-signed "evil" signer. Keys are named `snakeoil`.
pub struct Pki {
    pub ca_cert: PathBuf,
    pub signer_cert: PathBuf,
    pub signer_key: PathBuf,
    pub evil_cert: PathBuf,
    pub evil_key: PathBuf,
}

impl Pki {
    pub fn create(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let p = |n: &str| dir.join(n);
        let openssl = |args: &[&str]| sh(Command::new("openssl").args(args).current_dir(dir));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key.pem",
            "-out",
            "ca.cert.pem",
            "-subj",
            "/O=snakeoil/CN=snakeoil-ca",
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "signer.key.pem",
            "-out",
            "signer.csr",
            "-subj",
            "/O=snakeoil/CN=snakeoil-signer",
        ]);
        std::fs::write(
            p("signer.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection,codeSigning\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "signer.csr",
            "-CA",
            "ca.cert.pem",
            "-CAkey",
            "ca.key.pem",
            "-CAcreateserial",
            "-out",
            "signer.cert.pem",
            "-days",
            "3650",
            "-extfile",
            "signer.ext",
        ]);
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "evil.key.pem",
            "-out",
            "evil.cert.pem",
            "-subj",
            "/O=snakeoil/CN=snakeoil-evil",
            "-days",
            "3650",
        ]);
        Self {
            ca_cert: p("ca.cert.pem"),
            signer_cert: p("signer.cert.pem"),
            signer_key: p("signer.key.pem"),
            evil_cert: p("evil.cert.pem"),
            evil_key: p("evil.key.pem"),
        }
    }
}

/// Deterministic image bytes for a version (so tests can tell what landed in a slot).
pub fn image_bytes(version: &str, len: usize) -> Vec<u8> {
    let seed = format!("libupdate-test-image-{version}:");
    seed.bytes().cycle().take(len).collect()
}

/// Flips one byte in the middle of a file.
pub fn flip_byte(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let at = at.min(len.saturating_sub(1));
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut b = [0u8];
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x5a]).unwrap();
}

/// U-Boot's bootcount protocol: while `upgrade_available=1` every boot increments `bootcount`;
/// past `bootlimit` the bootloader runs `altbootcmd`, which switches to the other slot and clears
/// `upgrade_available`. Returns the slot that boots and the variables to write.
pub fn uboot_bootcount(
    env: &BTreeMap<String, String>,
    slot_var: &str,
    default_slot: &str,
    other: fn(&str) -> String,
) -> (String, Vec<String>) {
    let mut slot = env.get(slot_var).cloned().unwrap_or_else(|| default_slot.to_owned());
    let mut set = Vec::new();
    if env.get("upgrade_available").map(String::as_str) == Some("1") {
        let count: u32 = env.get("bootcount").and_then(|v| v.parse().ok()).unwrap_or(0) + 1;
        let limit: u32 = env.get("bootlimit").and_then(|v| v.parse().ok()).unwrap_or(1);
        set.push(format!("bootcount={count}"));
        if count > limit {
            slot = other(&slot);
            set.push(format!("{slot_var}={slot}"));
            set.push("upgrade_available=0".into());
        }
    }
    (slot, set)
}

/// Incompressible, deterministic bytes (xorshift), so a flipped byte lands in real payload.
pub fn noise_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// The byte range of `member` inside a tar file.
pub fn tar_member(path: &Path, member: &str) -> Option<(u64, u64)> {
    let data = std::fs::read(path).ok()?;
    let mut off = 0usize;
    while off + 512 <= data.len() {
        let h = &data[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            return None;
        }
        let name = String::from_utf8_lossy(&h[..100]).trim_end_matches('\0').to_owned();
        let size_text = String::from_utf8_lossy(&h[124..136]).trim_matches(|c: char| c == '\0' || c == ' ').to_owned();
        let size = u64::from_str_radix(&size_text, 8).ok()?;
        if name == member {
            return Some(((off + 512) as u64, size));
        }
        off += 512 + usize::try_from(size.div_ceil(512) * 512).ok()?;
    }
    None
}
