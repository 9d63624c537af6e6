//! The daemon: post-boot health checks commit (or refuse to commit) a new slot, and a daemon
//! restarted in the middle of a window does not install twice.

use libupdate::daemon::{self, PostBoot, Tick};
use time::macros::datetime;
use update_boot::Slot;
use update_core::Paths;
use update_core::audit::AuditAction;
use update_core::config::{Config, HealthCheck, Schedule};
use update_core::driver::SlotState;

use crate::common::Fixture;

fn set_config(fx: &Fixture, f: impl FnOnce(&mut Config)) {
    let paths = Paths::new(fx.root());
    let mut c = Config::load(&paths).unwrap();
    f(&mut c);
    c.store(&paths).unwrap();
}

/// Puts `sh` into the device root (health checks run only programs inside it).
fn with_sh(fx: &Fixture) {
    update_test::device::install_program(fx.root(), std::path::Path::new("/bin/sh"), "/bin/sh").unwrap();
}

fn check(name: &str, command: &[&str]) -> HealthCheck {
    HealthCheck { name: name.into(), command: command.iter().map(|s| (*s).to_owned()).collect(), timeout_secs: 5 }
}

#[test]
fn health_checks_commit_a_good_slot_and_refuse_a_bad_one() {
    let fx = Fixture::new();
    let sim = std::path::Path::new(env!("CARGO_BIN_EXE_update-sim"));
    update_test::device::install_program(fx.root(), sim, update_test::device::SIM_PROGRAM).unwrap();
    // The demo's health check: the booted rootfs must say "ok" in /etc/health (update-sim
    // inside the root finds the root in UPDATE_ROOT).
    set_config(&fx, |c| c.health_check = vec![check("rootfs health", &[update_test::device::SIM_PROGRAM, "health"])]);
    fx.publish_version("2.0", "ok");
    let up = fx.updater();
    assert_eq!(daemon::post_boot(&up).unwrap(), PostBoot::Committed, "factory slot is committed");
    up.install_now(true).unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    assert_eq!(daemon::post_boot(&up).unwrap(), PostBoot::MarkedGood);
    assert_eq!(up.status().unwrap().slots[1].state, SlotState::Good);
    // A broken 3.0: the check fails, the slot stays on trial; after the tries, fallback to 2.0.
    fx.publish_version("3.0", "broken");
    up.install_now(true).unwrap();
    for _ in 0..up.config().boot_retry_limit {
        assert_eq!(fx.dev.reboot().unwrap(), Slot::A);
        match daemon::post_boot(&up).unwrap() {
            PostBoot::Failed(msg) => assert!(msg.contains("rootfs health"), "{msg}"),
            other => panic!("broken slot was {other:?}: {:?}", up.status().unwrap()),
        }
        assert_eq!(up.status().unwrap().slots[0].state, SlotState::Trying);
    }
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    assert_eq!(daemon::post_boot(&up).unwrap(), PostBoot::Committed);
    let history = up.history(None).unwrap().records;
    assert!(history.iter().filter(|r| r.action == AuditAction::HealthCheck).count() >= 4);
}

/// A check that writes more than a pipe holds (64 KiB) to standard error finishes when it
/// finishes, not at its timeout (it used to block on the full pipe until it was killed).
#[test]
fn a_health_check_writing_much_to_stderr_finishes_promptly() {
    let fx = Fixture::new();
    with_sh(&fx);
    let noisy = "head -c 300000 /dev/zero | tr '\\0' x >&2; echo all fine >&2";
    set_config(&fx, |c| {
        c.health_check = vec![HealthCheck { timeout_secs: 60, ..check("noisy", &["sh", "-c", noisy]) }];
    });
    fx.publish_version("2.0", "ok");
    let up = fx.updater();
    up.install_now(true).unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    let start = std::time::Instant::now();
    assert_eq!(daemon::post_boot(&up).unwrap(), PostBoot::MarkedGood);
    assert!(start.elapsed() < std::time::Duration::from_secs(20), "took {:?}", start.elapsed());
    // The same check failing: the message keeps the end of what it said, not all 300 kB.
    let failing = format!("{noisy}; echo disk is read-only >&2; exit 4");
    set_config(&fx, |c| c.health_check = vec![check("noisy", &["sh", "-c", &failing])]);
    fx.publish_version("3.0", "ok");
    let up = fx.updater();
    up.install_now(true).unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::A);
    let start = std::time::Instant::now();
    match daemon::post_boot(&up).unwrap() {
        PostBoot::Failed(msg) => {
            assert!(msg.contains("exit status: 4") && msg.ends_with("disk is read-only"), "{msg}");
            assert!(msg.len() < 10_000, "{} bytes", msg.len());
        }
        other => panic!("a failing check gave {other:?}"),
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(4), "took {:?}", start.elapsed());
}

/// A check that hangs is stopped at its timeout together with what it started.
#[test]
fn a_hanging_health_check_is_stopped_with_its_children() {
    let fx = Fixture::new();
    with_sh(&fx);
    let marker = fx.dir.path().join("helper-survived");
    let script = format!("(sleep 3; touch '{}') & sleep 60", marker.display());
    set_config(&fx, |c| {
        c.health_check = vec![HealthCheck { timeout_secs: 1, ..check("hangs", &["sh", "-c", &script]) }];
    });
    fx.publish_version("2.0", "ok");
    let up = fx.updater();
    up.install_now(true).unwrap();
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    let start = std::time::Instant::now();
    match daemon::post_boot(&up).unwrap() {
        PostBoot::Failed(msg) => assert!(msg.contains("timed out after 1 s"), "{msg}"),
        other => panic!("a hanging check gave {other:?}"),
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(10), "took {:?}", start.elapsed());
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(!marker.exists(), "the check's helper outlived its timeout");
}

#[test]
fn a_restarted_daemon_does_not_install_twice() {
    let fx = Fixture::new();
    set_config(&fx, |c| c.schedule = Schedule::try_from("hourly 6".to_owned()).unwrap());
    fx.publish_version("2.0", "ok");
    let t0 = datetime!(2026-11-24 10:00 UTC);
    let up = fx.updater();
    // Never checked: due at once.
    assert_eq!(daemon::tick(&up, t0, true, true).unwrap(), Tick::Checked(Some("2.0.0".into())));
    // Restarted a minute later, same window: not due.
    let up = fx.updater();
    assert!(matches!(daemon::tick(&up, t0 + time::Duration::minutes(1), true, true).unwrap(), Tick::NotDue(_)));
    // Even with its state lost, the update waiting for its reboot is not installed again.
    std::fs::remove_file(fx.root().join("var/lib/update/daemon.json")).unwrap();
    assert_eq!(daemon::tick(&up, t0 + time::Duration::minutes(2), true, true).unwrap(), Tick::Checked(None));
    let installs = up.history(None).unwrap().records.iter().filter(|r| r.action == AuditAction::Install).count();
    assert_eq!(installs, 1);
    // Next window (6 h + jitter ≤ 36 min): due again; a device that was off catches up at once.
    let Tick::NotDue(due) = daemon::tick(&up, t0 + time::Duration::hours(1), true, true).unwrap() else { panic!() };
    assert!(due >= t0 + time::Duration::hours(6) + time::Duration::minutes(2), "{due}");
    assert!(due <= t0 + time::Duration::hours(6) + time::Duration::minutes(38), "{due}");
    assert!(matches!(daemon::tick(&up, t0 + time::Duration::days(3), true, true).unwrap(), Tick::Checked(_)));
}
