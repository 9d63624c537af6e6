//! Every config subcommand round-trips through the file; every invalid value is refused with
//! exit code 2 and the file left byte for byte as it was.

use serde_json::json;

use crate::common::Dev;

#[test]
fn every_setting_round_trips_through_the_file() {
    let dev = Dev::new();
    let cases: &[(&[&str], &str, serde_json::Value)] = &[
        (
            &["config", "source", "https://updates.example.com/repo"],
            "source",
            json!("https://updates.example.com/repo"),
        ),
        (&["config", "source", "http://10.0.2.2:8080/r"], "source", json!("http://10.0.2.2:8080/r")),
        (&["config", "source", "file:///srv/update"], "source", json!("file:///srv/update")),
        (&["config", "schedule", "monthly", "1"], "schedule", json!("monthly 1")),
        (&["config", "schedule", "weekly", "2"], "schedule", json!("weekly 2")),
        (&["config", "schedule", "daily", "3"], "schedule", json!("daily 3")),
        (&["config", "schedule", "hourly", "6"], "schedule", json!("hourly 6")),
        (&["config", "schedule", "minute", "15"], "schedule", json!("minute 15")),
        (&["config", "schedule", "off"], "schedule", json!("off")),
        (&["config", "log", "/var/log/update.log"], "log", json!("/var/log/update.log")),
        (&["config", "log", "syslog"], "log", json!("syslog")),
        (&["config", "verify", "false"], "verify", json!(false)),
        (&["config", "verify", "true"], "verify", json!(true)),
        (&["config", "secure", "true"], "secure", json!(true)),
        (&["config", "secure", "false"], "secure", json!(false)),
        (&["config", "boot-retry-limit", "5"], "boot-retry-limit", json!(5)),
        (&["config", "signature-threshold", "2"], "signature-threshold", json!(2)),
        (&["config", "driver", "rauc"], "driver", json!("rauc")),
        (&["config", "driver", "auto"], "driver", json!("auto")),
    ];
    for (args, key, want) in cases {
        dev.ok(args);
        let text = std::fs::read_to_string(dev.config_path()).unwrap();
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(serde_json::to_value(&parsed[*key]).unwrap(), *want, "{args:?} -> file:\n{text}");
        assert_eq!(dev.show_json()[*key], *want, "{args:?}");
    }
    dev.ok(&["config", "client-cert", "/etc/update/device.crt"]);
    dev.ok(&["config", "client-key", "/etc/update/device.key"]);
    dev.ok(&["config", "server-ca", "/etc/update/ca.crt"]);
    let tls = &dev.show_json()["tls"];
    assert_eq!(tls["client-cert"], "/etc/update/device.crt");
    assert_eq!(tls["client-key"], "/etc/update/device.key");
    assert_eq!(tls["server-ca"], "/etc/update/ca.crt");
    dev.ok(&["config", "server-ca", "none"]);
    assert!(dev.show_json()["tls"].get("server-ca").is_none());
    // The last good copy follows every write.
    assert_eq!(
        std::fs::read(dev.config_path()).unwrap(),
        std::fs::read(dev.root().join("var/lib/update/update.toml.last-good")).unwrap()
    );
    // Each change is audited with its old and new value.
    let history: serde_json::Value = serde_json::from_str(&dev.ok(&["history", "--json"]).stdout).unwrap();
    let history = &history["records"];
    let first = &history.as_array().unwrap()[0];
    assert_eq!(first["action"], "config-change");
    assert_eq!(first["subject"], "source");
    assert_eq!(first["new"], "https://updates.example.com/repo");
    assert!(history.as_array().unwrap().len() >= cases.len());
}

