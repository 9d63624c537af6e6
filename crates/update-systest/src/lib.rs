//! The system test: proof on a real boot (docs/system-test.md).
//!
//! Builds, without root or loop devices, a GPT disk image with BIOS GRUB, our GRUB fragment and
//! its two environment files on the ESP, boot and rootfs slots A/B and a data partition, with a
//! Debian kernel (fetched with `apt-get download`), a busybox userland and a statically linked
//! `update`; runs `update-server` on the host over HTTPS with mutual TLS; and boots the image
//! under QEMU (TCG) again and again.
//!
//! This library is the harness; the scenarios are `#[test] #[ignore]` functions in
//! `tests/scenarios.rs`, so a plain `cargo test` compiles them and runs only the harness's unit
//! tests:
//!
//! ```text
//! cargo test -p update-systest -- --ignored --list          # the scenarios
//! cargo test -p update-systest -- --ignored happy_path      # one of them
//! cargo xtask system-test [--long] [--seed N] [--cuts N]    # all, after installing packages
//! ```
//!
//! Each scenario gets its own device, server, PKI and directory `target/system/run/<name>/`
//! (console logs in `logs/`). The binaries, kernel, initramfs and GRUB image are built once per
//! test process. Options come from the environment (the xtask sets them from its flags):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `UPDATE_SYSTEST_LONG=1` | the long run: more cuts, a longer time budget | off |
//! | `UPDATE_SYSTEST_SEED=N` | repeat a run's random moments (each scenario prints its seed) | the clock |
//! | `UPDATE_SYSTEST_CUTS=N` | power cuts over the four power-cut scenarios (N/4 each, rounded up) | 20; long: 60 |
//!
//! Modules: [`artifacts`] (what every image is made of), [`disk`] (the GPT image), [`device`]
//! (provisioning, releases, booting), [`vm`] (QEMU and its console), [`server`]
//! (`update-server` and the repositories), [`scenarios`] (happy path, bad update, a failed
//! release not reinstalled), [`power_cut`] (real power cuts, SIGKILL of QEMU), [`delta`] (a
//! delta update cut by a power cut and resumed).

pub mod artifacts;
pub mod delta;
pub mod device;
pub mod disk;
pub mod error;
pub mod power_cut;
pub mod scenarios;
pub mod server;
pub mod util;
pub mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use update_test::pki::{Identity, Pki};

pub use error::{Error, Result};

use artifacts::Artifacts;
use device::{Ctx, Device};
use server::Server;
use util::{Rng, quiet};

/// Debian packages the system test uses, with a file each provides, one pair a line
/// (`tests/system/packages`; `cargo xtask system-test` installs the missing ones).
pub const PACKAGES: &str = include_str!("../../../tests/system/packages");

/// The packages of [`PACKAGES`] whose file is missing.
#[must_use]
pub fn missing_packages() -> Vec<&'static str> {
    PACKAGES
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, file)| !Path::new(file.trim()).exists())
        .map(|(package, _)| package)
        .collect()
}

/// The workspace root.
#[must_use]
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cargo that runs us (for building the guest binary and the host tools).
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into())
}

/// Options of a run, from the environment (see the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `UPDATE_SYSTEST_LONG`.
    pub long: bool,
    /// `UPDATE_SYSTEST_SEED`, or one from the clock.
    pub seed: u64,
    /// `UPDATE_SYSTEST_CUTS`, or 20 (long: 60).
    pub cuts: usize,
}

impl Options {
    /// Reads the options from `var` (`std::env::var` in the scenarios).
    ///
    /// # Errors
    /// [`Error::Setup`] for a value that is not a number (or `0`/`1` for the flag).
    pub fn from(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let number = |name: &str| -> Result<Option<u64>> {
            var(name)
                .map(|v| {
                    v.trim().parse().map_err(|_| {
                        Error::Setup(format!("{name}={v} is not a whole number (see docs/system-test.md)"))
                    })
                })
                .transpose()
        };
        let long = match var("UPDATE_SYSTEST_LONG").as_deref().map(str::trim) {
            None | Some("" | "0") => false,
            Some("1") => true,
            Some(v) => return Err(Error::Setup(format!("UPDATE_SYSTEST_LONG={v}: expected 1 or 0"))),
        };
        let seed = number("UPDATE_SYSTEST_SEED")?.unwrap_or_else(util::clock_seed);
        let cuts = match number("UPDATE_SYSTEST_CUTS")? {
            Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(_) => return Err(Error::Setup("UPDATE_SYSTEST_CUTS must be at least 1".into())),
            None if long => 60,
            None => 20,
        };
        Ok(Options { long, seed, cuts })
    }

