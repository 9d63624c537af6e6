//! Boot environments and the pure A/B boot-state machine of libupdate.
//!
//! # Design
//! - [`state`]: the [`BootState`] (boot order; per slot *ok* and *tries*) and its pure
//!   transitions — [`BootState::begin_install`], [`BootState::switch_to`] (the one atomic
//!   switch), [`BootState::mark_good`], [`BootState::mark_bad`], [`BootState::rollback`] — and
//!   [`BootState::boot`], the bootloader's algorithm. Nothing there writes: load once, transform,
//!   store once (Bottlerocket's signpost shape).
//! - [`store`]: the [`BootEnv`] trait (`load`, `store`) over
//!   [`update_core::blockdev::BlockDevice`]s, with three backends that all keep **two copies**
//!   and only ever write the copy that is not current: GRUB (two grubenv files), U-Boot (the
//!   redundant environment) and a plain file. A power cut at any write leaves the state from
//!   before or after the store; the torture test proves it at every write and flush.
//! - [`grubenv`] and [`ubootenv`]: the byte formats, interoperating with `grub-editenv` and
//!   `fw_printenv`/`fw_setenv` (tested against the real tools).
//! - [`simulate_boot`]: the Rust twin of the shipped bootloader scripts, [`GRUB_FRAGMENT`] and
//!   [`UBOOT_SCRIPT`].
//!
//! The reference for the stored variables, the protocol and bootloader integration is
//! `docs/reference/boot.md`.
//!
//! ```
//! use update_boot::{BootState, Slot, open_env, simulate_boot};
//! use update_core::blockdev::sim::SimDisk;
//! use update_core::config::BootloaderKind;
//!
//! let disk = SimDisk::new(2048);
//! let mut env = update_boot::create_env(
//!     BootloaderKind::Grub,
//!     vec![Box::new(disk.part(0, 1024)), Box::new(disk.part(1024, 1024))],
//!     &BootState::initial(),
//! )?;
//! // Install into B, then the one atomic switch with 3 tries.
//! let state = env.load()?.begin_install(Slot::B)?;
//! env.store(&state)?;
//! env.store(&state.switch_to(Slot::B, 3)?)?;
//! // Reboot: the bootloader uses a try of B.
//! let boot = simulate_boot(env.as_mut())?;
//! assert_eq!((boot.slot, boot.cmdline().as_str()), (Slot::B, "update.slot=B"));
//! // B passed its health checks.
//! let state = env.load()?.mark_good(boot.slot);
//! env.store(&state)?;
//! # let _ = open_env;
//! # Ok::<(), update_core::Error>(())
//! ```

mod crc32;
pub mod grubenv;
mod simulate;
pub mod state;
pub mod store;
pub mod ubootenv;

pub use simulate::{BootDecision, GRUB_FRAGMENT, UBOOT_SCRIPT, simulate_boot};
pub use state::{BootChoice, BootReason, BootState, Fallback, Slot, SlotState, fallback_happened};
pub use store::{
    BootEnv, CopyStatus, FileBootEnv, GRUB_VARS, GrubBootEnv, UBOOT_VARS, UbootBootEnv, create_configured, create_env,
    grub_var, is_invalid_env, open_configured, open_env,
};
