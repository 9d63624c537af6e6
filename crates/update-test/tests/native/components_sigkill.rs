//! Power-cut torture of a multi-component transaction with the real handlers (issue 12, item 4;
//! docs/components.md "Power cuts"): OS images + MCU firmware (a simulated MCUboot MCU on a
//! pty, owned by this test process so it outlives the installer) + an app + a data set, in one
//! signed bundle, installed by the real installer process (`update-sim install`, and `update-sim
//! mark-good` after the reboot), which is killed at every write/flush boundary in turn.
//!
//! The boundaries are the installer's durability system calls (`fsync`, `fdatasync`, `rename`,
//! `renameat`, `renameat2`). One uninterrupted run under `strace` lists them in order; trial
//! `k` runs the same flow again with `strace -e inject=SYSCALL:error=EIO:signal=SIGKILL:when=J`
//! (J: the invocation of that call that is boundary `k`), so the process dies on entering
//! exactly the `k`-th boundary; the trace of each killed run is compared with the recorded one.
//! After the kill: either the installer crashed and the device stayed up (the MCU keeps running;
//! the next command, `update status`, recovers) or the whole device lost power (the MCU too:
//! MCUboot reverts an unconfirmed image); then the device boots as often as it must, with a
//! health service that runs `mark-good` on a slot on trial. The settled device must run the old
//! set (OS 1.0.0, MCU 1.0.0, app 1.0.0, data 1.0.0) or the new set (2.0 / 2.0.0 ×3), committed,
//! with every handler's status agreeing with the real target — never a mix; with a broken app the
//! new set must never be kept. Observations while the transaction is still open must show the new
//! set on trial (or, after the MCU lost power, its reverted image, which the health check at
//! mark-good then rolls back as a whole).
//!
//! A SIGKILL keeps the page cache (TEST-RIG.md level 2): writes not yet flushed are not lost, so
//! this checks every ordering of the steps between boundaries, not lost writes (level 1, and
//! components.rs's in-process cuts, cover those).
//!
//! Four flows: components only / with OS images, healthy / broken app. Default (CI, about two
//! minutes): every 7th boundary with the crash cut and every 21st with the whole-device cut,
//! starting at a different boundary in each flow. `UPDATE_TORTURE_LONG=1`: every boundary with
//! both cuts (the full matrix: 780 trials, about 16 minutes); with `UPDATE_TORTURE_STEP=k`, every k-th.
//! `UPDATE_TORTURE_FLOWS=0,2` runs only those flows.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use update_boot::Slot;
use update_bundle::{ComponentSource, CreateOptions};
use update_core::component::{ComponentName, ComponentState, Kind, Settings};
use update_core::config::ComponentConfig;
use update_core::driver::SlotState;
use update_core::{KeyName, Paths};
use update_test::mcu::{McuOptions, SimMcu};

use crate::common::{Fixture, v};

const MCU_SLOT: usize = 256 << 10;
/// The durability system calls: a kill on entering each is a distinct cut.
const BOUNDARIES: &str = "fsync,fdatasync,rename,renameat,renameat2";
/// What the snapshot of the old set holds (relative to the root), besides the MCU's flash.
const SNAPSHOT: [&str; 5] = ["var/lib/update", "data", "boot/update", "proc/cmdline", "run"];

/// The health check fails unless the app's tree says "ok".
const HEALTH: &str = "#!/bin/sh\nexec grep -q '^ok' \"$UPDATE_ROOT$UPDATE_APP_DIR/health\"\n";
const RESTART: &str = "#!/bin/sh\nexit 0\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flow {
    os: bool,
    broken: bool,
}

impl std::fmt::Display for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} + mcu + app + data, {}",
            if self.os { "OS" } else { "no OS" },
            if self.broken { "broken app (rolled back)" } else { "healthy" }
        )
    }
}

/// How the installer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// The installer process was killed; the device (and the MCU) stayed up.
    Crash,
    /// The whole device lost power: the MCU too.
    Power,
}

/// The versions the device runs, read from the real targets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Set {
    os: String,
    mcu: String,
    app: String,
    data: String,
}

impl std::fmt::Display for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "os {} mcu {} app {} data {}", self.os, self.mcu, self.app, self.data)
    }
}

