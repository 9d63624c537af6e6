//! With no driver available, every driver operation exits 4 with the "Not implemented" message
//! and changes nothing under the root; overrides never touch the stored config.

use crate::common::Dev;

#[test]
fn every_operation_fails_gracefully_and_changes_nothing() {
    let dev = Dev::new();
    dev.ok(&["config", "source", "file:///srv/update"]);
    dev.ok(&["config", "log", "/var/log/update.log"]);
    let log = dev.root().join("var/log/update.log");
    for args in [
        &["--now"][..],
        &["--now", "--noreboot"],
        &[],
        &["status"],
        &["status", "--json"],
        &["mark-good"],
        &["rollback"],
    ] {
        let before = dev.snapshot();
        let log_before = std::fs::read_to_string(&log).unwrap_or_default();
        let r = dev.run(args);
        assert_eq!(r.code, 4, "{args:?}: {}", r.stderr);
        // With --json the error is a document on stdout, not text on stderr.
        let message = if args.contains(&"--json") {
            assert!(r.stderr.is_empty(), "{args:?}: {}", r.stderr);
            let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
            assert_eq!((&doc["error"]["kind"], &doc["error"]["exit-code"]), (&"not-implemented".into(), &4.into()));
            doc["error"]["message"].as_str().unwrap().to_owned()
        } else {
            r.stderr.clone()
        };
        // Every built driver's own install hint, from the driver table.
        for hint in update_cli::factories().iter().map(|f| f.install_hint()) {
            assert!(message.contains(hint), "{args:?}: no {hint:?} in {message}");
        }
        assert!(message.contains("Not implemented."), "{args:?}: {message}");
        let mut after = dev.snapshot();
        // The log file is the one thing that may change: it must have gained the message.
        let log_after = String::from_utf8(after.remove(&log).unwrap()).unwrap();
        let mut before = before;
        before.remove(&log);
        assert_eq!(before, after, "{args:?} changed files under the root");
        let added = &log_after[log_before.len()..];
        assert!(added.contains("Not implemented."), "{args:?}: log gained {added:?}");
    }
}

#[test]
fn configured_driver_that_is_missing_names_what_to_install() {
    let dev = Dev::new();
    dev.ok(&["config", "driver", "rauc"]);
    let r = dev.run(&["status"]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("Not implemented.") && r.stderr.contains("installing rauc"), "{}", r.stderr);
}

#[test]
fn overrides_apply_to_one_run_and_leave_the_stored_config() {
    let dev = Dev::new();
    dev.ok(&["config", "source", "https://updates.example.com/repo"]);
    dev.ok(&["config", "secure", "false"]);
    let before = std::fs::read(dev.config_path()).unwrap();
    for args in [
        &["--source", "file:///other", "--verify", "false", "--secure", "true"][..],
        &["--source", "file:///other", "--now", "--noreboot"],
        &["--verify", "false", "--now"],
    ] {
        let r = dev.run(args);
        assert_eq!(r.code, 4, "{args:?}: {}", r.stderr);
        assert_eq!(std::fs::read(dev.config_path()).unwrap(), before, "{args:?} changed the stored config");
    }
    // A bad override is a usage error, before anything runs.
    let r = dev.run(&["--source", "gopher://x/"]);
    assert_eq!(r.code, 2);
    let r = dev.run(&["--verify", "maybe"]);
    assert_eq!(r.code, 2);
}

#[test]
fn drivers_lists_every_known_driver() {
    let dev = Dev::new();
    let r = dev.ok(&["drivers", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = v["drivers"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["native", "rauc", "swupdate", "mender", "ostree", "swupd"]);
}