    /// The time a power-cut scenario may take before it fails.
    #[must_use]
    pub fn budget(&self) -> Duration {
        Duration::from_secs(if self.long { 5400 } else { 1800 })
    }
}

/// The artifacts, built once per test process (scenarios run on parallel threads).
static ARTIFACTS: Mutex<Option<Arc<Artifacts>>> = Mutex::new(None);

fn artifacts() -> Result<Arc<Artifacts>> {
    let mut slot = ARTIFACTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(a) = slot.as_ref() {
        return Ok(a.clone());
    }
    let t0 = Instant::now();
    let art = Arc::new(artifacts::prepare(&artifacts::system_dir().join("artifacts"))?);
    eprintln!("system-test: kernel {}; artifacts ready after {:.0} s", art.kernel_package, t0.elapsed().as_secs_f64());
    *slot = Some(art.clone());
    Ok(art)
}

/// One scenario's world: its directory, vendor key, PKI, running server, options and random
/// numbers, and the outcomes it has proved so far.
pub struct Scenario {
    /// Its name (the test's).
    pub name: String,
    /// What its devices share.
    pub ctx: Arc<Ctx>,
    /// The run's PKI (server and device certificates).
    pub pki: Pki,
    /// The fleet server.
    pub server: Server,
    /// An operator certificate for the server's operator API.
    pub operator: Identity,
    /// The options.
    pub options: Options,
    /// Its random numbers (seeded from the options and its name).
    pub rng: Rng,
    started: Instant,
    checks: Vec<String>,
    boots: u32,
}

