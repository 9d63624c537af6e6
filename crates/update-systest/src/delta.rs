//! A delta update on a real boot, cut by a real power cut and resumed (issue 13):
//! [`delta_update_resumes_after_power_cut`].
//!
//! Every rootfs of the device holds a payload of incompressible 1 MiB files
//! ([`Device::payload`]); the new release replaces a few of them, so most of its bytes are
//! already on the device and a few MiB are not. Its bundle is format 3, made with
//! `--delta-base` = the images the device runs (read from its disk). `update --now` streams it
//! over HTTPS with mutual TLS and goes the delta way: the `delta:` line of its log says how much
//! it reuses and fetches, and the fetch must be about the changed bytes, far below the full
//! stream. While the changed blocks are fetched, the host kills QEMU (the moment: when the
//! fetch's progress bar is a random 8 to 22 thirtieths full). The next boot must be the old
//! release in slot A, byte for byte, and the second `update --now` must find the blocks the cut
//! attempt had written (and flushed) in place in slot B and fetch less than the first attempt
//! planned to; it completes, and the new release boots on trial, byte for byte, and is marked
//! good.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::Scenario;
use crate::device::{BundleKind, Device, Health};
use crate::error::{Result, check};
use crate::power_cut::{self, Class, End, Phase, Plan};
use crate::scenarios::{INSTALL, expect_boot, in_order, power_off, ready, show, slot_state, status_json};

const MIB: u64 = 1 << 20;
/// Payload files in every rootfs (1 MiB each, incompressible).
const PAYLOAD_FILES: usize = 14;
/// Payload files the new release replaces.
const PAYLOAD_CHANGED: usize = 5;
/// What besides the changed payload files a delta may fetch: the changed file-system metadata
/// (inode tables, bitmaps, directories, the version files) of both images, the FAT of the boot
/// partition, blocks fetched whole with their chunk, and merged gaps.
const DELTA_SLACK: u64 = MIB;

/// What a `delta:` line of the device's log says (crates/update-native/src/install.rs):
/// `delta: 7.9 MiB reused from slot B, 0.0 MiB already in slot A, 0.2 MiB zero; fetching 0.1
/// MiB (98304 bytes) in 1 requests after a 28672-byte index, instead of 8.0 MiB`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaLine {
    /// MiB found in the running slot.
    pub reused_mib: f64,
    /// MiB already in place in the target (an interrupted attempt wrote them).
    pub in_place_mib: f64,
    /// Bytes to fetch by range requests.
    pub fetch: u64,
    /// Range requests for them.
    pub requests: u64,
    /// Bytes of the index (fetched before).
    pub index: u64,
    /// MiB the full stream of the same chunks would have fetched.
    pub full_mib: f64,
}

/// The word right before `marker` in `text`, as a number.
fn number_before<T: std::str::FromStr>(text: &str, marker: &str) -> Option<T> {
    let end = text.find(marker)?;
    text[..end].rsplit([' ', '(']).next()?.parse().ok()
}

impl DeltaLine {
    /// Reads a console line; `None` unless it is a `delta:` line with the plan.
    #[must_use]
    pub fn parse(text: &str) -> Option<DeltaLine> {
        let text = &text[text.find("delta: ")?..];
        let full = text.split("instead of ").nth(1)?;
        Some(DeltaLine {
            reused_mib: number_before(text, " MiB reused from slot")?,
            in_place_mib: number_before(text, " MiB already in slot")?,
            fetch: number_before(text, " bytes)")?,
            requests: number_before(text, " requests")?,
            index: number_before(text, "-byte index")?,
            full_mib: number_before(full, " MiB")?,
        })
    }
}

fn delta_line(lines: &[String], attempt: &str) -> Result<DeltaLine> {
    if let Some(line) = lines.iter().find_map(|l| DeltaLine::parse(l)) {
        return Ok(line);
    }
    let why = lines.iter().find(|l| l.contains("delta: ")).map_or("no `delta:` line", String::as_str);
    Err(check(format!("the {attempt} did not go the delta way ({why}):\n    {}", lines.join("\n    "))))
}

