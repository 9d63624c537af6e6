//! Property tests of the boot-state machine.
//!
//! 1. `transitions_keep_a_committed_slot`: random sequences of the pure transitions.
//! 2. `device_never_bricks`: a whole simulated device — boot environment (every backend) and
//!    the two slot images on one power-cut simulator — runs random sequences of installs
//!    (good and bad images), reboots, health checks with mark-good / rollback / mark-bad, and
//!    power cuts at random writes. After every step: the state loads; every committed slot holds
//!    a complete good image; the slot the bootloader would pick holds a complete image (a slot
//!    being written is never chosen); a new slot never gets more boots than its retry limit,
//!    after which the committed slot boots.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::Config;
use update_boot::{BootEnv, BootReason, BootState, Slot, create_env, open_env, simulate_boot};
use update_core::blockdev::BlockDevice;
use update_core::blockdev::sim::SimDisk;
use update_core::config::BootloaderKind;

const PURE_CASES: u32 = 2000;
const DEVICE_CASES: u32 = 400;

/// Failing inputs are printed (and shrunk); they are not persisted to a file, since an
/// integration-test binary has no source file proptest can put them beside.
fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

#[derive(Debug, Clone, Copy)]
enum Transition {
    BeginInstall(Slot),
    Switch(Slot, u32),
    MarkGood(Slot),
    MarkBad(Slot),
    Rollback(Slot),
    Boot,
}

fn slot() -> impl Strategy<Value = Slot> {
    prop_oneof![Just(Slot::A), Just(Slot::B)]
}

fn transition() -> impl Strategy<Value = Transition> {
    prop_oneof![
        slot().prop_map(Transition::BeginInstall),
        (slot(), 1u32..=9).prop_map(|(s, n)| Transition::Switch(s, n)),
        slot().prop_map(Transition::MarkGood),
        slot().prop_map(Transition::MarkBad),
        slot().prop_map(Transition::Rollback),
        Just(Transition::Boot),
        Just(Transition::Boot),
    ]
}

proptest! {
    #![proptest_config(config(PURE_CASES))]

    #[test]
    fn transitions_keep_a_committed_slot(ops in prop::collection::vec(transition(), 1..60)) {
        let mut s = BootState::initial();
        for op in ops {
            let next = match op {
                Transition::BeginInstall(t) => s.begin_install(t).inspect(|n| {
                    assert!(!n.is_committed(t) && n.slot(t).tries == 0);
                    assert_ne!(n.boot().slot, t, "a slot being written is never booted");
                    assert_eq!(n.slot(t.other()), s.slot(t.other()), "the other slot is not touched");
                }),
                Transition::Switch(t, limit) => s.switch_to(t, limit).inspect(|n| {
                    // Exactly `limit` boots of t, then the committed other slot.
                    let mut b = *n;
                    for k in (0..limit).rev() {
                        let c = b.boot();
                        assert_eq!((c.slot, c.reason), (t, BootReason::Trial { tries_left: u8::try_from(k).unwrap() }));
                        b = c.state;
                    }
                    assert_eq!((b.boot().slot, b.boot().reason), (t.other(), BootReason::Committed));
                    assert!(!b.boot().writes());
                }),
                Transition::MarkGood(t) => Ok(s.mark_good(t)),
                Transition::MarkBad(t) => s.mark_bad(t),
                Transition::Rollback(t) => s.rollback(t),
                Transition::Boot => Ok(s.boot().state),
            };
            if let Ok(n) = next {
                s = n;
            }
            prop_assert!(s.committed().count() >= 1, "no committed slot: {}", s);
            let c = s.boot();
            prop_assert_ne!(c.reason, BootReason::LastResort);
            let chosen = s.slot(c.slot);
            prop_assert!(chosen.ok || chosen.tries > 0);
            if c.writes() {
                prop_assert_eq!(c.state.slot(c.slot).tries, chosen.tries - 1);
            } else {
                prop_assert_eq!(c.state, s);
            }
        }
    }
}

// --- the simulated device ---------------------------------------------------------------------

const IMAGE: usize = 1024;
const SLOT_AT: [u64; 2] = [8192, 8192 + IMAGE as u64];

