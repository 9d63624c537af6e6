//! The shared handler test suite: one set of scenarios every component handler passes, built-in
//! (`data`, `files`, `app`, `firmware`) or out-of-tree (through `update_components::external`).
//!
//! A handler's test implements [`HandlerFixture`] (a fresh device under a root, the device's
//! entry for the component, payloads v1, v2 and a broken one, a way to make the active version
//! fail its health check, and a read-back of the target that does not go through the handler)
//! and calls [`run_suite`]. Each scenario starts from a fresh root with v1 installed and
//! committed through the handler itself:
//!
//! - `status` works before anything is installed and shows nothing installed or on trial;
//! - install + activate + health + commit of v2: `status` reads v2 committed, the target holds v2;
//! - `status` after `activate` reads v2 back (the engine's lie detector relies on it);
//! - rollback after install, after activate and after health: v1 committed, the target holds v1,
//!   and v2 installs afterwards;
//! - every phase twice in a row (the engine repeats the phase it was in after a power cut),
//!   rollback twice too;
//! - a failing health check: `health` errors, rollback returns v1 (skipped for a handler without
//!   a health check of its own);
//! - a truncated v2 payload (its signed size and digest unchanged): `install` errors, v1 stays
//!   active and committed;
//! - the fixture's broken payload: `install` (or `activate`) errors, v1 stays active.
//!
//! It runs in `crates/update-test/tests/handlers/` against `data`, `files`, `app`, `firmware` (a
//! simulated MCU per device, [`crate::mcu`]), `fwupd` (a real fwupd daemon per device,
//! [`crate::fwupd`]) and the example out-of-tree handler. To run it for
//! another handler: add a fixture there (see `files.rs`) and call `run_suite(&mut fixture)`; the
//! payloads are real ones (a tar, a firmware image) and `break_health`/`verify_active` touch the
//! real target.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use update_core::Paths;
use update_core::audit::{AuditAction, AuditRecord, Outcome};
use update_core::component::{Component, ComponentState, DeviceComponent, Handler, HandlerContext};
use update_core::driver::Events;

/// Which payload a scenario wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The version installed first.
    V1,
    /// The update.
    V2,
    /// A payload the handler must refuse (a hostile tar, a corrupt image), with a manifest entry
    /// (size, digest) that matches its bytes.
    Broken,
}

/// How the suite builds and inspects one handler on one device.
pub trait HandlerFixture {
    /// A short name for messages.
    fn name(&self) -> String;
    /// Prepares a fresh device under `root` (an empty directory: install tools, create the
    /// target) and returns the device's entry for the component.
    fn device(&mut self, root: &Path) -> DeviceComponent;
    /// A new handler.
    fn handler(&mut self) -> Box<dyn Handler>;
    /// The verified component and the payload bytes of `release`.
    fn payload(&mut self, release: Release) -> (Component, Vec<u8>);
    /// Damages the active (new) version on the target so its health check fails; `false` when
    /// the handler has no health check of its own (the `files` handler: the scenario is skipped).
    fn break_health(&mut self, root: &Path, device: &DeviceComponent) -> bool;
    /// Checks, without the handler, that the target holds `release` (V1 or V2).
    ///
    /// # Errors
    /// What differs.
    fn verify_active(&mut self, root: &Path, device: &DeviceComponent, release: Release) -> Result<(), String>;
}

/// Records what a handler logs and audits.
#[derive(Debug, Default)]
pub struct RecordingEvents {
    /// `audit …`, `info …`, `warn …` lines.
    pub lines: RefCell<Vec<String>>,
}

impl Events for RecordingEvents {
    fn audit(&self, record: AuditRecord) {
        self.lines.borrow_mut().push(format!("audit {}", serde_json_line(&record)));
    }
    fn info(&self, message: &str) {
        self.lines.borrow_mut().push(format!("info {message}"));
    }
    fn warn(&self, message: &str) {
        self.lines.borrow_mut().push(format!("warn {message}"));
    }
    fn record(&self, action: AuditAction, outcome: Outcome) -> AuditRecord {
        AuditRecord::new("2026-01-01T00:00:00Z".into(), "handler-suite".into(), action, outcome)
    }
}

fn serde_json_line(r: &AuditRecord) -> String {
    format!(
        "{:?} {:?} {} {}",
        r.action,
        r.outcome,
        r.subject.as_deref().unwrap_or(""),
        r.message.as_deref().unwrap_or("")
    )
}

/// One device under a fresh root, as a scenario sees it.
pub struct Device {
    /// The temporary root (removed when dropped).
    pub root: tempfile::TempDir,
    /// The layout under it.
    pub paths: Paths,
    /// The device's entry for the component.
    pub device: DeviceComponent,
    /// What the handler logged.
    pub events: RecordingEvents,
    /// The handler.
    pub handler: Box<dyn Handler>,
}