/// `n` distinct numbers below `len`, from the scenario's random numbers.
fn pick(s: &mut Scenario, n: usize, len: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..len).collect();
    for i in 0..n {
        let j = i + usize::try_from(s.rng.next_u64() % (len - i) as u64).unwrap_or(0);
        all.swap(i, j);
    }
    all.truncate(n);
    all.sort_unstable();
    all
}

/// 1.0.0 → 2.0.0 by delta over HTTPS with mutual TLS, with a power cut while the changed
/// blocks are fetched, and the resumed install (see the module documentation).
///
/// # Errors
/// The first outcome that is not as it must be.
pub fn delta_update_resumes_after_power_cut(s: &mut Scenario) -> Result {
    let payload: BTreeMap<String, Vec<u8>> = (0..PAYLOAD_FILES)
        .map(|i| (format!("part-{i:02}.bin"), s.rng.bytes(usize::try_from(MIB).unwrap_or(usize::MAX))))
        .collect();
    let mut dev = s.device_with_payload("device-1", "1.0.0", payload)?;
    let r = delta_on(s, &mut dev);
    s.count_boots(&dev);
    r
}

fn delta_on(s: &mut Scenario, dev: &mut Device) -> Result {
    // Boot 1: factory 1.0.0 in slot A.
    let (mut vm, info) = dev.boot("factory")?;
    expect_boot(&info, 'A', "committed", "1.0.0")?;
    dev.verify_boot(&info)?;
    ready(&mut vm)?;

    // 2.0.0 replaces some payload files; its bundle is a delta against the images in slot A.
    let changed = pick(s, PAYLOAD_CHANGED, PAYLOAD_FILES);
    for i in &changed {
        dev.payload.insert(format!("part-{i:02}.bin"), s.rng.bytes(usize::try_from(MIB).unwrap_or(usize::MAX)));
    }
    let changed_bytes = PAYLOAD_CHANGED as u64 * MIB;
    let bundle = dev.publish_as("2.0.0", Health::Good, BundleKind::DeltaFrom('A'))?;
    let bundle_len = std::fs::metadata(&bundle).map_err(crate::error::io("stat", &bundle))?.len();

    // Attempt 1, cut while the changed blocks are fetched.
    let min_bar = 8 + usize::try_from(s.rng.below(14)).unwrap_or(0);
    let plan = Plan::Cut { class: Class::Install, trigger: Phase::DeltaFetch, delay_ms: 0, min_bar };
    let first = vm.lines.len();
    let start = Instant::now();
    vm.send("update --now")?;
    let (end, timeline) = power_cut::follow(&mut vm, &plan, start, Phase::of_update_line, "SYSTEST-READY", INSTALL)?;
    let lines: Vec<String> = vm.lines[first..].iter().map(|l| l.text.clone()).collect();
    let End::Cut(landed) = end else {
        return Err(check(format!(
            "the power cut planned while the changed blocks were fetched (bar {min_bar}/30) never came:\n    {}",
            lines.join("\n    ")
        )));
    };
    if !lines.iter().any(|l| l.contains("installing 2.0.0 while streaming it from https://10.0.2.2:")) {
        return Err(check(format!("2.0.0 was not streamed from the server:\n    {}", lines.join("\n    "))));
    }
    let one = delta_line(&lines, "first attempt")?;
    // What a delta should fetch: the changed payload files and a little metadata; what a full
    // install would: every chunk (`instead of`), a bundle file larger still (it also holds the
    // block store).
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "MiB with one decimal from the log, for a comparison"
    )]
    let full = (one.full_mib * MIB as f64) as u64;
    let bound = changed_bytes + DELTA_SLACK;
    if one.fetch + one.index > bound || (one.fetch + one.index) * 3 > full {
        return Err(check(format!(
            "the delta plans {} bytes and a {}-byte index for {changed_bytes} changed bytes (at most {bound}), \
             a full stream being {full} bytes (at most a third of it)",
            one.fetch, one.index
        )));
    }
    if one.reused_mib * 2.0 < one.full_mib {
        return Err(check(format!("the delta reuses only {} MiB of the running slot", one.reused_mib)));
    }
    if !matches!(landed.phase, Phase::DeltaFetch | Phase::Write) {
        return Err(check(format!("the cut landed in {:?}, not while the delta was fetched or written", landed.phase)));
    }
    #[allow(clippy::cast_precision_loss, reason = "a percentage for the summary")]
    let share = 100.0 * (one.fetch + one.index) as f64 / full as f64;
    s.ok(format!(
        "1.0.0 (slot A) streamed 2.0.0 over HTTPS with mutual TLS the delta way: {} MiB reused from slot A, \
         fetching {} bytes in {} requests after a {}-byte index ({share:.1}% of the {:.1} MiB full stream, \
         {PAYLOAD_CHANGED} MiB changed; the bundle file is {bundle_len} bytes)",
        one.reused_mib, one.fetch, one.requests, one.index, one.full_mib
    ));
    let scan_ms = timeline.between(Phase::DeltaScan, Phase::DeltaFetch).unwrap_or(0);
    s.ok(format!(
        "power cut {} ms into `update --now`, {} ms after the fetch bar reached {min_bar}/30 ({:?}; looking for \
         reusable blocks took {scan_ms} ms)",
        landed.after_start_ms, landed.after_trigger_ms, landed.phase
    ));
    dev.check_data_from_host(&[])?;

    // Boot 2: the old release, byte for byte; slot B was never made bootable.
    let (mut vm, info) = dev.boot("after-cut")?;
    expect_boot(&info, 'A', "committed", "1.0.0")?;
    dev.verify_boot(&info)?;
    ready(&mut vm)?;
    s.ok("after the cut GRUB booted 1.0.0 in slot A, committed, both partitions byte for byte; data intact");

    // Attempt 2: resumes, completes, reboots.
    let first = vm.lines.len();
    let start = Instant::now();
    vm.send("update --now")?;
    let (end, timeline) =
        power_cut::follow(&mut vm, &Plan::Complete, start, Phase::of_update_line, "SYSTEST-READY", INSTALL)?;
    let lines: Vec<String> = vm.lines[first..].iter().map(|l| l.text.clone()).collect();
    if !matches!(end, End::Exited) || !lines.iter().any(|l| l.contains("installed 2.0.0 into slot B")) {
        return Err(check(format!(
            "the second attempt did not install 2.0.0 and reboot:\n    {}",
            lines.join("\n    ")
        )));
    }
    let two = delta_line(&lines, "second attempt")?;
    if two.in_place_mib <= 0.0 || two.fetch >= one.fetch {
        return Err(check(format!(
            "the second attempt found {} MiB in place in slot B and fetches {} bytes; the first planned {}",
            two.in_place_mib, two.fetch, one.fetch
        )));
    }
    let continued = timeline.resumed;
    s.ok(format!(
        "the second `update --now` resumed: {} MiB already in slot B, fetching {} bytes in {} requests \
         (the first attempt planned {} from scratch){}; installed 2.0.0 {:.1} s after the command",
        two.in_place_mib,
        two.fetch,
        two.requests,
        one.fetch,
        if continued { "; it continued from the install cursor" } else { "" },
        timeline.between(Phase::Download, Phase::Switched).unwrap_or(0) as f64 / 1000.0
    ));

    // Boot 3: 2.0.0 on trial, byte for byte; the agent marks it good.
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
    dev.check_data_from_host(&[])?;
    let events = s.events(&dev.name)?;
    if !in_order(&events, &[("installed", "2.0.0"), ("rebooted", "2.0.0"), ("committed", "2.0.0")]) {
        return Err(check(format!("the server's events are [{}]", show(&events))));
    }
    s.ok(format!(
        "GRUB booted 2.0.0 in slot B on trial, both partitions byte for byte; the agent marked it good; server: {}",
        show(&events)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_lines_are_read() {
        let line = "2026-12-05T13:02:52Z update[148] info: delta: 7.9 MiB reused from slot B, 0.5 MiB already in \
                    slot A, 0.2 MiB zero; fetching 0.1 MiB (98304 bytes) in 3 requests after a 28672-byte index, \
                    instead of 8.0 MiB";
        let d = DeltaLine::parse(line).unwrap();
        assert_eq!(
            d,
            DeltaLine { reused_mib: 7.9, in_place_mib: 0.5, fetch: 98304, requests: 3, index: 28672, full_mib: 8.0 }
        );
        assert_eq!(
            DeltaLine::parse("info: delta: it would not fetch less than the full stream; streaming in full"),
            None
        );
        assert_eq!(DeltaLine::parse("installing [===   ] 3/48 MiB"), None);
    }
}
