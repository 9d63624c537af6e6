//! The happy path, the bad update and user data, on one device, boot by boot:
//!
//! 1. 1.0.0 in slot A; the user writes a file on the data partition; 2.0.0 is published and
//!    `update --now` installs it into slot B over HTTPS (mutual TLS) and reboots.
//! 2. GRUB (our fragment) boots B on trial; the agent (`update daemon --once`) runs the health
//!    checks and marks it good.
//! 3. B boots again, committed, 2.0.0; the user file is intact. 3.0.0, whose own health check
//!    fails, is published and installed into A.
//! 4. A boots on trial and fails its health check: the agent reboots; again; GRUB's tries run
//!    out and it falls back to B: 2.0.0, whose `update status` reports the fallback and whose
//!    audit log records it; the user file is still intact (checked in the guest and from the host).

use std::time::{Duration, Instant};

use super::device::{BootInfo, Device, Health};
use super::pki::{Identity, Pki};
use super::power_cut::{Phase, Timeline};
use super::server::Server;
use super::vm::Vm;
use crate::sys::Result;

/// What the scenarios found, for the summary.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per checked outcome.
    pub checks: Vec<String>,
    /// Boots.
    pub boots: u32,
    /// Wall time.
    pub seconds: f64,
    /// Phase durations of the 1.0.0 -> 2.0.0 install, for the power-cut planner.
    pub timeline: Timeline,
}

const BOOT_DONE: Duration = Duration::from_secs(120);
const INSTALL: Duration = Duration::from_secs(240);

fn expect_boot(info: &BootInfo, slot: char, reason: &str, version: &str) -> Result {
    if info.slot != slot || info.reason != reason || info.rootfs != version {
        return Err(format!(
            "expected slot {slot} ({reason}) running {version}; GRUB booted slot {} ({}) running {}",
            info.slot, info.reason, info.rootfs
        ));
    }
    Ok(())
}

/// Waits for the agent's post-boot step and the command prompt.
fn ready(vm: &mut Vm) -> Result<Vec<String>> {
    let first = vm.lines.len();
    vm.expect("SYSTEST-DAEMON-END", BOOT_DONE)?;
    let out = vm.lines[first..].iter().map(|l| l.text.clone()).collect();
    vm.expect("SYSTEST-READY", Duration::from_secs(30))?;
    Ok(out)
}

/// Runs `update --now` in the guest and waits for the reboot it ends with; returns the phase
/// timeline read from the console.
fn update_now(vm: &mut Vm, version: &str) -> Result<Timeline> {
    let first = vm.lines.len();
    vm.send("update --now")?;
    let start = Instant::now();
    vm.expect(&format!("installed {version} into slot"), INSTALL)?;
    vm.expect("SYSTEST-REBOOT", Duration::from_secs(60))?;
    vm.wait_exit(Duration::from_secs(60))?;
    let mut t = Timeline::default();
    for l in &vm.lines[first..] {
        if let Some(phase) = Phase::of_update_line(&l.text) {
            t.mark(phase, l.at);
        }
    }
    t.started = Some(start);
    Ok(t)
}

fn sha_of(out: &[String], path: &str) -> Result<String> {
    out.iter()
        .find_map(|l| l.strip_suffix(path).map(|h| h.trim().to_owned()))
        .filter(|h| h.len() == 64)
        .ok_or_else(|| format!("no sha256sum of {path} in:\n    {}", out.join("\n    ")))
}

fn status_json(vm: &mut Vm) -> Result<serde_json::Value> {
    let out = vm.ok("update status --json", Duration::from_secs(60))?;
    let text: String = out.iter().filter(|l| !l.starts_with("SYSTEST-")).cloned().collect::<Vec<_>>().join("\n");
    let start = text.find('{').ok_or_else(|| format!("no JSON from update status --json:\n{text}"))?;
    serde_json::from_str(&text[start..]).map_err(|e| format!("update status --json: {e}:\n{text}"))
}

fn slot_state(status: &serde_json::Value, slot: &str) -> (String, String) {
    let s = status["slots"].as_array().and_then(|a| a.iter().find(|s| s["name"] == slot)).cloned().unwrap_or_default();
    (s["state"].as_str().unwrap_or("?").to_owned(), s["version"].as_str().unwrap_or("?").to_owned())
}

