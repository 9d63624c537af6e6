//! The conformance tests, written once against [`Rig`] and instantiated per driver by the
//! `conformance!` macro in main.rs.
// Shared by rigs compiled per cargo feature: with some features off, parts are unused.
#![allow(dead_code)]

use std::path::PathBuf;

use update_core::config::Verify;
use update_core::driver::{Capability, DriverFactory, InstallRequest, Probe, SlotState, Status};
use update_core::{ErrorKind, Version};

use crate::support::Harness;

/// A signed update, or one of the ways an update can be bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// Built and signed with the trusted key.
    Signed,
    /// Signed, then one byte of the payload changed.
    Tampered,
    /// Signed by a key the device does not trust (or not signed at all).
    Untrusted,
    /// Not signed at all (only where [`Rig::UNSIGNED_ARTIFACTS`]).
    Unsigned,
}

/// A simulated device for one tool: its files under a temporary root, its services, its
/// simulated bootloader.
pub trait Rig: Sized {
    /// The driver's name.
    const DRIVER: &'static str;
    /// The programs the rig needs; missing ones make the tests print SKIPPED.
    const TOOLS: &'static [&'static str];
    /// Whether the rig needs root.
    const NEEDS_ROOT: bool;
    /// Whether the rig needs loop devices (`/dev/loop-control`).
    const NEEDS_LOOP_DEVICES: bool = false;
    /// Whether the bootloader the rig simulates falls back after failed boots of a new slot.
    const FALLS_BACK: bool;
    /// Whether the driver reports install progress.
    const PROGRESS: bool;
    /// Whether the tool can go back to the previous slot after the new one was committed.
    const ROLLBACK_AFTER_COMMIT: bool = true;
    /// The version status reports for the factory image (`None` where the tool cannot know it).
    const FACTORY_VERSION: Option<&'static str>;
    /// What the factory's decline says when the tool is missing (native has no tool: its
    /// absence is a config without a `[native]` table).
    const MISSING_TOOL_DECLINE: &'static str = "not found in PATH";
    /// What the registered factory's decline says on an empty root (one of these).
    const UNCONFIGURED_DECLINES: &'static [&'static str] = &["not configured", "not found"];
    /// Whether check (inspect) verifies the payload too, not only the signed description. Where
    /// it does not, install must still refuse a changed payload before anything is written.
    const INSPECT_CHECKS_PAYLOAD: bool = true;
    /// Whether the driver enforces `signature-threshold` above 1 itself (otherwise it must refuse
    /// the setting as not supported).
    const SIGNATURE_THRESHOLD: bool = false;
    /// Whether status reports the tries a new slot has left (checked against `boot-retry-limit`).
    const REPORTS_TRIES: bool = false;
    /// Whether the rig can build an update without any signature ([`Artifact::Unsigned`]).
    const UNSIGNED_ARTIFACTS: bool = false;
    /// Whether the driver updates the running system in place, with no A/B slots (apt): status
    /// has one slot, an install lands in it at once and needs no reboot, and the slot tests
    /// (fall back, mark-bad, rollback) check the driver's documented refusal instead: "not
    /// supported", and nothing written.
    const IN_PLACE: bool = false;

    /// Builds the device, running version 1.0.0 from the first slot.
    fn new() -> Self;
    /// The driver context (root, config) for this device.
    fn harness(&self) -> &Harness;
    /// Changes the config for the next calls.
    fn harness_mut(&mut self) -> &mut Harness;
    /// The factory, set up for this device.
    fn factory(&self) -> Box<dyn DriverFactory>;
    /// A factory whose program does not exist.
    fn missing_tool_factory() -> Box<dyn DriverFactory>;
    /// The factory as it is registered in the `update` binary (probed on an empty root).
    fn registered_factory() -> &'static dyn DriverFactory {
        crate::default_factory(Self::DRIVER)
    }
    /// Config tables the device needs besides the top-level keys (appended to the config file
    /// written for the facade).
    fn config_tables(&self) -> String {
        String::new()
    }
    /// Builds an update file.
    fn artifact(&mut self, version: &str, kind: Artifact) -> PathBuf;
    /// A simulated reboot: the bootloader chooses a slot, the system comes up from it.
    fn reboot(&mut self);
    /// Everything an install could change (slot contents, boot environment), for "nothing written".
    fn snapshot(&self) -> Vec<(String, Vec<u8>)>;
}

