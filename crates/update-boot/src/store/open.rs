//! Opening and provisioning a boot environment from its devices or from the device config.

use std::path::Path;

use update_core::blockdev::{BlockDevice, FileDevice};
use update_core::config::{BootConfig, BootloaderKind};
use update_core::{Error, Paths, Result};

use super::{BootEnv, FileBootEnv, GrubBootEnv, UbootBootEnv};
use crate::grubenv::{self, GrubEnvBlock};
use crate::state::BootState;

/// Opens the boot environment of `kind` over its copies: GRUB and U-Boot take two devices (one
/// per copy); the file backend takes two, or one that it splits in halves. Nothing is written.
///
/// # Errors
/// [`Error::InvalidValue`] for the wrong number or size of devices.
pub fn open_env(kind: BootloaderKind, devices: Vec<Box<dyn BlockDevice>>) -> Result<Box<dyn BootEnv>> {
    Ok(match kind {
        BootloaderKind::Grub => Box::new(GrubBootEnv::new(devices)?),
        BootloaderKind::Uboot => Box::new(UbootBootEnv::new(devices)?),
        BootloaderKind::File => Box::new(FileBootEnv::new(devices)?),
    })
}

/// Writes `initial` into both copies (two ordinary stores, each power-cut safe) and returns the
/// environment. For U-Boot the board's variables are kept; a U-Boot environment with no valid
/// copy is refused (see [`UbootBootEnv::with_default_env`]).
///
/// # Errors
/// As [`open_env`] and [`BootEnv::store`].
pub fn create_env(
    kind: BootloaderKind,
    devices: Vec<Box<dyn BlockDevice>>,
    initial: &BootState,
) -> Result<Box<dyn BootEnv>> {
    let mut env = open_env(kind, devices)?;
    env.store(initial)?;
    env.store(initial)?;
    Ok(env)
}

/// The default size of a copy when the config says `size = 0` and the file is created here.
fn default_copy_size(kind: BootloaderKind) -> u64 {
    match kind {
        BootloaderKind::Grub => grubenv::BLOCK_SIZE as u64,
        BootloaderKind::Uboot | BootloaderKind::File => 4096,
    }
}

fn open_devices(boot: &BootConfig, paths: &Paths, create: bool) -> Result<Vec<Box<dyn BlockDevice>>> {
    let mut devices: Vec<Box<dyn BlockDevice>> = Vec::new();
    for loc in &boot.env {
        let path = paths.resolve(&loc.path);
        if create && boot.bootloader != BootloaderKind::Uboot && !path.exists() {
            create_copy_file(&path, boot.bootloader, if loc.size == 0 { None } else { Some(loc.size) }, loc.offset)?;
        }
        let size = match (loc.size, boot.bootloader) {
            (0, BootloaderKind::Uboot) => {
                return Err(Error::InvalidValue {
                    what: "U-Boot environment size".into(),
                    value: loc.path.display().to_string(),
                    reason: "give the env size (CONFIG_ENV_SIZE, the third column of fw_env.config)".into(),
                });
            }
            (0, _) => None,
            (n, _) => Some(n),
        };
        devices.push(Box::new(FileDevice::open_window(&path, loc.offset, size, true)?));
    }
    Ok(devices)
}

fn create_copy_file(path: &Path, kind: BootloaderKind, size: Option<u64>, offset: u64) -> Result<()> {
    let size = size.unwrap_or_else(|| default_copy_size(kind));
    let bytes = match kind {
        // An empty environment block, so GRUB and grub-editenv accept the file at once.
        BootloaderKind::Grub => GrubEnvBlock::new().encode(usize::try_from(size).unwrap_or(usize::MAX))?,
        _ => vec![0; usize::try_from(size).unwrap_or(usize::MAX)],
    };
    let mut all = vec![0; usize::try_from(offset).unwrap_or(0)];
    all.extend_from_slice(&bytes);
    // Created once, before any bootloader knows the file; later writes are in place.
    update_core::atomic::write_atomic(path, &all, 0o644)
}

/// Opens the boot environment a device config names (`[native.boot]`), with every path
/// re-rooted by `paths`. `size = 0` means the whole file from `offset` (GRUB, file); U-Boot
/// needs the size.
///
/// # Errors
/// [`Error::Io`] naming the path; as [`open_env`].
pub fn open_configured(boot: &BootConfig, paths: &Paths) -> Result<Box<dyn BootEnv>> {
    open_env(boot.bootloader, open_devices(boot, paths, false)?)
}

/// Provisions the boot environment a device config names: creates missing GRUB/file copies
/// (GRUB: an empty 1024-byte environment block; file: 4096 zero bytes, unless `size` is given),
/// then [`create_env`] with `initial`. U-Boot environments must already exist.
///
/// # Errors
/// As [`open_configured`] and [`create_env`].
pub fn create_configured(boot: &BootConfig, paths: &Paths, initial: &BootState) -> Result<Box<dyn BootEnv>> {
    create_env(boot.bootloader, open_devices(boot, paths, true)?, initial)
}
