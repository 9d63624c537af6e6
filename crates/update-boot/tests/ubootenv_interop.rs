//! Interoperation with the real `fw_printenv`/`fw_setenv` (Debian package libubootenv-tool),
//! both ways, with a redundant environment: two copies in two files at different offsets, as a
//! board's `/etc/fw_env.config` names them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::Command;

use update_boot::ubootenv::{UbootEnv, decode_copy, newer_copy};
use update_boot::{BootEnv, BootState, Slot, SlotState, UbootBootEnv};
use update_core::blockdev::{BlockDevice, FileDevice};

const ENV_SIZE: usize = 0x2000;
/// Copy 1 sits 4 KiB into its file, copy 2 at the start of another file.
const OFFSETS: [u64; 2] = [0x1000, 0];

struct Board {
    _dir: tempfile::TempDir,
    files: [PathBuf; 2],
    config: PathBuf,
}

impl Board {
    /// Two files; copy 1 holds a valid environment with the board's variables (flag 1), copy 2
    /// is erased flash (0xff).
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = [dir.path().join("env-a.bin"), dir.path().join("env-b.bin")];
        for (f, off) in files.iter().zip(OFFSETS) {
            std::fs::write(f, vec![0xff; usize::try_from(off).unwrap() + ENV_SIZE + 512]).unwrap();
        }
        let config = dir.path().join("fw_env.config");
        let lines: String =
            files.iter().zip(OFFSETS).map(|(f, off)| format!("{} {off:#x} {ENV_SIZE:#x}\n", f.display())).collect();
        std::fs::write(&config, format!("# device offset size\n{lines}")).unwrap();
        let board = Self { _dir: dir, files, config };
        let mut env = UbootEnv::new();
        env.set("bootcmd", "run update_script").unwrap();
        env.set("update_boot_a", "load mmc 0:2 ${kernel_addr_r} Image; booti ${kernel_addr_r}").unwrap();
        board.write_copy(0, &env.encode_copy(ENV_SIZE, Some(1)).unwrap());
        board
    }

    fn device(&self, i: usize) -> Box<dyn BlockDevice> {
        Box::new(FileDevice::open_window(&self.files[i], OFFSETS[i], Some(ENV_SIZE as u64), true).unwrap())
    }

    fn env(&self) -> UbootBootEnv {
        UbootBootEnv::new(vec![self.device(0), self.device(1)]).unwrap()
    }

    fn write_copy(&self, i: usize, bytes: &[u8]) {
        self.device(i).write_at(0, bytes).unwrap();
    }

    fn read_copy(&self, i: usize) -> Vec<u8> {
        let mut buf = vec![0; ENV_SIZE];
        self.device(i).read_at(0, &mut buf).unwrap();
        buf
    }

    fn tool(&self, tool: &str, args: &[&str]) -> String {
        let out = Command::new(tool)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool} runs (install the Debian package libubootenv-tool): {e}"));
        assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn printenv(&self, name: &str) -> String {
        self.tool("fw_printenv", &["-n", name]).trim_end().to_owned()
    }

    fn flags(&self) -> [Option<u8>; 2] {
        [0, 1].map(|i| decode_copy(&self.read_copy(i), true).ok().and_then(|c| c.flag))
    }
}

fn trial_b(tries: u8) -> BootState {
    BootState::new(Slot::B, SlotState::GOOD, SlotState::trial(tries)).unwrap()
}

#[test]
fn what_we_store_fw_printenv_reads_from_the_newest_copy() {
    let board = Board::new();
    let mut env = board.env();
    assert_eq!(env.load().unwrap(), BootState::initial(), "no UPD_* variables yet: the initial state");
    let states = [BootState::initial().begin_install(Slot::B).unwrap(), trial_b(3), trial_b(2), trial_b(1)];
    for (n, s) in states.iter().enumerate() {
        env.store(s).unwrap();
        let tries = s.slot(Slot::B).tries.to_string();
        assert_eq!(board.printenv("UPD_B_TRY"), tries, "after store {n}");
        assert_eq!(board.printenv("UPD_ORDER"), if s.primary() == Slot::B { "B A" } else { "A B" });
        // The board's variables are kept.
        assert_eq!(board.printenv("bootcmd"), "run update_script");
    }
    // Copies alternate, the flag counting up from the board's copy (1).
    assert_eq!(board.flags(), [Some(5), Some(4)]);
}

