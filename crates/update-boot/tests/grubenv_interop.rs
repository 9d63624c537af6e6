//! Interoperation with the real `grub-editenv` (Debian package grub-common), both ways.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;

use update_boot::grubenv::{BLOCK_SIZE, GrubEnvBlock};
use update_boot::{BootEnv, BootState, GrubBootEnv, Slot, SlotState, grub_var};
use update_core::blockdev::{BlockDevice, FileDevice};

fn editenv(file: &Path, args: &[&str]) -> String {
    let out = Command::new("grub-editenv")
        .arg(file)
        .args(args)
        .output()
        .expect("grub-editenv runs (install the Debian package grub-common)");
    assert!(out.status.success(), "grub-editenv {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn dev(path: &Path) -> Box<dyn BlockDevice> {
    Box::new(FileDevice::open(path).unwrap())
}

fn grub_env(dir: &Path) -> (GrubBootEnv, [std::path::PathBuf; 2]) {
    let paths = [dir.join("bootenv1"), dir.join("bootenv2")];
    for p in &paths {
        std::fs::write(p, vec![0u8; BLOCK_SIZE]).unwrap();
    }
    (GrubBootEnv::new(vec![dev(&paths[0]), dev(&paths[1])]).unwrap(), paths)
}

#[test]
fn what_we_write_grub_editenv_lists() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    let mut block = GrubEnvBlock::new();
    block.set("plain", "A B").unwrap();
    block.set("backslash", r"C:\path\").unwrap();
    block.set("newline", "first\nsecond").unwrap();
    block.set("empty", "").unwrap();
    block.set("equals", "a=b=c").unwrap();
    std::fs::write(&file, block.encode(BLOCK_SIZE).unwrap()).unwrap();
    let expected: String = block.iter().map(|(n, v)| format!("{n}={v}\n")).collect();
    assert_eq!(editenv(&file, &["list"]), expected);
}

#[test]
fn what_grub_editenv_writes_we_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    editenv(&file, &["create"]);
    editenv(&file, &["set", "plain=A B", r"backslash=C:\path\", "newline=first\nsecond", "empty="]);
    editenv(&file, &["set", "plain=changed"]);
    editenv(&file, &["unset", "empty"]);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len(), BLOCK_SIZE);
    let block = GrubEnvBlock::parse(&bytes).unwrap();
    assert_eq!(
        block.iter().collect::<Vec<_>>(),
        [("plain", "changed"), ("backslash", r"C:\path\"), ("newline", "first\nsecond")]
    );
    // And our encoding of the same variables is what grub-editenv lists from its own file.
    let ours = dir.path().join("ours");
    std::fs::write(&ours, block.encode(BLOCK_SIZE).unwrap()).unwrap();
    assert_eq!(editenv(&ours, &["list"]), editenv(&file, &["list"]));
}

#[test]
fn oversize_is_refused_like_grub_editenv() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    editenv(&file, &["create"]);
    let big = "x".repeat(1100);
    let status = Command::new("grub-editenv").arg(&file).args(["set", &format!("big={big}")]).output().unwrap();
    assert!(!status.status.success(), "grub-editenv refuses a variable that does not fit");
    let mut block = GrubEnvBlock::new();
    block.set("big", &big).unwrap();
    assert!(block.encode(BLOCK_SIZE).is_err());
}

#[test]
fn boot_state_copies_list_with_their_own_names() {
    let dir = tempfile::tempdir().unwrap();
    let (mut env, paths) = grub_env(dir.path());
    let state = BootState::initial().begin_install(Slot::B).unwrap().switch_to(Slot::B, 3).unwrap();
    env.store(&BootState::initial()).unwrap();
    env.store(&state).unwrap();
    assert_eq!(
        editenv(&paths[0], &["list"]),
        "UPD1_SEQ=0\nUPD1_ORDER=A B\nUPD1_A_OK=1\nUPD1_A_TRY=0\nUPD1_B_OK=0\nUPD1_B_TRY=0\nUPD1_END=0\n"
    );
    assert_eq!(
        editenv(&paths[1], &["list"]),
        "UPD2_SEQ=1\nUPD2_ORDER=B A\nUPD2_A_OK=1\nUPD2_A_TRY=0\nUPD2_B_OK=0\nUPD2_B_TRY=3\nUPD2_END=1\n"
    );
}

/// `grub-editenv FILE set` updates variables inside an existing block exactly like GRUB's
/// `save_env` does, so it stands in for the fragment's write of a used try.
#[test]
fn a_try_recorded_the_way_save_env_does_is_what_we_load() {
    let dir = tempfile::tempdir().unwrap();
    let (mut env, paths) = grub_env(dir.path());
    let trial = BootState::initial().begin_install(Slot::B).unwrap().switch_to(Slot::B, 3).unwrap();
    env.store(&BootState::initial()).unwrap();
    env.store(&trial).unwrap(); // copy 2, SEQ 1, current
    // The fragment: copy 2 is current, so write copy 1 with SEQ 2 and B_TRY 2.
    let sets: Vec<String> = [("SEQ", "2"), ("ORDER", "B A"), ("A_OK", "1"), ("A_TRY", "0")]
        .into_iter()
        .chain([("B_OK", "0"), ("B_TRY", "2"), ("END", "2")])
        .map(|(k, v)| format!("{}={v}", grub_var(1, k)))
        .collect();
    let mut args = vec!["set"];
    args.extend(sets.iter().map(String::as_str));
    editenv(&paths[0], &args);
    let expected = BootState::new(Slot::B, SlotState::GOOD, SlotState::trial(2)).unwrap();
    assert_eq!(env.load().unwrap(), expected);
    // The next try goes to copy 2; cut short after SEQ and B_TRY, before END: copy 2 is torn
    // (SEQ 0, END 1) and copy 1 stays current.
    editenv(&paths[1], &["set", "UPD2_SEQ=0", "UPD2_B_TRY=1"]);
    assert_eq!(env.load().unwrap(), expected);
    // Our next store goes to the copy that is not current (the torn copy 2), again with SEQ 0.
    let good = expected.mark_good(Slot::B);
    env.store(&good).unwrap();
    assert!(editenv(&paths[1], &["list"]).starts_with("UPD2_SEQ=0\n"));
    assert_eq!(env.load().unwrap(), good);
    let status = env.inspect().unwrap();
    assert_eq!(status.iter().map(|c| (c.sequence, c.current)).collect::<Vec<_>>(), [(Some(2), false), (Some(0), true)]);
}