impl Device {
    /// A fresh device for `fixture`: the root, the component's state directory (as the engine
    /// creates it) and a handler.
    ///
    /// # Panics
    /// When the temporary root cannot be made.
    #[must_use]
    pub fn new(fixture: &mut dyn HandlerFixture) -> Self {
        let root = tempfile::tempdir().expect("temporary root");
        let device = fixture.device(root.path());
        let paths = Paths::new(root.path());
        std::fs::create_dir_all(state_dir(&paths, &device)).expect("state dir");
        Self { handler: fixture.handler(), root, paths, device, events: RecordingEvents::default() }
    }

    /// The context of one call in transaction `tx`.
    #[must_use]
    pub fn ctx<'a>(&'a self, tx: &'a str) -> HandlerContext<'a> {
        context(&self.paths, &self.events, &self.device, tx)
    }

    /// Runs `install` with `bytes` as the payload.
    ///
    /// # Errors
    /// The handler's.
    pub fn install(&mut self, tx: &str, c: &Component, bytes: &[u8]) -> update_core::Result<()> {
        let mut reader: &[u8] = bytes;
        let ctx = context(&self.paths, &self.events, &self.device, tx);
        self.handler.install(&ctx, c, &mut reader)
    }

    /// Calls one phase by name (`check`, `activate`, `health`, `commit`, `rollback`).
    ///
    /// # Errors
    /// The handler's.
    ///
    /// # Panics
    /// For an unknown phase name.
    pub fn phase(&mut self, tx: &str, phase: &str, c: &Component) -> update_core::Result<()> {
        let ctx = context(&self.paths, &self.events, &self.device, tx);
        match phase {
            "check" => self.handler.check(&ctx, c),
            "activate" => self.handler.activate(&ctx, c).map(|_| ()),
            "health" => self.handler.health(&ctx, c),
            "commit" => self.handler.commit(&ctx, c),
            "rollback" => self.handler.rollback(&ctx, c),
            other => panic!("no phase {other}"),
        }
    }

    /// The handler's status.
    ///
    /// # Panics
    /// When `status` fails.
    pub fn status(&mut self) -> update_core::component::ComponentStatus {
        let ctx = context(&self.paths, &self.events, &self.device, "status");
        self.handler.status(&ctx).expect("status")
    }

    /// A full update to `c`: check, install, activate, health, commit.
    ///
    /// # Errors
    /// The first phase that fails.
    pub fn update(&mut self, tx: &str, c: &Component, bytes: &[u8]) -> update_core::Result<()> {
        self.phase(tx, "check", c)?;
        self.install(tx, c, bytes)?;
        for p in ["activate", "health", "commit"] {
            self.phase(tx, p, c)?;
        }
        Ok(())
    }
}

fn context<'a>(
    paths: &'a Paths,
    events: &'a RecordingEvents,
    device: &'a DeviceComponent,
    tx: &'a str,
) -> HandlerContext<'a> {
    HandlerContext {
        paths,
        events,
        transaction: tx,
        device,
        state_dir: state_dir(paths, device),
        timeout: Duration::from_secs(60),
    }
}

fn state_dir(paths: &Paths, device: &DeviceComponent) -> std::path::PathBuf {
    paths.resolve(format!("/var/lib/update/components/{}", device.name))
}

fn assert_committed(fixture: &mut dyn HandlerFixture, d: &mut Device, c: &Component, release: Release, when: &str) {
    let name = fixture.name();
    let s = d.status();
    assert_eq!(s.active.as_ref(), Some(&c.version), "{name}, {when}: status {s:?}");
    assert_eq!(s.state, ComponentState::Committed, "{name}, {when}: status {s:?}");
    if let Err(e) = fixture.verify_active(d.root.path(), &d.device, release) {
        panic!("{name}, {when}: the target does not hold {release:?}: {e}");
    }
}

/// A device with v1 installed and committed.
fn with_v1(fixture: &mut dyn HandlerFixture, v1: &(Component, Vec<u8>)) -> Device {
    let mut d = Device::new(fixture);
    if let Err(e) = d.update("tx-v1", &v1.0, &v1.1) {
        panic!("{}: installing v1: {e}", fixture.name());
    }
    assert_committed(fixture, &mut d, &v1.0, Release::V1, "after installing v1");
    d
}

