//! Power-cut torture (TEST-RIG level 1): a sequence of boot-state changes — install, the
//! switch, bootloader boots that use tries, mark-good, rollback, mark-bad — runs on a simulated
//! disk. For every write and flush of every store the power is cut there, and for several seeds
//! the disk is rebuilt the way a cut can leave it (unflushed writes kept, dropped or torn at
//! sector boundaries). After each cut the state must load, and be exactly the state before or
//! after the interrupted store; the device must boot and accept the next store.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use update_boot::{BootEnv, BootState, Slot, create_env, open_env, simulate_boot, ubootenv::UbootEnv};
use update_core::blockdev::sim::SimDisk;
use update_core::blockdev::{BlockDevice, sim::SimPart};
use update_core::config::BootloaderKind;

const SEEDS: u64 = 128;

/// One change of the boot state, as the daemon or the bootloader makes it.
#[derive(Debug, Clone, Copy)]
enum Op {
    BeginInstall(Slot),
    Switch(Slot, u32),
    /// A reboot: the bootloader (simulate_boot) runs, and may use a try.
    Boot,
    MarkGood(Slot),
    MarkBad(Slot),
    Rollback(Slot),
}

const SCENARIO: [Op; 17] = [
    Op::BeginInstall(Slot::B),
    Op::Switch(Slot::B, 3),
    Op::Boot,
    Op::Boot,
    Op::MarkGood(Slot::B),
    Op::Boot,
    Op::BeginInstall(Slot::A),
    Op::Switch(Slot::A, 2),
    Op::Boot,
    Op::Boot,
    Op::Boot, // A is out of tries: B (committed) boots, nothing written
    Op::MarkBad(Slot::A),
    Op::BeginInstall(Slot::A),
    Op::Switch(Slot::A, 9),
    Op::Boot,
    Op::Rollback(Slot::A),
    Op::Boot,
];

/// Runs one op; returns (state before, state after).
fn run(env: &mut dyn BootEnv, op: Op) -> update_core::Result<(BootState, BootState)> {
    let before = env.load()?;
    let after = match op {
        Op::Boot => return simulate_boot(env).map(|d| (before, d.state)),
        Op::BeginInstall(s) => before.begin_install(s)?,
        Op::Switch(s, limit) => before.switch_to(s, limit)?,
        Op::MarkGood(s) => before.mark_good(s),
        Op::MarkBad(s) => before.mark_bad(s)?,
        Op::Rollback(s) => before.rollback(s)?,
    };
    env.store(&after)?;
    Ok((before, after))
}

/// Where the two copies sit on the simulated disk.
struct Layout {
    name: &'static str,
    kind: BootloaderKind,
    disk: usize,
    copies: [(u64, u64); 2],
}

impl Layout {
    fn parts(&self, disk: &SimDisk) -> Vec<Box<dyn BlockDevice>> {
        self.copies.iter().map(|&(off, size)| Box::new(disk.part(off, size)) as Box<dyn BlockDevice>).collect()
    }

    fn open(&self, disk: &SimDisk) -> Box<dyn BootEnv> {
        open_env(self.kind, self.parts(disk)).unwrap()
    }

    /// A freshly provisioned device: the initial state in both copies (U-Boot: on top of the
    /// board's saved environment).
    fn provision(&self) -> SimDisk {
        let disk = SimDisk::new(self.disk);
        if self.kind == BootloaderKind::Uboot {
            let mut board = UbootEnv::new();
            board.set("bootcmd", "run update_script").unwrap();
            let (off, size) = self.copies[0];
            let mut p: SimPart = disk.part(off, size);
            p.write_at(0, &board.encode_copy(usize::try_from(size).unwrap(), Some(1)).unwrap()).unwrap();
            p.flush().unwrap();
        }
        create_env(self.kind, self.parts(&disk), &BootState::initial()).unwrap();
        disk
    }
}

fn layouts() -> Vec<Layout> {
    vec![
        Layout {
            name: "GRUB, sector-aligned",
            kind: BootloaderKind::Grub,
            disk: 2048,
            copies: [(0, 1024), (1024, 1024)],
        },
        // Sector boundaries fall inside the variables (60 and 90 bytes into the copies), so
        // torn writes mix old and new variables and must be caught by SEQ != END.
        Layout {
            name: "GRUB, torn inside the variables",
            kind: BootloaderKind::Grub,
            disk: 4096,
            copies: [(452, 1024), (1958, 1024)],
        },
        Layout {
            name: "U-Boot, 8 KiB copies",
            kind: BootloaderKind::Uboot,
            disk: 16384,
            copies: [(0, 8192), (8192, 8192)],
        },
        Layout {
            name: "U-Boot, unaligned 4 KiB copies",
            kind: BootloaderKind::Uboot,
            disk: 12288,
            copies: [(100, 4096), (5000, 4096)],
        },
        Layout { name: "file, unaligned", kind: BootloaderKind::File, disk: 4096, copies: [(300, 1000), (1700, 1200)] },
    ]
}