#[test]
fn invalid_values_are_refused_and_the_file_is_unchanged() {
    let dev = Dev::new();
    dev.ok(&["config", "source", "https://updates.example.com/repo"]);
    dev.ok(&["config", "schedule", "daily", "1"]);
    let before = std::fs::read(dev.config_path()).unwrap();
    let bad: &[&[&str]] = &[
        &["config", "source", "ftp://updates.example.com/"],
        &["config", "source", "updates.example.com"],
        &["config", "source", "file://relative/path"],
        &["config", "source", "https://"],
        &["config", "schedule", "yearly", "1"],
        &["config", "schedule", "hourly", "0"],
        &["config", "schedule", "hourly", "-3"],
        &["config", "schedule", "hourly", "many"],
        &["config", "schedule", "hourly"],
        &["config", "schedule", "off", "3"],
        &["config", "log", "relative.log"],
        &["config", "log", "/var/log/"],
        &["config", "verify", "yes"],
        &["config", "verify", "1"],
        &["config", "secure", "TRUE"],
        &["config", "boot-retry-limit", "0"],
        &["config", "boot-retry-limit", "10"],
        &["config", "boot-retry-limit", "three"],
        &["config", "signature-threshold", "0"],
        &["config", "signature-threshold", "17"],
        &["config", "driver", "windows-update"],
        &["config", "client-cert", "relative.crt"],
    ];
    for args in bad {
        let r = dev.run(args);
        assert_eq!(r.code, 2, "{args:?} gave {}: {}{}", r.code, r.stdout, r.stderr);
        assert!(r.stderr.contains("error:"), "{args:?}: {}", r.stderr);
        assert_eq!(std::fs::read(dev.config_path()).unwrap(), before, "{args:?} changed the file");
    }
}

#[test]
fn broken_file_is_refused_for_writes_and_the_last_good_copy_keeps_the_device_working() {
    let dev = Dev::new();
    dev.ok(&["config", "source", "https://updates.example.com/repo"]);
    std::fs::write(dev.config_path(), "source = \"https://x/\"\n[tls]\nclient-certt = \"/a\"\n").unwrap();
    let broken = std::fs::read(dev.config_path()).unwrap();
    // A write is refused (exit 3), naming file, line, table and key; the file is not overwritten.
    let r = dev.run(&["config", "schedule", "daily", "1"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    for needle in ["update.toml", "line 3", "[tls]", "client-certt"] {
        assert!(r.stderr.contains(needle), "missing {needle:?} in {}", r.stderr);
    }
    assert_eq!(std::fs::read(dev.config_path()).unwrap(), broken);
    // Operations fall back to the last good copy with a warning.
    let r = dev.run(&["drivers"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("using the last good configuration"), "{}", r.stderr);
    // A half-written file (truncated mid-key) is just as refused.
    std::fs::write(dev.config_path(), "source = \"https://upd").unwrap();
    assert_eq!(dev.run(&["config", "verify", "true"]).code, 3);
    // Without a last good copy there is nothing to fall back to: a clear config error.
    std::fs::remove_file(dev.root().join("var/lib/update/update.toml.last-good")).unwrap();
    let r = dev.run(&["status"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
}

#[test]
fn run_flags_do_not_go_with_subcommands() {
    let dev = Dev::new();
    for flags in
        [&["--now"][..], &["--noreboot"], &["--source", "file:///x"], &["--verify", "true"], &["--secure", "false"]]
    {
        let args: Vec<&str> = flags.iter().copied().chain(["history"]).collect();
        let r = dev.run(&args);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(r.stderr.contains(&format!("{} cannot be used with a subcommand", flags[0])), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    // --json and --root are global: before or after the subcommand.
    dev.ok(&["config", "schedule", "daily", "3"]);
    let before = dev.ok(&["--json", "history"]).stdout;
    let after = dev.ok(&["history", "--json"]).stdout;
    assert_eq!(before, after);
    assert!(before.contains("\"schema\": \"libupdate/history/1\""), "{before}");
}

#[test]
fn a_log_path_that_is_a_directory_is_refused_at_set_time() {
    let dev = Dev::new();
    std::fs::create_dir_all(dev.root().join("var/log/update")).unwrap();
    for dir in ["/var/log/update", "/var/log", "/var/log/update/../update"] {
        let r = dev.run(&["config", "log", dir]);
        assert_eq!(r.code, 2, "{dir}: {}", r.stderr);
        assert!(r.stderr.contains("it is a directory"), "{dir}: {}", r.stderr);
    }
    dev.ok(&["config", "log", "/var/log/update.log"]);
}