fn slot<'a>(s: &'a Status, name: &str) -> &'a update_core::driver::SlotStatus {
    s.slots.iter().find(|x| x.name == name).unwrap_or_else(|| panic!("no slot {name} in {s:#?}"))
}

fn install<R: Rig>(rig: &mut R, version: &str) -> update_core::driver::InstallOutcome {
    let bundle = rig.artifact(version, Artifact::Signed);
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    d.install(&h.ctx(), &InstallRequest::file(bundle, Verify::Signatures)).unwrap()
}

fn status<R: Rig>(rig: &R) -> Status {
    let h = rig.harness();
    h.driver(rig.factory().as_ref()).status(&h.ctx()).unwrap()
}

/// A tool that is not installed makes the factory decline with "… not found in PATH" (native:
/// a config without a `[native]` table declines with "no [native] table in the config").
pub fn probe_declines_without_tool<R: Rig>() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(dir.path(), R::DRIVER);
    match R::missing_tool_factory().probe(&h.ctx()) {
        Probe::Declined(why) => assert!(why.contains(R::MISSING_TOOL_DECLINE), "{why}"),
        other => panic!("expected a decline, got {other:?}"),
    }
}

/// A tool that is installed but not configured under the root answers `Unconfigured` with the
/// reason (so hosts with the package but no setup fall through to "Not implemented", which names
/// what is missing); without the tool it declines. The native engine, always built in, declines
/// without its `[native]` table.
pub fn probe_declines_unconfigured<R: Rig>() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(dir.path(), R::DRIVER);
    let installed =
        R::DRIVER != "native" && update_core::process::locate(std::path::Path::new(R::TOOLS[0]), None).is_some();
    match R::registered_factory().probe(&h.ctx()) {
        Probe::Unconfigured(why) if installed => {
            assert!(R::UNCONFIGURED_DECLINES.iter().any(|n| why.contains(n)), "{why}");
        }
        Probe::Declined(why) if !installed => {
            assert!(R::UNCONFIGURED_DECLINES.iter().any(|n| why.contains(n)), "{why}");
        }
        other => panic!("expected Unconfigured (tool installed: {installed}) for an empty root, got {other:?}"),
    }
}

