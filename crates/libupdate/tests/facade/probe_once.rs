//! One `Updater` probes its driver once, however many operations it runs, and asks the driver
//! for its status once per check or install.

use std::sync::atomic::Ordering;

use crate::fake::{ALL, Answer, FakeFactory, Root, update};

#[test]
fn one_probe_per_updater_and_one_status_per_install() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new("fake", &[("u-2.0.fake", &update("2.0.0", "board"))]);
    let up = root.open(vec![f]);
    up.status().unwrap();
    up.check().unwrap();
    assert_eq!(f.probes(), 1);
    f.status_calls.store(0, Ordering::SeqCst);
    let done = up.install_now(true).unwrap();
    assert_eq!(done.installed.unwrap().version.to_string(), "2.0.0");
    assert_eq!(f.probes(), 1, "install_now probed again");
    assert_eq!(f.status_calls.load(Ordering::SeqCst), 1, "install_now asked for the status more than once");
    // The second --now sees 2.0 waiting for its reboot, still without a new probe.
    let again = up.install_now(true).unwrap();
    assert!(again.installed.is_none());
    assert!(again.check.skipped.iter().any(|s| s.reason.contains("boots at the next reboot")));
    f.device.lock().unwrap().reboot();
    up.mark_good().unwrap();
    assert_eq!(f.probes(), 1);
}

#[test]
fn a_config_change_that_can_select_another_driver_probes_again() {
    let a = FakeFactory::leak("fake-a", Answer::Available, ALL);
    let b = FakeFactory::leak("fake-b", Answer::Available, ALL);
    let root = Root::new("fake-a", &[]);
    let mut up = root.open(vec![a, b]);
    assert_eq!(up.driver_name().unwrap(), "fake-a");
    up.set(&libupdate::Setting::Driver("fake-b".into())).unwrap();
    assert_eq!(up.driver_name().unwrap(), "fake-b");
    assert_eq!(b.probes(), 2, "set probes to check the new driver accepts the config, then once for use");
}
