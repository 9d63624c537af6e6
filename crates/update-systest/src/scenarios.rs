//! The scenarios that follow one device boot by boot (the power cuts are in [`crate::power_cut`]):
//!
//! - [`happy_path`]: 1.0.0 in slot A; the user writes a file on the data partition; 2.0.0 is
//!   published and `update --now` installs it into slot B over HTTPS (mutual TLS) and reboots;
//!   GRUB (our fragment) boots B on trial; the agent (`update daemon --once`) runs the health
//!   checks and marks it good; the server lists exactly the device's events; B boots again,
//!   committed, and the user file is intact.
//! - [`bad_update_falls_back`]: 2.0.0 in slot A; 3.0.0, whose own health check fails, is
//!   installed into B; B boots on trial and fails its health check: the agent reboots; again;
//!   GRUB's tries run out and it falls back to A: 2.0.0, whose `update status` reports the
//!   fallback, whose audit log records it, and the server has the failure and one rollback; the
//!   user file is intact (checked in the guest and from the host).
//! - [`failed_release_is_never_installed_again`]: the same bad update, then the daemon runs on
//!   a schedule for two windows while 3.0.0 is still the newest release: nothing is installed,
//!   and the audit log records each scheduled check as skipped, with the reason.
//! - [`app_and_data_update`]: components beside the OS on a real boot: an app (`web`, its two
//!   sides on the data partition) and the site data (`/data/site`, `site.conf` merged) installed
//!   from a components-only release over HTTPS without a reboot; the user edits `site.conf`; a
//!   release with a broken app rolls both back (the edit restored byte for byte, the old app
//!   started again); the fixed app and the same data commit and the three-way merge keeps the
//!   user's line; the data checked from the host after power-off, and the next boot runs it all.

use std::time::{Duration, Instant};

use crate::Scenario;
use crate::device::{BootInfo, Device, Health};
use crate::error::{Result, check};
use crate::vm::{Next, Vm};

pub(crate) const BOOT_DONE: Duration = Duration::from_secs(120);
pub(crate) const INSTALL: Duration = Duration::from_secs(240);
/// The file the user writes on the data partition before an update.
const USER_FILE: &str = "user/written-before-the-update.bin";

pub(crate) fn expect_boot(info: &BootInfo, slot: char, reason: &str, version: &str) -> Result {
    if info.slot != slot || info.reason != reason || info.rootfs != version {
        return Err(check(format!(
            "expected slot {slot} ({reason}) running {version}; GRUB booted slot {} ({}) running {}",
            info.slot, info.reason, info.rootfs
        )));
    }
    Ok(())
}

/// Waits for the agent's post-boot step and the command prompt; returns the step's lines.
pub(crate) fn ready(vm: &mut Vm) -> Result<Vec<String>> {
    let first = vm.lines.len();
    vm.expect("SYSTEST-DAEMON-END", BOOT_DONE)?;
    let out = vm.lines[first..].iter().map(|l| l.text.clone()).collect();
    vm.expect("SYSTEST-READY", Duration::from_secs(30))?;
    Ok(out)
}

/// Runs `update --now` in the guest and waits for the reboot it ends with.
fn update_now(vm: &mut Vm, version: &str) -> Result {
    vm.send("update --now")?;
    vm.expect(&format!("installed {version} into slot"), INSTALL)?;
    vm.expect("SYSTEST-REBOOT", Duration::from_secs(60))?;
    vm.wait_exit(Duration::from_secs(60))
}

/// Powers the guest off from its prompt.
pub(crate) fn power_off(vm: &mut Vm) -> Result {
    vm.command("systest-off", Duration::from_secs(30)).ok();
    vm.wait_exit(Duration::from_secs(30))
}

fn sha_of(out: &[String], path: &str) -> Result<String> {
    out.iter()
        .find_map(|l| l.strip_suffix(path).map(|h| h.trim().to_owned()))
        .filter(|h| h.len() == 64)
        .ok_or_else(|| check(format!("no sha256sum of {path} in:\n    {}", out.join("\n    "))))
}

