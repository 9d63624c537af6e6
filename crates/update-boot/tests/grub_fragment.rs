//! The shipped GRUB fragment, run by real GRUB: `grub-emu` (Debian package grub-emu) is GRUB
//! built as a host program, with the same script interpreter, `load_env` and `save_env`. The
//! two environment files live on a FAT image (mtools, dosfstools) that grub-emu sees as `(hd0)`,
//! so `save_env` writes through GRUB's block lists exactly as on a device.
//!
//! Each scenario stores a state with our Rust code, boots once (or several times) with GRUB
//! and with `simulate_boot`, and requires the same slot, the same reason and the same stored
//! copies afterwards.
//!
//! Without grub-emu, mtools or mkfs.vfat the GRUB runs are skipped with a message, unless
//! `UPDATE_BOOT_REQUIRE_GRUB_EMU=1` makes that a failure (CI sets it once the packages are
//! installed there).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use update_boot::grubenv::{BLOCK_SIZE, GrubEnvBlock};
use update_boot::{
    BootEnv, BootReason, BootState, GRUB_FRAGMENT, GrubBootEnv, Slot, SlotState, grub_var, simulate_boot,
};
use update_core::blockdev::{BlockDevice, FileDevice};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_fragment_parses() {
    if !have("grub-script-check") {
        panic!("grub-script-check is missing: install the Debian package grub-common");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("update-boot.cfg");
    std::fs::write(&file, GRUB_FRAGMENT).unwrap();
    run(Command::new("grub-script-check").arg(&file));
}

/// Per copy (sequence, current?, invalid?), and the loaded state.
type Summary = (Vec<(Option<u64>, bool, bool)>, Option<BootState>);

/// The two environment files as our Rust code sees them (plain files on the host).
struct Files {
    _dir: tempfile::TempDir,
    paths: [PathBuf; 2],
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let paths = [dir.path().join("bootenv1"), dir.path().join("bootenv2")];
        for p in &paths {
            std::fs::write(p, GrubEnvBlock::new().encode(BLOCK_SIZE).unwrap()).unwrap();
        }
        Self { _dir: dir, paths }
    }

    fn env(&self) -> GrubBootEnv {
        let devs: Vec<Box<dyn BlockDevice>> =
            self.paths.iter().map(|p| Box::new(FileDevice::open(p).unwrap()) as Box<dyn BlockDevice>).collect();
        GrubBootEnv::new(devs).unwrap()
    }

    fn bytes(&self) -> [Vec<u8>; 2] {
        [0, 1].map(|i| std::fs::read(&self.paths[i]).unwrap())
    }

    fn set_bytes(&self, bytes: &[Vec<u8>; 2]) {
        for (p, b) in self.paths.iter().zip(bytes) {
            std::fs::write(p, b).unwrap();
        }
    }

    /// What a load sees: per copy (sequence, current?, problem?), and the state.
    fn summary(&self) -> Summary {
        let mut env = self.env();
        let copies = env.inspect().unwrap().into_iter().map(|c| (c.sequence, c.current, c.problem.is_some())).collect();
        (copies, env.load().ok())
    }
}

/// grub-emu with a FAT image as `(hd0)` and a grub.cfg that sources the fragment.
struct Grub {
    dir: tempfile::TempDir,
}

