//! A delta install killed again and again (issue 13, item 3; level 2 of TEST-RIG.md): the real
//! installer (`update-sim install`: libupdate + the native driver) streams a delta bundle from
//! the real `update-server` over mutual TLS (through the counting relay of `streaming.rs`) and
//! is killed with SIGKILL at random moments, mostly while the changed blocks are fetched (when
//! a random number of bytes has come from the server), some at a random time of the whole
//! install; after each kill the simulated bootloader boots and the install runs again. Every
//! boot must be the running release or, after a kill that came after the switch, the complete
//! new one; the last attempt must leave exactly the new image in the target; and all attempts
//! together may fetch the delta once plus, per attempt, the metadata, the bundle's head, the
//! index and what was in flight when the kill came (one piece and the buffers), never more.
//!
//! Each series publishes a new release as a delta against the running one and kills its
//! install `UPDATE_DELTA_SIGKILL_KILLS` times (default 6) before letting it finish; there are
//! `UPDATE_DELTA_SIGKILL_SERIES` series (default 2, CI; e.g. 50 for a long run).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use update_boot::Slot;
use update_test::device::hash_prefix;

use crate::streaming::{World, publish_delta, random, running_2_0, world};

/// The rootfs image size.
const LEN: usize = 8 << 20;
/// Bytes changed per release (48 runs of 64 KiB).
const CHANGED: u64 = 3 << 20;
/// What an attempt may move beyond the metadata, the head, the index and the ranges it planned:
/// TLS records and HTTP headers.
fn slack(planned: u64) -> u64 {
    (64 << 10) + planned / 50
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A xorshift step.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// What one `delta:` log line planned: (MiB already in the target, bytes to fetch, index bytes).
fn plan_of(line: &str) -> Option<(f64, u64, u64)> {
    let word_before = |marker: &str| -> Option<&str> {
        let end = line.find(marker)?;
        line[..end].rsplit([' ', '(']).next()
    };
    Some((
        word_before(" MiB already in slot")?.parse().ok()?,
        word_before(" bytes)")?.parse().ok()?,
        word_before("-byte index")?.parse().ok()?,
    ))
}

fn slot_hash(w: &World, slot: Slot) -> String {
    hash_prefix(&w.fx.dev.slot_device("rootfs", slot), LEN as u64).unwrap()
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// How one attempt ended.
enum Attempt {
    Killed,
    Finished,
}

/// When to kill an attempt.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// Once the `delta:` plan is in the log (from this offset) and this many more bytes came
    /// from the server: while the changed blocks are fetched.
    InFetch { log_from: usize, bytes: u64 },
    /// At this time after the start, whatever the install is doing.
    At(Duration),
    /// Let it finish.
    Never,
}

/// Runs `update-sim install` and kills it as `kill` says.
fn attempt(w: &World, sim: &str, root: &Path, kill: Kill) -> Attempt {
    let log_file = root.join("var/log/update.log");
    let mut planned_at: Option<u64> = None;
    let mut child = Command::new(sim)
        .arg("--root")
        .arg(root)
        .arg("install")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            assert!(status.success(), "the install failed: {err}");
            return Attempt::Finished;
        }
        let moved = w.relay.from_server.load(Ordering::SeqCst);
        let now = match kill {
            Kill::InFetch { log_from, bytes } => {
                if planned_at.is_none()
                    && let Ok(log) = std::fs::read(&log_file)
                    && log.get(log_from..).is_some_and(|l| String::from_utf8_lossy(l).contains("delta: "))
                {
                    planned_at = Some(moved);
                }
                planned_at.is_some_and(|at| moved >= at + bytes)
            }
            Kill::At(t) => start.elapsed() >= t,
            Kill::Never => false,
        };
        if now {
            let _ = child.kill();
            let _ = child.wait();
            return Attempt::Killed;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "an install attempt ran for two minutes");
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn a_delta_install_killed_again_and_again_resumes_and_fetches_the_delta_once() {
    let series = env_or("UPDATE_DELTA_SIGKILL_SERIES", 2);
    let kills = env_or("UPDATE_DELTA_SIGKILL_KILLS", 6);
    let w = world();
    let sim = env!("CARGO_BIN_EXE_update-sim");
    let root = w.fx.root().to_owned();
    let log_file = root.join("var/log/update.log");
    let log_len = || usize::try_from(std::fs::metadata(&log_file).map_or(0, |m| m.len())).unwrap();
    // 2.0 in slot B, committed; how long a whole install takes here.
    let t = Instant::now();
    let mut old = running_2_0(&w, LEN);
    let whole = t.elapsed();
    let mut running = Slot::B;
    let mut x = 0x5eed_de17_a000_0001_u64;
    let (mut total_kills, mut resumed_after_fetch_kill, mut after_switch) = (0, 0, 0);
    for k in 0..series {
        let version = format!("{}.0", 3 + k);
        let base = w.fx.images.join(format!("rootfs-base-{k}.img"));
        std::fs::write(&base, &old).unwrap();
        // The new release: 48 scattered runs of 64 KiB changed, and one MiB moved by a block.
        let mut new = old.clone();
        for _ in 0..48 {
            let at = usize::try_from(next(&mut x) % (LEN as u64 / (64 << 10))).unwrap() * (64 << 10);
            new[at..at + (64 << 10)].copy_from_slice(&random(64 << 10, next(&mut x)));
        }
        new.copy_within(2 << 20..3 << 20, (2 << 20) + 4096);
        publish_delta(&w, &version, &new, Some(&base));
        w.relay.from_server.store(0, Ordering::SeqCst);
        let _ = w.fx.updater().check().unwrap();
        let check = w.relay.from_server.load(Ordering::SeqCst);

        let (mut fetched, mut attempts, mut from_scratch, mut index) = (0u64, 0u64, 0u64, 0u64);
        // Per attempt: what it could move at most, but for the index (known once planned).
        let mut allowed = Vec::new();
        let mut killed_in_fetch = false;
        // What is left to fetch, as the last plan said (an upper bound: blocks in place only grow).
        let mut left = CHANGED;
        let mut trace = Vec::new();
        let target = running.other();
        loop {
            attempts += 1;
            let from = log_len();
            w.relay.from_server.store(0, Ordering::SeqCst);
            // Three kills of four while the changed blocks are fetched (a random share of what
            // the last plan left); the fourth at any time of the whole install.
            let kill = if attempts > kills as u64 {
                Kill::Never
            } else if !next(&mut x).is_multiple_of(4) {
                Kill::InFetch { log_from: from, bytes: next(&mut x) % left.max(1) }
            } else {
                Kill::At(Duration::from_micros(next(&mut x) % (u64::try_from(whole.as_micros()).unwrap() * 3 / 2 + 1)))
            };
            let end = attempt(&w, sim, &root, kill);
            fetched += w.relay.from_server.load(Ordering::SeqCst);

            let log = std::fs::read(&log_file).unwrap();
            let log = String::from_utf8_lossy(&log[from..]).into_owned();
            let moved = w.relay.from_server.load(Ordering::SeqCst);
            let plan = log.lines().find(|l| l.contains("delta: ")).and_then(plan_of);
            trace.push(format!(
                "{} {moved} B{}",
                match (&end, kill) {
                    (Attempt::Finished, _) => "done".to_owned(),
                    (Attempt::Killed, Kill::InFetch { bytes, .. }) => format!("kill-in-fetch+{bytes}"),
                    (Attempt::Killed, Kill::At(t)) => format!("kill-at-{}ms", t.as_millis()),
                    (Attempt::Killed, Kill::Never) => "killed?".to_owned(),
                },
                plan.map_or(String::new(), |(p, f, _)| format!(" (plan: {p} MiB in place, fetch {f})"))
            ));
            allowed.push(check + plan.map_or(0, |(_, f, _)| f + slack(f)) + (64 << 10));
            if let Some((in_place, fetch, idx)) = plan {
                // Resuming never plans more than the attempt before it (blocks in place only grow).
                assert!(from_scratch == 0 || fetch <= left, "{version}: plans {fetch} bytes after {left}");
                from_scratch = from_scratch.max(fetch);
                index = idx;
                left = fetch;
                if killed_in_fetch && in_place > 0.0 {
                    resumed_after_fetch_kill += 1;
                }
            }
            // Killed after it planned (while it fetched, assembled or read back), before the switch.
            killed_in_fetch = matches!(end, Attempt::Killed) && log.contains("delta: ") && !log.contains("installed ");
            let slot = w.fx.dev.reboot().unwrap();
            match end {
                Attempt::Finished => {
                    assert_eq!(slot, target, "{version}: the finished install did not boot slot {target}");
                    break;
                }
                Attempt::Killed => {
                    total_kills += 1;
                    if slot == target {
                        // Killed after the switch: the new slot is complete.
                        assert_eq!(slot_hash(&w, slot), sha(&new), "{version}: slot {slot} booted, incomplete");
                        after_switch += 1;
                        break;
                    }
                    assert_eq!(slot, running, "{version}: booted slot {slot}");
                    assert_eq!(slot_hash(&w, slot), sha(&old), "{version}: the running slot changed");
                }
            }
        }
        assert_eq!(slot_hash(&w, target), sha(&new), "{version}: slot {target} does not hold the new image");
        w.fx.updater().mark_good().unwrap();
        // Every attempt moved at most the metadata, the head, the index and what it planned: the
        // ranges of blocks written by an earlier attempt are never fetched again.
        let bound: u64 = allowed.iter().map(|a| a + index).sum();
        eprintln!(
            "{version}: {attempts} attempts, {fetched} bytes from the server in all; the delta from scratch is \
             {from_scratch} bytes (+ {index}-byte index, {check} bytes of metadata and head per check); bound {bound}\n    {}",
            trace.join("\n    ")
        );
        assert!(from_scratch > 0 && from_scratch < CHANGED + (CHANGED / 4), "{version}: delta {from_scratch} bytes");
        assert!(fetched <= bound, "{version}: {fetched} bytes from the server over {attempts} attempts, bound {bound}");
        for (k, line) in trace.iter().enumerate() {
            let moved: u64 = line.split(' ').nth(1).and_then(|m| m.parse().ok()).unwrap();
            assert!(
                moved <= allowed[k] + index,
                "{version}: attempt {}: {line}: more than {}",
                k + 1,
                allowed[k] + index
            );
        }
        old = new;
        running = target;
    }
    eprintln!(
        "delta SIGKILL torture: {series} releases, {total_kills} kills ({after_switch} after the switch), \
         {resumed_after_fetch_kill} installs after a kill in the fetch found blocks in place"
    );
    assert!(
        resumed_after_fetch_kill > 0,
        "no install after a kill found fetched blocks in place: resuming is not tested"
    );
}
