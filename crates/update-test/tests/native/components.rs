//! Component transactions in the native engine (docs/components.md), on the simulated device:
//! components-only bundles (no reboot), OS + components (committed with mark-good, rolled back
//! with the OS), failed health, a handler that lies, interrupted transactions, requirements.
//!
//! The handler here is test-only and deliberately simple — a file under the root, replaced by
//! rename, with the previous copy kept for rollback — so these tests exercise the engine's
//! transaction rules. The real handlers (files, app, firmware, data, out-of-tree) have their own
//! suites in update-components and update-test.

use std::io::Read;
use std::path::PathBuf;

use libupdate::Updater;
use update_boot::Slot;
use update_bundle::{ComponentSource, CreateOptions};
use update_core::Paths;
use update_core::audit::AuditAction;
use update_core::component::{
    Activation, Component, ComponentName, ComponentState, ComponentStatus, Handler, HandlerContext, Kind, Requirement,
    Settings,
};
use update_core::config::ComponentConfig;
use update_core::{Error, KeyName, Result};

use crate::common::{Fixture, v};

/// Kind `blob`: the payload becomes the file `settings.path`; `BROKEN` in it fails the health
/// check; `settings.lie = true` makes activate report success without switching. Every file
/// operation is a possible power cut ([`cut_point`]).
struct Blob;

/// The marker of a simulated power cut (a panic that unwinds past every cleanup).
struct PowerCut;

thread_local! {
    /// Cut points left before the cut (`None`: no cut), and cut points passed.
    static CUT: std::cell::Cell<(Option<u32>, u32)> = const { std::cell::Cell::new((None, 0)) };
}

/// A write boundary: the power fails here when the countdown reaches it.
fn cut_point() {
    CUT.with(|c| {
        let (left, passed) = c.get();
        match left {
            Some(0) => {
                c.set((None, passed + 1));
                std::panic::panic_any(PowerCut);
            }
            Some(n) => c.set((Some(n - 1), passed + 1)),
            None => c.set((None, passed + 1)),
        }
    });
}

fn blob_handlers(kind: &Kind, _: &Paths) -> Option<Box<dyn Handler>> {
    (kind.as_str() == "blob").then(|| Box::new(Blob) as Box<dyn Handler>)
}

static FACTORY: update_native::NativeFactory = update_native::NativeFactory::with_handlers(blob_handlers);

impl Blob {
    fn live(ctx: &HandlerContext<'_>) -> PathBuf {
        ctx.paths.resolve(ctx.device.settings["path"].as_str().expect("path"))
    }
    fn read(p: &std::path::Path) -> Option<String> {
        std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
    }
    fn io<'p>(op: &'static str, p: &'p std::path::Path) -> impl FnOnce(std::io::Error) -> Error + 'p {
        move |e| Error::io(op, p, e)
    }
}

