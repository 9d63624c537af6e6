//! Output hygiene: a reader that closes the pipe early ends the command quietly with exit 0,
//! and text from outside is shown with its control characters escaped.

use std::io::Read;
use std::process::Stdio;

use crate::common::Dev;

fn fill_history(dev: &Dev) {
    for n in 1..=40 {
        dev.ok(&["config", "schedule", "hourly", &n.to_string()]);
    }
}

#[test]
fn a_closed_pipe_is_exit_0() {
    let dev = Dev::new();
    fill_history(&dev);
    for args in [&["history"][..], &["--json", "history"], &["config", "show"]] {
        let mut child = dev.cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut first = [0u8; 1];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The read end is dropped here: the next write of the command meets a closed pipe.
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn control_characters_from_the_audit_log_are_escaped_in_history() {
    let dev = Dev::new();
    dev.ok(&["config", "schedule", "daily", "3"]);
    // A record whose fields carry a forged line and a terminal escape, as a bundle's version or
    // a tool's message could (appended the way the audit log seals records).
    let log = dev.root().join("var/log/update/audit.jsonl");
    let record = update_core::audit::AuditRecord::new(
        "2026-01-01T00:00:00Z".into(),
        "uid=0".into(),
        update_core::audit::AuditAction::Install,
        update_core::audit::Outcome::Failed,
    )
    .subject("2.0\n2026-01-01T00:00:01Z install ok FORGED")
    .message("\u{1b}[2Jcleared");
    update_core::audit::append(&log, &record).unwrap();
    let text = dev.ok(&["history"]).stdout;
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("2.0\\n2026-01-01T00:00:01Z install ok FORGED"), "{text}");
    assert!(text.contains("\\u{1b}[2Jcleared"), "{text}");
}
