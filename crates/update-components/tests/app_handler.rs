//! The app handler with real processes: the restart command writes the version it started to a
//! marker file, the health command reads the app's own tree. A broken app is rolled back and the
//! old version runs again, without a reboot and without touching anything outside the app's place.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use support::{Device, Item, PHASES, component, run, snapshot, tar_of, update};
use update_components::app::AppHandler;
use update_core::component::{ComponentState, Handler, Kind};

/// The restart command: records which version `current` holds (read from the tree itself) and
/// which version the handler said it starts.
const RESTART: &str = "#!/bin/sh\nset -e\nv=$(cat \"$UPDATE_ROOT$UPDATE_APP_DIR/VERSION\")\necho \"$v $UPDATE_APP_VERSION\" >> \"$UPDATE_ROOT/run/web.started\"\n";
/// The health command: the app's own tree says whether it is healthy.
const HEALTH: &str = "#!/bin/sh\nexec grep -q '^ok' \"$UPDATE_ROOT$UPDATE_APP_DIR/health\"\n";

fn script(d: &Device, device_path: &str, text: &str) {
    let p = d.path(device_path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn device_with(extra: serde_json::Value) -> Device {
    let mut settings = serde_json::json!({
        "restart": ["/usr/lib/web/restart"],
        "health": ["/usr/lib/web/health", "--quick"],
        "health-timeout": 5,
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            settings.as_object_mut().unwrap().remove(k);
        } else {
            settings[k] = v.clone();
        }
    }
    let d = Device::new("web", Kind::App, settings);
    script(&d, "/usr/lib/web/restart", RESTART);
    script(&d, "/usr/lib/web/health", HEALTH);
    std::fs::create_dir_all(d.path("/run")).unwrap();
    // User data and an OS slot stand-in, compared after every update and rollback.
    std::fs::create_dir_all(d.path("/data")).unwrap();
    std::fs::write(d.path("/data/user.db"), b"user rows").unwrap();
    std::fs::write(d.path("/dev-slot-b.img"), vec![0xab; 4096]).unwrap();
    d
}

fn device() -> Device {
    device_with(serde_json::json!({}))
}

fn app(version: &str, health: &str) -> Vec<u8> {
    tar_of(&[
        Item::File("VERSION", version.as_bytes(), 0o644),
        Item::File("health", health.as_bytes(), 0o644),
        Item::File("bin/web", b"#!/bin/sh\nexec sleep 1\n", 0o755),
    ])
}

fn started(d: &Device) -> Vec<String> {
    std::fs::read_to_string(d.path("/run/web.started")).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// Everything outside the app's place, its state and the marker.
fn outside(d: &Device) -> std::collections::BTreeMap<std::path::PathBuf, String> {
    let mut s = snapshot(d.root());
    s.retain(|p, _| !p.starts_with("var/lib/update") && !p.starts_with("run"));
    s
}

fn with_v1(d: &Device) {
    let p = app("1.0.0", "ok");
    update(&mut AppHandler::new(), &d.ctx("t1"), &component("web", Kind::App, "1.0.0", &p), &p);
}

#[test]
fn an_app_update_switches_restarts_and_commits() {
    let d = device();
    let os = outside(&d);
    with_v1(&d);
    assert_eq!(started(&d), ["1.0.0 1.0.0"]);
    let p = app("2.0.0", "ok");
    let c = component("web", Kind::App, "2.0.0", &p);
    let mut h = AppHandler::new();
    let ctx = d.ctx("t2");
    h.check(&ctx, &c).unwrap();
    h.install(&ctx, &c, &mut &p[..]).unwrap();
    assert_eq!(started(&d).len(), 1, "install restarted nothing");
    assert_eq!(h.activate(&ctx, &c).unwrap(), update_core::component::Activation::Now);
    assert_eq!(started(&d), ["1.0.0 1.0.0", "2.0.0 2.0.0"]);
    h.health(&ctx, &c).unwrap();
    h.commit(&ctx, &c).unwrap();
    let st = h.status(&ctx).unwrap();
    assert_eq!(st.state, ComponentState::Committed);
    assert_eq!((st.active.unwrap().to_string(), st.inactive.unwrap().to_string()), ("2.0.0".into(), "1.0.0".into()));
    assert!(st.detail.unwrap().ends_with("current -> b"));
    assert_eq!(std::fs::read_link(d.path("/var/lib/update/apps/web/current")).unwrap(), std::path::Path::new("b"));
    assert_eq!(outside(&d), os, "an app update wrote outside its place");
}

#[test]
fn a_broken_app_is_rolled_back_and_the_old_version_runs_again() {
    let d = device();
    with_v1(&d);
    let os = outside(&d);
    let p = app("2.0.0", "broken");
    let c = component("web", Kind::App, "2.0.0", &p);
    let mut h = AppHandler::new();
    let ctx = d.ctx("t2");
    h.install(&ctx, &c, &mut &p[..]).unwrap();
    h.activate(&ctx, &c).unwrap();
    let e = h.health(&ctx, &c).unwrap_err();
    assert!(e.to_string().contains("health check") && e.to_string().contains("2.0.0"), "{e}");
    h.rollback(&ctx, &c).unwrap();
    assert_eq!(started(&d), ["1.0.0 1.0.0", "2.0.0 2.0.0", "1.0.0 1.0.0"], "the old version restarted");
    let st = h.status(&ctx).unwrap();
    assert_eq!((st.state, st.active.unwrap().to_string()), (ComponentState::Committed, "1.0.0".into()));
    assert_eq!(st.inactive, None, "the rolled-back side is no longer stamped");
    assert_eq!(outside(&d), os, "the rollback wrote outside the app's place (no reboot, no slots)");
    // The repaired release installs afterwards.
    let fixed = app("2.0.1", "ok");
    update(&mut h, &d.ctx("t3"), &component("web", Kind::App, "2.0.1", &fixed), &fixed);
    assert_eq!(started(&d).last().unwrap(), "2.0.1 2.0.1");
}

#[test]
fn a_hung_health_check_or_failed_restart_rolls_back() {
    // Hung: the check sleeps past its timeout and is killed.
    let d = device_with(serde_json::json!({ "health": ["/usr/lib/web/slow"], "health-timeout": 1 }));
    script(&d, "/usr/lib/web/slow", "#!/bin/sh\nsleep 30\n");
    with_v1_unchecked(&d);
    let p = app("2.0.0", "ok");
    let c = component("web", Kind::App, "2.0.0", &p);
    let mut h = AppHandler::new();
    let ctx = d.ctx("t2");
    h.install(&ctx, &c, &mut &p[..]).unwrap();
    h.activate(&ctx, &c).unwrap();
    let t = Instant::now();
    let e = h.health(&ctx, &c).unwrap_err();
    assert!(e.to_string().contains("did not finish within 1 s"), "{e}");
    assert!(t.elapsed().as_secs() < 10);
    h.rollback(&ctx, &c).unwrap();
    assert_eq!(started(&d).last().unwrap(), "1.0.0 1.0.0");

    // The restart of the new version fails: activate fails, rollback restarts the old one.
    let d = device();
    with_v1(&d);
    let p = tar_of(&[Item::File("health", b"ok", 0o644)]); // no VERSION: the restart script fails
    let c = component("web", Kind::App, "3.0.0", &p);
    let ctx = d.ctx("t3");
    h.install(&ctx, &c, &mut &p[..]).unwrap();
    let e = h.activate(&ctx, &c).unwrap_err();
    assert!(e.to_string().contains("restart command"), "{e}");
    h.rollback(&ctx, &c).unwrap();
    assert_eq!(started(&d).last().unwrap(), "1.0.0 1.0.0");
}

fn with_v1_unchecked(d: &Device) {
    let p = app("1.0.0", "ok");
    let c = component("web", Kind::App, "1.0.0", &p);
    let mut h = AppHandler::new();
    let ctx = d.ctx("t1");
    h.install(&ctx, &c, &mut &p[..]).unwrap();
    h.activate(&ctx, &c).unwrap();
    h.commit(&ctx, &c).unwrap();
}

#[test]
fn rollback_from_every_phase_and_every_phase_twice() {
    for stop_after in 0..=PHASES.len() {
        let d = device();
        with_v1(&d);
        let p = app("2.0.0", "ok");
        let c = component("web", Kind::App, "2.0.0", &p);
        let ctx = d.ctx("t2");
        let mut h = AppHandler::new();
        for phase in &PHASES[..stop_after] {
            run(&mut h, &ctx, &c, &p, *phase).unwrap();
            run(&mut h, &ctx, &c, &p, *phase).unwrap_or_else(|e| panic!("{phase:?} twice: {e}"));
        }
        h.rollback(&ctx, &c).unwrap();
        h.rollback(&ctx, &c).unwrap();
        let st = h.status(&ctx).unwrap();
        assert_eq!((st.state, st.active.unwrap().to_string()), (ComponentState::Committed, "1.0.0".into()));
        let runs = started(&d);
        assert_eq!(runs.last().unwrap(), "1.0.0 1.0.0", "after {stop_after} phases: {runs:?}");
        if stop_after < 2 {
            assert_eq!(runs.len(), 1, "nothing was switched, nothing restarted: {runs:?}");
        }
    }
}

#[test]
fn a_power_cut_at_every_step_resumes_or_rolls_back() {
    let p = app("2.0.0", "ok");
    let c = component("web", Kind::App, "2.0.0", &p);
    for n in 0.. {
        for roll_back in [false, true] {
            let d = device();
            with_v1(&d);
            let ctx = d.ctx("t2");
            let mut cut = AppHandler::cut_after(n);
            let stopped = PHASES.iter().position(|ph| run(&mut cut, &ctx, &c, &p, *ph).is_err());
            let Some(at) = stopped else {
                assert!(n > 5);
                eprintln!("app: {n} cut points, each resumed and rolled back");
                return;
            };
            let mut h = AppHandler::new();
            if roll_back {
                h.rollback(&ctx, &c).unwrap();
                assert_eq!(h.status(&ctx).unwrap().active.unwrap().to_string(), "1.0.0", "cut {n}");
                assert_eq!(started(&d).last().unwrap(), "1.0.0 1.0.0", "cut {n}");
            } else {
                for phase in &PHASES[at..] {
                    run(&mut h, &ctx, &c, &p, *phase).unwrap_or_else(|e| panic!("cut {n}, {phase:?}: {e}"));
                }
                assert_eq!(started(&d).last().unwrap(), "2.0.0 2.0.0", "cut {n}");
                assert_eq!(h.status(&ctx).unwrap().state, ComponentState::Committed);
            }
        }
    }
}

#[test]
fn settings_are_strict_and_programs_stay_inside_the_root() {
    let p = app("1.0.0", "ok");
    let c = component("web", Kind::App, "1.0.0", &p);
    for (extra, words) in [
        (serde_json::json!({ "restart": null }), "restart is missing"),
        (serde_json::json!({ "restart": "systemctl restart web" }), "list of strings"),
        (serde_json::json!({ "restart": [] }), "list of strings"),
        (serde_json::json!({ "health": [1] }), "must be a string"),
        (serde_json::json!({ "health-timeout": 0 }), "1 to 3600"),
        (serde_json::json!({ "stop": ["x"] }), "unknown setting"),
        // The host's program is not run under --root.
        (serde_json::json!({ "restart": ["/usr/lib/web/not-here"] }), "inside the device root"),
    ] {
        let d = device_with(extra.clone());
        let e = AppHandler::new().check(&d.ctx("t"), &c).unwrap_err();
        assert!(e.to_string().contains(words), "{extra}: {e}");
    }
}

/// The time of an app-only update of a 10 MiB app, install to commit (printed; the note in
/// docs/components.md quotes it).
#[test]
fn a_ten_mib_app_updates_in_seconds() {
    let d = device();
    with_v1(&d);
    let blob: Vec<u8> = (0..10u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0]).collect();
    let p = tar_of(&[
        Item::File("VERSION", b"2.0.0", 0o644),
        Item::File("health", b"ok", 0o644),
        Item::File("lib/web.bin", &blob, 0o644),
    ]);
    let c = component("web", Kind::App, "2.0.0", &p);
    let t = Instant::now();
    update(&mut AppHandler::new(), &d.ctx("t2"), &c, &p);
    let took = t.elapsed();
    eprintln!("app update of {} bytes, check to commit (with restart and health check): {took:?}", p.len());
    assert_eq!(std::fs::read(d.path("/var/lib/update/apps/web/current/lib/web.bin")).unwrap(), blob);
    assert!(took.as_secs() < 60, "{took:?}");
}