/// One observation: the set, and what `update status` said around it.
#[derive(Debug)]
struct Seen {
    set: Set,
    /// The component transaction is still open (its journal exists).
    open: bool,
    /// The booted OS slot is committed.
    os_good: bool,
    /// The booted OS slot is rolled back: uncommitted, and the other slot boots next.
    os_leaving: bool,
    mcu_confirmed: bool,
    /// Every component's handler says committed.
    committed: bool,
    release: Option<String>,
}

/// The tallies of one flow and cut.
#[derive(Debug, Default)]
struct Tally {
    trials: u32,
    old: u32,
    new: u32,
    mixed: u32,
    /// Observations on trial in which the MCU had reverted its unconfirmed image after losing
    /// power (the open transaction's health check then rolled the set back as a whole).
    trial_reverted: u32,
}

struct Rig {
    fx: Fixture,
    flash: PathBuf,
    mcu: Option<SimMcu>,
    snapshot: PathBuf,
    old: Set,
    new: Set,
    flow: Flow,
}

fn mcu_options() -> McuOptions {
    McuOptions { slot_size: MCU_SLOT, boot_time: Duration::from_millis(30), mtu: 1024 }
}

fn script(fx: &Fixture, device_path: &str, text: &str) {
    let p = fx.root().join(device_path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
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

/// A tar (built by the `tar` crate, fixed metadata) of `files`.
fn tar_file(fx: &Fixture, label: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, *bytes).unwrap();
    }
    let path = fx.images.join(format!("{label}.tar"));
    std::fs::write(&path, b.into_inner().unwrap()).unwrap();
    path
}

/// mcu (firmware), web (app) and site (data) at `version`; the app's health says `health`.
fn parts(fx: &Fixture, version: &str, health: &str) -> Vec<ComponentSource> {
    let fw = fx.images.join(format!("mcu-{version}.bin"));
    std::fs::write(&fw, SimMcu::image(version, 40_000)).unwrap();
    let blob = vec![version.as_bytes()[0]; 64 << 10];
    let app = tar_file(
        fx,
        &format!("web-{version}-{health}"),
        &[("VERSION", version.as_bytes()), ("health", health.as_bytes()), ("lib/web.bin", &blob)],
    );
    let site_conf = format!("site {version}\n");
    let table = format!("cal {version}\n");
    let data = tar_file(
        fx,
        &format!("site-{version}"),
        &[("site.conf", site_conf.as_bytes()), ("cal/table", table.as_bytes())],
    );
    vec![
        part("mcu", Kind::Firmware, version, fw),
        part("web", Kind::App, version, app),
        part("site", Kind::Data, version, data),
    ]
}

fn sim() -> &'static str {
    env!("CARGO_BIN_EXE_update-sim")
}