impl Handler for Blob {
    fn kind(&self) -> Kind {
        Kind::External("blob".into())
    }
    fn status(&mut self, ctx: &HandlerContext<'_>) -> Result<ComponentStatus> {
        let active = Self::read(&ctx.state_dir.join("current.version")).map(|t| v(&t));
        let trial = ctx.state_dir.join("old.version").exists() || ctx.state_dir.join("old.none").exists();
        Ok(ComponentStatus {
            state: match (&active, trial) {
                (None, _) => ComponentState::Absent,
                (Some(_), true) => ComponentState::Trial,
                (Some(_), false) => ComponentState::Committed,
            },
            active,
            inactive: Self::read(&ctx.state_dir.join("old.version")).map(|t| v(&t)),
            detail: None,
        })
    }
    fn check(&mut self, ctx: &HandlerContext<'_>, _: &Component) -> Result<()> {
        match ctx.device.settings.get("path").and_then(|p| p.as_str()) {
            Some(_) => Ok(()),
            None => Err(Error::Refused("blob: no path setting".into())),
        }
    }
    fn install(&mut self, ctx: &HandlerContext<'_>, c: &Component, payload: &mut dyn Read) -> Result<()> {
        let new = ctx.state_dir.join("new.bin");
        cut_point();
        let mut f = std::fs::File::create(&new).map_err(Self::io("create", &new))?;
        std::io::copy(payload, &mut f).map_err(Self::io("write", &new))?;
        cut_point();
        let nv = ctx.state_dir.join("new.version");
        std::fs::write(&nv, c.version.to_string()).map_err(Self::io("write", &nv))
    }
    fn activate(&mut self, ctx: &HandlerContext<'_>, _: &Component) -> Result<Activation> {
        if ctx.device.settings.get("lie").and_then(serde_json::Value::as_bool) == Some(true) {
            return Ok(Activation::Now);
        }
        let (live, sd) = (Self::live(ctx), &ctx.state_dir);
        if !sd.join("new.bin").exists() {
            return Ok(Activation::Now); // repeated after it completed
        }
        cut_point();
        if live.exists() {
            std::fs::copy(&live, sd.join("old.bin")).map_err(Self::io("keep", &live))?;
            cut_point();
            std::fs::copy(sd.join("current.version"), sd.join("old.version")).map_err(Self::io("keep", sd))?;
        } else {
            std::fs::write(sd.join("old.none"), b"").map_err(Self::io("keep", sd))?;
        }
        cut_point();
        std::fs::rename(sd.join("new.version"), sd.join("current.version")).map_err(Self::io("rename", sd))?;
        cut_point();
        std::fs::rename(sd.join("new.bin"), &live).map_err(Self::io("rename", &live))?;
        cut_point();
        Ok(Activation::Now)
    }
    fn health(&mut self, ctx: &HandlerContext<'_>, _: &Component) -> Result<()> {
        match std::fs::read_to_string(Self::live(ctx)) {
            Ok(t) if t.contains("BROKEN") => Err(Error::Other("blob says BROKEN".into())),
            Ok(_) => Ok(()),
            Err(e) => Err(Error::io("read", Self::live(ctx), e)),
        }
    }
    fn commit(&mut self, ctx: &HandlerContext<'_>, _: &Component) -> Result<()> {
        for f in ["old.bin", "old.version", "old.none"] {
            cut_point();
            let _ = std::fs::remove_file(ctx.state_dir.join(f));
        }
        Ok(())
    }
    fn rollback(&mut self, ctx: &HandlerContext<'_>, _: &Component) -> Result<()> {
        // Each step is safe to repeat after a cut between any two of them.
        let (live, sd) = (Self::live(ctx), &ctx.state_dir);
        cut_point();
        if sd.join("old.version").exists() {
            std::fs::rename(sd.join("old.version"), sd.join("current.version")).map_err(Self::io("restore", sd))?;
            cut_point();
        }
        if sd.join("old.bin").exists() {
            std::fs::rename(sd.join("old.bin"), &live).map_err(Self::io("restore", &live))?;
            cut_point();
        } else if sd.join("old.none").exists() {
            let _ = std::fs::remove_file(&live);
            cut_point();
            let _ = std::fs::remove_file(sd.join("current.version"));
            cut_point();
            let _ = std::fs::remove_file(sd.join("old.none"));
        }
        cut_point();
        let _ = std::fs::remove_file(sd.join("new.bin"));
        let _ = std::fs::remove_file(sd.join("new.version"));
        Ok(())
    }
}

fn updater(fx: &Fixture) -> Updater {
    Updater::open(Paths::new(fx.root()), vec![&FACTORY as &dyn update_core::driver::DriverFactory]).unwrap()
}