#[test]
fn a_cut_at_any_write_leaves_the_state_before_or_after() {
    let mut total = 0u64;
    for layout in layouts() {
        // Dry run: the disk steps each op takes.
        let disk = layout.provision();
        let mut env = layout.open(&disk);
        let mut spans = Vec::new();
        for op in SCENARIO {
            let start = disk.steps();
            let (before, after) = run(env.as_mut(), op).unwrap_or_else(|e| panic!("{}: {op:?}: {e}", layout.name));
            spans.push((start, disk.steps(), before, after));
        }
        drop(env);
        let mut trials = 0u64;
        for (i, &(start, end, before, after)) in spans.iter().enumerate() {
            for crash in start..end {
                let disk = layout.provision();
                disk.crash_after(crash);
                let mut env = layout.open(&disk);
                let failed_at = SCENARIO.iter().position(|op| run(env.as_mut(), *op).is_err());
                assert_eq!(failed_at, Some(i), "{}: the cut at step {crash} hits op {i}", layout.name);
                for seed in 0..SEEDS {
                    let after_cut = disk.after_power_cut(seed);
                    let mut env = layout.open(&after_cut);
                    let loaded = env.load().unwrap_or_else(|e| {
                        panic!(
                            "{}: op {i} {:?}, cut at step {crash}, seed {seed}: unloadable: {e}",
                            layout.name, SCENARIO[i]
                        )
                    });
                    assert!(
                        loaded == before || loaded == after,
                        "{}: op {i} {:?}, cut at step {crash}, seed {seed}: loaded {loaded}, before {before}, after {after}",
                        layout.name,
                        SCENARIO[i]
                    );
                    // The device comes back: it boots, and the next store lands.
                    let boot = simulate_boot(env.as_mut()).unwrap();
                    assert!(boot.invalid_env.is_none());
                    let next = boot.state.mark_good(boot.slot);
                    env.store(&next).unwrap();
                    assert_eq!(env.load().unwrap(), next);
                    trials += 1;
                }
            }
        }
        println!(
            "{}: {} ops, {} crash points, {trials} power-cut trials",
            layout.name,
            SCENARIO.len(),
            spans.iter().map(|s| s.1 - s.0).sum::<u64>()
        );
        total += trials;
    }
    println!("power-cut trials: {total}");
    assert!(total > 5000, "{total}");
}

#[test]
fn either_copy_garbage_uses_the_other() {
    let mut checked = 0;
    for layout in layouts() {
        for garbage in 0..2 {
            for pattern in [0x00u8, 0xff, 0x23, 0x5a] {
                let disk = layout.provision();
                let mut env = layout.open(&disk);
                let state = BootState::initial().begin_install(Slot::B).unwrap().switch_to(Slot::B, 2).unwrap();
                env.store(&state).unwrap();
                // Overwrite one copy (the current one or the other) with garbage.
                let (off, size) = layout.copies[garbage];
                let mut p = disk.part(off, size);
                let mut bytes = vec![pattern; usize::try_from(size).unwrap()];
                for (k, b) in bytes.iter_mut().enumerate().step_by(7) {
                    *b = u8::try_from(k % 251).unwrap() ^ pattern;
                }
                p.write_at(0, &bytes).unwrap();
                p.flush().unwrap();
                let loaded = env.load().unwrap_or_else(|e| panic!("{}: copy {garbage} garbage: {e}", layout.name));
                assert!(loaded == state || loaded == BootState::initial().begin_install(Slot::B).unwrap());
                let status = env.inspect().unwrap();
                assert!(status[garbage].problem.is_some() && status[1 - garbage].current, "{status:?}");
                // A store repairs: it writes the garbage copy.
                env.store(&state).unwrap();
                assert!(env.inspect().unwrap().iter().all(|c| c.problem.is_none()));
                checked += 1;
            }
        }
    }
    println!("garbage-copy cases: {checked}");
}