#[test]
fn what_fw_setenv_writes_we_load_from_the_newest_copy() {
    let board = Board::new();
    let mut env = board.env();
    env.store(&trial_b(3)).unwrap(); // copy 2, flag 2
    board.tool("fw_setenv", &["UPD_B_TRY", "2"]); // copy 1, flag 3
    assert_eq!(env.load().unwrap(), trial_b(2));
    assert_eq!(board.flags(), [Some(3), Some(2)]);
    board.tool("fw_setenv", &["UPD_B_OK", "1"]); // copy 2, flag 4
    let b_ok_with_tries_left = SlotState { ok: true, tries: 2 };
    assert_eq!(env.load().unwrap(), BootState::new(Slot::B, SlotState::GOOD, b_ok_with_tries_left).unwrap());
    // And back: our next store goes to copy 1 with flag 5; fw_printenv sees it.
    env.store(&trial_b(1)).unwrap();
    assert_eq!(board.flags(), [Some(5), Some(4)]);
    assert_eq!(board.printenv("UPD_B_TRY"), "1");
    assert_eq!(board.printenv("UPD_B_OK"), "0");
}

#[test]
fn a_copy_with_a_bad_crc_is_ignored_by_both() {
    let board = Board::new();
    let mut env = board.env();
    env.store(&trial_b(3)).unwrap(); // copy 2 (flag 2)
    env.store(&trial_b(2)).unwrap(); // copy 1 (flag 3): newest
    assert_eq!(board.printenv("UPD_B_TRY"), "2");
    // Tear the newest copy: a sector of new data over old.
    let mut bytes = board.read_copy(0);
    bytes[700..1200].fill(0x5a);
    board.write_copy(0, &bytes);
    assert_eq!(board.printenv("UPD_B_TRY"), "3", "fw_printenv falls back to the other copy");
    assert_eq!(env.load().unwrap(), trial_b(3), "and so do we");
    // Both writers now write the torn copy, with the good copy's flag plus one.
    board.tool("fw_setenv", &["UPD_B_TRY", "1"]);
    assert_eq!(board.flags(), [Some(3), Some(2)]);
    assert_eq!(env.load().unwrap(), trial_b(1));
    let mut bytes = board.read_copy(1);
    bytes[5] ^= 1;
    board.write_copy(1, &bytes);
    env.store(&trial_b(0)).unwrap();
    assert_eq!(board.flags(), [Some(3), Some(4)]);
    assert_eq!(board.printenv("UPD_B_TRY"), "0");
}

/// The flag rule (which valid copy is newer), checked against libubootenv for many pairs,
/// including the wrap from 255 to 0.
#[test]
fn newest_copy_rule_matches_libubootenv() {
    let board = Board::new();
    let pairs = [(0, 0xff), (0xff, 0), (1, 0), (0, 1), (5, 3), (3, 5), (2, 2), (0xff, 0xfe), (0xfe, 0xff), (0, 0x80)]
        .into_iter()
        .chain([(0x80, 0), (1, 0xff), (0xff, 1), (0, 2), (2, 0), (0xff, 0xff)]);
    let mut checked = 0;
    for (f0, f1) in pairs {
        for (i, flag) in [(0, f0), (1, f1)] {
            let mut env = UbootEnv::new();
            env.set("who", &format!("copy{}", i + 1)).unwrap();
            board.write_copy(i, &env.encode_copy(ENV_SIZE, Some(flag)).unwrap());
        }
        let tool_says = board.printenv("who");
        assert_eq!(tool_says, format!("copy{}", newer_copy(f0, f1) + 1), "flags {f0:#x} {f1:#x}");
        checked += 1;
    }
    println!("flag pairs checked against fw_printenv: {checked}");
}