/// Adds `[components.NAME] kind = "blob", path = "/data/NAME.bin"` (plus `extra`).
fn add_component(fx: &Fixture, name: &str, extra: &[(&str, serde_json::Value)]) {
    let paths = Paths::new(fx.root());
    let mut config = update_core::config::Config::load(&paths).unwrap();
    let mut settings = Settings::new();
    settings.insert("path".into(), format!("/data/{name}.bin").into());
    for (k, val) in extra {
        settings.insert((*k).into(), val.clone());
    }
    config
        .components
        .insert(ComponentName::new(name).unwrap(), ComponentConfig { kind: Kind::External("blob".into()), settings });
    config.store(&paths).unwrap();
    std::fs::create_dir_all(fx.root().join("data")).unwrap();
}

fn component(fx: &Fixture, name: &str, version: &str, content: &str) -> ComponentSource {
    let path = fx.images.join(format!("{name}-{version}-{}.bin", content.len()));
    std::fs::write(&path, content).unwrap();
    ComponentSource {
        name: ComponentName::new(name).unwrap(),
        kind: Kind::External("blob".into()),
        version: v(version),
        requires: Vec::new(),
        options: Settings::new(),
        path,
    }
}

fn components_only(fx: &Fixture, release: &str, parts: Vec<ComponentSource>) -> CreateOptions {
    let mut o = CreateOptions::new(v(release), "demo-board");
    o.components = parts;
    o.signers = vec![(KeyName::new("vendor").unwrap(), fx.key.clone())];
    o
}

fn live(fx: &Fixture, name: &str) -> Option<String> {
    std::fs::read_to_string(fx.root().join(format!("data/{name}.bin"))).ok()
}

fn component_version(up: &Updater, name: &str) -> Option<String> {
    let s = up.status().unwrap();
    let c = s.components.iter().find(|c| c.name == name).expect("component in status");
    c.status.as_ref().and_then(|st| st.active.as_ref()).map(ToString::to_string)
}

fn journal(fx: &Fixture) -> Option<serde_json::Value> {
    let p = fx.root().join("var/lib/update/transaction.json");
    std::fs::read(p).ok().map(|b| serde_json::from_slice(&b).unwrap())
}

