//! The files handler on real trees: install into the inactive side, atomic switch, rollback from
//! every phase, every phase twice, simulated power cuts, adoption of a plain directory.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::os::unix::fs::MetadataExt;

use support::{Device, Item, PHASES, Phase, component, run, snapshot, tar_of, update};
use update_components::files::FilesHandler;
use update_core::component::{ComponentState, Handler, Kind};

fn device() -> Device {
    let d = Device::new("site", Kind::Files, serde_json::json!({ "path": "/opt/site" }));
    // User data beside the tree, compared at the end of every test.
    std::fs::create_dir_all(d.path("/opt/userdata")).unwrap();
    std::fs::write(d.path("/opt/userdata/notes.txt"), b"mine, not the vendor's").unwrap();
    d
}

fn v1() -> Vec<u8> {
    tar_of(&[
        Item::Dir("www", 0o755),
        Item::File("www/index.html", b"<h1>one</h1>", 0o644),
        Item::File("bin/run", b"#!/bin/sh\necho one\n", 0o4755),
        Item::Symlink("www/home", "index.html"),
        Item::HardLink("www/same.html", "www/index.html"),
        Item::Owned("etc/secret.conf", b"key=1", 1234, 4321, "user.origin", b"vendor"),
        Item::Dir("empty", 0o700),
    ])
}

fn v2() -> Vec<u8> {
    tar_of(&[Item::Dir("www", 0o755), Item::File("www/index.html", b"<h1>two</h1>", 0o644), Item::Dir("new", 0o750)])
}

fn userdata(d: &Device) -> Vec<u8> {
    std::fs::read(d.path("/opt/userdata/notes.txt")).unwrap()
}

/// Commits v1 (from nothing) and returns the live tree's snapshot.
fn with_v1(d: &Device) -> std::collections::BTreeMap<std::path::PathBuf, String> {
    let payload = v1();
    update(&mut FilesHandler::new(), &d.ctx("t1"), &component("site", Kind::Files, "1.0.0", &payload), &payload);
    snapshot(&d.path("/opt/site/"))
}

#[test]
fn a_tree_is_installed_beside_the_live_one_and_switched() {
    let d = device();
    let mut h = FilesHandler::new();
    assert_eq!(h.status(&d.ctx("t0")).unwrap().state, ComponentState::Absent);
    let live = with_v1(&d);
    let site = d.path("/opt/site");
    assert_eq!(std::fs::read_link(&site).unwrap(), std::path::Path::new("site.d/a"));
    // What the archive said, preserved.
    assert_eq!(std::fs::read(site.join("www/index.html")).unwrap(), b"<h1>one</h1>");
    let run = std::fs::metadata(site.join("bin/run")).unwrap();
    assert_eq!(run.mode() & 0o7777, 0o4755, "set-uid kept after the owner was set");
    assert_eq!(run.mtime(), i64::try_from(support::MTIME).unwrap());
    let secret = std::fs::metadata(site.join("etc/secret.conf")).unwrap();
    assert_eq!((secret.uid(), secret.gid(), secret.mode() & 0o7777), (1234, 4321, 0o640));
    let origin = rustix::fs::getxattr(site.join("etc/secret.conf").as_path(), "user.origin", &mut [0u8; 64][..]);
    match origin {
        Ok(n) => assert_eq!(n, 6),
        Err(e) => assert!(
            d.events.lines.borrow().iter().any(|l| l.contains("extended attributes were not set")),
            "xattr missing without a warning: {e}"
        ),
    }
    assert_eq!(std::fs::read_link(site.join("www/home")).unwrap(), std::path::Path::new("index.html"));
    assert_eq!(
        std::fs::metadata(site.join("www/same.html")).unwrap().ino(),
        std::fs::metadata(site.join("www/index.html")).unwrap().ino()
    );
    assert_eq!(std::fs::metadata(site.join("empty")).unwrap().mode() & 0o7777, 0o700);

    // v2: installed into b while a stays live, then switched.
    let payload = v2();
    let c = component("site", Kind::Files, "2.0.0", &payload);
    let ctx = d.ctx("t2");
    h.check(&ctx, &c).unwrap();
    h.install(&ctx, &c, &mut &payload[..]).unwrap();
    assert_eq!(snapshot(&site.join("")), live, "install changed the live tree");
    let st = h.status(&ctx).unwrap();
    assert_eq!(st.state, ComponentState::Installed);
    assert_eq!(st.inactive.unwrap().to_string(), "2.0.0");
    h.activate(&ctx, &c).unwrap();
    assert_eq!(std::fs::read(site.join("www/index.html")).unwrap(), b"<h1>two</h1>");
    assert!(!site.join("bin").exists());
    assert_eq!(h.status(&ctx).unwrap().state, ComponentState::Trial);
    h.health(&ctx, &c).unwrap();
    h.commit(&ctx, &c).unwrap();
    let st = h.status(&ctx).unwrap();
    assert_eq!(
        (st.state, st.active.unwrap().to_string(), st.inactive.unwrap().to_string()),
        (ComponentState::Committed, "2.0.0".into(), "1.0.0".into())
    );
    // Commit kept the previous side: a rollback of the same transaction (another component
    // failed to commit) still returns to v1.
    h.rollback(&ctx, &c).unwrap();
    assert_eq!(snapshot(&site.join("")), live);
    assert_eq!(h.status(&ctx).unwrap().active.unwrap().to_string(), "1.0.0");
    assert_eq!(userdata(&d), b"mine, not the vendor's");
}

