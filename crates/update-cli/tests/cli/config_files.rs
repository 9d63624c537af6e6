//! Config files under hostile conditions: an empty or lost update.toml, hand-written comments,
//! credentials in URLs wherever a URL enters, and bounded key input.

use std::io::Write;
use std::process::Stdio;

use crate::common::Dev;

const SECRET: &str = "hunter2";

/// Everything under the root as text (config, last good copy, audit log, log file).
fn all_files_text(dev: &Dev) -> String {
    dev.snapshot().values().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
}

#[test]
fn credentials_in_urls_are_refused_everywhere_and_never_echoed() {
    let dev = Dev::new();
    dev.ok(&["config", "log", "/var/log/update.log"]);
    dev.ok(&["config", "source", "https://u.example/r"]);
    let before = std::fs::read(dev.config_path()).unwrap();
    let urls = [
        format!("https://user:{SECRET}@u.example/r"),
        format!("https://{SECRET}@u.example/"),
        format!("http://u:{SECRET}@10.0.2.2:8080/r"),
    ];
    for url in &urls {
        for args in [vec!["config", "source", url], vec!["config", "server", url], vec!["--source", url, "--now"]] {
            let r = dev.run(&args);
            assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains("credentials"), "{args:?}: {}", r.stderr);
            assert!(!r.stderr.contains(SECRET) && !r.stdout.contains(SECRET), "{args:?}: {}", r.stderr);
        }
    }
    assert_eq!(std::fs::read(dev.config_path()).unwrap(), before);
    assert!(!all_files_text(&dev).contains(SECRET), "a credential reached a file");
}

#[test]
fn credentials_in_a_hand_edited_file_are_refused_without_echo() {
    for line in [
        format!("source = \"https://user:{SECRET}@u.example/r\""),
        format!("server = 'https://{SECRET}@fleet.example:8443'"),
    ] {
        let dev = Dev::new();
        dev.ok(&["config", "schedule", "daily", "1"]);
        std::fs::write(dev.config_path(), format!("{line}\n")).unwrap();
        let r = dev.run(&["config", "show"]);
        assert_eq!(r.code, 3, "{line}: {}", r.stderr);
        assert!(r.stderr.contains("credentials") && !r.stderr.contains(SECRET), "{line}: {}", r.stderr);
        // Operations fall back to the last good copy, still without echoing the secret.
        let r = dev.run(&["drivers"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!r.stderr.contains(SECRET), "{}", r.stderr);
    }
}

#[test]
fn an_empty_config_is_broken_and_the_last_good_copy_is_used() {
    for empty in ["", "\n\n", "  \t\n"] {
        let dev = Dev::new();
        dev.ok(&["config", "source", "https://u.example/r"]);
        let last_good = dev.root().join("var/lib/update/update.toml.last-good");
        let good = std::fs::read(&last_good).unwrap();
        std::fs::write(dev.config_path(), empty).unwrap();
        let r = dev.run(&["config", "schedule", "daily", "1"]);
        assert_eq!(r.code, 3, "{empty:?}: a write on an empty file is refused: {}", r.stderr);
        assert!(r.stderr.contains("empty"), "{}", r.stderr);
        assert_eq!(std::fs::read(&last_good).unwrap(), good, "the last good copy is kept");
        let r = dev.run(&["drivers"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.contains("using the last good configuration"), "{}", r.stderr);
    }
}

#[test]
fn hand_written_comments_survive_config_writes() {
    let dev = Dev::new();
    dev.ok(&["config", "source", "https://u.example/r"]);
    std::fs::write(
        dev.config_path(),
        "# Owned by the fleet team.\nsource = \"https://u.example/r\" # CDN\n\n# when\nschedule = \"off\"\n",
    )
    .unwrap();
    dev.ok(&["config", "schedule", "hourly", "6"]);
    dev.ok(&["config", "boot-retry-limit", "4"]);
    let text = std::fs::read_to_string(dev.config_path()).unwrap();
    for kept in
        ["# Owned by the fleet team.\n", "source = \"https://u.example/r\" # CDN\n", "# when\nschedule = \"hourly 6\""]
    {
        assert!(text.contains(kept), "{kept:?} lost:\n{text}");
    }
    assert_eq!(dev.show_json()["boot-retry-limit"], 4);
}

#[test]
fn key_input_from_a_file_or_stdin_is_bounded() {
    let dev = Dev::new();
    let big = dev.root().join("big.pub");
    std::fs::write(&big, "A".repeat(1 << 20)).unwrap();
    for arg in [format!("@{}", big.display()), "@/dev/zero".to_owned(), "@/dev/urandom".to_owned()] {
        let r = dev.run(&["config", "key", "add", "vendor", &arg]);
        assert_eq!(r.code, 11, "{arg}: {}", r.stderr);
        assert!(r.stderr.contains("more than"), "{arg}: {}", r.stderr);
    }
    let mut child = dev
        .cmd()
        .args(["config", "key", "add", "vendor", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The writer may see a closed pipe once `update` has read its fill and refused.
    let _ = stdin.write_all(&vec![b'A'; 4 << 20]);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(11), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dev.root().join("etc/update/keys.toml").exists());
}
