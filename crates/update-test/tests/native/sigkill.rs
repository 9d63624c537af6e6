//! Power-cut torture, level 2 (TEST-RIG.md): SIGKILL of the real installer process (`update-sim
//! install`: libupdate + the native driver) at random moments, on loop devices when root. After
//! each kill the simulated bootloader boots, and the booted slot must hold a complete known
//! version and the data partition must be byte-identical. (A SIGKILL keeps the page cache, so
//! this is a crash test; level 1 covers lost writes.) `UPDATE_SIGKILL_TRIALS` sets the count.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use update_boot::Slot;
use update_core::Paths;
use update_core::config::Config;
use update_test::device::hash_prefix;

use crate::common::Fixture;

#[test]
fn sigkill_of_the_installer_never_leaves_an_unbootable_device() {
    let fx = Fixture::new();
    let bundle = fx.publish_version("2.0", "ok");
    let (rootfs, kernel) = fx.release_images("2.0", "ok");
    let rlen = std::fs::metadata(&rootfs).unwrap().len();
    let klen = std::fs::metadata(&kernel).unwrap().len();
    let v2 = (hash_prefix(&kernel, klen).unwrap(), hash_prefix(&rootfs, rlen).unwrap());
    let slot_hashes = |slot: Slot| {
        (
            hash_prefix(&fx.dev.slot_device("kernel", slot), klen).unwrap(),
            hash_prefix(&fx.dev.slot_device("rootfs", slot), rlen).unwrap(),
        )
    };
    let v1 = slot_hashes(Slot::A);
    let data = fx.fingerprint()["data"].clone();
    let sim = env!("CARGO_BIN_EXE_update-sim");
    let paths = Paths::new(fx.root());
    let native = Config::load(&paths).unwrap().native.unwrap();
    let reset = || {
        update_native::provision(&paths, &native, &update_core::parse_version("1.0").unwrap()).unwrap();
        std::fs::write(paths.kernel_cmdline(), "update.slot=A\n").unwrap();
    };
    // How long an uninterrupted install takes.
    let t = Instant::now();
    let out = Command::new(sim).arg("--root").arg(fx.root()).arg("install").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full = t.elapsed();
    assert_eq!(slot_hashes(Slot::B), v2);
    let trials: u32 = std::env::var("UPDATE_SIGKILL_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let (mut booted_new, mut booted_old) = (0, 0);
    // Kills after a checkpoint, and how many of the installs after them kept written chunks.
    let (mut kept_any, mut resumed) = (0, 0);
    let log_file = fx.root().join("var/log/update.log");
    let log_len = || std::fs::metadata(&log_file).map_or(0, |m| m.len());
    let mut x = 0x00c0_ffee_u64;
    for trial in 0..trials {
        reset();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_micros(x % (u64::try_from(full.as_micros()).unwrap() * 12 / 10 + 1));
        let mut child = Command::new(sim)
            .arg("--root")
            .arg(fx.root())
            .arg("install")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let slot = fx.dev.reboot().unwrap();
        let got = slot_hashes(slot);
        match slot {
            Slot::A => {
                assert_eq!(got, v1, "trial {trial} (kill after {delay:?}): slot A is not 1.0");
                booted_old += 1;
                // The next install continues from what the killed one recorded as written.
                let cursor =
                    update_native::install::InstallCursor::load(&update_native::install::InstallCursor::path(&paths));
                if cursor.as_ref().is_some_and(|c| c.durable.values().any(|d| *d > 0)) {
                    let from = usize::try_from(log_len()).unwrap();
                    let out = Command::new(sim).arg("--root").arg(fx.root()).arg("install").output().unwrap();
                    // Only this install's log lines count (a killed trial may have resumed too:
                    // a kill between the switch and the cursor's removal leaves it for the next).
                    let log = std::fs::read(&log_file).unwrap();
                    resumed +=
                        usize::from(String::from_utf8_lossy(&log[from..]).contains("resumed an interrupted install"));
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(out.status.success(), "trial {trial}: the install after the kill failed: {err}");
                    assert_eq!(slot_hashes(Slot::B), v2, "trial {trial}: the resumed install wrote a wrong slot");
                    kept_any += 1;
                }
            }
            Slot::B => {
                assert_eq!(got, v2, "trial {trial} (kill after {delay:?}): slot B booted but is not a complete 2.0");
                booted_new += 1;
            }
        }
        assert_eq!(fx.fingerprint()["data"], data, "trial {trial}: data changed");
    }
    eprintln!(
        "SIGKILL torture: {trials} trials (install takes {full:?}): {booted_old} booted 1.0, {booted_new} booted a complete 2.0, 0 unbootable; {kept_any} kills after a checkpoint, {resumed} next installs kept written chunks; bundle {}",
        bundle.display()
    );
    assert_eq!(resumed, kept_any, "every install after a checkpoint resumed");
    assert!(kept_any > 0, "no kill landed after a checkpoint: resuming is not tested");
    assert!(booted_old > 0, "no kill landed before the switch: the test is not testing");
}
