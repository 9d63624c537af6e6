//! The bootloader's side, in Rust: [`simulate_boot`] is the twin of the shipped GRUB fragment
//! ([`GRUB_FRAGMENT`]) and U-Boot script ([`UBOOT_SCRIPT`]). Tests and the demo use it to
//! "reboot" a simulated device; the real-GRUB proof is the QEMU system test.

use update_core::{ErrorKind, Result};

use crate::state::{BootReason, BootState, Slot, SlotState};
use crate::store::{BootEnv, is_invalid_env};

/// The GRUB fragment a board's `grub.cfg` sources (`data/grub.cfg`).
pub const GRUB_FRAGMENT: &str = include_str!("../data/grub.cfg");

/// The U-Boot boot script source (`data/u-boot.cmd`; compile with
/// `mkimage -A arm -T script -C none -d u-boot.cmd boot.scr`).
pub const UBOOT_SCRIPT: &str = include_str!("../data/u-boot.cmd");

/// What a (simulated) bootloader did at one boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootDecision {
    /// The slot that boots.
    pub slot: Slot,
    /// Why.
    pub reason: BootReason,
    /// The state after this boot: what was written, or what was loaded when nothing was.
    pub state: BootState,
    /// Why the stored state was unusable, when the initial state was used instead.
    pub invalid_env: Option<String>,
    /// Slots on trial that were skipped because their try could not be recorded.
    pub skipped: Vec<Slot>,
}

impl BootDecision {
    /// The kernel command-line argument the bootloader adds: `update.slot=A`.
    #[must_use]
    pub fn cmdline(&self) -> String {
        format!("update.slot={}", self.slot)
    }
}

/// Boots a simulated device exactly as the shipped bootloader scripts do:
/// 1. load the newest valid copy; if there is none, use [`BootState::initial`] (boot A);
/// 2. [`BootState::boot`]; when that uses a try, record it with
///    [`BootEnv::store_from_bootloader`] *before* booting. If the bootloader cannot record it
///    (GRUB's `save_env` refuses a file without an environment block) that slot is skipped as if
///    it had no tries left — a slot whose tries cannot be counted down must not boot, or a bad
///    slot could loop forever.
///
/// # Errors
/// Only failures of the simulated hardware (I/O errors, a simulated power cut); a stored state
/// that is torn, garbage or missing is not an error, as it is not for the bootloader.
pub fn simulate_boot(env: &mut dyn BootEnv) -> Result<BootDecision> {
    let (loaded, invalid_env) = match env.load() {
        Ok(s) => (s, None),
        Err(e) if is_invalid_env(&e) => (BootState::initial(), Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let mut skipped: Vec<Slot> = Vec::new();
    loop {
        // The bootloader's view: slots whose try could not be recorded count as having none.
        let view = skipped.iter().fold(loaded, |s, slot| s.with_slot(*slot, SlotState::UNBOOTABLE));
        let choice = view.boot();
        if !choice.writes() {
            return Ok(BootDecision { slot: choice.slot, reason: choice.reason, state: loaded, invalid_env, skipped });
        }
        // What is written: the loaded state with this one try used.
        let next = loaded.with_slot(choice.slot, choice.state.slot(choice.slot));
        let write = if invalid_env.is_some() {
            Err(update_core::Error::Refused("no valid copy to record a try in".into()))
        } else {
            env.store_from_bootloader(&next)
        };
        match write {
            Ok(()) => {
                return Ok(BootDecision {
                    slot: choice.slot,
                    reason: choice.reason,
                    state: next,
                    invalid_env,
                    skipped,
                });
            }
            Err(e) if e.kind() == ErrorKind::Refused => skipped.push(choice.slot),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{GRUB_VARS, UBOOT_VARS, grub_var};

    #[test]
    fn the_scripts_use_the_stored_names() {
        for copy in [1, 2] {
            for suffix in GRUB_VARS {
                let name = grub_var(copy, suffix);
                assert!(GRUB_FRAGMENT.contains(&format!("set {name}=")), "the fragment writes {name}");
                assert!(GRUB_FRAGMENT.contains(&format!("\"${name}\"")), "the fragment reads {name}");
            }
        }
        for name in UBOOT_VARS {
            assert!(UBOOT_SCRIPT.contains(&format!("${{{name}}}")), "the U-Boot script reads {name}");
        }
        for slot in ["A", "B"] {
            assert!(UBOOT_SCRIPT.contains(&format!("setexpr UPD_{slot}_TRY ${{UPD_{slot}_TRY}} - 1")));
            assert!(UBOOT_SCRIPT.contains(&format!("run update_boot_{}", slot.to_lowercase())));
        }
        assert!(UBOOT_SCRIPT.contains("update.slot=${upd_slot}"));
        assert!(GRUB_FRAGMENT.contains("set update_cmdline=\"update.slot=$update_slot\""));
    }

    #[test]
    fn a_trial_is_skipped_when_the_bootloader_cannot_record_it() {
        use update_core::blockdev::sim::SimDisk;
        let disk = SimDisk::new(2048);
        let mut env = crate::create_env(
            update_core::config::BootloaderKind::Grub,
            vec![Box::new(disk.part(0, 1024)), Box::new(disk.part(1024, 1024))],
            &BootState::initial(),
        )
        .unwrap();
        let trial = BootState::initial().begin_install(Slot::B).unwrap().switch_to(Slot::B, 2).unwrap();
        env.store(&trial).unwrap(); // copy 1 (SEQ 2) is current; a try goes to copy 2
        let mut p = disk.part(1024, 1024);
        update_core::blockdev::BlockDevice::write_at(&mut p, 0, &[0u8; 1024]).unwrap();
        let d = simulate_boot(env.as_mut()).unwrap();
        assert_eq!(
            (d.slot, d.reason, d.skipped.as_slice(), d.state),
            (Slot::A, BootReason::Committed, &[Slot::B][..], trial)
        );
        assert!(d.invalid_env.is_none());
    }
}
