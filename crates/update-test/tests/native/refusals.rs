//! Every refusal of the native install: a clear error of the documented kind, an audit record,
//! and the running slot, both slots, the boot environment, the records and the data untouched.

use std::process::Command;

use update_core::ErrorKind;
use update_core::audit::{AuditAction, Outcome};
use update_core::config::Config;
use update_core::{KeyName, Paths};

use crate::common::{Fixture, key};

/// Installs the newest bundle published (named as a single-file source) and asserts it is
/// refused with `kind` and a message containing `needle`, changing nothing.
fn assert_refused(fx: &Fixture, kind: ErrorKind, needle: &str) {
    let before = fx.fingerprint();
    let mut up = fx.updater();
    let file = std::fs::read_dir(fx.source()).unwrap().flatten().next().unwrap().file_name();
    up.apply_overrides(&libupdate::Overrides {
        source: Some(
            update_core::config::SourceUrl::new(&format!("file:///srv/update/{}", file.to_string_lossy())).unwrap(),
        ),
        ..Default::default()
    });
    let e = up.install_now(true).unwrap_err();
    assert_eq!(e.kind(), kind, "{e}");
    assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
    assert_eq!(fx.fingerprint(), before, "a refused update changed the device ({e})");
    let last = up
        .history(None)
        .unwrap()
        .records
        .into_iter()
        .rev()
        .find(|r| r.action == AuditAction::Install)
        .expect("audited");
    assert_eq!(last.outcome, Outcome::Refused, "{last:?}");
}

fn flip(path: &std::path::Path, offset: usize) {
    let mut b = std::fs::read(path).unwrap();
    let at = offset.min(b.len() - 1);
    b[at] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn bad_signatures_are_refused() {
    let fx = Fixture::new();
    // Unsigned.
    let mut o = fx.options("2.0", "ok");
    o.signers.clear();
    fx.publish(&o);
    assert_refused(&fx, ErrorKind::Verification, "not signed");
    // Signed by a key the device does not trust.
    let mut o = fx.options("2.0", "ok");
    o.signers = vec![(KeyName::new("stranger").unwrap(), key(99))];
    fx.publish(&o);
    assert_refused(&fx, ErrorKind::Verification, "0 valid signature(s)");
    // Fewer trusted signatures than the threshold.
    let paths = Paths::new(fx.root());
    let mut c = Config::load(&paths).unwrap();
    c.signature_threshold = 2;
    c.store(&paths).unwrap();
    fx.publish_version("2.0", "ok");
    assert_refused(&fx, ErrorKind::Verification, "2 required");
}

#[test]
fn changed_and_truncated_bundles_are_refused_before_anything_is_written() {
    let fx = Fixture::new();
    let path = fx.publish_version("2.0", "ok");
    let good = std::fs::read(&path).unwrap();
    let header_len = 64;
    let manifest_len = usize::try_from(u64::from_le_bytes(good[16..24].try_into().unwrap())).unwrap();
    let sig_end = header_len + manifest_len + 96;
    // Header, manifest, signature, first chunk, middle, last byte.
    for (what, offset) in [
        ("header", 20),
        ("manifest", header_len + manifest_len / 2),
        ("signature", sig_end - 10),
        ("first chunk", sig_end + 5),
        ("payload middle", (sig_end + good.len()) / 2),
        ("last byte", good.len() - 1),
    ] {
        std::fs::write(&path, &good).unwrap();
        flip(&path, offset);
        let before = fx.fingerprint();
        let e = fx.updater().install_now(true).unwrap_err();
        // Every changed byte is a verification failure (exit code 6).
        assert_eq!(e.kind(), ErrorKind::Verification, "{what}: {e}");
        assert_eq!(fx.fingerprint(), before, "{what}: changed the device: {e}");
    }
    // The same through an explicit file source: exit code 6 with the offset named.
    std::fs::write(&path, &good).unwrap();
    flip(&path, good.len() - 100);
    let mut up = fx.updater();
    up.apply_overrides(&libupdate::Overrides {
        source: Some(
            update_core::config::SourceUrl::new(&format!(
                "file:///srv/update/{}",
                path.file_name().unwrap().to_string_lossy()
            ))
            .unwrap(),
        ),
        ..Default::default()
    });
    let before = fx.fingerprint();
    let e = up.install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Verification, "{e}");
    assert_eq!(fx.fingerprint(), before);
    // Truncated anywhere.
    for cut in [10, header_len + 3, sig_end - 1, good.len() / 2, good.len() - 1] {
        std::fs::write(&path, &good[..cut]).unwrap();
        let before = fx.fingerprint();
        let e = fx.updater().install_now(true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Verification, "cut at {cut}: {e}");
        assert!(e.to_string().contains("truncated"), "cut at {cut}: {e}");
        assert_eq!(fx.fingerprint(), before, "cut at {cut}");
    }
    // Trailing garbage.
    let mut long = good.clone();
    long.extend_from_slice(b"garbage");
    std::fs::write(&path, &long).unwrap();
    assert_refused(&fx, ErrorKind::Verification, "trailing bytes");
}

