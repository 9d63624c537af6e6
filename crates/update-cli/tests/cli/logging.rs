//! Log lines reach a real Unix datagram syslog socket (RFC 3164, facility daemon) bound at the
//! root's /dev/log, or the configured log file.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::common::Dev;

/// Receives datagrams until one contains `needle` (the read timeout ends the wait).
fn recv_until(sock: &UnixDatagram, needle: &str) -> String {
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).unwrap();
        let line = std::str::from_utf8(&buf[..n]).unwrap().to_owned();
        if line.contains(needle) {
            return line;
        }
    }
}

#[test]
fn not_implemented_reaches_syslog() {
    let dev = Dev::new();
    std::fs::create_dir_all(dev.root().join("dev")).unwrap();
    let sock = UnixDatagram::bind(dev.root().join("dev/log")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = dev.run(&["--now"]);
    assert_eq!(r.code, 4);
    let line = recv_until(&sock, "Not implemented");
    // <27> = facility daemon (3) * 8 + severity error (3).
    assert!(line.starts_with("<27>"), "{line}");
    assert!(line.contains(" update["), "{line}");
    assert!(line.contains("Not implemented.") && line.contains("Consider installing"), "{line}");
}

#[test]
fn config_changes_reach_syslog_and_the_log_file() {
    let dev = Dev::new();
    std::fs::create_dir_all(dev.root().join("dev")).unwrap();
    let sock = UnixDatagram::bind(dev.root().join("dev/log")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    dev.ok(&["config", "source", "https://u.example/r"]);
    let line = recv_until(&sock, "config source changed");
    assert!(line.starts_with("<29>") && line.contains("config source changed"), "{line}");
    dev.ok(&["config", "log", "/var/log/update.log"]);
    dev.ok(&["config", "schedule", "hourly", "2"]);
    let text = std::fs::read_to_string(dev.root().join("var/log/update.log")).unwrap();
    assert!(text.contains("config schedule changed from \"off\" to \"hourly 2\""), "{text}");
    let r = dev.run(&["status"]);
    assert_eq!(r.code, 4);
    let text = std::fs::read_to_string(dev.root().join("var/log/update.log")).unwrap();
    assert!(text.lines().last().unwrap().contains("error: Not implemented."), "{text}");
}
