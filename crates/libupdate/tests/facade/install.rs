//! Every state-changing call is audited once, with its outcome, through the one helper.

use crate::fake::{ALL, Answer, FakeFactory, Root, update};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[test]
fn install_mark_good_and_refusals_are_audited() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new("fake", &[("u-2.0.fake", &update("2.0.0", "board"))]);
    let up = root.open(vec![f]);
    up.install_now(true).unwrap();
    // While 2.0 waits for its reboot, mark-good would cancel it: refused, and audited so.
    assert_eq!(up.mark_good().unwrap_err().kind(), update_core::ErrorKind::Refused);
    f.device.lock().unwrap().reboot();
    up.mark_good().unwrap();
    assert_eq!(root.audit(), pairs(&[("install", "ok"), ("mark-good", "refused"), ("mark-good", "ok")]));
    let record = &up.history(None).unwrap().records[0];
    assert_eq!(record.driver.as_deref(), Some("fake"));
    assert_eq!(record.subject.as_deref(), Some("B"));
    assert_eq!(record.new.as_ref().and_then(|v| v.as_str()), Some("2.0.0"));
}

#[test]
fn a_tampered_update_is_a_verification_failure_audited_as_refused() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new("fake", &[("u-2.0.fake", "compatible=board\n")]);
    let up = root.open(vec![f]);
    let e = up.install_now(true).unwrap_err();
    assert_eq!(e.kind(), update_core::ErrorKind::Verification, "{e}");
    assert_eq!(root.audit(), pairs(&[("install", "refused")]));
    assert!(f.device.lock().unwrap().installed.is_empty());
}

#[test]
fn a_busy_lock_is_refused_and_nothing_installs() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new("fake", &[("u-2.0.fake", &update("2.0.0", "board"))]);
    let up = root.open(vec![f]);
    let _held = update_core::atomic::Lock::acquire(&root.paths().lock_file()).unwrap();
    let e = up.install_now(true).unwrap_err();
    assert_eq!(e.kind(), update_core::ErrorKind::Busy, "{e}");
    assert_eq!(root.audit(), pairs(&[("install", "refused")]));
    assert!(f.device.lock().unwrap().installed.is_empty());
}