/// check → install into the inactive slot → status shows it pending → reboot → mark-good → status.
pub fn install_cycle<R: Rig>() {
    let mut rig = R::new();
    let s = status(&rig);
    assert_eq!(s.driver, R::DRIVER);
    let first = s.booted.clone().expect("a booted slot");
    let first = first.as_str();
    assert_eq!(s.primary.as_deref(), Some(first), "{s:#?}");
    assert_eq!(slot(&s, first).state, SlotState::Good, "{s:#?}");
    assert_eq!(s.version.as_ref().map(ToString::to_string), R::FACTORY_VERSION.map(str::to_owned), "{s:#?}");

    // check: the driver reads the update's description (where the tool can).
    let bundle = rig.artifact("2.0.0", Artifact::Signed);
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    let req = InstallRequest::file(bundle, Verify::Signatures);
    if d.capabilities().has(Capability::Inspect) {
        let info = d.inspect(&h.ctx(), &req).unwrap();
        assert_eq!(info.version, Version::new(2, 0, 0));
    }
    let outcome = d.install(&h.ctx(), &req).unwrap();
    let second = outcome.slot.as_str();
    assert_eq!(second == first, R::IN_PLACE, "{outcome:?}");
    assert_eq!(outcome.version, Version::new(2, 0, 0));
    assert_eq!(outcome.reboot_required, !R::IN_PLACE);
    if R::PROGRESS {
        assert!(*h.progress.advanced.borrow() > 0, "no progress reported");
    }

    let s = status(&rig);
    assert_eq!(s.booted.as_deref(), Some(first), "{s:#?}");
    assert_eq!(s.primary.as_deref(), Some(second), "{s:#?}");
    assert_eq!(slot(&s, second).version, Some(Version::new(2, 0, 0)), "{s:#?}");
    if R::IN_PLACE {
        // In place: the new version runs now, nothing is pending.
        assert_eq!(slot(&s, second).state, SlotState::Good, "{s:#?}");
        assert_eq!(s.version, Some(Version::new(2, 0, 0)), "{s:#?}");
    } else {
        // pending: the new slot boots next, the old one still runs.
        assert_eq!(slot(&s, second).state, SlotState::Trying, "{s:#?}");
    }

    rig.reboot();
    let s = status(&rig);
    assert_eq!(s.booted.as_deref(), Some(second), "{s:#?}");
    assert_eq!(s.version, Some(Version::new(2, 0, 0)), "{s:#?}");
    let can_mark_good = R::FALLS_BACK;
    if can_mark_good {
        assert_eq!(slot(&s, second).state, SlotState::Trying, "booted but not committed: {s:#?}");
    }
    assert_eq!(slot(&s, first).state, SlotState::Good, "the old slot is the fallback: {s:#?}");

    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    if d.capabilities().has(Capability::MarkGood) {
        let change = d.mark_good(&h.ctx()).unwrap();
        assert_eq!(change.slot, second);
    } else {
        let e = d.mark_good(&h.ctx()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
    }
    let s = status(&rig);
    assert_eq!(slot(&s, second).state, SlotState::Good, "{s:#?}");
    assert_eq!(s.primary.as_deref(), Some(second), "{s:#?}");
    assert_eq!(s.fallback, None);

    // Committed: another reboot stays on the new slot.
    rig.reboot();
    let s = status(&rig);
    assert_eq!(s.booted.as_deref(), Some(second), "{s:#?}");
}

/// A tampered or untrusted update is refused as a verification failure, and nothing is written:
/// not the slots, not the boot environment.
pub fn bad_artifacts_are_refused<R: Rig>() {
    let mut rig = R::new();
    let s0 = status(&rig);
    let unsigned = R::UNSIGNED_ARTIFACTS.then_some(Artifact::Unsigned);
    for kind in [Artifact::Tampered, Artifact::Untrusted].into_iter().chain(unsigned) {
        let bundle = rig.artifact("2.0.0", kind);
        let before = rig.snapshot();
        let h = rig.harness();
        let mut d = h.driver(rig.factory().as_ref());
        let req = InstallRequest::file(bundle, Verify::Signatures);
        let e = d.install(&h.ctx(), &req).expect_err("a bad update was installed");
        assert_eq!(e.kind(), ErrorKind::Verification, "{kind:?}: {e}");
        if d.capabilities().has(Capability::Inspect) {
            if kind == Artifact::Tampered && !R::INSPECT_CHECKS_PAYLOAD {
                // Only the signed description is read, and it is intact; the payload's hashes
                // are in it, and install refused the changed byte above.
                let info = d.inspect(&h.ctx(), &req).unwrap();
                assert_eq!(info.version, Version::new(2, 0, 0));
            } else {
                let e = d.inspect(&h.ctx(), &req).expect_err("a bad update was inspected");
                assert_eq!(e.kind(), ErrorKind::Verification, "{kind:?} inspect: {e}");
            }
        }
        let after = rig.snapshot();
        for ((name, a), (_, b)) in before.iter().zip(&after) {
            assert!(a == b, "{kind:?}: {name} changed");
        }
        let s = status(&rig);
        assert_eq!(s.booted, s0.booted);
        assert_eq!(s.primary, s0.primary, "{kind:?}: {s:#?}");
    }
}

/// A new slot that never gets marked good is abandoned by the bootloader: the device comes back
/// on the old slot and status reports the fallback.
pub fn failed_boot_falls_back<R: Rig>() {
    let mut rig = R::new();
    let first = status(&rig).booted.expect("a booted slot");
    let first = first.as_str();
    let second = install(&mut rig, "2.0.0").slot;
    let second = second.as_str();
    rig.reboot();
    assert_eq!(status(&rig).booted.as_deref(), Some(second));
    if R::IN_PLACE {
        // Nothing falls back by itself, and the driver says so: no boot counting, and marking
        // the running system bad is refused without a write.
        let h = rig.harness();
        let mut d = h.driver(rig.factory().as_ref());
        assert!(!d.capabilities().has(Capability::BootCounting));
        let before = rig.snapshot();
        let e = d.mark_bad(&h.ctx()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
        assert!(before == rig.snapshot(), "a refused mark-bad wrote something");
        rig.reboot();
        let s = status(&rig);
        assert_eq!(s.version, Some(Version::new(2, 0, 0)), "{s:#?}");
        assert_eq!(s.fallback, None, "{s:#?}");
        return;
    }
    if !R::FALLS_BACK {
        crate::support::skipped(&format!("{}: the tool has no boot counting; nothing falls back by itself", R::DRIVER));
        return;
    }
    // The new system never passes its health checks: it is rebooted until the bootloader gives up.
    let mut boots = 0;
    while status(&rig).booted.as_deref() == Some(second) {
        boots += 1;
        assert!(boots <= 10, "the bootloader never fell back");
        rig.reboot();
    }
    let s = status(&rig);
    assert_eq!(s.booted.as_deref(), Some(first), "{s:#?}");
    assert_eq!(slot(&s, second).state, SlotState::Bad, "{s:#?}");
    assert!(s.fallback.as_deref().is_some_and(|f| f.contains(second)), "{s:#?}");
    let audits = |rig: &R| rig.harness().events.lines.borrow().iter().filter(|l| l.contains("Fallback")).count();
    assert_eq!(audits(&rig), 1, "the fallback is audited: {:#?}", rig.harness().events.lines.borrow());
    status(&rig);
    assert_eq!(audits(&rig), 1, "the fallback is audited once");
    assert_eq!(s.version.as_ref().map(ToString::to_string), R::FACTORY_VERSION.map(str::to_owned), "{s:#?}");

    // The old slot passes its health checks; the device takes the next update normally.
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    if d.capabilities().has(Capability::MarkGood) {
        d.mark_good(&h.ctx()).unwrap();
    }
    let s = status(&rig);
    assert_eq!(slot(&s, first).state, SlotState::Good, "{s:#?}");
    assert_eq!(s.primary.as_deref(), Some(first), "{s:#?}");
    let again = install(&mut rig, "3.0.0");
    assert_eq!(again.slot, second);
    rig.reboot();
    let s = status(&rig);
    assert_eq!(s.booted.as_deref(), Some(second), "{s:#?}");
    assert_eq!(s.version, Some(Version::new(3, 0, 0)), "{s:#?}");
    assert_eq!(s.fallback, None, "{s:#?}");
}

/// `update mark-bad` on a new slot on trial sends the device back to the previous one, which is
/// not marked bad itself: marking the only committed slot bad is refused and changes nothing.
pub fn mark_bad_during_trial<R: Rig>() {
    let mut rig = R::new();
    let first = status(&rig).booted.expect("a booted slot");
    let first = first.as_str();
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    if !d.capabilities().has(Capability::MarkBad) {
        let before = rig.snapshot();
        let e = d.mark_bad(&h.ctx()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
        assert!(before == rig.snapshot(), "a refused mark-bad wrote something");
        return;
    }
    // Only the factory slot is committed: refused, nothing written.
    let before = rig.snapshot();
    let e = d.mark_bad(&h.ctx()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(before == rig.snapshot(), "a refused mark-bad wrote something");
    let second = install(&mut rig, "2.0.0").slot;
    rig.reboot();
    assert_eq!(status(&rig).booted.as_deref(), Some(second.as_str()));
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    let change = d.mark_bad(&h.ctx()).unwrap();
    assert_eq!(change.slot, second);
    rig.reboot();
    let s = status(&rig);
    assert_eq!(s.booted.as_deref(), Some(first), "{s:#?}");
    assert_ne!(slot(&s, &second).state, SlotState::Good, "{s:#?}");
    // The health checks pass on the old slot (with GRUB, a boot counts as a try until then).
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    d.mark_good(&h.ctx()).unwrap();
    let s = status(&rig);
    assert_eq!(slot(&s, first).state, SlotState::Good, "{s:#?}");
    // It stays away from the bad slot at the next boot too.
    rig.reboot();
    let s = status(&rig);
    assert_eq!(s.booted.as_deref(), Some(first), "{s:#?}");
    assert_ne!(slot(&s, &second).state, SlotState::Good, "{s:#?}");
}

/// A driver without rollback refuses it as "not supported by the … driver", and writes nothing.
fn refuses_rollback<R: Rig>(rig: &R, d: &mut dyn update_core::driver::Driver) {
    let before = rig.snapshot();
    let e = d.rollback(&rig.harness().ctx()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
    assert!(e.to_string().contains(&format!("rollback is not supported by the {} driver", R::DRIVER)), "{e}");
    assert!(before == rig.snapshot(), "a refused rollback wrote something");
}

/// `update rollback` while a new slot is on trial sends the device back to the previous one.
pub fn rollback_during_trial<R: Rig>() {
    let mut rig = R::new();
    let first = status(&rig).booted.expect("a booted slot");
    let first = first.as_str();
    let second = install(&mut rig, "2.0.0").slot;
    rig.reboot();
    assert_eq!(status(&rig).booted.as_deref(), Some(second.as_str()));
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    if !d.capabilities().has(Capability::Rollback) {
        refuses_rollback(&rig, d.as_mut());
        return;
    }
    let change = d.rollback(&h.ctx()).unwrap();
    assert_eq!(change.slot, first);
    let s = status(&rig);
    assert_eq!(s.primary.as_deref(), Some(first), "{s:#?}");
    rig.reboot();
    let s = status(&rig);
    assert_eq!(s.booted.as_deref(), Some(first), "{s:#?}");
    // The health checks pass on the old slot: it is committed (again) and stays primary.
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    if d.capabilities().has(Capability::MarkGood) {
        d.mark_good(&h.ctx()).unwrap();
    }
    let s = status(&rig);
    assert_eq!(s.primary.as_deref(), Some(first), "{s:#?}");
    assert_eq!(slot(&s, first).state, SlotState::Good, "{s:#?}");
}

/// `update rollback` after a committed update makes the previous slot boot again — or, where the
/// tool only rolls back uncommitted updates, is refused and changes nothing.
pub fn rollback_after_commit<R: Rig>() {
    let mut rig = R::new();
    let first = status(&rig).booted.expect("a booted slot");
    let first = first.as_str();
    install(&mut rig, "2.0.0");
    rig.reboot();
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    if d.capabilities().has(Capability::MarkGood) {
        d.mark_good(&h.ctx()).unwrap();
    }
    if !d.capabilities().has(Capability::Rollback) {
        refuses_rollback(&rig, d.as_mut());
        return;
    }
    if !R::ROLLBACK_AFTER_COMMIT {
        let before = rig.snapshot();
        let e = d.rollback(&h.ctx()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
        assert!(before == rig.snapshot(), "a refused rollback wrote something");
        return;
    }
    let change = d.rollback(&h.ctx()).unwrap();
    assert_eq!(change.slot, first);
    let s = status(&rig);
    assert_eq!(s.primary.as_deref(), Some(first), "{s:#?}");
    rig.reboot();
    assert_eq!(status(&rig).booted.as_deref(), Some(first));
}

/// The same update through libupdate's `Updater`, the code path of `update`, `update --now`,
/// `update status`, `update mark-good` and `update history`.
pub fn through_the_facade<R: Rig>() {
    let mut rig = R::new();
    let bundle = rig.artifact("2.0.0", Artifact::Signed);
    let paths = rig.harness().paths.clone();
    let rel = bundle.strip_prefix(paths.root()).expect("rigs build update files under the root");
    let config = format!(
        "driver = \"{}\"\nsource = \"file:///{}\"\nlog = \"/var/log/update.log\"\n{}",
        R::DRIVER,
        rel.display(),
        rig.config_tables()
    );
    std::fs::create_dir_all(paths.config_dir()).unwrap();
    std::fs::write(paths.config_file(), config).unwrap();
    let factory: &'static dyn DriverFactory = Box::leak(rig.factory());
    let updater = libupdate::Updater::open(paths.clone(), vec![factory]).unwrap();
    let before = updater.status().unwrap();

    let check = updater.check().unwrap();
    assert_eq!(check.driver, R::DRIVER);
    let found = check.available.as_ref().map(|c| c.info.version.clone());
    assert_eq!(found, Some(Version::new(2, 0, 0)), "{:?}", check.skipped);

    let report = updater.install_now(true).unwrap();
    let installed = report.installed.expect("an install");
    assert!(!report.rebooted);
    assert_eq!(installed.version, Version::new(2, 0, 0));
    let s = updater.status().unwrap();
    assert_eq!(s.primary.as_deref(), Some(installed.slot.as_str()), "{s:#?}");
    assert_eq!(s.booted, before.booted);

    rig.reboot();
    let s = updater.status().unwrap();
    assert_eq!(s.booted.as_deref(), Some(installed.slot.as_str()), "{s:#?}");
    assert_eq!(s.version, Some(Version::new(2, 0, 0)));
    if factory.capabilities().has(Capability::MarkGood) {
        updater.mark_good().unwrap();
    }
    // The same file again is not newer: refused, and nothing is written.
    let snapshot = rig.snapshot();
    let e = updater.install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(snapshot == rig.snapshot());

    let history = updater.history(None).unwrap().records;
    let installs: Vec<_> =
        history.iter().filter(|r| matches!(r.action, update_core::audit::AuditAction::Install)).collect();
    assert!(installs.len() >= 2, "an install and a refusal: {history:#?}");

    // A tool-facing key the driver cannot honour is refused when it is set, and the file is
    // untouched; one it can honour is stored.
    let mut updater = updater;
    let file_before = std::fs::read(paths.config_file()).unwrap();
    let mut wanted = updater.stored_config().unwrap();
    wanted.boot_retry_limit = 7;
    match factory.check_config(&wanted) {
        Ok(()) => {
            updater.set(&libupdate::Setting::BootRetryLimit(7)).unwrap();
            assert_eq!(updater.stored_config().unwrap().boot_retry_limit, 7);
        }
        Err(expected) => {
            let e = updater.set(&libupdate::Setting::BootRetryLimit(7)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
            assert_eq!(e.to_string(), expected.to_string());
            assert!(e.to_string().contains(&format!("not supported by the {} driver", R::DRIVER)), "{e}");
            assert_eq!(std::fs::read(paths.config_file()).unwrap(), file_before, "a refused change wrote the file");
        }
    }
}

/// Keys the tool cannot honour are refused with "… is not supported by the <driver> driver",
/// before anything is written. A driver that enforces `signature-threshold` itself refuses the
/// singly signed update as a verification failure instead, also before anything is written.
pub fn unsupported_settings_are_refused<R: Rig>() {
    let mut rig = R::new();
    let bundle = rig.artifact("2.0.0", Artifact::Signed);
    let before = rig.snapshot();
    rig.harness_mut().config.signature_threshold = 2;
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    let e = d.install(&h.ctx(), &InstallRequest::file(bundle.clone(), Verify::Signatures)).unwrap_err();
    if R::SIGNATURE_THRESHOLD {
        assert_eq!(e.kind(), ErrorKind::Verification, "{e}");
        assert!(e.to_string().contains("2 required"), "{e}");
    } else {
        assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
        assert!(e.to_string().contains(&format!("not supported by the {} driver", R::DRIVER)), "{e}");
    }
    assert!(before == rig.snapshot(), "a refused install wrote something");
    rig.harness_mut().config.signature_threshold = 1;
    rig.harness_mut().config.boot_retry_limit = 7;
    let h = rig.harness();
    let mut d = h.driver(rig.factory().as_ref());
    match d.install(&h.ctx(), &InstallRequest::file(bundle, Verify::Signatures)) {
        // The driver writes the limit where the bootloader reads it.
        Ok(outcome) => {
            if R::REPORTS_TRIES {
                let s = status(&rig);
                assert_eq!(slot(&s, &outcome.slot).tries_left, Some(7), "{s:#?}");
            }
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
            assert!(e.to_string().contains("boot-retry-limit 7 is not supported"), "{e}");
            assert!(before == rig.snapshot(), "a refused install wrote something");
        }
    }
}