/// The server's operator API, to check what the device reported (fleet reporting).
pub struct Fleet<'a> {
    /// The server.
    pub server: &'a Server,
    /// The run's PKI.
    pub pki: &'a Pki,
    /// An operator certificate (the server asks every client for one from the device CA).
    pub operator: Identity,
}

impl Fleet<'_> {
    /// The device's events as (kind, version), oldest first, without `checking`.
    fn events(&self, device: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .server
            .device_events(self.pki, &self.operator, device)?
            .iter()
            .map(|e| (e["kind"].as_str().unwrap_or("?").to_owned(), e["version"].as_str().unwrap_or("-").to_owned()))
            .filter(|(k, _)| k != "checking")
            .collect())
    }
}

fn show(events: &[(String, String)]) -> String {
    events.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

/// Whether `want` occurs in `events` in this order (other events may come between).
fn in_order(events: &[(String, String)], want: &[(&str, &str)]) -> bool {
    let mut it = events.iter();
    want.iter().all(|(k, v)| it.any(|(ek, ev)| ek == k && (v.is_empty() || ev == v)))
}

/// Runs the scenarios on `dev` (fresh, at 1.0.0).
pub fn happy_and_bad(dev: &mut Device, report: &mut Report, fleet: Option<&Fleet<'_>>) -> Result {
    let t0 = Instant::now();
    let user_file = "user/written-at-1.0.bin";
    let check = |report: &mut Report, s: String| {
        eprintln!("system-test: scenario: ok: {s}");
        report.checks.push(s);
    };

    // Boot 1: factory 1.0.0.
    let (mut vm, info) = dev.boot("factory")?;
    expect_boot(&info, 'A', "committed", "1.0.0")?;
    dev.verify_boot(&info)?;
    ready(&mut vm)?;
    let out = vm.ok(
        &format!("dd if=/dev/urandom of=/data/{user_file} bs=4096 count=64 2>/dev/null && sync && sha256sum /data/{user_file}"),
        Duration::from_secs(60),
    )?;
    let user_sha = sha_of(&out, &format!("/data/{user_file}"))?;
    dev.publish("2.0.0", Health::Good)?;
    let timeline = update_now(&mut vm, "2.0.0")?;
    check(report, "1.0.0 (slot A) installed 2.0.0 into slot B over HTTPS with mutual TLS, then rebooted".into());
    report.timeline = timeline;

    // Boot 2: 2.0.0 on trial; the agent commits it.
    let (mut vm, info) = dev.boot("2.0-trial")?;
    expect_boot(&info, 'B', "trial", "2.0.0")?;
    dev.verify_boot(&info)?;
    let daemon_start = vm.lines.len();
    let daemon = ready(&mut vm)?;
    for l in &vm.lines[daemon_start..] {
        if let Some(phase) = Phase::of_daemon_line(&l.text) {
            report.timeline.mark(phase, l.at);
        }
    }
    if !daemon.iter().any(|l| l.contains("marked good")) {
        return Err(format!("the agent did not mark 2.0.0 good:\n    {}", daemon.join("\n    ")));
    }
    let status = status_json(&mut vm)?;
    if slot_state(&status, "B") != ("good".into(), "2.0.0".into()) {
        return Err(format!("after mark-good, update status says {status}"));
    }
    vm.command("systest-off", Duration::from_secs(30)).ok();
    vm.wait_exit(Duration::from_secs(30))?;
    check(report, "GRUB booted slot B on trial (2.0.0, kernel and rootfs together); the agent marked it good".into());
    if let Some(f) = fleet {
        let events = f.events(&dev.name)?;
        let want = [("downloading", ""), ("installed", "2.0.0"), ("rebooted", "2.0.0"), ("committed", "2.0.0")];
        let got: Vec<(&str, &str)> = events.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let same =
            got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| g.0 == w.0 && (w.1.is_empty() || g.1 == w.1));
        if !same {
            return Err(format!(
                "the server's events for {} are [{}], expected downloading, installed 2.0.0, rebooted 2.0.0, committed 2.0.0",
                dev.name,
                show(&events)
            ));
        }
        check(report, format!("the server lists the device's events in order: {}", show(&events)));
    }

    // Boot 3: committed 2.0.0; the user file survived; install the broken 3.0.0.
    let (mut vm, info) = dev.boot("2.0-committed")?;
    expect_boot(&info, 'B', "committed", "2.0.0")?;
    dev.verify_boot(&info)?;
    ready(&mut vm)?;
    let out = vm.ok(&format!("sha256sum /data/{user_file}"), Duration::from_secs(30))?;
    if sha_of(&out, &format!("/data/{user_file}"))? != user_sha {
        return Err(format!("/data/{user_file} changed between 1.0.0 and 2.0.0"));
    }
    check(
        report,
        "the next boot is slot B again, committed, version 2.0.0; the file written at 1.0.0 is intact".into(),
    );
    dev.publish("3.0.0", Health::Broken)?;
    update_now(&mut vm, "3.0.0")?;

    // Boots 4..: 3.0.0 on trial fails its health check; the agent reboots; until GRUB falls back.
    let mut failed = 0;
    let info = loop {
        let (mut vm, info) = dev.boot("3.0-trial")?;
        dev.verify_boot(&info)?;
        if info.rootfs != "3.0.0" {
            break (vm, info);
        }
        expect_boot(&info, 'A', "trial", "3.0.0")?;
        vm.expect("SYSTEST-HEALTH-FAILED", BOOT_DONE)?;
        vm.expect("SYSTEST-REBOOT", Duration::from_secs(60))?;
        vm.wait_exit(Duration::from_secs(60))?;
        failed += 1;
        if failed > 9 {
            return Err("GRUB never fell back from 3.0.0".into());
        }
    };
    let (mut vm, info) = info;
    if failed != usize::try_from(dev.retry_limit()).unwrap_or(0) {
        return Err(format!("3.0.0 booted {failed} times; the boot-retry-limit is {}", dev.retry_limit()));
    }
    expect_boot(&info, 'B', "committed", "2.0.0")?;
    check(report, format!("3.0.0 failed its health check on {failed} trial boots; GRUB fell back to 2.0.0 in slot B"));
    ready(&mut vm)?;
    let status = status_json(&mut vm)?;
    let fallback = status["fallback"].as_str().unwrap_or_default().to_owned();
    if !fallback.contains("booted B after A failed") {
        return Err(format!("update status on 2.0.0 does not report the fallback: {status}"));
    }
    let text = vm.ok("update status", Duration::from_secs(60))?;
    if !text.iter().any(|l| l.contains("FALLBACK")) {
        return Err(format!("`update status` does not show FALLBACK:\n    {}", text.join("\n    ")));
    }
    let history = vm.ok("update history --json", Duration::from_secs(60))?;
    let joined = history.join("\n");
    let records: serde_json::Value = joined
        .find('[')
        .and_then(|i| serde_json::from_str(&joined[i..]).ok())
        .ok_or_else(|| format!("update history --json is not JSON:\n{joined}"))?;
    let has_fallback =
        records.as_array().is_some_and(|a| a.iter().any(|r| r["action"] == "fallback" && r["outcome"] == "ok"));
    if !has_fallback {
        return Err(format!("the audit log has no fallback record:\n{joined}"));
    }
    check(report, format!("update status on 2.0.0 reports \"{fallback}\"; the audit log records the fallback"));
    if let Some(f) = fleet {
        let events = f.events(&dev.name)?;
        let want = [("installed", "3.0.0"), ("rebooted", "3.0.0"), ("failed", "3.0.0"), ("rolled-back", "")];
        let rolled_back = events.iter().filter(|(k, _)| k == "rolled-back").count();
        if !in_order(&events, &want) || rolled_back != 1 {
            return Err(format!(
                "the server's events for {} are [{}]; expected installed 3.0.0, rebooted 3.0.0, failed 3.0.0 and one rolled-back, in that order",
                dev.name,
                show(&events)
            ));
        }
        let after: Vec<(String, String)> = events.iter().skip(4).cloned().collect();
        check(report, format!("the server records the bad update and the rollback: {}", show(&after)));
    }
    let out = vm.ok(&format!("sha256sum /data/{user_file}"), Duration::from_secs(30))?;
    if sha_of(&out, &format!("/data/{user_file}"))? != user_sha {
        return Err(format!("/data/{user_file} changed by the rollback"));
    }
    vm.command("systest-off", Duration::from_secs(30)).ok();
    vm.wait_exit(Duration::from_secs(30))?;
    dev.check_data_from_host(&[(user_file.to_owned(), user_sha.clone())])?;
    check(
        report,
        format!(
            "after the rollback the file written at 1.0.0 is intact (guest sha256sum and host debugfs: {}…)",
            &user_sha[..12]
        ),
    );
    report.boots = dev.boots;
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(())
}