#[test]
fn a_components_only_update_commits_without_a_reboot_and_leaves_the_os_alone() {
    let fx = Fixture::new();
    add_component(&fx, "mcu", &[]);
    add_component(&fx, "ui", &[]);
    let up = updater(&fx);
    let os_before = fx.fingerprint();
    fx.publish(&components_only(
        &fx,
        "1.1",
        vec![component(&fx, "mcu", "2.0", "fw 2.0"), component(&fx, "ui", "1.0", "ui 1.0")],
    ));
    let r = up.install_now(false).unwrap();
    let outcome = r.installed.unwrap();
    assert!(!outcome.reboot_required);
    assert_eq!(outcome.version, v("1.1"));
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw 2.0"));
    assert_eq!(live(&fx, "ui").as_deref(), Some("ui 1.0"));
    assert_eq!(component_version(&up, "mcu").as_deref(), Some("2.0.0"));
    assert!(journal(&fx).is_none(), "the transaction finished");
    let s = up.status().unwrap();
    assert_eq!(s.version, Some(v("1.1")), "the release version advanced");
    assert_eq!(s.booted.as_deref(), Some("A"));
    let mut after = fx.fingerprint();
    let mut before = os_before.clone();
    for m in [&mut after, &mut before] {
        m.remove("var/lib/update/slots.json");
    }
    assert_eq!(after, before, "no OS slot, boot environment or data partition changed");
    // One audit record per component step, all in one transaction.
    let records: Vec<_> =
        up.history(None).unwrap().records.into_iter().filter(|r| r.action == AuditAction::Component).collect();
    let steps: Vec<String> =
        records.iter().map(|r| format!("{} {}", r.subject.clone().unwrap(), r.message.clone().unwrap())).collect();
    for want in
        ["mcu installed 2.0.0", "ui installed 1.0.0", "mcu activated", "mcu health check passed", "ui committed 1.0.0"]
    {
        assert!(steps.iter().any(|s| s.starts_with(want)), "no '{want}' in {steps:#?}");
    }
    let ids: std::collections::BTreeSet<_> = records.iter().map(|r| r.transaction.clone().unwrap()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");

    // The same release again: nothing to do (every component active, release not newer).
    let r = up.install_now(false).unwrap();
    assert!(r.installed.is_none());

    // 1.2 changes only ui: mcu is left out of the transaction.
    fx.publish(&components_only(
        &fx,
        "1.2",
        vec![component(&fx, "mcu", "2.0", "fw 2.0"), component(&fx, "ui", "1.1", "ui 1.1")],
    ));
    up.install_now(false).unwrap().installed.unwrap();
    assert_eq!(live(&fx, "ui").as_deref(), Some("ui 1.1"));
    assert_eq!(component_version(&up, "mcu").as_deref(), Some("2.0.0"));
}

#[test]
fn a_failed_health_check_or_a_lying_handler_rolls_every_component_back() {
    let fx = Fixture::new();
    add_component(&fx, "mcu", &[]);
    add_component(&fx, "ui", &[]);
    let up = updater(&fx);
    fx.publish(&components_only(
        &fx,
        "1.1",
        vec![component(&fx, "mcu", "2.0", "fw 2.0"), component(&fx, "ui", "1.0", "ui 1.0")],
    ));
    up.install_now(false).unwrap().installed.unwrap();

    // ui 1.1 is broken: mcu 2.1 (activated first, healthy) goes back to 2.0 with it.
    fx.publish(&components_only(
        &fx,
        "1.2",
        vec![component(&fx, "mcu", "2.1", "fw 2.1"), component(&fx, "ui", "1.1", "ui BROKEN")],
    ));
    let e = up.install_now(false).unwrap_err().to_string();
    assert!(e.contains("component 'ui' failed to pass its health check"), "{e}");
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw 2.0"));
    assert_eq!(live(&fx, "ui").as_deref(), Some("ui 1.0"));
    assert_eq!(component_version(&up, "mcu").as_deref(), Some("2.0.0"));
    assert_eq!(up.status().unwrap().version, Some(v("1.1")));
    assert!(journal(&fx).is_none());
    let rolled: Vec<_> = up
        .history(None)
        .unwrap()
        .records
        .into_iter()
        .filter(|r| r.action == AuditAction::Component && r.message.as_deref().unwrap_or("").starts_with("rolled back"))
        .map(|r| r.subject.unwrap())
        .collect();
    assert_eq!(rolled, ["ui", "mcu"], "rolled back in reverse order");

    // A handler that says "activated" without switching is caught by reading back.
    add_component(&fx, "ui", &[("lie", true.into())]);
    let up = updater(&fx);
    fx.publish(&components_only(
        &fx,
        "1.3",
        vec![component(&fx, "mcu", "2.2", "fw 2.2"), component(&fx, "ui", "1.2", "ui 1.2")],
    ));
    let e = up.install_now(false).unwrap_err().to_string();
    assert!(e.contains("reads back as 1.0.0"), "{e}");
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw 2.0"));
    assert_eq!(live(&fx, "ui").as_deref(), Some("ui 1.0"));
}

#[test]
fn plans_are_refused_before_anything_is_written() {
    let fx = Fixture::new();
    add_component(&fx, "mcu", &[]);
    let up = updater(&fx);
    let mut ui = component(&fx, "ui", "1.0", "ui");
    // A component the device has no entry for.
    fx.publish(&components_only(&fx, "1.1", vec![component(&fx, "mcu", "2.0", "fw"), ui.clone()]));
    let e = up.install_now(false).unwrap_err().to_string();
    assert!(e.contains("component 'ui'") && e.contains("add [components.ui]"), "{e}");
    assert_eq!(live(&fx, "mcu"), None, "nothing written");
    // An unmet requirement (mcu 2.0 in the update, ui needs >= 2.1).
    add_component(&fx, "ui", &[]);
    ui.requires = vec![Requirement {
        component: ComponentName::new("mcu").unwrap(),
        versions: semver::VersionReq::parse(">=2.1").unwrap(),
    }];
    fx.publish(&components_only(&fx, "1.1", vec![component(&fx, "mcu", "2.0", "fw"), ui.clone()]));
    let up = updater(&fx);
    let e = up.install_now(false).unwrap_err().to_string();
    assert!(e.contains("requires mcu >=2.1") && e.contains("leaves mcu at 2.0.0"), "{e}");
    assert_eq!((live(&fx, "mcu"), live(&fx, "ui")), (None, None));
    // Satisfied: both install.
    fx.publish(&components_only(&fx, "1.1", vec![component(&fx, "mcu", "2.1", "fw"), ui]));
    up.install_now(false).unwrap().installed.unwrap();
    // A downgrade of one component is refused (anti-rollback), even in a newer release.
    fx.publish(&components_only(&fx, "1.2", vec![component(&fx, "mcu", "2.0", "old fw")]));
    let e = up.install_now(false).unwrap_err().to_string();
    assert!(e.contains("older than the active 2.1.0"), "{e}");
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw"));
    // A kind the device has no handler for.
    let mut other = component(&fx, "mcu", "3.0", "fw3");
    other.kind = Kind::External("gizmo".into());
    add_component(&fx, "gz", &[]);
    let paths = Paths::new(fx.root());
    let mut config = update_core::config::Config::load(&paths).unwrap();
    config.components.get_mut(&ComponentName::new("gz").unwrap()).unwrap().kind = Kind::External("gizmo".into());
    config.store(&paths).unwrap();
    other.name = ComponentName::new("gz").unwrap();
    fx.publish(&components_only(&fx, "1.3", vec![other]));
    let e = updater(&fx).install_now(false).unwrap_err().to_string();
    assert!(e.contains("no handler for component kind 'gizmo'"), "{e}");
}

#[test]
fn os_and_components_commit_together_at_mark_good_or_roll_back_together() {
    let fx = Fixture::new();
    add_component(&fx, "mcu", &[]);
    let up = updater(&fx);
    // 2.0: OS + mcu 2.0. The component is activated before the switch and waits for the boot.
    let mut o = fx.options("2.0", "ok");
    o.components = vec![component(&fx, "mcu", "2.0", "fw 2.0")];
    fx.publish(&o);
    let outcome = up.install_now(true).unwrap().installed.unwrap();
    assert!(outcome.reboot_required);
    assert_eq!(journal(&fx).unwrap()["phase"], "awaiting-boot");
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw 2.0"));
    assert_eq!(up.status().unwrap().booted.as_deref(), Some("A"));
    assert_eq!(journal(&fx).unwrap()["phase"], "awaiting-boot", "before the reboot, status keeps waiting");
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    assert_eq!(up.status().unwrap().booted.as_deref(), Some("B"));
    assert_eq!(journal(&fx).unwrap()["phase"], "awaiting-boot", "on trial, status keeps waiting");
    up.mark_good().unwrap();
    assert!(journal(&fx).is_none(), "committed with the slot");
    let s = up.status().unwrap();
    assert_eq!((s.version.clone(), component_version(&up, "mcu")), (Some(v("2.0")), Some("2.0.0".into())));
    assert_eq!(s.components[0].status.as_ref().unwrap().state, ComponentState::Committed);

    // 3.0: a broken OS with mcu 3.0. The OS falls back; the component follows it back.
    let mut o = fx.options("3.0", "broken");
    o.components = vec![component(&fx, "mcu", "3.0", "fw 3.0")];
    fx.publish(&o);
    up.install_now(true).unwrap().installed.unwrap();
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw 3.0"));
    let limit = up.config().boot_retry_limit;
    for _ in 0..limit {
        assert_eq!(fx.dev.reboot().unwrap(), Slot::A);
    }
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B, "fell back");
    let s = up.status().unwrap();
    assert!(s.fallback.is_some());
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw 2.0"), "the component went back with the OS");
    assert_eq!(component_version(&up, "mcu").as_deref(), Some("2.0.0"));
    assert!(journal(&fx).is_none());
}

