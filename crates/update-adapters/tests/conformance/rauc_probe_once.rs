//! The facade probes once and asks once: one `update --now` against rauc runs `rauc status` at
//! most twice (the probe, then the slot states after the install), counted by a wrapper that
//! stands in for rauc and logs each call before running the real one.

use std::os::unix::fs::PermissionsExt;

use update_core::driver::DriverFactory;

use crate::rigs::rauc::RaucRig;
use crate::suite::{Artifact, Rig};
use crate::support;

#[test]
fn one_install_runs_rauc_status_at_most_twice() {
    if !support::available("rauc", RaucRig::TOOLS, RaucRig::NEEDS_ROOT, RaucRig::NEEDS_LOOP_DEVICES) {
        return;
    }
    let mut rig = RaucRig::new();
    let bundle = rig.artifact("2.0.0", Artifact::Signed);
    let paths = rig.harness().paths.clone();
    let real = update_core::process::locate(std::path::Path::new("rauc"), None).expect("rauc installed");
    let calls = paths.root().join("rauc-calls");
    let wrapper = paths.root().join("counting-rauc");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n", calls.display(), real.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rel = bundle.strip_prefix(paths.root()).unwrap();
    std::fs::create_dir_all(paths.config_dir()).unwrap();
    std::fs::write(
        paths.config_file(),
        format!("driver = \"rauc\"\nsource = \"file:///{}\"\nlog = \"/var/log/update.log\"\n", rel.display()),
    )
    .unwrap();
    let factory: &'static dyn DriverFactory = Box::leak(rig.factory_with_program(&wrapper));
    let updater = libupdate::Updater::open(paths.clone(), vec![factory]).unwrap();
    let report = updater.install_now(true).unwrap();
    assert_eq!(report.installed.expect("an install").version.to_string(), "2.0.0");
    let log = std::fs::read_to_string(&calls).unwrap();
    let status_calls = log.lines().filter(|l| l.split_whitespace().nth(1) == Some("status")).count();
    assert!(status_calls <= 2, "rauc status ran {status_calls} times:\n{log}");
    assert!(log.lines().any(|l| l.contains(" install ")), "the wrapper saw no install:\n{log}");
}
