//! `--root` covers what the tool runs, not only the files it opens: the reboot command and the
//! health checks of a re-rooted device run only programs inside the root, never the host's.

use update_boot::Slot;
use update_core::ErrorKind;
use update_core::Paths;
use update_core::config::{Config, HealthCheck};

use crate::common::Fixture;

fn set_reboot(fx: &Fixture, command: Option<&[&str]>) {
    let paths = Paths::new(fx.root());
    let mut c = Config::load(&paths).unwrap();
    c.native.as_mut().unwrap().reboot_command = command.map(|c| c.iter().map(|s| (*s).to_owned()).collect());
    c.store(&paths).unwrap();
}

#[test]
fn the_hosts_reboot_is_never_run_for_a_rerooted_device() {
    let fx = Fixture::new();
    fx.publish_version("2.0", "ok");
    // The default (`reboot`), the host's absolute path, a relative path, a `..` escape and a
    // symbolic link planted inside the root that leads out of it: all refused, nothing runs.
    let outside = fx.dir.path().join("host-reboot-ran");
    let host_script = fx.dir.path().join("host-reboot");
    std::fs::write(&host_script, format!("#!/bin/sh\ntouch '{}'\n", outside.display())).unwrap();
    std::process::Command::new("chmod").arg("755").arg(&host_script).status().unwrap();
    std::fs::create_dir_all(fx.root().join("usr/sbin")).unwrap();
    std::os::unix::fs::symlink(&host_script, fx.root().join("usr/sbin/planted")).unwrap();
    let host = host_script.to_str().unwrap().to_owned();
    let escape = format!("/../../../../..{host}");
    for command in
        [None, Some(&[host.as_str()][..]), Some(&["sbin/reboot"]), Some(&[escape.as_str()]), Some(&["planted"])]
    {
        set_reboot(&fx, command);
        let up = fx.updater();
        let e = up.reboot().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused, "{command:?}: {e}");
        assert!(e.to_string().contains("never the host's"), "{command:?}: {e}");
        assert!(!outside.exists(), "{command:?} ran a program outside the root");
    }
    // update-sim inside the root is the safe reboot command: it reboots the simulated device.
    let sim = std::path::Path::new(env!("CARGO_BIN_EXE_update-sim"));
    update_test::device::install_program(fx.root(), sim, update_test::device::SIM_PROGRAM).unwrap();
    set_reboot(&fx, Some(&[update_test::device::SIM_PROGRAM, "reboot"]));
    let up = fx.updater();
    let r = up.install_now(false).unwrap();
    assert!(r.rebooted);
    assert_eq!(up.status().unwrap().booted.as_deref(), Some("B"), "update-sim reboot booted the new slot");
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
}

#[test]
fn a_health_check_outside_the_root_fails_and_is_not_run() {
    let fx = Fixture::new();
    fx.publish_version("2.0", "ok");
    let marker = fx.dir.path().join("host-check-ran");
    let paths = Paths::new(fx.root());
    let mut c = Config::load(&paths).unwrap();
    c.health_check = vec![HealthCheck {
        name: "host shell".into(),
        command: vec!["/bin/sh".into(), "-c".into(), format!("touch '{}'", marker.display())],
        timeout_secs: 5,
    }];
    c.store(&paths).unwrap();
    let up = fx.updater();
    up.install_now(true).unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    match libupdate::daemon::post_boot(&up).unwrap() {
        libupdate::daemon::PostBoot::Failed(msg) => assert!(msg.contains("never the host's"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(!marker.exists(), "the host's /bin/sh ran");
}
