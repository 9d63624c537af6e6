//! The audit log through the binary: `update history` streams and survives bad lines,
//! `update history --verify` finds tampering (exit 6), and neither the audit log nor the log
//! file is ever written through a planted symbolic link.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use crate::common::Dev;

fn audit(dev: &Dev) -> PathBuf {
    dev.root().join("var/log/update/audit.jsonl")
}

/// A device with four audited config changes.
fn audited() -> Dev {
    let dev = Dev::new();
    dev.ok(&["config", "source", "https://u.example/r"]);
    dev.ok(&["config", "schedule", "hourly", "2"]);
    dev.ok(&["config", "schedule", "daily", "1"]);
    dev.ok(&["config", "verify", "true"]);
    dev
}

fn lines(dev: &Dev) -> Vec<String> {
    std::fs::read_to_string(audit(dev)).unwrap().lines().map(str::to_owned).collect()
}

fn write_lines(dev: &Dev, lines: &[String]) {
    std::fs::write(audit(dev), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

#[test]
fn an_untouched_log_verifies() {
    let dev = audited();
    let r = dev.ok(&["history", "--verify"]);
    assert!(r.stdout.contains("4 record(s) in 1 file(s)"), "{}", r.stdout);
    assert!(r.stdout.contains("intact"), "{}", r.stdout);
    let json: serde_json::Value = serde_json::from_str(&dev.ok(&["history", "--verify", "--json"]).stdout).unwrap();
    assert_eq!(json["records"], 4);
    assert_eq!(json["problems"].as_array().unwrap().len(), 0);
}

#[test]
fn tampering_exits_6_and_names_the_line() {
    type Edit = fn(&mut Vec<String>);
    let cases: [(&str, Edit, &str); 4] = [
        ("edited", |l| l[1] = l[1].replacen("hourly 2", "hourly 3", 1), "line 2"),
        ("removed", |l| drop(l.remove(1)), "line 2"),
        ("reordered", |l| l.swap(1, 2), "line 2"),
        ("last edited", |l| l[3] = l[3].replacen("config-change", "key-add", 1), "line 4"),
    ];
    for (name, edit, at) in cases {
        let dev = audited();
        let mut l = lines(&dev);
        edit(&mut l);
        write_lines(&dev, &l);
        let r = dev.run(&["history", "--verify"]);
        assert_eq!(r.code, 6, "{name}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(&format!("TAMPERED: audit.jsonl {at}")), "{name}: {}", r.stdout);
        assert!(r.stderr.contains("verification failed for audit log"), "{name}: {}", r.stderr);
        // Plain `history` still shows what it can read.
        assert_eq!(dev.run(&["history"]).code, 0, "{name}");
    }
}

#[test]
fn a_torn_line_is_skipped_and_the_next_record_is_kept() {
    let dev = audited();
    let mut f = std::fs::OpenOptions::new().append(true).open(audit(&dev)).unwrap();
    std::io::Write::write_all(&mut f, b"{\"time\":\"2026-").unwrap();
    dev.ok(&["config", "schedule", "off"]);
    let r = dev.ok(&["history", "--json", "--last", "2"]);
    let records: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let records = &records["records"];
    assert_eq!(records.as_array().unwrap().len(), 2);
    assert_eq!(records[1]["new"], "off", "the record after the torn write is whole");
    assert!(r.stderr.contains("audit.jsonl line 5"), "the torn line is reported: {}", r.stderr);
    let v = dev.ok(&["history", "--verify"]);
    assert!(v.stdout.contains("5 record(s)"), "{}", v.stdout);
}

#[test]
fn a_bad_line_in_the_middle_is_reported_not_fatal() {
    for bad in ["garbage", "{}", "\u{7}\u{1b}[31m"] {
        let dev = audited();
        let mut l = lines(&dev);
        l.insert(2, bad.to_owned());
        write_lines(&dev, &l);
        let r = dev.ok(&["history"]);
        assert_eq!(r.stdout.lines().count(), 4, "{bad}: {}", r.stdout);
        assert!(r.stderr.contains("warning: audit log audit.jsonl line 3"), "{bad}: {}", r.stderr);
        // An inserted line between two linked records is not a removed one: still intact.
        assert_eq!(dev.run(&["history", "--verify"]).code, 0, "{bad}");
    }
}

#[test]
fn the_audit_log_is_never_written_through_a_planted_link() {
    let dev = audited();
    for (name, victim_text) in [("victim", "precious\n"), ("victim2", "")] {
        let victim = dev.root().join(name);
        std::fs::write(&victim, victim_text).unwrap();
        std::fs::remove_file(audit(&dev)).unwrap();
        symlink(&victim, audit(&dev)).unwrap();
        // The change itself is done (the audit failure is loud, not fatal), the victim untouched.
        let r = dev.run(&["config", "schedule", "weekly", "1"]);
        assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), victim_text);
        let h = dev.run(&["history"]);
        assert_eq!(h.code, 9, "{}", h.stderr);
        assert!(h.stderr.contains("symbolic link"), "{}", h.stderr);
    }
}

#[test]
fn the_log_file_is_never_written_through_a_planted_link() {
    let dev = Dev::new();
    dev.ok(&["config", "log", "/var/log/update.log"]);
    let log = dev.root().join("var/log/update.log");
    for target in ["victim", "missing-victim"] {
        let victim = dev.root().join(target);
        if target == "victim" {
            std::fs::write(&victim, "precious\n").unwrap();
        }
        let _ = std::fs::remove_file(&log);
        symlink(&victim, &log).unwrap();
        dev.ok(&["config", "schedule", "hourly", "3"]);
        if target == "victim" {
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        } else {
            assert!(!victim.exists(), "created through the link");
        }
    }
}
