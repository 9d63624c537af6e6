//! A config writer killed with SIGKILL at random moments, many times over, never leaves an
//! unreadable config file.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::Dev;

#[test]
fn sigkill_during_writes_never_leaves_a_broken_config() {
    let dev = Dev::new();
    dev.ok(&["config", "source", "https://u.example/r"]);
    let bin = env!("CARGO_BIN_EXE_update");
    let script = format!(
        "i=1; while :; do i=$((i % 9999 + 1)); {bin} --root {root} config schedule minute $i >/dev/null 2>&1; \
         {bin} --root {root} config source https://u$i.example/r >/dev/null 2>&1; done",
        root = dev.root().display()
    );
    let mut seed: u64 = 0x5eed_1234;
    let trials = 60;
    for trial in 0..trials {
        let mut child = Command::new("setsid").args(["sh", "-c", &script]).stdout(Stdio::null()).spawn().unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 80));
        // Kill the whole session: the shell and the `update` in the middle of its write.
        let pgid = child.id();
        Command::new("kill").args(["-9", "--", &format!("-{pgid}")]).status().unwrap();
        let _ = child.wait();
        let r = dev.run(&["config", "show", "--json"]);
        assert_eq!(r.code, 0, "trial {trial}: config unreadable after SIGKILL: {}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(v["config"]["source"].as_str().unwrap().starts_with("https://u"), "trial {trial}");
    }
    // The next write removes the temporaries the killed writers left (their processes are gone).
    dev.ok(&["config", "schedule", "off"]);
    for dir in ["etc/update", "var/lib/update"] {
        let temps: Vec<String> = std::fs::read_dir(dev.root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(temps.is_empty(), "{dir}: {temps:?}");
    }
}