impl Scenario {
    /// Prepares a scenario: checks the packages, builds the artifacts (once per process),
    /// makes a fresh `target/system/run/<name>/`, the vendor key, the PKI, and starts the server.
    ///
    /// # Errors
    /// Missing packages, a failed build, a server that does not start.
    pub fn start(name: &str) -> Result<Scenario> {
        let started = Instant::now();
        let missing = missing_packages();
        if !missing.is_empty() {
            return Err(Error::Setup(format!(
                "the system test needs these Debian packages: {} (`cargo xtask system-test` installs them; see docs/system-test.md)",
                missing.join(" ")
            )));
        }
        let options = Options::from(|k| std::env::var(k).ok())?;
        eprintln!("system-test: {name}: seed {} (repeat with UPDATE_SYSTEST_SEED={})", options.seed, options.seed);
        let art = artifacts()?;
        let work = artifacts::system_dir().join("run").join(name);
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(error::io("create", &work))?;
        let keys = work.join("keys");
        quiet(Command::new(&art.update_tool).args(["key", "generate", "vendor", "--out"]).arg(&keys))?;
        let pki = Pki::new(&work.join("pki"), &["10.0.2.2", "127.0.0.1", "localhost"])?;
        let server = Server::start(&art.update_server, &work, &pki)?;
        let operator = pki.client("operator-console")?;
        let ctx = Arc::new(Ctx {
            art: (*art).clone(),
            work,
            vendor_key: keys.join("vendor.key"),
            vendor_pub: keys.join("vendor.pub"),
            server_ca: pki.server_ca.clone(),
            port: server.port,
            repo_root: server.repo_root.clone(),
            vm: vm::VmOptions { smp: 1, mem_mib: 384, deadline: Duration::from_secs(300) },
            fleet: true,
            retry_limit: 2,
        });
        let seed = name.bytes().fold(options.seed, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        Ok(Scenario {
            name: name.to_owned(),
            ctx,
            pki,
            server,
            operator,
            options,
            rng: Rng::new(seed),
            started,
            checks: Vec::new(),
            boots: 0,
        })
    }

    /// Provisions a device with `factory` in slot A and its certificate (CN = `name`).
    ///
    /// # Errors
    /// When provisioning fails.
    pub fn device(&mut self, name: &str, factory: &str) -> Result<Device> {
        self.device_with_payload(name, factory, std::collections::BTreeMap::new())
    }

    /// [`Scenario::device`] whose rootfs images hold `payload` ([`Device::payload`]).
    ///
    /// # Errors
    /// When provisioning fails.
    pub fn device_with_payload(
        &mut self,
        name: &str,
        factory: &str,
        payload: std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Result<Device> {
        let identity = self.pki.client(name)?;
        Device::create(self.ctx.clone(), name, factory, &identity, &mut self.rng, payload)
    }

    /// Records a proved outcome.
    pub fn ok(&mut self, what: impl Into<String>) {
        let what = what.into();
        eprintln!("system-test: {}: ok: {what}", self.name);
        self.checks.push(what);
    }

    /// Counts a device's boots into the summary.
    pub fn count_boots(&mut self, dev: &Device) {
        self.boots += dev.boots;
    }

    /// The device's events on the server, as (kind, version), oldest first, without `checking`.
    ///
    /// # Errors
    /// When the operator API fails.
    pub fn events(&self, device: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .server
            .device_events(&self.pki, &self.operator, device)?
            .iter()
            .map(|e| (e["kind"].as_str().unwrap_or("?").to_owned(), e["version"].as_str().unwrap_or("-").to_owned()))
            .filter(|(k, _)| k != "checking")
            .collect())
    }

    /// The summary: what was proved, boots, wall time, where the logs are.
    #[must_use]
    pub fn summary(&self, result: &Result) -> String {
        let mut out = format!(
            "== system test {}: {} boots, {:.0} s (seed {})\n",
            self.name,
            self.boots,
            self.started.elapsed().as_secs_f64(),
            self.options.seed
        );
        for c in &self.checks {
            out += &format!("  ok  {c}\n");
        }
        if let Err(e) = result {
            out += &format!("  FAILED: {e}\n");
        }
        out += &format!("  console logs: {}\n", self.ctx.work.join("logs").display());
        out
    }
}

/// Runs one scenario: prepares it, runs `body`, prints the summary, and panics with the error
/// (so the test fails with a readable message).
///
/// # Panics
/// When the scenario fails.
pub fn run(name: &str, body: impl FnOnce(&mut Scenario) -> Result) {
    let mut scenario = match Scenario::start(name) {
        Ok(s) => s,
        Err(e) => panic!("system test {name}: setup failed: {e}"),
    };
    let result = body(&mut scenario);
    let summary = scenario.summary(&result);
    println!("{summary}");
    let _ = std::fs::write(scenario.ctx.work.join("summary.txt"), &summary);
    if let Err(e) = result {
        panic!("system test {name} failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(vars: &[(&str, &str)]) -> Result<Options> {
        Options::from(|k| vars.iter().find(|(name, _)| *name == k).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn options_come_from_the_environment() {
        let o = options(&[("UPDATE_SYSTEST_SEED", "42")]).unwrap();
        assert_eq!((o.long, o.seed, o.cuts), (false, 42, 20));
        let o = options(&[("UPDATE_SYSTEST_LONG", "1"), ("UPDATE_SYSTEST_SEED", "7")]).unwrap();
        assert_eq!((o.long, o.seed, o.cuts, o.budget()), (true, 7, 60, Duration::from_secs(5400)));
        let o = options(&[("UPDATE_SYSTEST_CUTS", "8"), ("UPDATE_SYSTEST_LONG", "0")]).unwrap();
        assert_eq!((o.long, o.cuts), (false, 8));
        for bad in [
            ("UPDATE_SYSTEST_SEED", "x"),
            ("UPDATE_SYSTEST_SEED", "-1"),
            ("UPDATE_SYSTEST_CUTS", "0"),
            ("UPDATE_SYSTEST_CUTS", "2.5"),
            ("UPDATE_SYSTEST_LONG", "yes"),
        ] {
            let e = options(&[bad]).unwrap_err();
            assert!(matches!(e, Error::Setup(_)), "{bad:?}: {e}");
            assert!(e.to_string().contains(bad.0), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_package_list_names_a_file_for_every_package() {
        let pairs: Vec<&str> = PACKAGES.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
        assert!(pairs.len() >= 10, "{pairs:?}");
        assert!(pairs.iter().all(|l| l.split_once(' ').is_some_and(|(_, f)| f.starts_with('/'))), "{pairs:?}");
        assert!(pairs.iter().any(|l| l.starts_with("qemu-system-x86 ")));
    }
}