fn copy_tree(from: &Path, to: &Path) {
    if to.exists() || to.is_symlink() {
        if to.is_dir() && !to.is_symlink() {
            std::fs::remove_dir_all(to).unwrap();
        } else {
            std::fs::remove_file(to).unwrap();
        }
    }
    if !from.exists() {
        return;
    }
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

impl Rig {
    /// A device with the old set committed (factory OS 1.0.0 and MCU 1.0.0, then app and data
    /// 1.0.0 installed as release 1.1), snapshotted; the flow's bundle 2.0 is published.
    fn new(flow: Flow) -> Rig {
        let fx = Fixture::new();
        let flash = fx.dir.path().join("mcu.flash");
        SimMcu::create_flash(&flash, MCU_SLOT, &SimMcu::image("1.0.0", 30_000)).unwrap();
        let mcu = SimMcu::start(&flash, &fx.root().join("dev/ttyACM0"), mcu_options()).unwrap();
        script(&fx, "/usr/lib/web/restart", RESTART);
        script(&fx, "/usr/lib/web/health", HEALTH);
        std::fs::create_dir_all(fx.root().join("run")).unwrap();
        let paths = Paths::new(fx.root());
        let mut config = update_core::config::Config::load(&paths).unwrap();
        let settings = [
            (
                "mcu",
                Kind::Firmware,
                serde_json::json!({ "port": "/dev/ttyACM0", "timeout-ms": 2000, "mtu": 1024, "reset-timeout-ms": 5000 }),
            ),
            (
                "web",
                Kind::App,
                serde_json::json!({ "restart": ["/usr/lib/web/restart"], "health": ["/usr/lib/web/health"], "health-timeout": 10 }),
            ),
            ("site", Kind::Data, serde_json::json!({ "path": "/data/site" })),
        ];
        for (name, kind, s) in settings {
            let serde_json::Value::Object(s) = s else { unreachable!() };
            config.components.insert(ComponentName::new(name).unwrap(), ComponentConfig { kind, settings: s });
        }
        config.store(&paths).unwrap();
        let factory_os = fx.slot_version(Slot::A);
        let mut baseline = CreateOptions::new(v("1.1"), "demo-board");
        baseline.components = parts(&fx, "1.0.0", "ok");
        baseline.signers = vec![(KeyName::new("vendor").unwrap(), fx.key.clone())];
        fx.publish(&baseline);
        fx.updater().install_now(true).unwrap().installed.unwrap();
        let old = Set { os: factory_os.clone(), mcu: "1.0.0".into(), app: "1.0.0".into(), data: "1.0.0".into() };
        let new = Set {
            os: if flow.os { "2.0".into() } else { factory_os },
            mcu: "2.0.0".into(),
            app: "2.0.0".into(),
            data: "2.0.0".into(),
        };
        let mut rig = Rig { snapshot: fx.dir.path().join("snapshot"), fx, flash, mcu: Some(mcu), old, new, flow };
        let seen = rig.observe();
        assert!(rig.settled(&seen).is_ok() && seen.set == rig.old, "the old set: {seen:?}");
        // The snapshot of the old set (the MCU powered off while its flash is copied).
        rig.mcu.take().unwrap().power_cut();
        for p in SNAPSHOT {
            copy_tree(&rig.fx.root().join(p), &rig.snapshot.join(p));
        }
        std::fs::copy(&rig.flash, rig.snapshot.join("mcu.flash")).unwrap();
        rig.power_on_mcu();
        let health = if flow.broken { "broken" } else { "ok" };
        let mut bundle = if flow.os { rig.fx.options("2.0", "ok") } else { CreateOptions::new(v("2.0"), "demo-board") };
        bundle.components = parts(&rig.fx, "2.0.0", health);
        bundle.signers = vec![(KeyName::new("vendor").unwrap(), rig.fx.key.clone())];
        rig.fx.publish(&bundle);
        rig
    }

    fn power_on_mcu(&mut self) {
        self.mcu = Some(SimMcu::start(&self.flash, &self.fx.root().join("dev/ttyACM0"), mcu_options()).unwrap());
    }

    /// The MCU loses power and comes back (its bootloader runs).
    fn mcu_power_cut(&mut self) {
        if let Some(m) = self.mcu.take() {
            m.power_cut();
        }
        self.power_on_mcu();
    }

    /// Back to the snapshot of the old set.
    fn restore(&mut self) {
        if let Some(m) = self.mcu.take() {
            m.power_cut();
        }
        for p in SNAPSHOT {
            copy_tree(&self.snapshot.join(p), &self.fx.root().join(p));
        }
        std::fs::copy(self.snapshot.join("mcu.flash"), &self.flash).unwrap();
        self.power_on_mcu();
    }

    fn journal_open(&self) -> bool {
        self.fx.root().join("var/lib/update/transaction.json").exists()
    }

    /// `update status` (which recovers an interrupted transaction first), then the real
    /// targets: the booted slot's /etc/version, the MCU's primary image, the app's `current`
    /// link, the data files. A handler whose status disagrees with its target fails the test.
    fn observe(&self) -> Seen {
        let status = self.fx.updater().status().unwrap();
        let root = self.fx.root();
        let booted: Slot = status.booted.as_deref().expect("booted slot").parse().unwrap();
        let os = self.fx.slot_version(booted);
        let (mcu, mcu_confirmed) = self.mcu.as_ref().unwrap().running();
        let app = std::fs::read_to_string(root.join("var/lib/update/apps/web/current/VERSION"))
            .map_or_else(|_| "none".to_owned(), |t| t.trim().to_owned());
        let read = |p: &str, prefix: &str| {
            std::fs::read_to_string(root.join(p)).ok().and_then(|t| t.trim().strip_prefix(prefix).map(str::to_owned))
        };
        let data = match (read("data/site/site.conf", "site "), read("data/site/cal/table", "cal ")) {
            (Some(a), Some(b)) if a == b => a,
            (a, b) => format!("torn({a:?}/{b:?})"),
        };
        let set = Set { os, mcu, app, data };
        let mut committed = true;
        for (name, real) in [("mcu", &set.mcu), ("web", &set.app), ("site", &set.data)] {
            let c = status.components.iter().find(|c| c.name == name).expect("component in status");
            let st = c.status.as_ref().unwrap_or_else(|| panic!("{name}: status failed: {:?}", c.error));
            let said = st.active.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string);
            assert_eq!(&said, real, "{name}: status says {said}, the target runs {real} ({set})");
            committed &= st.state == ComponentState::Committed;
        }
        let os_good = status.slots.iter().any(|s| s.booted && s.state == SlotState::Good);
        let os_leaving = status.slots.iter().any(|s| s.booted && !s.primary && s.state != SlotState::Good);
        Seen {
            set,
            open: self.journal_open(),
            os_good,
            os_leaving,
            mcu_confirmed,
            committed,
            release: status.version.map(|v| v.to_string()),
        }
    }

    /// Whether an observation is a settled old or new set; the error says what is wrong.
    fn settled(&self, seen: &Seen) -> Result<bool, String> {
        let new = if seen.set == self.new {
            true
        } else if seen.set == self.old {
            false
        } else {
            return Err(format!("MIXED: {}", seen.set));
        };
        let release = if new { "2.0.0" } else { "1.1.0" };
        if seen.open || !seen.os_good || !seen.mcu_confirmed || !seen.committed {
            return Err(format!("not settled: {seen:?}"));
        }
        if seen.release.as_deref() != Some(release) {
            return Err(format!("release {:?}, not {release}: {seen:?}", seen.release));
        }
        Ok(new)
    }

    /// An observation while the device may still be between the sets: settled, or the
    /// transaction still open with its components on trial (the MCU possibly reverted by its
    /// own bootloader after losing power: counted). Never a component of the old set beside one
    /// of the new with the transaction closed.
    fn between(&self, seen: &Seen, tally: &mut Tally) -> Result<(), String> {
        if !seen.open {
            return self.settled_or_trial_os(seen);
        }
        let s = &seen.set;
        let new_components = s.app == self.new.app && s.data == self.new.data;
        if !new_components {
            return Err(format!("the transaction is open but the components are not the new ones: {s}"));
        }
        if s.mcu != self.new.mcu {
            if s.mcu == self.old.mcu && seen.mcu_confirmed {
                tally.trial_reverted += 1;
            } else {
                return Err(format!("open transaction, MCU runs {s}"));
            }
        }
        if s.os != self.old.os && s.os != self.new.os {
            return Err(format!("unknown OS: {s}"));
        }
        Ok(())
    }

    /// Closed transaction: the old or the new set (the new OS may still be on trial), or the
    /// old components on the new OS that was rolled back with them and leaves at the next boot.
    fn settled_or_trial_os(&self, seen: &Seen) -> Result<(), String> {
        let s = &seen.set;
        let old_components = s.mcu == self.old.mcu && s.app == self.old.app && s.data == self.old.data;
        let leaving = old_components && s.os == self.new.os && seen.os_leaving;
        if seen.set == self.old || seen.set == self.new || leaving {
            if !seen.committed || !seen.mcu_confirmed {
                return Err(format!("transaction closed, but not every component is committed: {seen:?}"));
            }
            Ok(())
        } else {
            Err(format!("MIXED with the transaction closed: {seen:?}"))
        }
    }

    /// Runs `update-sim STEP` under strace, killed at boundary `kill` (syscall, invocation);
    /// returns whether it was killed, whether it succeeded, and the boundaries it passed.
    fn traced(&self, step: &str, kill: Option<(&str, u32)>) -> (bool, bool, Vec<String>) {
        let trace = self.fx.dir.path().join("trace.txt");
        let mut cmd = Command::new("strace");
        cmd.arg("-qq").arg("-o").arg(&trace).arg("-e").arg(format!("trace={BOUNDARIES}"));
        if let Some((call, n)) = kill {
            cmd.arg("-e").arg(format!("inject={call}:error=EIO:signal=SIGKILL:when={n}"));
        }
        let out = cmd
            .arg(sim())
            .arg("--root")
            .arg(self.fx.root())
            .arg(step)
            .output()
            .unwrap_or_else(|e| panic!("cannot run strace ({e}): this test needs it (apt-get install strace)"));
        let text = std::fs::read_to_string(&trace).unwrap();
        let calls = text
            .lines()
            .filter(|l| !l.starts_with("+++") && !l.starts_with("---"))
            .filter_map(|l| l.split_once('(').map(|(name, rest)| normalize(name, rest)))
            .collect();
        let killed =
            out.status.signal() == Some(9) || out.status.code() == Some(128 + 9) || text.contains("killed by SIGKILL");
        (killed, out.status.success(), calls)
    }
}