/// Writes [`USER_FILE`] in the guest; returns its SHA-256.
fn write_user_file(vm: &mut Vm) -> Result<String> {
    let out = vm.ok(
        &format!("dd if=/dev/urandom of=/data/{USER_FILE} bs=4096 count=64 2>/dev/null && sync && sha256sum /data/{USER_FILE}"),
        Duration::from_secs(60),
    )?;
    sha_of(&out, &format!("/data/{USER_FILE}"))
}

/// Checks [`USER_FILE`] in the guest.
fn check_user_file(vm: &mut Vm, want: &str, when: &str) -> Result {
    let out = vm.ok(&format!("sha256sum /data/{USER_FILE}"), Duration::from_secs(30))?;
    if sha_of(&out, &format!("/data/{USER_FILE}"))? != want {
        return Err(check(format!("/data/{USER_FILE} changed {when}")));
    }
    Ok(())
}

/// The JSON a command printed (the lines between the command and its exit code).
fn json_of(out: &[String], what: &str) -> Result<serde_json::Value> {
    let text: String = out.iter().filter(|l| !l.starts_with("SYSTEST-")).cloned().collect::<Vec<_>>().join("\n");
    let start = text.find(['{', '[']).ok_or_else(|| check(format!("no JSON from {what}:\n{text}")))?;
    serde_json::from_str(&text[start..]).map_err(|e| check(format!("{what}: {e}:\n{text}")))
}

/// `update status` exits 0, or 12 when the device fell back from a failed update
/// (docs/reference/exit-codes.md); anything else fails the scenario.
fn status_command(vm: &mut Vm, cmd: &str) -> Result<Vec<String>> {
    let (rc, out) = vm.command(cmd, Duration::from_secs(60))?;
    if rc != 0 && rc != 12 {
        return Err(vm.error(format!("`{cmd}` exited {rc}:\n    {}", out.join("\n    "))));
    }
    Ok(out)
}

/// `update status --json`: the driver's status (`slots`, `fallback`), at the top level or under
/// `status` next to the device's update state.
pub(crate) fn status_json(vm: &mut Vm) -> Result<serde_json::Value> {
    let out = status_command(vm, "update status --json")?;
    let v = json_of(&out, "update status --json")?;
    Ok(if v["slots"].is_null() && !v["status"].is_null() { v["status"].clone() } else { v })
}

/// The audit records, oldest first (`update history --json`: `{"schema":
/// "libupdate/history/1", "records": [...]}`; an older binary's bare array, or one record a line).
fn history(vm: &mut Vm) -> Result<Vec<serde_json::Value>> {
    let out = vm.ok("update history --json", Duration::from_secs(60))?;
    if let Ok(v) = json_of(&out, "update history --json") {
        match v {
            serde_json::Value::Object(mut doc) => {
                if let Some(serde_json::Value::Array(records)) = doc.remove("records") {
                    return Ok(records);
                }
            }
            serde_json::Value::Array(records) => return Ok(records),
            _ => {}
        }
    }
    let lines: Vec<&String> = out.iter().filter(|l| l.starts_with('{')).collect();
    if lines.is_empty() {
        return Err(check(format!("update history --json is not a list of records: {}", out.join("\n"))));
    }
    lines
        .iter()
        .map(|l| serde_json::from_str(l).map_err(|e| check(format!("update history --json: {e}: {l}"))))
        .collect()
}

pub(crate) fn slot_state(status: &serde_json::Value, slot: char) -> (String, String) {
    let name = slot.to_string();
    let s = status["slots"].as_array().and_then(|a| a.iter().find(|s| s["name"] == *name)).cloned().unwrap_or_default();
    (s["state"].as_str().unwrap_or("?").to_owned(), s["version"].as_str().unwrap_or("?").to_owned())
}

