//! A release that failed on this device is never installed again; a newer one is. A check
//! whose every candidate fails verification is an error like `--now`; check and `--now` agree
//! about an update waiting for its reboot.

use update_core::ErrorKind;

use crate::fake::{ALL, Answer, FakeFactory, Root, update};

fn skipped_reasons(report: &libupdate::CheckReport) -> String {
    report.skipped.iter().map(|s| s.reason.clone()).collect::<Vec<_>>().join(" | ")
}

#[test]
fn a_release_whose_install_failed_is_skipped_until_a_newer_one() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let bad = update("2.0.0", "board") + "install=fails\n";
    let root = Root::new("fake", &[("u-2.0.fake", &bad)]);
    let up = root.open(vec![f]);
    let e = up.install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Failure);
    // Two scheduled windows later: nothing is installed again, each check audits the skip.
    for _ in 0..2 {
        let r = up.install_now(true).unwrap();
        assert!(r.installed.is_none());
        assert!(skipped_reasons(&r.check).contains("failed on this device"), "{}", skipped_reasons(&r.check));
    }
    let history = up.history(None).unwrap().records;
    let skips = history.iter().filter(|r| r.message.as_deref().is_some_and(|m| m.contains("failed on this device")));
    assert_eq!(skips.count(), 2);
    std::fs::write(root.dir.path().join("srv/update/u-2.1.fake"), update("2.1.0", "board")).unwrap();
    let r = up.install_now(true).unwrap();
    assert_eq!(r.installed.unwrap().version.to_string(), "2.1.0");
}

#[test]
fn a_release_the_bootloader_fell_back_from_is_skipped() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new("fake", &[("u-3.0.fake", &(update("3.0.0", "board") + "boot=falls-back\n"))]);
    let up = root.open(vec![f]);
    up.install_now(true).unwrap();
    f.device.lock().unwrap().pending = None;
    let report = up.check().unwrap();
    assert!(report.available.is_none());
    assert!(skipped_reasons(&report).contains("version 3.0.0 failed on this device"), "{}", skipped_reasons(&report));
}

#[test]
fn a_transient_failure_does_not_rule_a_release_out() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new("fake", &[("u-2.0.fake", &update("2.0.0", "board"))]);
    let up = root.open(vec![f]);
    {
        let _held = update_core::atomic::Lock::acquire(&root.paths().lock_file()).unwrap();
        assert_eq!(up.install_now(true).unwrap_err().kind(), ErrorKind::Busy);
    }
    assert_eq!(up.install_now(true).unwrap().installed.unwrap().version.to_string(), "2.0.0");
}

#[test]
fn a_check_where_nothing_verifies_fails_like_now() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new("fake", &[("u-2.0.fake", "garbage"), ("u-2.1.fake", "version=2.1.0\n")]);
    let up = root.open(vec![f]);
    let check = up.check().unwrap_err();
    let now = up.install_now(true).unwrap_err();
    assert_eq!(check.kind(), ErrorKind::Verification, "{check}");
    assert_eq!(now.kind(), ErrorKind::Verification, "{now}");
    let outcomes: Vec<(String, String)> = root.audit();
    assert_eq!(outcomes[0], ("check".to_owned(), "refused".to_owned()));
}

#[test]
fn check_and_now_agree_about_a_pending_install() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new("fake", &[("u-2.0.fake", &update("2.0.0", "board"))]);
    let up = root.open(vec![f]);
    up.install_now(true).unwrap();
    let check = up.check().unwrap();
    let now = up.install_now(true).unwrap();
    assert!(check.available.is_none() && now.installed.is_none());
    for r in [&check, &now.check] {
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.skipped[0].kind, libupdate::policy::PENDING);
        assert!(r.skipped[0].reason.contains("boots at the next reboot"), "{}", r.skipped[0].reason);
    }
}