/// Runs every scenario against `fixture` (see the module docs).
///
/// # Panics
/// On the first scenario that fails, naming the fixture and the step.
pub fn run_suite(fixture: &mut dyn HandlerFixture) {
    let name = fixture.name();
    let v1 = fixture.payload(Release::V1);
    let v2 = fixture.payload(Release::V2);
    let broken = fixture.payload(Release::Broken);

    // Status before anything.
    let mut d = Device::new(fixture);
    let s = d.status();
    assert!(!matches!(s.state, ComponentState::Installed | ComponentState::Trial), "{name}: fresh status {s:?}");
    drop(d);

    // The whole update, status read back after activate.
    let mut d = with_v1(fixture, &v1);
    let tx = "tx-update";
    d.phase(tx, "check", &v2.0).unwrap_or_else(|e| panic!("{name}: check v2: {e}"));
    d.install(tx, &v2.0, &v2.1).unwrap_or_else(|e| panic!("{name}: install v2: {e}"));
    let s = d.status();
    assert_eq!(s.active.as_ref(), Some(&v1.0.version), "{name}: after install, v1 is still active: {s:?}");
    d.phase(tx, "activate", &v2.0).unwrap_or_else(|e| panic!("{name}: activate v2: {e}"));
    let s = d.status();
    assert_eq!(s.active.as_ref(), Some(&v2.0.version), "{name}: after activate, status reads v2: {s:?}");
    assert_eq!(s.state, ComponentState::Trial, "{name}: after activate: {s:?}");
    for p in ["health", "commit"] {
        d.phase(tx, p, &v2.0).unwrap_or_else(|e| panic!("{name}: {p} v2: {e}"));
    }
    assert_committed(fixture, &mut d, &v2.0, Release::V2, "after the update");
    drop(d);

    // Rollback from each phase.
    for done in [&["install"][..], &["install", "activate"], &["install", "activate", "health"]] {
        let mut d = with_v1(fixture, &v1);
        let tx = "tx-rollback";
        for p in done {
            let r = if *p == "install" { d.install(tx, &v2.0, &v2.1) } else { d.phase(tx, p, &v2.0) };
            r.unwrap_or_else(|e| panic!("{name}: {p} v2: {e}"));
        }
        d.phase(tx, "rollback", &v2.0).unwrap_or_else(|e| panic!("{name}: rollback after {done:?}: {e}"));
        assert_committed(fixture, &mut d, &v1.0, Release::V1, &format!("rollback after {done:?}"));
        d.update("tx-again", &v2.0, &v2.1).unwrap_or_else(|e| panic!("{name}: v2 after a rollback: {e}"));
        assert_committed(fixture, &mut d, &v2.0, Release::V2, &format!("v2 after a rollback after {done:?}"));
    }

    // Every phase twice.
    let mut d = with_v1(fixture, &v1);
    let tx = "tx-twice";
    for p in ["check", "install", "activate", "health", "commit"] {
        for round in 0..2 {
            let r = if p == "install" { d.install(tx, &v2.0, &v2.1) } else { d.phase(tx, p, &v2.0) };
            r.unwrap_or_else(|e| panic!("{name}: {p} v2 (call {}): {e}", round + 1));
        }
    }
    assert_committed(fixture, &mut d, &v2.0, Release::V2, "every phase twice");
    let mut d = with_v1(fixture, &v1);
    d.install(tx, &v2.0, &v2.1).unwrap_or_else(|e| panic!("{name}: install v2: {e}"));
    d.phase(tx, "activate", &v2.0).unwrap_or_else(|e| panic!("{name}: activate v2: {e}"));
    for round in 0..2 {
        d.phase(tx, "rollback", &v2.0).unwrap_or_else(|e| panic!("{name}: rollback (call {}): {e}", round + 1));
    }
    assert_committed(fixture, &mut d, &v1.0, Release::V1, "rollback twice");
    drop(d);

    // A failing health check, then rollback.
    let mut d = with_v1(fixture, &v1);
    let tx = "tx-unhealthy";
    d.install(tx, &v2.0, &v2.1).unwrap_or_else(|e| panic!("{name}: install v2: {e}"));
    d.phase(tx, "activate", &v2.0).unwrap_or_else(|e| panic!("{name}: activate v2: {e}"));
    let root = d.root.path().to_owned();
    if fixture.break_health(&root, &d.device) {
        assert!(d.phase(tx, "health", &v2.0).is_err(), "{name}: health passed on a broken v2");
        d.phase(tx, "rollback", &v2.0).unwrap_or_else(|e| panic!("{name}: rollback after failed health: {e}"));
        assert_committed(fixture, &mut d, &v1.0, Release::V1, "rollback after a failed health check");
    }
    drop(d);

    // A truncated payload, and the fixture's broken one.
    let cut = &v2.1[..v2.1.len() / 2];
    for (what, c, bytes) in [("truncated v2", &v2.0, cut), ("broken payload", &broken.0, broken.1.as_slice())] {
        let mut d = with_v1(fixture, &v1);
        let tx = "tx-bad";
        let failed = d.install(tx, c, bytes).is_err() || d.phase(tx, "activate", c).is_err();
        assert!(failed, "{name}: the {what} was installed and activated");
        let s = d.status();
        if s.active.as_ref() != Some(&v1.0.version) {
            panic!("{name}: after the {what}, status {s:?}");
        }
        fixture
            .verify_active(&root_of(&d), &d.device, Release::V1)
            .unwrap_or_else(|e| panic!("{name}: after the {what}: {e}"));
        d.phase(tx, "rollback", c).unwrap_or_else(|e| panic!("{name}: rollback after the {what}: {e}"));
        assert_committed(fixture, &mut d, &v1.0, Release::V1, &format!("after the {what} and rollback"));
    }
}

fn root_of(d: &Device) -> std::path::PathBuf {
    d.root.path().to_owned()
}
