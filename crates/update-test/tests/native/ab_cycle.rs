//! The full A/B cycle on the simulated device: install → reboot → mark-good, then a broken
//! release that never gets marked good → automatic fallback after boot-retry-limit boots.

use update_boot::Slot;
use update_core::audit::AuditAction;
use update_core::driver::SlotState;

use crate::common::{Fixture, v};

#[test]
fn install_reboot_mark_good_then_broken_update_falls_back() {
    let fx = Fixture::new();
    let data_before = fx.fingerprint()["data"].clone();
    let slot_a_before = fx.fingerprint()["rootfs-A"].clone();
    fx.publish_version("2.0", "ok");
    let up = fx.updater();

    // Check only: 2.0 is found, nothing is written.
    let before = fx.fingerprint();
    let report = up.check().unwrap();
    assert_eq!(report.available.unwrap().info.version, v("2.0"));
    assert_eq!(fx.fingerprint(), before);

    // Install into B without rebooting.
    let r = up.install_now(true).unwrap();
    let outcome = r.installed.unwrap();
    assert_eq!((outcome.slot.as_str(), outcome.version.clone()), ("B", v("2.0")));
    let s = up.status().unwrap();
    assert_eq!((s.booted.as_deref(), s.primary.as_deref()), (Some("A"), Some("B")));
    assert_eq!(s.slots[1].state, SlotState::Trying);
    assert_eq!(s.slots[1].tries_left, Some(3));
    assert_eq!(fx.fingerprint()["rootfs-A"], slot_a_before, "the running slot was written");
    assert_eq!(fx.slot_version(Slot::B), "2.0");

    // Reboot into B, then commit it.
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    let s = up.status().unwrap();
    assert_eq!((s.booted.as_deref(), s.version.clone()), (Some("B"), Some(v("2.0"))));
    assert_eq!(s.slots[1].tries_left, Some(2));
    up.mark_good().unwrap();
    let s = up.status().unwrap();
    assert_eq!(s.slots[1].state, SlotState::Good);
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B, "a committed slot keeps booting");

    // Nothing newer in the source directory: --now is a no-op, and says why.
    let r = up.install_now(true).unwrap();
    assert!(r.installed.is_none());
    assert!(r.check.skipped[0].reason.contains("not newer"), "{:?}", r.check.skipped);

    // 3.0 is broken: its health check fails, nobody marks it good.
    fx.publish_version("3.0", "broken");
    let r = up.install_now(true).unwrap();
    assert_eq!(r.installed.unwrap().slot, "A");
    let limit = up.config().boot_retry_limit;
    for attempt in 1..=limit {
        assert_eq!(fx.dev.reboot().unwrap(), Slot::A, "boot attempt {attempt} of 3.0");
        assert!(update_test::device::health(fx.root()).is_err());
    }
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B, "after {limit} failed boots the bootloader falls back");
    let s = up.status().unwrap();
    assert_eq!(s.version, Some(v("2.0")));
    assert_eq!(s.booted.as_deref(), Some("B"));
    assert!(s.fallback.as_deref().unwrap_or("").contains("after A failed"), "{:?}", s.fallback);
    assert_eq!(s.slots[0].state, SlotState::Bad);
    let history = up.history(None).unwrap().records;
    let fallbacks = history.iter().filter(|r| r.action == AuditAction::Fallback).count();
    assert_eq!(fallbacks, 1, "the fallback is audited once");
    up.status().unwrap();
    assert_eq!(up.history(None).unwrap().records.iter().filter(|r| r.action == AuditAction::Fallback).count(), 1);
    // Committing after the fallback makes B primary again; the device keeps booting 2.0.
    up.mark_good().unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    assert!(up.status().unwrap().fallback.is_none());
    assert_eq!(fx.fingerprint()["data"], data_before, "user data changed");
}

#[test]
fn manual_rollback_returns_to_the_committed_slot() {
    let fx = Fixture::new();
    fx.publish_version("2.0", "ok");
    let up = fx.updater();
    up.install_now(true).unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    let change = up.rollback().unwrap();
    assert_eq!(change.slot, "A");
    assert_eq!(fx.dev.reboot().unwrap(), Slot::A);
    let s = up.status().unwrap();
    assert_eq!(s.version, Some(v("1.0")));
    // B's abandoned trial can never boot again by itself.
    assert_eq!(fx.dev.reboot().unwrap(), Slot::A);
    // Rolling back from A now: B is not committed, so it is refused and nothing changes.
    let before = fx.fingerprint();
    let e = up.rollback().unwrap_err();
    assert_eq!(e.kind(), update_core::ErrorKind::Refused, "{e}");
    assert_eq!(fx.fingerprint(), before);
}
