//! A driver defined only in a test is selected by name and by `auto`, and offered exactly the
//! files whose extension it names.

use crate::fake::{ALL, Answer, FakeFactory, Root, update};

#[test]
fn a_test_driver_is_selected_by_name_and_offered_its_files() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new(
        "fake",
        &[
            ("a-1.5.fake", &update("1.5.0", "board")),
            ("b-2.0.fake", &update("2.0.0", "board")),
            ("c-0.9.fake", &update("0.9.0", "board")),
            ("other-9.0.fake", &update("9.0.0", "another-board")),
            ("d-8.0.raucb", &update("8.0.0", "board")),
            ("README", "not an update"),
        ],
    );
    let up = root.open(vec![f]);
    let report = up.check().unwrap();
    assert_eq!(report.driver, "fake");
    let chosen = report.available.expect("an update");
    assert_eq!(chosen.info.version.to_string(), "2.0.0");
    assert!(chosen.path.ends_with("b-2.0.fake"));
    // 1.5 is eligible but older than 2.0: not skipped, not chosen. 0.9 (older than the
    // installed 1.0) and the other board's file are skipped with their reasons; the .raucb and
    // the README are not offered at all: no driver in this table names their extensions.
    let mut skipped: Vec<String> =
        report.skipped.iter().map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
    skipped.sort();
    assert_eq!(skipped, ["c-0.9.fake", "other-9.0.fake"]);
    assert!(report.skipped.iter().any(|s| s.reason.contains("another-board")));
    assert_eq!(root.audit(), [("check".to_owned(), "ok".to_owned())]);
}

#[test]
fn auto_selects_the_first_available_driver_in_table_order() {
    let declined = FakeFactory::leak("fake-a", Answer::Declined, ALL);
    let second = FakeFactory::leak("fake-b", Answer::Available, ALL);
    let third = FakeFactory::leak("fake-c", Answer::Available, ALL);
    let root = Root::new("auto", &[]);
    let up = root.open(vec![declined, second, third]);
    assert_eq!(up.driver_name().unwrap(), "fake-b");
    assert_eq!((declined.probes(), second.probes(), third.probes()), (1, 1, 0));
}

#[test]
fn an_unknown_driver_name_is_refused_listing_the_table() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new("auto", &[]);
    let mut up = root.open(vec![f]);
    let e = up.set(&libupdate::Setting::Driver("nosuch".into())).unwrap_err();
    assert_eq!(e.kind(), update_core::ErrorKind::Usage);
    assert!(e.to_string().contains("known drivers: auto, fake"), "{e}");
    up.set(&libupdate::Setting::Driver("fake".into())).unwrap();
    assert_eq!(up.config().driver, "fake");
}

#[test]
fn a_driver_that_cannot_inspect_installs_a_named_file_and_skips_a_directory() {
    const NO_INSPECT: &[update_core::driver::Capability] = &[update_core::driver::Capability::AbImage];
    let f = FakeFactory::leak("fake", Answer::Available, NO_INSPECT);
    let root = Root::new("fake", &[("u-3.0.fake", &update("3.0.0", "board"))]);
    let up = root.open(vec![f]);
    let report = up.check().unwrap();
    assert!(report.available.is_none());
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].reason.contains("cannot inspect"), "{}", report.skipped[0].reason);

    let mut up = root.open(vec![f]);
    let file = update_core::config::SourceUrl::new("file:///srv/update/u-3.0.fake").unwrap();
    up.apply_overrides(&libupdate::Overrides { source: Some(file), ..Default::default() });
    let done = up.install_now(true).unwrap();
    assert_eq!(done.installed.unwrap().version.to_string(), "3.0.0");
    assert_eq!(f.device.lock().unwrap().installed, ["u-3.0.fake"]);
}