#[test]
fn a_component_failing_its_health_on_the_new_os_sends_both_back() {
    let fx = Fixture::new();
    add_component(&fx, "ui", &[]);
    let up = updater(&fx);
    let mut o = fx.options("2.0", "ok");
    o.components = vec![component(&fx, "ui", "1.0", "ui BROKEN")];
    fx.publish(&o);
    up.install_now(true).unwrap().installed.unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    let e = up.mark_good().unwrap_err().to_string();
    assert!(e.contains("component 'ui' failed to pass its health check") && e.contains("slot A boots next"), "{e}");
    assert_eq!(live(&fx, "ui"), None, "the first install of ui is undone");
    assert_eq!(fx.dev.reboot().unwrap(), Slot::A, "the old OS boots again");
    assert!(journal(&fx).is_none());
}

#[test]
fn an_interrupted_transaction_is_finished_or_undone_by_the_next_command() {
    let fx = Fixture::new();
    add_component(&fx, "mcu", &[]);
    let up = updater(&fx);
    fx.publish(&components_only(&fx, "1.1", vec![component(&fx, "mcu", "2.0", "fw 2.0")]));
    up.install_now(false).unwrap().installed.unwrap();
    let sd = fx.root().join("var/lib/update/components/mcu");
    // A cut after mcu 2.1 was activated, before its health check: the journal says activating.
    let new_journal = |phase: &str| {
        let j = serde_json::json!({
            "id": "tx-cut", "version": "1.2.0", "phase": phase, "os-target": null,
            "components": [{"component": {"name": "mcu", "kind": "blob", "version": "2.1.0", "size": 6,
                "sha256": "0".repeat(64)}, "previous": "2.0.0"}]
        });
        std::fs::write(fx.root().join("var/lib/update/transaction.json"), j.to_string()).unwrap();
    };
    let activate_by_hand = || {
        std::fs::copy(fx.root().join("data/mcu.bin"), sd.join("old.bin")).unwrap();
        std::fs::copy(sd.join("current.version"), sd.join("old.version")).unwrap();
        std::fs::write(fx.root().join("data/mcu.bin"), "fw 2.1").unwrap();
        std::fs::write(sd.join("current.version"), "2.1.0").unwrap();
    };
    activate_by_hand();
    new_journal("activating");
    assert_eq!(component_version(&up, "mcu").as_deref(), Some("2.0.0"), "rolled back by status");
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw 2.0"));
    assert!(journal(&fx).is_none());
    // A cut while committing: the commit is repeated, the new version stays.
    activate_by_hand();
    new_journal("committing");
    assert_eq!(component_version(&up, "mcu").as_deref(), Some("2.1.0"));
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw 2.1"));
    assert!(!sd.join("old.bin").exists(), "the commit ran");
    assert_eq!(up.status().unwrap().version, Some(v("1.2")), "the release is recorded with the commit");
    assert!(journal(&fx).is_none());
}

