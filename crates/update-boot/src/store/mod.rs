//! Power-cut-safe storage of the [`BootState`]: the [`BootEnv`] trait and its three backends.
//!
//! Every backend keeps **two copies** and writes only the copy that is *not* current, then
//! flushes; a load takes the newest valid copy. A power cut at any write therefore leaves either
//! the old current copy (the new one is torn, invalid or older) or the new one: the loaded state
//! is the state before or after the interrupted store, never a mixture, never nothing
//! (`tests/power_cut_torture.rs` cuts at every write and flush and checks exactly that).
//!
//! | backend | copies | valid when | newest |
//! |---|---|---|---|
//! | [`GrubBootEnv`] | two grubenv files, variables `UPD1_*` / `UPD2_*` | signature, every variable well formed, `SEQ` = `END` | `SEQ` counts 0,1,2,0…: copy 2 is newer iff its `SEQ` is copy 1's plus one (mod 3) |
//! | [`UbootBootEnv`] | the redundant U-Boot env, variables `UPD_*` | CRC-32 | the flag byte (libubootenv's rule) |
//! | [`FileBootEnv`] | two text copies (two devices, or two halves of one) | CRC-32 line | the larger `seq` |
//!
//! The GRUB validity check is what GRUB script can evaluate (no arithmetic, no checksums):
//! each copy's variables are written between `SEQ` and `END`, which carry the same number, so
//! a write torn inside the variables leaves a copy whose `SEQ` and `END` differ. The shipped
//! fragment ([`crate::GRUB_FRAGMENT`]) and this module apply the same rules.

mod copies;
mod file;
mod grub;
mod open;
mod uboot;

use update_core::config::BootloaderKind;
use update_core::{Error, ErrorKind, Result};

use crate::state::BootState;

pub use file::FileBootEnv;
pub use grub::{GRUB_VARS, GrubBootEnv, grub_var};
pub use open::{create_configured, create_env, open_configured, open_env};
pub use uboot::{UBOOT_VARS, UbootBootEnv};

/// Where the boot state lives: load it once, change it with the pure [`BootState`]
/// transitions, store it once.
pub trait BootEnv {
    /// Loads the state from the newest valid copy.
    ///
    /// # Errors
    /// [`Error::Verification`] naming the devices when no copy is valid; I/O errors.
    fn load(&mut self) -> Result<BootState>;

    /// Stores `state` power-cut safely: writes the copy that is not current, then flushes.
    ///
    /// # Errors
    /// I/O errors naming the device; [`Error::Refused`] when the backend cannot write safely
    /// (a U-Boot environment with no valid copy and no default environment).
    fn store(&mut self, state: &BootState) -> Result<()>;

    /// The write the bootloader itself makes when it uses a try (used by
    /// [`crate::simulate_boot`]). The default is [`BootEnv::store`]. GRUB's `save_env` can only
    /// update a file that already holds an environment block, so the GRUB backend refuses
    /// ([`Error::Refused`]) where GRUB would fail.
    ///
    /// # Errors
    /// As [`BootEnv::store`].
    fn store_from_bootloader(&mut self, state: &BootState) -> Result<()> {
        self.store(state)
    }

    /// The condition of each copy (for `update status` and tests).
    ///
    /// # Errors
    /// I/O errors.
    fn inspect(&mut self) -> Result<Vec<CopyStatus>>;

    /// The bootloader this environment is for.
    fn kind(&self) -> BootloaderKind;

    /// The devices, for messages.
    fn describe(&self) -> String;
}

/// The condition of one stored copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStatus {
    /// The device (and offset) holding the copy.
    pub device: String,
    /// The copy's sequence number (GRUB: 0–2; U-Boot: the flag byte; file: the counter)
    /// when it is valid.
    pub sequence: Option<u64>,
    /// Whether this is the copy a load uses.
    pub current: bool,
    /// What is wrong with an invalid copy.
    pub problem: Option<String>,
}

/// Whether an error from [`BootEnv::load`] means "no valid stored state" (the bootloader then
/// boots the initial state) rather than an I/O failure.
#[must_use]
pub fn is_invalid_env(err: &Error) -> bool {
    err.kind() == ErrorKind::Verification
}

#[cfg(test)]
mod tests {
    use update_core::blockdev::sim::SimDisk;

