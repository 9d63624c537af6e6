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

fn check(name: &str, command: &[&str]) -> HealthCheck {
    HealthCheck { name: name.into(), command: command.iter().map(|s| (*s).to_owned()).collect(), timeout_secs: 5 }
}

#[test]
fn health_checks_commit_a_good_slot_and_refuse_a_bad_one() {
    let fx = Fixture::new();
    let sim = env!("CARGO_BIN_EXE_update-sim");
    // The demo's health check: the booted rootfs must say "ok" in /etc/health.
    set_config(&fx, |c| {
        c.health_check = vec![check("rootfs health", &[sim, "--root", fx.root().to_str().unwrap(), "health"])];
    });
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
    let history = up.history().unwrap();
    assert!(history.iter().filter(|r| r.action == AuditAction::HealthCheck).count() >= 4);
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
    let installs = up.history().unwrap().iter().filter(|r| r.action == AuditAction::Install).count();
    assert_eq!(installs, 1);
    // Next window (6 h + jitter ≤ 36 min): due again; a device that was off catches up at once.
    let Tick::NotDue(due) = daemon::tick(&up, t0 + time::Duration::hours(1), true, true).unwrap() else { panic!() };
    assert!(due >= t0 + time::Duration::hours(6) + time::Duration::minutes(2), "{due}");
    assert!(due <= t0 + time::Duration::hours(6) + time::Duration::minutes(38), "{due}");
    assert!(matches!(daemon::tick(&up, t0 + time::Duration::days(3), true, true).unwrap(), Tick::Checked(_)));
}