#[test]
fn rollback_from_every_phase_returns_to_the_old_tree() {
    for stop_after in 0..=PHASES.len() {
        let d = device();
        let live = with_v1(&d);
        let payload = v2();
        let c = component("site", Kind::Files, "2.0.0", &payload);
        let ctx = d.ctx("t2");
        let mut h = FilesHandler::new();
        for phase in &PHASES[..stop_after] {
            run(&mut h, &ctx, &c, &payload, *phase).unwrap();
        }
        h.rollback(&ctx, &c).unwrap();
        h.rollback(&ctx, &c).unwrap();
        assert_eq!(snapshot(&d.path("/opt/site/")), live, "after {stop_after} phases");
        let st = h.status(&ctx).unwrap();
        assert_eq!((st.state, st.active.unwrap().to_string()), (ComponentState::Committed, "1.0.0".into()));
        assert_eq!(userdata(&d), b"mine, not the vendor's");
        // A later update still works.
        update(&mut h, &d.ctx("t3"), &c, &payload);
        assert_eq!(std::fs::read(d.path("/opt/site/www/index.html")).unwrap(), b"<h1>two</h1>");
    }
}

#[test]
fn rollback_of_a_first_install_leaves_nothing_live() {
    let d = device();
    let payload = v1();
    let c = component("site", Kind::Files, "1.0.0", &payload);
    let ctx = d.ctx("t1");
    let mut h = FilesHandler::new();
    h.install(&ctx, &c, &mut &payload[..]).unwrap();
    h.activate(&ctx, &c).unwrap();
    assert!(d.path("/opt/site/www").is_dir());
    h.rollback(&ctx, &c).unwrap();
    assert!(std::fs::symlink_metadata(d.path("/opt/site")).is_err(), "the live path is gone again");
    assert_eq!(h.status(&ctx).unwrap().state, ComponentState::Absent);
}

#[test]
fn every_phase_twice_is_the_same_as_once() {
    let d = device();
    with_v1(&d);
    let payload = v2();
    let c = component("site", Kind::Files, "2.0.0", &payload);
    let ctx = d.ctx("t2");
    let mut h = FilesHandler::new();
    for phase in PHASES {
        run(&mut h, &ctx, &c, &payload, phase).unwrap();
        let once = snapshot(d.root());
        run(&mut h, &ctx, &c, &payload, phase).unwrap_or_else(|e| panic!("{phase:?} again: {e}"));
        assert_eq!(snapshot(d.root()), once, "{phase:?} twice changed something");
    }
    assert_eq!(std::fs::read(d.path("/opt/site/www/index.html")).unwrap(), b"<h1>two</h1>");
}