impl Grub {
    fn new() -> Option<Self> {
        let missing: Vec<&str> = ["grub-emu", "mcopy", "mkfs.vfat"].into_iter().filter(|t| !have(t)).collect();
        if !missing.is_empty() {
            let msg = format!(
                "real-GRUB runs skipped: {} not installed (Debian packages grub-emu mtools dosfstools)",
                missing.join(", ")
            );
            assert!(std::env::var_os("UPDATE_BOOT_REQUIRE_GRUB_EMU").is_none(), "{msg}");
            println!("SKIPPED {msg}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(Command::new("mkfs.vfat").arg("-C").arg(d.join("disk.img")).arg("2048"));
        std::fs::write(d.join("device.map"), format!("(hd0) {}\n", d.join("disk.img").display())).unwrap();
        std::fs::create_dir(d.join("grub")).unwrap();
        std::fs::write(d.join("update-boot.cfg"), GRUB_FRAGMENT).unwrap();
        std::fs::write(
            d.join("grub/grub.cfg"),
            format!(
                "set update_env1=(hd0)/bootenv1\nset update_env2=(hd0)/bootenv2\nsource (host){}\n\
                 echo \"RESULT slot=$update_slot reason=$update_reason cmdline=$update_cmdline default=$default END\"\nhalt\n",
                d.join("update-boot.cfg").display()
            ),
        )
        .unwrap();
        Some(Self { dir })
    }

    fn img(&self) -> PathBuf {
        self.dir.path().join("disk.img")
    }

    /// Copies the files in, boots GRUB once, copies them out; returns the RESULT fields.
    fn boot(&self, files: &Files) -> [String; 4] {
        for (i, p) in files.paths.iter().enumerate() {
            run(Command::new("mcopy").arg("-o").arg("-i").arg(self.img()).arg(p).arg(format!("::/bootenv{}", i + 1)));
        }
        let out = self.dir.path().join("out.txt");
        let mut child = Command::new("grub-emu")
            .arg("-m")
            .arg(self.dir.path().join("device.map"))
            .arg("-d")
            .arg(self.dir.path().join("grub"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("grub-emu starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("grub-emu did not halt: {}", String::from_utf8_lossy(&std::fs::read(&out).unwrap()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for (i, p) in files.paths.iter().enumerate() {
            run(Command::new("mcopy").arg("-o").arg("-i").arg(self.img()).arg(format!("::/bootenv{}", i + 1)).arg(p));
        }
        let text = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned();
        let line = text.split("RESULT ").nth(1).unwrap_or_else(|| panic!("no RESULT from GRUB: {text:?}"));
        let line = line.split(" END").next().unwrap();
        let field =
            |k: &str| line.split(' ').find_map(|w| w.strip_prefix(&format!("{k}="))).unwrap_or_default().to_owned();
        [field("slot"), field("reason"), field("cmdline"), field("default")]
    }
}

fn reason_word(r: BootReason) -> &'static str {
    match r {
        BootReason::Committed => "committed",
        BootReason::Trial { .. } => "trial",
        BootReason::LastResort => "last-resort",
    }
}

/// Boots the same files with GRUB and with simulate_boot `boots` times; both must agree.
fn agree(grub: &Grub, name: &str, setup: &dyn Fn(&Files), boots: usize) -> Vec<Slot> {
    let (g, r) = (Files::new(), Files::new());
    setup(&g);
    r.set_bytes(&g.bytes());
    let mut slots = Vec::new();
    for n in 0..boots {
        let [slot, reason, cmdline, default] = grub.boot(&g);
        let decision = simulate_boot(&mut r.env()).unwrap();
        let ctx = format!("{name}, boot {n}");
        assert_eq!(slot, decision.slot.as_str(), "{ctx}: slot");
        assert_eq!(reason, reason_word(decision.reason), "{ctx}: reason");
        assert_eq!(cmdline, decision.cmdline(), "{ctx}: cmdline");
        assert_eq!(default, format!("update-{}", decision.slot), "{ctx}: default");
        assert_eq!(g.summary(), r.summary(), "{ctx}: the stored copies after the boot");
        slots.push(decision.slot);
    }
    slots
}

fn store_all(files: &Files, states: &[BootState]) {
    let mut env = files.env();
    for s in states {
        env.store(s).unwrap();
    }
}

/// Rewrites one variable of one copy in place (what a torn or corrupted write leaves).
fn poke(files: &Files, copy: usize, suffix: &str, value: &str) {
    let mut bytes = files.bytes();
    let mut block = GrubEnvBlock::parse(&bytes[copy - 1]).unwrap();
    block.set(&grub_var(copy, suffix), value).unwrap();
    bytes[copy - 1] = block.encode(BLOCK_SIZE).unwrap();
    files.set_bytes(&bytes);
}

#[test]
fn real_grub_boots_like_simulate_boot() {
    let Some(grub) = Grub::new() else { return };
    let initial = BootState::initial();
    let installing_b = initial.begin_install(Slot::B).unwrap();
    let trial_b = |n| installing_b.switch_to(Slot::B, n).unwrap();
    let mut scenarios = 0;
    let mut boots = 0;
    let mut check = |name: &str, setup: &dyn Fn(&Files), n: usize, expect: &[Slot]| {
        let slots = agree(&grub, name, setup, n);
        assert_eq!(slots, expect, "{name}");
        scenarios += 1;
        boots += n;
    };

    check("initial state", &|f| store_all(f, &[initial, initial]), 2, &[Slot::A, Slot::A]);
    check(
        "a new slot uses its tries, then the committed slot boots",
        &|f| store_all(f, &[initial, installing_b, trial_b(3)]),
        5,
        &[Slot::B, Slot::B, Slot::B, Slot::A, Slot::A],
    );
    check("a committed B", &|f| store_all(f, &[trial_b(1).mark_good(Slot::B)]), 2, &[Slot::B, Slot::B]);
    check(
        "a trial of A behind a committed B",
        &|f| store_all(f, &[BootState::new(Slot::A, SlotState::trial(1), SlotState::GOOD).unwrap()]),
        2,
        &[Slot::A, Slot::B],
    );
    check(
        "the sequence wraps (0 1 2 0 …)",
        &|f| store_all(f, &[initial, initial, initial, installing_b, installing_b, trial_b(9)]),
        4,
        &[Slot::B; 4],
    );
    check(
        "the newest copy is torn (SEQ != END): the older copy counts",
        &|f| {
            store_all(f, &[initial, installing_b, trial_b(2)]);
            poke(f, 1, "END", "0"); // copy 1 holds the switch with SEQ 2
        },
        3,
        &[Slot::A, Slot::A, Slot::A],
    );
    check(
        "a malformed value invalidates a copy",
        &|f| {
            store_all(f, &[installing_b, trial_b(2)]);
            poke(f, 2, "B_TRY", "x");
        },
        1,
        &[Slot::A],
    );
    check(
        "the copy to write is garbage: save_env fails, the trial is skipped",
        &|f| {
            store_all(f, &[trial_b(2)]);
            let mut b = f.bytes();
            b[1] = vec![0x5a; BLOCK_SIZE];
            f.set_bytes(&b);
        },
        2,
        &[Slot::A, Slot::A],
    );
    check(
        "no valid copy: slot A, nothing written",
        &|f| {
            let mut half = GrubEnvBlock::new();
            half.set("UPD2_SEQ", "1").unwrap();
            f.set_bytes(&[vec![0; BLOCK_SIZE], half.encode(BLOCK_SIZE).unwrap()]);
        },
        1,
        &[Slot::A],
    );
    check(
        "last resort: nothing bootable, the primary boots",
        &|f| store_all(f, &[BootState::new(Slot::B, SlotState::UNBOOTABLE, SlotState::UNBOOTABLE).unwrap()]),
        1,
        &[Slot::B],
    );
    println!("real-GRUB scenarios: {scenarios}, boots compared with simulate_boot: {boots}");
}