/// What identifies a traced call across runs: its name and the last path it names (a
/// rename's destination; temporary names carry a pid and a nonce), with every word holding a
/// digit (descriptors, digests) made `#`.
fn normalize(name: &str, args: &str) -> String {
    let path = args.rsplit('"').nth(1).filter(|_| args.contains('"')).unwrap_or("");
    let mut out = format!("{name} ");
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().any(|c| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in path.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The syscall name of a normalized trace line, and which invocation of that name boundary
/// `k` (0-based) is.
fn injection(calls: &[String], k: usize) -> (String, u32) {
    let name = calls[k].split(' ').next().unwrap().to_owned();
    let n = calls[..=k].iter().filter(|c| c.split(' ').next() == Some(name.as_str())).count();
    (name, u32::try_from(n).unwrap())
}

/// One flow: record its boundaries, then kill at each chosen one with `cut`.
fn torture(flow: Flow, offset: usize, cuts: &[(Cut, usize)]) -> Vec<(Cut, Tally)> {
    let mut rig = Rig::new(flow);
    // The uninterrupted run, traced: the boundaries of each process of the flow.
    let steps: &[&str] = if flow.os { &["install", "mark-good"] } else { &["install"] };
    let mut recorded: Vec<(&str, Vec<String>)> = Vec::new();
    let t = Instant::now();
    for (i, step) in steps.iter().enumerate() {
        let (killed, ok, calls) = rig.traced(step, None);
        assert!(!killed);
        let expect_ok = !(flow.broken && (i + 1 == steps.len()));
        assert_eq!(ok, expect_ok, "{flow}: uninterrupted {step}");
        recorded.push((step, calls));
        if *step == "install" && flow.os {
            assert_eq!(rig.fx.dev.reboot().unwrap(), Slot::B);
        }
    }
    if flow.os && flow.broken {
        assert_eq!(rig.fx.dev.reboot().unwrap(), Slot::A, "{flow}: the old OS boots again");
    }
    let seen = rig.observe();
    assert_eq!(rig.settled(&seen), Ok(!flow.broken), "{flow}: uninterrupted run ends in {seen:?}");
    let total: usize = recorded.iter().map(|(_, c)| c.len()).sum();
    eprintln!(
        "{flow}: {total} boundaries ({}), uninterrupted run {:?}",
        recorded.iter().map(|(s, c)| format!("{s} {}", c.len())).collect::<Vec<_>>().join(", "),
        t.elapsed()
    );
    let mut results = Vec::new();
    for &(cut, every) in cuts {
        let mut tally = Tally::default();
        let t = Instant::now();
        for k in (offset % every.max(1)..total).step_by(every.max(1)) {
            rig.restore();
            // Which process and which of its boundaries.
            let (mut step_index, mut local) = (0, k);
            while local >= recorded[step_index].1.len() {
                local -= recorded[step_index].1.len();
                step_index += 1;
            }
            for (step, _) in &recorded[..step_index] {
                let (_, ok, _) = rig.traced(step, None);
                assert!(ok, "{flow}: {step} before the cut");
                if *step == "install" {
                    assert_eq!(rig.fx.dev.reboot().unwrap(), Slot::B);
                }
            }
            let (step, calls) = &recorded[step_index];
            let (name, n) = injection(calls, local);
            let (killed, _, got) = rig.traced(step, Some((&name, n)));
            let at = format!("{flow}, {cut:?} at boundary {k} ({step} #{local}: {})", calls[local]);
            assert!(killed, "{at}: not killed");
            assert_eq!(got.len(), local + 1, "{at}: the run passed other boundaries: {got:#?}");
            assert_eq!(&got[..], &calls[..=local], "{at}: the boundaries differ from the recorded run");
            tally.trials += 1;
            if let Err(e) = after_cut(&mut rig, cut, &mut tally) {
                tally.mixed += 1;
                eprintln!("{at}: {e}");
            }
        }
        eprintln!("{flow}, {cut:?} every {every}: {tally:?} in {:?}", t.elapsed());
        results.push((cut, tally));
    }
    results
}

/// What a device does after the cut: the next command, reboots, the health service's
/// `mark-good` on a slot on trial; then the settled set is checked.
fn after_cut(rig: &mut Rig, cut: Cut, tally: &mut Tally) -> Result<(), String> {
    match cut {
        Cut::Crash => {
            // The device stays up: the next command recovers.
            let seen = rig.observe();
            rig.between(&seen, tally).map_err(|e| format!("after recovery by status: {e}"))?;
        }
        Cut::Power => rig.mcu_power_cut(),
    }
    for boot in 0..4 {
        let slot = rig.fx.dev.reboot().map_err(|e| e.to_string())?;
        let seen = rig.observe();
        rig.between(&seen, tally).map_err(|e| format!("boot {boot} (slot {slot}): {e}"))?;
        let trial = !seen.os_good;
        if trial && rig.fx.updater().mark_good().is_err() {
            continue; // the health service failed: reboot
        }
        break;
    }
    let seen = rig.observe();
    let new = rig.settled(&seen)?;
    if new && rig.flow.broken {
        return Err(format!("the set with the broken app was kept: {seen:?}"));
    }
    if new {
        tally.new += 1;
    } else {
        tally.old += 1;
    }
    Ok(())
}

#[test]
fn a_kill_at_every_boundary_of_an_os_mcu_app_data_transaction_never_leaves_a_mixed_set() {
    let long = std::env::var("UPDATE_TORTURE_LONG").is_ok_and(|v| v == "1");
    let step: usize = std::env::var("UPDATE_TORTURE_STEP").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let cuts =
        if long { vec![(Cut::Crash, step), (Cut::Power, step)] } else { vec![(Cut::Crash, 7), (Cut::Power, 21)] };
    let t = Instant::now();
    let mut report: BTreeMap<String, String> = BTreeMap::new();
    // UPDATE_TORTURE_FLOWS=0,2 runs only those flows (while debugging one).
    let only: Option<Vec<usize>> = std::env::var("UPDATE_TORTURE_FLOWS")
        .ok()
        .map(|l| l.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    let flows = [
        Flow { os: false, broken: false },
        Flow { os: false, broken: true },
        Flow { os: true, broken: false },
        Flow { os: true, broken: true },
    ];
    for (i, flow) in flows.into_iter().enumerate() {
        if only.as_ref().is_some_and(|o| !o.contains(&i)) {
            continue;
        }
        let (mut old, mut new) = (0, 0);
        for (cut, tally) in torture(flow, i, &cuts) {
            assert_eq!(tally.mixed, 0, "{flow} {cut:?}: {tally:?} (the failures are printed above)");
            assert!(tally.trials >= 4, "{flow}: too few cuts");
            (old, new) = (old + tally.old, new + tally.new);
            report.insert(format!("{flow}, {cut:?}"), format!("{tally:?}"));
        }
        assert!(old > 0, "{flow}: no cut left the old set: the cuts do not reach the transaction");
        if !flow.broken {
            assert!(new > 0, "{flow}: no cut left the new set: the cuts never reach the commit");
        }
    }
    eprintln!("multi-component kill torture, 0 mixed, {:?}: {report:#?}", t.elapsed());
}