#[test]
fn policy_refusals() {
    let fx = Fixture::new();
    // Wrong board.
    let mut o = fx.options("2.0", "ok");
    o.compatible = "other-board".into();
    fx.publish(&o);
    assert_refused(&fx, ErrorKind::Refused, "it is for 'other-board'");
    // Older and equal versions (anti-rollback).
    fx.publish_version("0.9", "ok");
    assert_refused(&fx, ErrorKind::Refused, "not newer than the installed 1.0.0");
    fx.publish_version("1.0", "ok");
    assert_refused(&fx, ErrorKind::Refused, "not newer");
    // min-version above what runs.
    let mut o = fx.options("2.0", "ok");
    o.min_version = Some(update_core::parse_version("1.5").unwrap());
    fx.publish(&o);
    assert_refused(&fx, ErrorKind::Refused, "needs at least version 1.5.0");
    // An image larger than its slot (boot slots are 2 MiB).
    let big = fx.images.join("big-kernel.img");
    update_test::device::make_kernel(&big, "2.0", 3 << 20).unwrap();
    let mut o = fx.options("2.0", "ok");
    o.images[1].1 = big;
    fx.publish(&o);
    assert_refused(&fx, ErrorKind::Refused, "larger than slot B");
    // A bundle that does not cover every slot group.
    let mut o = fx.options("2.0", "ok");
    o.images.truncate(1);
    fx.publish(&o);
    assert_refused(&fx, ErrorKind::Refused, "no image for slot group 'kernel'");
}

#[test]
fn a_second_update_is_refused_while_one_holds_the_lock() {
    let fx = Fixture::new();
    fx.publish_version("2.0", "ok");
    let held = update_core::atomic::Lock::try_acquire(&Paths::new(fx.root()).lock_file()).unwrap();
    let before = fx.fingerprint();
    let e = fx.updater().install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert_eq!(fx.fingerprint(), before);
    drop(held);
    fx.updater().install_now(true).unwrap();
}

fn is_root() -> bool {
    update_test::disk::can_use_loop_devices()
}

#[test]
fn a_mounted_target_slot_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED: needs root and loop devices");
        return;
    }
    let fx = Fixture::new();
    // Put a filesystem in B and mount it, as if someone were inspecting it.
    let (rootfs, _) = fx.release_images("1.5", "ok");
    let b = fx.dev.slot_device("rootfs", update_boot::Slot::B);
    update_test::device::flash(&rootfs, &b).unwrap();
    fx.publish_version("2.0", "ok");
    let before = fx.fingerprint();
    let mnt = fx.dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("mount").args(["-o", "ro,noload"]).arg(&b).arg(&mnt).status().unwrap().success();
    assert!(ok, "mount failed");
    let e = fx.updater().install_now(true).unwrap_err();
    Command::new("umount").arg(&mnt).status().unwrap();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("is mounted at"), "{e}");
    assert_eq!(fx.fingerprint(), before);
}

#[test]
fn no_space_for_records_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to mount a small tmpfs");
        return;
    }
    let fx = Fixture::new();
    fx.publish_version("2.0", "ok");
    // The state directory on a 64 KiB tmpfs, nearly full.
    let state = fx.root().join("var/lib/update");
    let saved = fx.dir.path().join("state-saved");
    assert!(Command::new("cp").arg("-a").arg(&state).arg(&saved).status().unwrap().success());
    assert!(
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(&state).status().unwrap().success()
    );
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(format!("cp -a {}/. {}/", saved.display(), state.display()))
            .status()
            .unwrap()
            .success()
    );
    let before = fx.fingerprint();
    let e = fx.updater().install_now(true).unwrap_err();
    Command::new("umount").arg(&state).status().unwrap();
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    assert!(e.to_string().contains("no space"), "{e}");
    assert_eq!(fx.fingerprint()["rootfs-B"], before["rootfs-B"]);
    assert_eq!(fx.fingerprint()["boot/update/env1"], before["boot/update/env1"]);
    assert_eq!(fx.fingerprint()["boot/update/env2"], before["boot/update/env2"]);
}

/// The tamper matrix at the device level: one byte changed at many offsets spread over the whole
/// bundle (header, manifest, signatures, every part of the payload); every install is refused and
/// nothing on the device — both slots, env, records, data — changes. (The exhaustive every-byte
/// sweep over a small bundle is in update-bundle's tests.)
#[test]
fn tamper_matrix_every_changed_byte_is_refused_and_the_device_is_untouched() {
    let fx = Fixture::new();
    let path = fx.publish_version("2.0", "ok");
    let good = std::fs::read(&path).unwrap();
    let before = fx.fingerprint();
    let mut offsets: Vec<usize> = (0..64).collect(); // the whole header
    let mut x = 0x5eed_u64;
    for _ in 0..48 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        offsets.push(usize::try_from(x % good.len() as u64).unwrap());
    }
    offsets.push(good.len() - 1);
    let mut refused = 0;
    for &off in &offsets {
        let mut bytes = good.clone();
        bytes[off] ^= 1 << (off % 8);
        std::fs::write(&path, &bytes).unwrap();
        let e = fx.updater().install_now(true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Verification, "offset {off}: {e}");
        refused += 1;
    }
    assert_eq!(fx.fingerprint(), before, "a tampered bundle changed the device");
    eprintln!("tamper matrix (device level): {refused} changed bundles refused, device unchanged");
}