/// Runs `f` with the power failing at cut point `at` (`None`: never); returns whether it was cut
/// and how many cut points were passed.
fn with_cut<T>(at: Option<u32>, f: impl FnOnce() -> T) -> (Option<T>, u32) {
    CUT.with(|c| c.set((at, 0)));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let passed = CUT.with(|c| c.replace((None, 0)).1);
    match r {
        Ok(v) => (Some(v), passed),
        Err(p) if p.is::<PowerCut>() => (None, passed),
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Silences the default panic message of simulated power cuts (other panics still print).
fn quiet_cuts() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<PowerCut>() {
            default(info);
        }
    }));
}

/// The versions of (mcu, ui, data) as their files hold them, checked against what `status`
/// reads back: a component whose file and status disagree is itself a mixed state.
fn component_set(fx: &Fixture, up: &Updater) -> Vec<String> {
    ["mcu", "ui", "cal"]
        .iter()
        .map(|n| {
            let file = live(fx, n).unwrap_or_else(|| "none".into());
            let status = component_version(up, n).unwrap_or_else(|| "none".into());
            let file_version = file.split(' ').nth(1).unwrap_or("none").to_owned();
            assert_eq!(
                format!("{file_version}.0"),
                if status == "none" { "none.0".to_owned() } else { status.clone() },
                "{n}: the file holds {file:?}, status reads back {status}"
            );
            file_version
        })
        .collect()
}

