//! Honest state on the simulated device: mark-good never cancels a pending install (`cancel`
//! does, on purpose); status shows the pending update and the fallback; a release the
//! bootloader fell back from is never installed again.

use update_boot::Slot;
use update_core::ErrorKind;

use crate::common::{Fixture, v};

#[test]
fn mark_good_refuses_to_cancel_a_pending_install_and_cancel_does() {
    let fx = Fixture::new();
    fx.publish_version("2.0", "ok");
    let up = fx.updater();
    up.install_now(true).unwrap();
    let report = up.status_report().unwrap();
    let pending = report.pending.expect("2.0 pending");
    assert_eq!((pending.slot.as_str(), pending.version.as_str()), ("B", "2.0.0"));

    let before = fx.fingerprint();
    let e = up.mark_good().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("update cancel"), "{e}");
    assert_eq!(fx.fingerprint(), before, "a refused mark-good changed something");
    assert_eq!(up.status().unwrap().primary.as_deref(), Some("B"));

    let change = up.cancel().unwrap();
    assert!(change.message.contains("cancelled the pending update 2.0.0"), "{}", change.message);
    assert!(up.status_report().unwrap().pending.is_none());
    assert_eq!(fx.dev.reboot().unwrap(), Slot::A, "the cancelled update booted");
    assert_eq!(up.cancel().unwrap_err().kind(), ErrorKind::Refused, "nothing left to cancel");
}

#[test]
fn a_release_that_fell_back_is_not_installed_again() {
    let fx = Fixture::new();
    fx.publish_version("3.0", "broken");
    let up = fx.updater();
    assert_eq!(up.install_now(true).unwrap().installed.unwrap().version, v("3.0"));
    for _ in 0..up.config().boot_retry_limit {
        assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    }
    assert_eq!(fx.dev.reboot().unwrap(), Slot::A, "the bootloader falls back");
    let report = up.status_report().unwrap();
    assert!(report.status.fallback.is_some());
    assert_eq!(report.failed_releases, ["3.0.0"]);
    // Two scheduled windows: 3.0 is skipped each time, with the reason, and nothing is written.
    for _ in 0..2 {
        let before = fx.fingerprint();
        let r = up.install_now(true).unwrap();
        assert!(r.installed.is_none());
        assert!(r.check.skipped.iter().any(|s| s.reason.contains("failed on this device")), "{:?}", r.check.skipped);
        assert_eq!(fx.fingerprint(), before);
    }
    // A newer release is eligible as usual.
    fx.publish_version("3.1", "ok");
    assert_eq!(up.install_now(true).unwrap().installed.unwrap().version, v("3.1"));
}

#[test]
fn mark_bad_sends_the_device_back_and_the_release_is_never_installed_again() {
    let fx = Fixture::new();
    let up = fx.updater();
    // The factory slot is the only committed one: refused, nothing written.
    let before = fx.fingerprint();
    let e = up.mark_bad().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("nothing to boot"), "{e}");
    assert_eq!(fx.fingerprint(), before, "a refused mark-bad changed something");

    fx.publish_version("2.0", "ok");
    up.install_now(true).unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    let change = up.mark_bad().unwrap();
    assert_eq!(change.slot, "B");
    assert!(change.message.contains("slot B (2.0.0) marked bad; slot A (1.0.0) boots next"), "{}", change.message);
    let s = up.status().unwrap();
    assert_eq!(s.primary.as_deref(), Some("A"), "{s:?}");
    assert_eq!(up.status_report().unwrap().failed_releases, ["2.0.0"]);
    for _ in 0..3 {
        assert_eq!(fx.dev.reboot().unwrap(), Slot::A, "the bad slot is never booted again");
    }
    let history = up.history(None).unwrap();
    assert!(
        history
            .records
            .iter()
            .any(|r| r.action == update_core::audit::AuditAction::MarkBad && r.subject.as_deref() == Some("B")),
        "audited"
    );
    // 2.0 is not installed again; a newer release is.
    let r = up.install_now(true).unwrap();
    assert!(r.installed.is_none(), "{r:?}");
    fx.publish_version("2.1", "ok");
    assert_eq!(up.install_now(true).unwrap().installed.unwrap().version, v("2.1"));
}