/// A slot image: version, whether it passes health checks, CRC at the end. Written in two
/// halves and flushed, so a cut can leave it torn.
fn image(version: u32, good: bool) -> Vec<u8> {
    let mut b = format!("IMG v={version} good={}", u8::from(good)).into_bytes();
    b.resize(IMAGE - 4, b'.');
    let crc = crc(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn crc(b: &[u8]) -> u32 {
    // FNV-1a is enough to tell a torn image from a whole one here.
    b.iter().fold(0x811c_9dc5_u32, |h, &x| (h ^ u32::from(x)).wrapping_mul(0x0100_0193))
}

/// `Some(good)` for a complete image, `None` for a torn or missing one.
fn read_image(disk: &SimDisk, slot: Slot) -> Option<bool> {
    let mut b = vec![0; IMAGE];
    disk.part(SLOT_AT[slot as usize], IMAGE as u64).read_at(0, &mut b).ok()?;
    let (body, tail) = b.split_at(IMAGE - 4);
    if crc(body).to_le_bytes() != tail || !body.starts_with(b"IMG ") {
        return None;
    }
    Some(body.windows(6).any(|w| w == b"good=1"))
}

fn env_parts(kind: BootloaderKind, disk: &SimDisk) -> Vec<Box<dyn BlockDevice>> {
    let size = if kind == BootloaderKind::Uboot { 2048 } else { 1024 };
    vec![Box::new(disk.part(0, size)), Box::new(disk.part(4096, size))]
}

fn open(kind: BootloaderKind, disk: &SimDisk) -> Box<dyn BootEnv> {
    open_env(kind, env_parts(kind, disk)).unwrap()
}

fn provision(kind: BootloaderKind) -> SimDisk {
    let disk = SimDisk::new(16384);
    if kind == BootloaderKind::Uboot {
        let mut board = update_boot::ubootenv::UbootEnv::new();
        board.set("bootcmd", "run update_script").unwrap();
        let mut p = disk.part(0, 2048);
        p.write_at(0, &board.encode_copy(2048, Some(0)).unwrap()).unwrap();
    }
    let mut a = disk.part(SLOT_AT[0], IMAGE as u64);
    a.write_at(0, &image(1, true)).unwrap();
    a.flush().unwrap();
    create_env(kind, env_parts(kind, &disk), &BootState::initial()).unwrap();
    disk
}

#[derive(Debug, Clone, Copy)]
enum HealthFailure {
    /// Reboot and let the bootloader count the tries down.
    Reboot,
    Rollback,
    MarkBad,
}

#[derive(Debug, Clone, Copy)]
enum DeviceOp {
    Install {
        good: bool,
        limit: u32,
    },
    /// Reboot; the booted slot then runs its health checks.
    Reboot(HealthFailure),
    /// Arm a power cut `after` disk writes/flushes from now; `seed` picks what survives.
    ArmCut {
        after: u64,
        seed: u64,
    },
}

fn device_op() -> impl Strategy<Value = DeviceOp> {
    prop_oneof![
        3 => (any::<bool>(), 1u32..=3).prop_map(|(good, limit)| DeviceOp::Install { good, limit }),
        4 => prop_oneof![Just(HealthFailure::Reboot), Just(HealthFailure::Rollback), Just(HealthFailure::MarkBad)]
            .prop_map(DeviceOp::Reboot),
        2 => (0u64..8, any::<u64>()).prop_map(|(after, seed)| DeviceOp::ArmCut { after, seed }),
    ]
}

fn kind() -> impl Strategy<Value = BootloaderKind> {
    prop_oneof![Just(BootloaderKind::Grub), Just(BootloaderKind::Uboot), Just(BootloaderKind::File)]
}

struct Device {
    kind: BootloaderKind,
    disk: SimDisk,
    /// The running slot; `None` while the device is off or its kernel failed.
    running: Option<Slot>,
    version: u32,
    /// Upper bound of the boots each slot may still get while not committed.
    budget: [u32; 2],
    cut_seed: Option<u64>,
    boots: u32,
    cuts: u32,
}

impl Device {
    fn env(&self) -> Box<dyn BootEnv> {
        open(self.kind, &self.disk)
    }

    fn install(&mut self, good: bool, limit: u32) -> update_core::Result<()> {
        let Some(running) = self.running else { return Ok(()) };
        let target = running.other();
        let mut env = self.env();
        let Ok(state) = env.load()?.begin_install(target) else { return Ok(()) };
        env.store(&state)?;
        self.budget[target as usize] = 0;
        self.version += 1;
        let img = image(self.version, good);
        let mut p = self.disk.part(SLOT_AT[target as usize], IMAGE as u64);
        p.write_at(0, &img[..IMAGE / 2])?;
        p.write_at(IMAGE as u64 / 2, &img[IMAGE / 2..])?;
        p.flush()?;
        let Ok(switched) = state.switch_to(target, limit) else { return Ok(()) };
        self.budget[target as usize] = limit; // an upper bound from here, even if the store is cut
        env.store(&switched)
    }

    fn reboot(&mut self, on_failure: HealthFailure) -> update_core::Result<()> {
        self.running = None;
        let mut env = self.env();
        let loaded = env.load()?;
        let decision = simulate_boot(env.as_mut())?;
        self.boots += 1;
        let slot = decision.slot;
        assert_ne!(decision.reason, BootReason::LastResort);
        if let BootReason::Trial { tries_left } = decision.reason {
            assert_eq!(tries_left + 1, loaded.slot(slot).tries);
            let b = &mut self.budget[slot as usize];
            assert!(*b > 0, "slot {slot} booted on trial more often than its retry limit");
            *b -= 1;
        }
        match read_image(&self.disk, slot) {
            None => panic!("booted slot {slot} holds no complete image ({loaded})"),
            Some(true) => {
                self.running = Some(slot);
                env.store(&decision.state.mark_good(slot))?;
            }
            Some(false) => {
                self.running = Some(slot);
                let next = match on_failure {
                    HealthFailure::Reboot => return Ok(()),
                    HealthFailure::Rollback => decision.state.rollback(slot),
                    HealthFailure::MarkBad => decision.state.mark_bad(slot),
                };
                if let Ok(next) = next {
                    env.store(&next)?;
                    self.budget[slot as usize] = 0;
                }
            }
        }
        Ok(())
    }

    fn after_op(&mut self, result: update_core::Result<()>) {
        if self.disk.crashed() {
            self.disk = self.disk.after_power_cut(self.cut_seed.take().expect("armed"));
            self.running = None;
            self.cuts += 1;
        } else {
            result.unwrap();
        }
    }

    fn check(&self) {
        let state = self.env().load().unwrap_or_else(|e| panic!("unloadable: {e}"));
        assert!(state.committed().count() >= 1, "no committed slot: {state}");
        for s in state.committed() {
            assert_eq!(
                read_image(&self.disk, s),
                Some(true),
                "committed slot {s} is not a complete good image: {state}"
            );
        }
        let choice = state.boot();
        assert!(read_image(&self.disk, choice.slot).is_some(), "boot() picks slot {} mid-write: {state}", choice.slot);
        for s in Slot::ALL {
            if !state.is_committed(s) {
                assert!(
                    u32::from(state.slot(s).tries) <= self.budget[s as usize],
                    "{s}: {state} budget {:?}",
                    self.budget
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(config(DEVICE_CASES))]

    #[test]
    fn device_never_bricks(kind in kind(), ops in prop::collection::vec(device_op(), 1..40)) {
        let mut dev = Device {
            kind, disk: provision(kind), running: None, version: 1, budget: [0, 0], cut_seed: None, boots: 0, cuts: 0,
        };
        let r = dev.reboot(HealthFailure::Reboot);
        dev.after_op(r);
        for op in ops {
            let result = match op {
                DeviceOp::Install { good, limit } => dev.install(good, limit),
                DeviceOp::Reboot(f) => dev.reboot(f),
                DeviceOp::ArmCut { after, seed } => {
                    if dev.cut_seed.is_none() {
                        dev.disk.crash_after(dev.disk.steps() + after);
                        dev.cut_seed = Some(seed);
                    }
                    Ok(())
                }
            };
            dev.after_op(result);
            dev.check();
        }
        let cases = CASES.fetch_add(1, Ordering::Relaxed) + 1;
        let boots = BOOTS.fetch_add(u64::from(dev.boots), Ordering::Relaxed) + u64::from(dev.boots);
        let cuts = CUTS.fetch_add(u64::from(dev.cuts), Ordering::Relaxed) + u64::from(dev.cuts);
        if cases == u64::from(DEVICE_CASES) {
            println!("device cases: {cases}, simulated boots: {boots}, power cuts: {cuts}");
        }
    }
}

static CASES: AtomicU64 = AtomicU64::new(0);
static BOOTS: AtomicU64 = AtomicU64::new(0);
static CUTS: AtomicU64 = AtomicU64::new(0);

/// A fixed scenario through the same device model; prints the case counts (`--nocapture`).
#[test]
fn counts() {
    println!("pure transition cases: {PURE_CASES}; device cases: {DEVICE_CASES}");
    let mut dev = Device {
        kind: BootloaderKind::Grub,
        disk: provision(BootloaderKind::Grub),
        running: None,
        version: 1,
        budget: [0, 0],
        cut_seed: None,
        boots: 0,
        cuts: 0,
    };
    let r = dev.reboot(HealthFailure::Reboot);
    dev.after_op(r);
    // A bad image with 2 tries: two failed boots, then the committed slot A boots again.
    let r = dev.install(false, 2);
    dev.after_op(r);
    for expect in [Slot::B, Slot::B, Slot::A] {
        let r = dev.reboot(HealthFailure::Reboot);
        dev.after_op(r);
        assert_eq!(dev.running, Some(expect));
        dev.check();
    }
}
