//! With no usable driver, every operation fails with "Not implemented" built from the table:
//! the factories' own install hints, and the reason when a tool is installed but not set up.

use update_core::ErrorKind;

use crate::fake::{ALL, Answer, FakeFactory, Root};

#[test]
fn hints_come_from_the_table() {
    let f = FakeFactory::leak("fake", Answer::Declined, ALL);
    let root = Root::new("auto", &[]);
    let up = root.open(vec![f]);
    for e in [up.status().unwrap_err(), up.check().unwrap_err(), up.install_now(true).unwrap_err()] {
        assert_eq!(e.kind(), ErrorKind::NotImplemented);
        assert_eq!(e.to_string(), "Not implemented. Consider installing fakepkg (apt install fakepkg).");
    }
}

#[test]
fn an_installed_but_unconfigured_tool_is_named_with_its_reason() {
    let declined = FakeFactory::leak("fake-a", Answer::Declined, ALL);
    let unconfigured = FakeFactory::leak("fake-b", Answer::Unconfigured, ALL);
    let root = Root::new("auto", &[]);
    let up = root.open(vec![declined, unconfigured]);
    let e = up.status().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotImplemented);
    let text = e.to_string();
    assert!(text.contains("The fake-b driver is not set up here: no /etc/fake.conf."), "{text}");
    assert!(
        text.contains("Consider installing fakepkg (apt install fakepkg) or fakepkg (apt install fakepkg)"),
        "{text}"
    );
    let rows = up.drivers();
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["declined", "unconfigured"]);
}

#[test]
fn an_absent_driver_is_not_implemented_not_unknown() {
    let f = FakeFactory::leak("fake", Answer::Available, ALL);
    let root = Root::new("other", &[]);
    let table = libupdate::DriverTable::new(vec![f])
        .with_absent(vec![libupdate::AbsentDriver { name: "other", hint: "the cargo feature other" }]);
    let up = libupdate::Updater::open(root.paths(), table).unwrap();
    let e = up.status().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotImplemented, "{e}");
    assert!(e.to_string().contains("Consider installing the cargo feature other"), "{e}");
    assert_eq!(up.drivers().last().unwrap().state, "not-built");
}