/// Power cut at every write boundary of a three-component transaction, alone and with the OS,
/// on the way forward and on the way back (a failing health check): after each cut the next
/// command recovers, and the device runs a set of versions that was committed together — the
/// old set or the new one — never a mix.
#[test]
fn a_power_cut_at_every_write_boundary_never_leaves_a_mixed_set() {
    quiet_cuts();
    let old = vec!["1.0".to_owned(), "1.0".to_owned(), "1.0".to_owned()];
    let new = vec!["2.0".to_owned(), "2.0".to_owned(), "2.0".to_owned()];
    let mut report = Vec::new();
    for (with_os, broken) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut trials = 0u32;
        let mut outcomes: std::collections::BTreeMap<&str, u32> = std::collections::BTreeMap::new();
        let mut at = 0u32;
        let fx = Fixture::new();
        for n in ["mcu", "ui", "cal"] {
            add_component(&fx, n, &[]);
        }
        let paths = Paths::new(fx.root());
        let native = update_core::config::Config::load(&paths).unwrap().native.unwrap();
        loop {
            // Back to a factory-fresh 1.0 device (no mkfs: the slots keep stale bytes, as after a cut).
            update_native::provision(&paths, &native, &v("1.0")).unwrap();
            std::fs::write(paths.kernel_cmdline(), "update.slot=A\n").unwrap();
            let state = paths.state_dir();
            let _ = std::fs::remove_dir_all(state.join("components"));
            for f in ["transaction.json", "release.json", "failed-releases.json"] {
                let _ = std::fs::remove_file(state.join(f));
            }
            for n in ["mcu", "ui", "cal"] {
                let _ = std::fs::remove_file(fx.root().join(format!("data/{n}.bin")));
            }
            let up = updater(&fx);
            let parts = |version: &str, ui: &str| {
                vec![
                    component(&fx, "mcu", version, &format!("mcu {version}")),
                    component(&fx, "ui", version, &format!("ui {version}{ui}")),
                    component(&fx, "cal", version, &format!("cal {version}")),
                ]
            };
            fx.publish(&components_only(&fx, "1.1", parts("1.0", "")));
            up.install_now(true).unwrap().installed.unwrap();
            assert_eq!(component_set(&fx, &up), old);
            let bundle = if with_os {
                let mut o = fx.options("2.0", "ok");
                o.components = parts("2.0", if broken { " BROKEN" } else { "" });
                o
            } else {
                components_only(&fx, "2.0", parts("2.0", if broken { " BROKEN" } else { "" }))
            };
            fx.publish(&bundle);
            // Forward: install (and, with the OS, reboot + mark-good), cut at point `at`.
            let (done, passed) = with_cut(Some(at), || {
                let r = up.install_now(true);
                if with_os && r.is_ok() {
                    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
                    let _ = up.mark_good();
                }
            });
            if done.is_some() {
                // Every cut point of this flow has been tried.
                assert!(passed > 0);
                break;
            }
            trials += 1;
            // The next command recovers (a fresh process after the cut).
            let up = updater(&fx);
            let s = up.status().unwrap();
            let set = component_set(&fx, &up);
            let outcome = if set == old {
                "old set"
            } else if set == new {
                assert!(!broken, "cut {at} (os {with_os}): the set whose ui fails its health check was kept");
                "new set"
            } else {
                panic!("cut {at} (os {with_os}, broken {broken}): MIXED {set:?}");
            };
            if with_os {
                // With the OS: the new set may only be active with the new slot switched to, and
                // the boot that follows lands on the matching OS.
                let waiting = journal(&fx).is_some();
                if set == new {
                    assert!(waiting || s.version == Some(v("2.0")), "cut {at}: new components, OS {:?}", s.version);
                } else {
                    assert!(!waiting, "cut {at}: old components with a transaction still open");
                }
                let booted = fx.dev.reboot().unwrap();
                let expect_os = if set == new { Slot::B } else { Slot::A };
                if s.booted.as_deref() == Some("A") {
                    assert_eq!(booted, expect_os, "cut {at}: components {set:?} but the next boot runs {booted}");
                }
            } else {
                assert!(journal(&fx).is_none(), "cut {at}: the journal survived recovery");
            }
            *outcomes.entry(outcome).or_default() += 1;
            at += 1;
        }
        report.push(format!("os {with_os} broken {broken}: {trials} cuts {outcomes:?}"));
        assert!(trials >= 10, "too few cut points: {report:?}");
    }
    eprintln!("component power cuts, 0 mixed: {report:#?}");
}