pub(crate) fn show(events: &[(String, String)]) -> String {
    events.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

/// Whether `want` occurs in `events` in this order (other events may come between).
pub(crate) fn in_order(events: &[(String, String)], want: &[(&str, &str)]) -> bool {
    let mut it = events.iter();
    want.iter().all(|(k, v)| it.any(|(ek, ev)| ek == k && (v.is_empty() || ev == v)))
}

/// 1.0.0 -> 2.0.0, committed by the agent, user data intact, the server's events exact.
///
/// # Errors
/// The first outcome that is not as it must be.
pub fn happy_path(s: &mut Scenario) -> Result {
    let mut dev = s.device("device-1", "1.0.0")?;
    let r = happy_path_on(s, &mut dev);
    s.count_boots(&dev);
    r
}

fn happy_path_on(s: &mut Scenario, dev: &mut Device) -> Result {
    // Boot 1: factory 1.0.0.
    let (mut vm, info) = dev.boot("factory")?;
    expect_boot(&info, 'A', "committed", "1.0.0")?;
    dev.verify_boot(&info)?;
    ready(&mut vm)?;
    let user_sha = write_user_file(&mut vm)?;
    dev.publish("2.0.0", Health::Good)?;
    update_now(&mut vm, "2.0.0")?;
    s.ok("1.0.0 (slot A) installed 2.0.0 into slot B over HTTPS with mutual TLS, then rebooted");

    // Boot 2: 2.0.0 on trial; the agent commits it.
    let (mut vm, info) = dev.boot("2.0-trial")?;
    expect_boot(&info, 'B', "trial", "2.0.0")?;
    dev.verify_boot(&info)?;
    let daemon = ready(&mut vm)?;
    if !daemon.iter().any(|l| l.contains("marked good")) {
        return Err(check(format!("the agent did not mark 2.0.0 good:\n    {}", daemon.join("\n    "))));
    }
    let status = status_json(&mut vm)?;
    if slot_state(&status, 'B') != ("good".into(), "2.0.0".into()) {
        return Err(check(format!("after mark-good, update status says {status}")));
    }
    power_off(&mut vm)?;
    s.ok("GRUB booted slot B on trial (2.0.0, kernel and rootfs together); the agent marked it good");
    let events = s.events(&dev.name)?;
    let want = [("downloading", ""), ("installed", "2.0.0"), ("rebooted", "2.0.0"), ("committed", "2.0.0")];
    let same = events.len() == want.len()
        && events.iter().zip(&want).all(|(g, w)| g.0 == w.0 && (w.1.is_empty() || g.1 == w.1));
    if !same {
        return Err(check(format!(
            "the server's events for {} are [{}], expected downloading, installed 2.0.0, rebooted 2.0.0, committed 2.0.0",
            dev.name,
            show(&events)
        )));
    }
    s.ok(format!("the server lists the device's events in order: {}", show(&events)));

    // Boot 3: committed 2.0.0; the user file survived.
    let (mut vm, info) = dev.boot("2.0-committed")?;
    expect_boot(&info, 'B', "committed", "2.0.0")?;
    dev.verify_boot(&info)?;
    ready(&mut vm)?;
    check_user_file(&mut vm, &user_sha, "between 1.0.0 and 2.0.0")?;
    power_off(&mut vm)?;
    dev.check_data_from_host(&[(USER_FILE.to_owned(), user_sha.clone())])?;
    s.ok(format!(
        "the next boot is slot B again, committed, 2.0.0; the file written at 1.0.0 is intact (guest and host: {}…)",
        &user_sha[..12]
    ));
    Ok(())
}

/// 2.0.0 -> broken 3.0.0 -> GRUB falls back to 2.0.0; status, audit log, server and user data
/// say so.
///
/// # Errors
/// The first outcome that is not as it must be.
pub fn bad_update_falls_back(s: &mut Scenario) -> Result {
    let mut dev = s.device("device-1", "2.0.0")?;
    let r = fall_back_from_bad_release(s, &mut dev).and_then(|(mut vm, user_sha)| {
        power_off(&mut vm)?;
        dev.check_data_from_host(&[(USER_FILE.to_owned(), user_sha.clone())])?;
        s.ok(format!("after the rollback the file written at 2.0.0 is intact (host debugfs: {}…)", &user_sha[..12]));
        Ok(())
    });
    s.count_boots(&dev);
    r
}

/// From a fresh device at 2.0.0 (slot A): installs the broken 3.0.0 into B and follows the
/// boots until GRUB falls back to A; checks status, audit log, server events and the user
/// file there. Returns the guest at its prompt on 2.0.0, and the user file's SHA-256.
fn fall_back_from_bad_release(s: &mut Scenario, dev: &mut Device) -> Result<(Vm, String)> {
    let (mut vm, info) = dev.boot("2.0-factory")?;
    expect_boot(&info, 'A', "committed", "2.0.0")?;
    dev.verify_boot(&info)?;
    ready(&mut vm)?;
    let user_sha = write_user_file(&mut vm)?;
    dev.publish("3.0.0", Health::Broken)?;
    update_now(&mut vm, "3.0.0")?;
    s.ok("2.0.0 (slot A) installed 3.0.0, whose health check fails, into slot B, then rebooted");

    // 3.0.0 on trial fails its health check; the agent reboots; until GRUB falls back.
    let mut failed = 0;
    let (mut vm, info) = loop {
        let (mut vm, info) = dev.boot("3.0-trial")?;
        dev.verify_boot(&info)?;
        if info.rootfs != "3.0.0" {
            break (vm, info);
        }
        expect_boot(&info, 'B', "trial", "3.0.0")?;
        vm.expect("SYSTEST-HEALTH-FAILED", BOOT_DONE)?;
        vm.expect("SYSTEST-REBOOT", Duration::from_secs(60))?;
        vm.wait_exit(Duration::from_secs(60))?;
        failed += 1;
        if failed > 9 {
            return Err(check("GRUB never fell back from 3.0.0"));
        }
    };
    if failed != usize::try_from(dev.retry_limit()).unwrap_or(0) {
        return Err(check(format!("3.0.0 booted {failed} times; the boot-retry-limit is {}", dev.retry_limit())));
    }
    expect_boot(&info, 'A', "committed", "2.0.0")?;
    s.ok(format!("3.0.0 failed its health check on {failed} trial boots; GRUB fell back to 2.0.0 in slot A"));
    ready(&mut vm)?;
    let status = status_json(&mut vm)?;
    let fallback = status["fallback"].as_str().unwrap_or_default().to_owned();
    if !fallback.contains("booted A after B failed") {
        return Err(check(format!("update status on 2.0.0 does not report the fallback: {status}")));
    }
    let text = status_command(&mut vm, "update status")?;
    if !text.iter().any(|l| l.contains("FALLBACK")) {
        return Err(check(format!("`update status` does not show FALLBACK:\n    {}", text.join("\n    "))));
    }
    let records = history(&mut vm)?;
    if !records.iter().any(|r| r["action"] == "fallback" && r["outcome"] == "ok") {
        return Err(check(format!("the audit log has no fallback record: {records:?}")));
    }
    s.ok(format!("update status on 2.0.0 reports \"{fallback}\"; the audit log records the fallback"));
    let events = s.events(&dev.name)?;
    let want = [("installed", "3.0.0"), ("rebooted", "3.0.0"), ("failed", "3.0.0"), ("rolled-back", "")];
    let rolled_back = events.iter().filter(|(k, _)| k == "rolled-back").count();
    if !in_order(&events, &want) || rolled_back != 1 {
        return Err(check(format!(
            "the server's events for {} are [{}]; expected installed 3.0.0, rebooted 3.0.0, failed 3.0.0 and one rolled-back, in that order",
            dev.name,
            show(&events)
        )));
    }
    s.ok(format!("the server records the bad update and the rollback: {}", show(&events)));
    check_user_file(&mut vm, &user_sha, "by the rollback")?;
    Ok((vm, user_sha))
}

/// Console lines that mean the daemon installs (or is about to boot) a release.
const INSTALLING: [&str; 4] = ["notice: installing ", "SYSTEST-HOOK", "into slot", "SYSTEST-REBOOT"];

/// After the fallback from 3.0.0, with 3.0.0 still the newest release, the daemon runs on a
/// schedule (`minute 1`) for two windows: it installs nothing, and the audit log records each
/// scheduled check as skipped, saying 3.0.0 failed on this device.
///
/// # Errors
/// The first outcome that is not as it must be (today: the daemon installs 3.0.0 again).
pub fn failed_release_is_never_installed_again(s: &mut Scenario) -> Result {
    let mut dev = s.device("device-1", "2.0.0")?;
    let r = fall_back_from_bad_release(s, &mut dev).and_then(|(vm, user_sha)| {
        two_windows_install_nothing(s, &mut dev, vm)?;
        dev.check_data_from_host(&[(USER_FILE.to_owned(), user_sha)])
    });
    s.count_boots(&dev);
    r
}

fn two_windows_install_nothing(s: &mut Scenario, dev: &mut Device, mut vm: Vm) -> Result {
    let audited_before = history(&mut vm)?.len();
    let events_before = s.events(&dev.name)?.len();
    // The schedule, deployed the read-only-rootfs way (a bind mount over the slot's config), so
    // the slot's partition stays byte-identical to its release.
    vm.ok(
        "sed 's/^schedule = .*/schedule = \"minute 1\"/' /etc/update/update.toml > /tmp/update.toml \
         && mount --bind /tmp/update.toml /etc/update/update.toml \
         && grep -q '^schedule = \"minute 1\"' /etc/update/update.toml",
        Duration::from_secs(60),
    )?;
    // The real daemon loop in the background; its own lines (`checked: …`) and its log go to
    // the console. The first window is at once (no check yet), the next one minute (plus at
    // most 6 s of jitter) after it.
    vm.ok("update daemon >/dev/console 2>&1 </dev/null & echo $! >/tmp/daemon.pid", Duration::from_secs(30))?;
    let start = Instant::now();
    let until = start + Duration::from_secs(240);
    let mut windows: Vec<String> = Vec::new();
    while windows.len() < 2 {
        match vm.next_line(until)? {
            Next::Line(l) => {
                if INSTALLING.iter().any(|m| l.text.contains(m)) {
                    return Err(check(format!(
                        "the daemon installs the failed release again: {}\n{}",
                        l.text,
                        vm.tail(15)
                    )));
                }
                if l.text.contains("checked:") || l.text.contains("scheduled check failed") {
                    eprintln!(
                        "system-test: {}: window {} after {:.0} s: {}",
                        s.name,
                        windows.len() + 1,
                        start.elapsed().as_secs_f64(),
                        l.text
                    );
                    windows.push(l.text);
                }
            }
            Next::Timeout => {
                return Err(vm.error(format!(
                    "{} scheduled window(s) within {:?}, expected 2; last lines:\n{}",
                    windows.len(),
                    until - start,
                    vm.tail(15)
                )));
            }
            Next::Exited => {
                return Err(check(format!(
                    "the guest rebooted during the scheduled windows (3.0.0 installed again?); last lines:\n{}",
                    vm.tail(15)
                )));
            }
        }
    }
    // A few more seconds: an install the second window started would show now.
    let settle = Instant::now() + Duration::from_secs(5);
    while let Next::Line(l) = vm.next_line(settle)? {
        if INSTALLING.iter().any(|m| l.text.contains(m)) {
            return Err(check(format!("the daemon installs the failed release again: {}", l.text)));
        }
    }
    vm.ok("kill $(cat /tmp/daemon.pid)", Duration::from_secs(30))?;
    s.ok(format!(
        "two scheduled windows passed in {:.0} s with 3.0.0 still published: {}",
        start.elapsed().as_secs_f64(),
        windows.join("; ")
    ));

    let status = status_json(&mut vm)?;
    if slot_state(&status, 'A') != ("good".into(), "2.0.0".into()) || slot_state(&status, 'B').0 == "good" {
        return Err(check(format!("after the windows, update status says {status}")));
    }
    let records = history(&mut vm)?;
    let new = records.get(audited_before..).unwrap_or_default();
    let installs: Vec<&serde_json::Value> = new
        .iter()
        .filter(|r| ["install", "switch", "reboot"].contains(&r["action"].as_str().unwrap_or_default()))
        .collect();
    if !installs.is_empty() {
        return Err(check(format!("the audit log records installs after the fallback: {installs:?}")));
    }
    let skipped: Vec<&serde_json::Value> = new
        .iter()
        .filter(|r| {
            let text = r.to_string();
            text.contains("skipped") && text.contains("failed on this device")
        })
        .collect();
    if skipped.len() < windows.len() {
        return Err(check(format!(
            "the audit log has {} record(s) of a check skipped because 3.0.0 failed on this device, expected one per window ({}); the records since the fallback: {new:?}",
            skipped.len(),
            windows.len()
        )));
    }
    let reason = skipped[0]["message"].as_str().unwrap_or_default().to_owned();
    s.ok(format!("the audit log records {} scheduled checks as skipped: \"{reason}\"", skipped.len()));
    let events = s.events(&dev.name)?;
    let later = events.get(events_before..).unwrap_or_default();
    if later.iter().any(|(k, _)| ["installed", "rebooted", "committed"].contains(&k.as_str())) {
        return Err(check(format!("the server heard of an install after the fallback: [{}]", show(later))));
    }
    power_off(&mut vm)?;
    s.ok(format!("the server heard of no install after the fallback (events since: [{}])", show(later)));
    Ok(())
}

/// The site configuration of data version 1.0.0 and 2.0.0 (2.0.0 changes `log`).
const SITE_V1: &str = "# site configuration\nname=unnamed\nport=8080\nlog=info\n";
const SITE_V2: &str = "# site configuration\nname=unnamed\nport=8080\nlog=debug\n";

/// One component's `active` version and `state` from `update status --json`.
fn component(vm: &mut Vm, name: &str) -> Result<(String, String)> {
    let out = status_command(vm, "update status --json")?;
    let v = json_of(&out, "update status --json")?;
    let c = v["components"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .ok_or_else(|| check(format!("update status --json lists no component {name}: {v}")))?;
    Ok((c["active"].as_str().unwrap_or("-").to_owned(), c["state"].as_str().unwrap_or("-").to_owned()))
}

fn expect_components(vm: &mut Vm, want: &[(&str, &str)], when: &str) -> Result {
    for (name, version) in want {
        let got = component(vm, name)?;
        if got != ((*version).to_owned(), "committed".to_owned()) {
            return Err(check(format!(
                "{when}: component {name} is {} {}, expected {version} committed",
                got.0, got.1
            )));
        }
    }
    Ok(())
}

/// The lines of a file in the guest (`cat`).
fn guest_file(vm: &mut Vm, path: &str) -> Result<Vec<String>> {
    let out = vm.ok(&format!("cat {path}"), Duration::from_secs(30))?;
    Ok(out
        .into_iter()
        .skip_while(|l| l.contains(&format!("cat {path}")))
        .filter(|l| !l.starts_with("SYSTEST-"))
        .collect())
}

/// An app and site data updated beside the OS without a reboot, a broken app rolled back with
/// the data, a three-way merge, all on a real boot.
///
/// # Errors
/// The first outcome that is not as it must be.
pub fn app_and_data_update(s: &mut Scenario) -> Result {
    let mut dev = s.device("device-1", "1.0.0")?;
    let r = app_and_data_on(s, &mut dev);
    s.count_boots(&dev);
    r
}

fn app_and_data_on(s: &mut Scenario, dev: &mut Device) -> Result {
    let (mut vm, info) = dev.boot("factory")?;
    expect_boot(&info, 'A', "committed", "1.0.0")?;
    ready(&mut vm)?;

    // 1.1.0: app 1.0.0 and site data 1.0.0, no OS image: installed and committed without a reboot.
    dev.publish_components("1.1.0", Some(("1.0.0", "ok")), Some(("1.0.0", SITE_V1)))?;
    let started = Instant::now();
    let out = vm.ok("update --now", INSTALL)?;
    if !out.iter().any(|l| l.contains("installed 1.1.0 (components only, no slot)")) {
        return Err(check(format!("update --now did not install 1.1.0:\n    {}", out.join("\n    "))));
    }
    let took = started.elapsed();
    expect_components(&mut vm, &[("web", "1.0.0"), ("site", "1.0.0")], "after 1.1.0")?;
    if guest_file(&mut vm, "/var/log/web.log")? != ["started 1.0.0"] {
        return Err(check("the app's restart command did not start 1.0.0 once"));
    }
    s.ok(format!(
        "app 1.0.0 and site data 1.0.0 installed from a components-only release over HTTPS and committed without a reboot ({:.1} s from `update --now` under TCG)",
        took.as_secs_f64()
    ));

    // The user edits the site configuration.
    vm.ok("sed -i s/name=unnamed/name=plant-7/ /data/site/site.conf && sync", Duration::from_secs(30))?;
    let edited = SITE_V1.replace("name=unnamed", "name=plant-7");

    // 1.2.0: a broken app and site data 2.0.0: the app's health check fails, both roll back.
    dev.publish_components("1.2.0", Some(("1.1.0", "broken")), Some(("2.0.0", SITE_V2)))?;
    let (rc, out) = vm.command("update --now", INSTALL)?;
    if rc != 1 || !out.iter().any(|l| l.contains("every component of the update is rolled back")) {
        return Err(check(format!("a broken app: update --now exited {rc}:\n    {}", out.join("\n    "))));
    }
    expect_components(&mut vm, &[("web", "1.0.0"), ("site", "1.0.0")], "after the broken 1.2.0")?;
    if guest_file(&mut vm, "/data/site/site.conf")? != edited.lines().collect::<Vec<_>>() {
        return Err(check("site.conf is not the user's edited file after the rollback"));
    }
    if guest_file(&mut vm, "/var/log/web.log")? != ["started 1.0.0", "started 1.1.0", "started 1.0.0"] {
        return Err(check("the app was not started at 1.1.0 and then at 1.0.0 again"));
    }
    s.ok("a broken app 1.1.0 with new site data: health check failed, both rolled back, the user's site.conf restored, app 1.0.0 started again, no reboot");

    // 1.3.0: the fixed app and the same data: committed; the merge keeps the user's line.
    dev.publish_components("1.3.0", Some(("1.2.0", "ok")), Some(("2.0.0", SITE_V2)))?;
    vm.ok("update --now", INSTALL)?;
    expect_components(&mut vm, &[("web", "1.2.0"), ("site", "2.0.0")], "after 1.3.0")?;
    let merged = SITE_V2.replace("name=unnamed", "name=plant-7");
    if guest_file(&mut vm, "/data/site/site.conf")? != merged.lines().collect::<Vec<_>>() {
        return Err(check("site.conf is not the three-way merge of the user's edit and data 2.0.0"));
    }
    power_off(&mut vm)?;
    dev.check_data_from_host(&[("site/site.conf".to_owned(), crate::util::sha256(merged.as_bytes()))])?;
    s.ok("app 1.2.0 and site data 2.0.0 committed; site.conf keeps name=plant-7 and takes log=debug (checked in the guest and from the host)");

    // The next boot: still slot A, the components as committed.
    let (mut vm, info) = dev.boot("after-components")?;
    expect_boot(&info, 'A', "committed", "1.0.0")?;
    ready(&mut vm)?;
    expect_components(&mut vm, &[("web", "1.2.0"), ("site", "2.0.0")], "after a reboot")?;
    power_off(&mut vm)?;
    s.ok("after a reboot the OS is still 1.0.0 in slot A and the components are as committed");
    Ok(())
}