/// Stops the handler before each of its steps in turn (as a power cut would), then resumes
/// with a fresh handler the way the engine does: repeat the phase that was cut, go on. Also
/// rolls back from each cut instead.
#[test]
fn a_power_cut_at_every_step_resumes_or_rolls_back() {
    let payload = v2();
    let c = component("site", Kind::Files, "2.0.0", &payload);
    let mut cuts = 0;
    for n in 0.. {
        for roll_back in [false, true] {
            let d = device();
            let live = with_v1(&d);
            let ctx = d.ctx("t2");
            let mut cut = FilesHandler::cut_after(n);
            let stopped = PHASES.iter().position(|p| match run(&mut cut, &ctx, &c, &payload, *p) {
                Ok(()) => false,
                Err(e) => {
                    assert!(e.to_string().contains("simulated power cut"), "{p:?}: {e}");
                    true
                }
            });
            let Some(at) = stopped else {
                assert!(n > 5, "only {n} steps");
                eprintln!("files: {cuts} cut points, each resumed and rolled back");
                return;
            };
            let mut h = FilesHandler::new();
            if roll_back {
                h.rollback(&ctx, &c).unwrap();
                assert_eq!(snapshot(&d.path("/opt/site/")), live, "cut {n} then rollback");
            } else {
                for phase in &PHASES[at..] {
                    run(&mut h, &ctx, &c, &payload, *phase).unwrap_or_else(|e| panic!("cut {n}, {phase:?}: {e}"));
                }
                assert_eq!(std::fs::read(d.path("/opt/site/www/index.html")).unwrap(), b"<h1>two</h1>");
                assert_eq!(h.status(&ctx).unwrap().state, ComponentState::Committed);
                cuts += 1;
            }
            assert_eq!(userdata(&d), b"mine, not the vendor's");
        }
    }
}

#[test]
fn a_plain_directory_is_adopted_into_side_a_even_after_a_cut() {
    for n in 0..4 {
        let d = device();
        let site = d.path("/opt/site");
        std::fs::create_dir_all(site.join("www")).unwrap();
        std::fs::write(site.join("www/index.html"), b"hand-made").unwrap();
        let before = snapshot(&site);
        let payload = v2();
        let c = component("site", Kind::Files, "2.0.0", &payload);
        let ctx = d.ctx("t1");
        let st = FilesHandler::new().status(&ctx).unwrap();
        assert!(st.detail.unwrap().contains("plain directory"));
        // Cut during adoption (n < 3) or not at all.
        let first = FilesHandler::cut_after(n).install(&ctx, &c, &mut &payload[..]);
        if let Err(e) = first {
            assert!(e.to_string().contains("simulated power cut"), "{e}");
        }
        let mut h = FilesHandler::new();
        if n % 2 == 0 {
            h.install(&ctx, &c, &mut &payload[..]).unwrap();
            assert_eq!(std::fs::read_link(&site).unwrap(), std::path::Path::new("site.d/a"), "cut {n}");
            assert_eq!(snapshot(&site.join("")), before, "adopted tree changed (cut {n})");
            h.activate(&ctx, &c).unwrap();
            assert_eq!(std::fs::read(site.join("www/index.html")).unwrap(), b"<h1>two</h1>");
        }
        h.rollback(&ctx, &c).unwrap();
        assert_eq!(snapshot(&site.join("")), before, "cut {n}");
        assert_eq!(userdata(&d), b"mine, not the vendor's");
    }
}

#[test]
fn settings_and_options_are_strict() {
    let payload = v1();
    for (settings, words) in [
        (serde_json::json!({}), "path is missing"),
        (serde_json::json!({ "path": "opt/site" }), "absolute"),
        (serde_json::json!({ "path": "/opt/../etc" }), "absolute"),
        (serde_json::json!({ "path": "/opt/site", "owner": "x" }), "unknown setting"),
    ] {
        let d = Device::new("site", Kind::Files, settings);
        let c = component("site", Kind::Files, "1.0.0", &payload);
        let e = FilesHandler::new().check(&d.ctx("t"), &c).unwrap_err();
        assert!(e.to_string().contains(words), "{e}");
    }
    let d = device();
    for (options, words) in [
        (serde_json::json!({ "allow-devicez": true }), "unknown signed option"),
        (serde_json::json!({ "allow-devices": "yes" }), "true or false"),
    ] {
        let mut c = component("site", Kind::Files, "1.0.0", &payload);
        c.options = options.as_object().unwrap().clone();
        let e = FilesHandler::new().check(&d.ctx("t"), &c).unwrap_err();
        assert!(e.to_string().contains(words), "{e}");
    }
    let mut c = component("site", Kind::Files, "1.0.0", &payload);
    c.kind = Kind::App;
    assert!(FilesHandler::new().check(&d.ctx("t"), &c).unwrap_err().to_string().contains("kind app"));
    c.kind = Kind::Files;
    c.size = u64::MAX / 2;
    assert!(FilesHandler::new().check(&d.ctx("t"), &c).unwrap_err().to_string().contains("are free"));
    // A link we did not make is never taken over.
    std::os::unix::fs::symlink("/etc", d.path("/opt/site")).unwrap();
    let c = component("site", Kind::Files, "1.0.0", &payload);
    let e = FilesHandler::new().install(&d.ctx("t"), &c, &mut &payload[..]).unwrap_err();
    assert!(e.to_string().contains("points to /etc"), "{e}");
}