/// Found by the kill torture with the real handlers (components_sigkill.rs): `mark-good` cut
/// after it journalled its health checks, and cut after it rolled the components back but
/// before it switched the boot back. Neither may leave the new OS beside the old components.
#[test]
fn a_mark_good_cut_in_its_checks_or_its_rollback_never_commits_the_os_without_its_components() {
    let fx = Fixture::new();
    add_component(&fx, "mcu", &[]);
    let up = updater(&fx);
    let journal_path = fx.root().join("var/lib/update/transaction.json");
    let set_phase = |phase: &str| {
        let mut j = journal(&fx).expect("an open transaction");
        j["phase"] = phase.into();
        std::fs::write(&journal_path, j.to_string()).unwrap();
    };
    let mut o = fx.options("2.0", "ok");
    o.components = vec![component(&fx, "mcu", "2.0", "fw 2.0")];
    fx.publish(&o);
    up.install_now(true).unwrap().installed.unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);

    // Cut in the checks: the next command waits (it does not roll back under the new OS), and
    // the next mark-good runs the checks again and commits both.
    set_phase("health");
    let s = up.status().unwrap();
    assert_eq!(journal(&fx).unwrap()["phase"], "health", "still waiting for mark-good");
    assert_eq!(component_version(&up, "mcu").as_deref(), Some("2.0.0"));
    assert_eq!(s.booted.as_deref(), Some("B"));
    up.mark_good().unwrap();
    assert!(journal(&fx).is_none());
    assert_eq!(up.status().unwrap().version, Some(v("2.0")));
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw 2.0"));

    // 3.0 on trial; mark-good's checks failed and it was cut after rolling the component back,
    // before switching the boot back: the next command finishes the rollback and switches back,
    // and mark-good refuses to commit the slot.
    let mut o = fx.options("3.0", "ok");
    o.components = vec![component(&fx, "mcu", "3.0", "fw 3.0")];
    fx.publish(&o);
    up.install_now(true).unwrap().installed.unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::A);
    set_phase("rolling-back");
    up.status().unwrap();
    assert!(journal(&fx).is_none());
    assert_eq!(live(&fx, "mcu").as_deref(), Some("fw 2.0"), "the component went back");
    let e = up.mark_good().unwrap_err().to_string();
    assert!(e.contains("rolled back during this boot"), "{e}");
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B, "the committed 2.0 boots again");
    assert_eq!(up.status().unwrap().version, Some(v("2.0")));
}