    use super::*;
    use crate::grubenv::GrubEnvBlock;
    use crate::state::Slot;
    use crate::ubootenv::{self, UbootEnv};

    fn sim_env(kind: BootloaderKind, disk: &SimDisk, size: u64) -> Box<dyn BootEnv> {
        open_env(kind, vec![Box::new(disk.part(0, size)), Box::new(disk.part(size, size))]).unwrap()
    }

    #[test]
    fn every_backend_round_trips_and_alternates_copies() {
        for kind in [BootloaderKind::Grub, BootloaderKind::File] {
            let disk = SimDisk::new(2048);
            let mut env = sim_env(kind, &disk, 1024);
            assert!(is_invalid_env(&env.load().unwrap_err()));
            let s1 = BootState::initial();
            let s2 = s1.begin_install(Slot::B).unwrap().switch_to(Slot::B, 3).unwrap();
            env.store(&s1).unwrap();
            assert_eq!(env.load().unwrap(), s1);
            env.store(&s2).unwrap();
            assert_eq!(env.load().unwrap(), s2);
            let st = env.inspect().unwrap();
            assert_eq!(st.iter().map(|c| c.current).collect::<Vec<_>>(), [false, true], "{kind:?}");
            for round in 0..7 {
                let s = if round % 2 == 0 { s1 } else { s2 };
                env.store(&s).unwrap();
                assert_eq!(env.load().unwrap(), s, "{kind:?} round {round}");
            }
        }
    }

    #[test]
    fn grub_copies_use_their_own_names() {
        let disk = SimDisk::new(2048);
        let env = create_env(
            BootloaderKind::Grub,
            vec![Box::new(disk.part(0, 1024)), Box::new(disk.part(1024, 1024))],
            &BootState::initial(),
        )
        .unwrap();
        drop(env);
        let bytes = disk.contents();
        let c1 = GrubEnvBlock::parse(&bytes[..1024]).unwrap();
        let c2 = GrubEnvBlock::parse(&bytes[1024..]).unwrap();
        assert_eq!(
            c1.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>(),
            [
                "UPD1_SEQ=0",
                "UPD1_ORDER=A B",
                "UPD1_A_OK=1",
                "UPD1_A_TRY=0",
                "UPD1_B_OK=0",
                "UPD1_B_TRY=0",
                "UPD1_END=0"
            ]
        );
        assert_eq!(c2.get("UPD2_SEQ"), Some("1"));
    }

    #[test]
    fn uboot_refuses_to_write_without_a_valid_copy_and_keeps_board_variables() {
        let disk = SimDisk::new(1024);
        let mut env = UbootBootEnv::new(vec![Box::new(disk.part(0, 512)), Box::new(disk.part(512, 512))]).unwrap();
        let err = env.store(&BootState::initial()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Refused);
        let mut base = UbootEnv::new();
        base.set("bootcmd", "run update_boot").unwrap();
        let mut env = env.with_default_env(base);
        assert_eq!(env.load().unwrap(), BootState::initial());
        let s = BootState::initial().begin_install(Slot::B).unwrap();
        env.store(&s).unwrap();
        env.store(&s.switch_to(Slot::B, 2).unwrap()).unwrap();
        assert_eq!(env.load().unwrap(), s.switch_to(Slot::B, 2).unwrap());
        let copy = ubootenv::decode_copy(&disk.contents()[512..], true).unwrap();
        assert_eq!(copy.env.get("bootcmd"), Some("run update_boot"));
        assert_eq!(copy.env.get("UPD_ORDER"), Some("B A"));
        assert_eq!(copy.flag, Some(2));
    }

    #[test]
    fn wrong_device_counts_are_refused() {
        let disk = SimDisk::new(4096);
        assert!(open_env(BootloaderKind::Grub, vec![Box::new(disk.part(0, 1024))]).is_err());
        assert!(
            open_env(BootloaderKind::Grub, vec![Box::new(disk.part(0, 100)), Box::new(disk.part(100, 100))]).is_err()
        );
        assert!(
            open_env(BootloaderKind::Uboot, vec![Box::new(disk.part(0, 512)), Box::new(disk.part(512, 1024))]).is_err()
        );
        let mut one = open_env(BootloaderKind::File, vec![Box::new(disk.part(0, 1024))]).unwrap();
        one.store(&BootState::initial()).unwrap();
        assert_eq!(one.load().unwrap(), BootState::initial());
    }
}