#[test]
fn a_second_transaction_waits_for_the_first_to_end() {
    let d = device();
    with_v1(&d);
    let payload = v2();
    let c = component("site", Kind::Files, "2.0.0", &payload);
    let mut h = FilesHandler::new();
    h.install(&d.ctx("t2"), &c, &mut &payload[..]).unwrap();
    h.activate(&d.ctx("t2"), &c).unwrap();
    let e = h.install(&d.ctx("t3"), &c, &mut &payload[..]).unwrap_err();
    assert!(e.to_string().contains("still on trial"), "{e}");
    // Phases of a transaction that installed nothing here are refused, rollback is a no-op.
    assert!(h.commit(&d.ctx("t9"), &c).is_err());
    h.rollback(&d.ctx("t9"), &c).unwrap();
    assert_eq!(std::fs::read(d.path("/opt/site/www/index.html")).unwrap(), b"<h1>two</h1>");
    let _ = Phase::Install;
}

/// A tree packed by GNU tar (PAX format, extended attributes, a global header) comes out byte for
/// byte as it went in: contents, modes, numeric owners, mtimes, links.
#[test]
fn a_gnu_tar_archive_round_trips_exactly() {
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    std::fs::create_dir_all(s.join("www/img")).unwrap();
    std::fs::write(s.join("www/index.html"), b"<p>gnu</p>").unwrap();
    std::fs::write(s.join("www/img/logo.png"), vec![0x89u8; 70_000]).unwrap();
    std::fs::write(s.join("run.sh"), b"#!/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("www/index.html", s.join("home")).unwrap();
    std::fs::hard_link(s.join("run.sh"), s.join("run2.sh")).unwrap();
    std::process::Command::new("chmod").args(["2750"]).arg(s.join("run.sh")).status().unwrap();
    std::process::Command::new("chown").args(["-h", "321:654"]).arg(s.join("home")).status().unwrap();
    std::process::Command::new("chown").args(["777:888"]).arg(s.join("www/img")).status().unwrap();
    let xattr = rustix::fs::setxattr(
        s.join("www/index.html").as_path(),
        "user.mime",
        b"text/html",
        rustix::fs::XattrFlags::empty(),
    );
    std::process::Command::new("touch").args(["-h", "-d", "2020-02-02 02:02:02"]).arg(s.join("home")).status().unwrap();
    for dir in ["www/img", "www", "."] {
        std::process::Command::new("touch").args(["-d", "2021-03-03 03:03:03"]).arg(s.join(dir)).status().unwrap();
    }
    let out = std::process::Command::new("tar")
        .args([
            "--format=pax",
            "--xattrs",
            "--xattrs-include=user.*",
            "--pax-option=globexthdr.name=g,comment=built-by-test",
            "-C",
        ])
        .arg(s)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let payload = out.stdout;

    let d = device();
    let c = component("site", Kind::Files, "1.0.0", &payload);
    update(&mut FilesHandler::new(), &d.ctx("t1"), &c, &payload);
    let live = d.path("/opt/site/");
    assert_eq!(snapshot(&live), snapshot(s), "the installed tree differs from the packed one");
    // The tree's root got the archive's "./" metadata.
    let root_mtime = std::fs::metadata(&live).unwrap().mtime();
    assert_eq!(root_mtime, std::fs::metadata(s).unwrap().mtime());
    if xattr.is_ok() {
        let mut buf = [0u8; 32];
        let n = rustix::fs::getxattr(live.join("www/index.html").as_path(), "user.mime", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"text/html");
    }
}
