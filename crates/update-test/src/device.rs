//! A simulated A/B device under a root directory.
//!
//! Layout (all below the root, so `update --root ROOT` drives it):
//! - `disk.img`: a GPT image (boot-a, boot-b, rootfs-a, rootfs-b, data) attached as a loop
//!   device with `partx -a` when running as root; `dev/disk/by-partlabel/<label>` are symlinks to
//!   the partition nodes. Without root the same names are plain files.
//! - `boot/update/env1`, `env2`: the two copies of the boot environment.
//! - `etc/update/update.toml`: the `[native]` description of the above.
//! - `proc/cmdline`: `update.slot=A|B`, written by [`SimDevice::reboot`], which runs the boot
//!   algorithm of the shipped GRUB fragment (`update_boot::BootState::boot`) against the env.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use update_boot::Slot;
use update_core::config::{BootConfig, BootloaderKind, Config, EnvLocation, NativeConfig, SlotPair};
use update_core::{Error, Paths, Result, SlotGroupName, Version};

use crate::disk::{LoopDisk, PartSpec, can_use_loop_devices, ext4_cat, make_ext4};

/// How to build the device.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Use a GPT image on a loop device (needs root); otherwise plain files.
    pub loop_devices: bool,
    /// Size of each rootfs slot in MiB.
    pub rootfs_mib: u64,
    /// Size of each boot (kernel) slot in MiB.
    pub boot_mib: u64,
    /// Size of the data partition in MiB.
    pub data_mib: u64,
    /// The board name.
    pub compatible: String,
    /// The factory version in slot A.
    pub version: Version,
    /// The bootloader environment format.
    pub bootloader: BootloaderKind,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            loop_devices: can_use_loop_devices(),
            rootfs_mib: 64,
            boot_mib: 8,
            data_mib: 16,
            compatible: "demo-board".into(),
            version: Version::new(1, 0, 0),
            bootloader: BootloaderKind::Grub,
        }
    }
}

/// A simulated device.
#[derive(Debug)]
pub struct SimDevice {
    /// The root directory.
    pub root: PathBuf,
    /// The native description written to the config.
    pub native: NativeConfig,
    loop_disk: Option<LoopDisk>,
}

const LABELS: [&str; 5] = ["boot-a", "boot-b", "rootfs-a", "rootfs-b", "data"];

fn group(name: &str) -> SlotGroupName {
    SlotGroupName::new(name).expect("valid")
}

/// The content of a rootfs of `version` whose health check says `health`: a directory tree
/// with `/etc/version`, `/etc/health` and some payload, made into an ext4 image of `mib` MiB.
///
/// # Errors
/// When mkfs.ext4 fails.
pub fn make_rootfs(image: &Path, version: &str, health: &str, mib: u64, payload_kib: usize) -> Result<()> {
    let dir = image.with_extension("d");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("etc")).map_err(|e| Error::io("create", &dir, e))?;
    std::fs::create_dir_all(dir.join("usr/lib/app")).map_err(|e| Error::io("create", &dir, e))?;
    std::fs::write(dir.join("etc/version"), format!("{version}\n")).map_err(|e| Error::io("write", &dir, e))?;
    std::fs::write(dir.join("etc/health"), format!("{health}\n")).map_err(|e| Error::io("write", &dir, e))?;
    // Payload: compressible text and incompressible bytes, like a real root filesystem.
    let mut text = String::new();
    while text.len() < payload_kib * 512 {
        text.push_str(&format!("libupdate demo rootfs {version}: line {}\n", text.len()));
    }
    std::fs::write(dir.join("usr/lib/app/notes.txt"), text).map_err(|e| Error::io("write", &dir, e))?;
    let mut random = vec![0u8; payload_kib * 512];
    getrandom::fill(&mut random).map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(dir.join("usr/lib/app/blob.bin"), random).map_err(|e| Error::io("write", &dir, e))?;
    let r = make_ext4(image, &dir, &format!("rootfs-{version}"), mib);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// A stand-in kernel image: `size` bytes that start with the version.
///
/// # Errors
/// I/O errors.
pub fn make_kernel(image: &Path, version: &str, size: usize) -> Result<()> {
    let mut bytes = vec![0u8; size];
    getrandom::fill(&mut bytes).map_err(|e| Error::Other(e.to_string()))?;
    let tag = format!("libupdate demo kernel {version}\n");
    bytes[..tag.len()].copy_from_slice(tag.as_bytes());
    std::fs::write(image, bytes).map_err(|e| Error::io("write", image, e))
}

/// Copies `image` onto `device` from offset 0 and fsyncs (factory flashing).
///
/// # Errors
/// I/O errors.
pub fn flash(image: &Path, device: &Path) -> Result<()> {
    let mut src = std::fs::File::open(image).map_err(|e| Error::io("open", image, e))?;
    let mut dst = std::fs::OpenOptions::new().write(true).open(device).map_err(|e| Error::io("open", device, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf).map_err(|e| Error::io("read", image, e))?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n]).map_err(|e| Error::io("write", device, e))?;
    }
    dst.sync_all().map_err(|e| Error::io("fsync", device, explain_loop_eio(e, image)))
}

/// A loop device turns a full backing filesystem into `EIO` at fsync: say how much room is left
/// (measured where the images live, which is on the same filesystem as the disk image).
fn explain_loop_eio(e: std::io::Error, image: &Path) -> std::io::Error {
    if e.raw_os_error() != Some(5) {
        return e;
    }
    let probe = image.parent().unwrap_or(image);
    match rustix::fs::statvfs(probe) {
        Ok(st) => {
            let free_mib = st.f_bavail.saturating_mul(st.f_frsize) >> 20;
            std::io::Error::new(
                e.kind(),
                format!(
                    "{e}; {free_mib} MiB free where {} is: a loop device reports a full backing filesystem as an I/O error",
                    probe.display()
                ),
            )
        }
        Err(_) => e,
    }
}

/// SHA-256 of the first `len` bytes of a file or device.
///
/// # Errors
/// I/O errors.
pub fn hash_prefix(path: &Path, len: u64) -> Result<String> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut h = Sha256::new();
    let mut r = f.take(len);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

impl SimDevice {
    /// Builds a device under `root` with the factory version in slot A.
    ///
    /// # Errors
    /// When a tool (sfdisk, losetup, partx, mkfs.ext4) or a write fails.
    pub fn create(root: &Path, opts: &SimOptions) -> Result<Self> {
        let paths = Paths::new(root);
        let bylabel = root.join("dev/disk/by-partlabel");
        std::fs::create_dir_all(&bylabel).map_err(|e| Error::io("create", &bylabel, e))?;
        let sizes = [opts.boot_mib, opts.boot_mib, opts.rootfs_mib, opts.rootfs_mib, opts.data_mib];
        let mut loop_disk = None;
        if opts.loop_devices {
            let parts: Vec<PartSpec> =
                LABELS.iter().zip(sizes).map(|(l, s)| PartSpec { label: l, size_mib: s }).collect();
            let disk = LoopDisk::create(&root.join("disk.img"), &parts)?;
            for (label, node) in LABELS.iter().zip(&disk.partitions) {
                let link = bylabel.join(label);
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(node, &link).map_err(|e| Error::io("symlink", &link, e))?;
            }
            loop_disk = Some(disk);
        } else {
            for (label, size) in LABELS.iter().zip(sizes) {
                let p = bylabel.join(label);
                let f = std::fs::File::create(&p).map_err(|e| Error::io("create", &p, e))?;
                f.set_len(size << 20).map_err(|e| Error::io("size", &p, e))?;
            }
        }
        // Boot environment copies (created by provisioning below).
        let env_size: u64 = match opts.bootloader {
            BootloaderKind::Uboot => 0x2000,
            _ => 0,
        };
        if opts.bootloader == BootloaderKind::Uboot {
            let env_dir = root.join("boot/update");
            std::fs::create_dir_all(&env_dir).map_err(|e| Error::io("create", &env_dir, e))?;
            for name in ["env1", "env2"] {
                let p = env_dir.join(name);
                std::fs::write(&p, vec![0u8; 0x2000]).map_err(|e| Error::io("write", &p, e))?;
            }
        }
        let native = NativeConfig {
            compatible: opts.compatible.clone(),
            boot: BootConfig {
                bootloader: opts.bootloader,
                env: vec![
                    EnvLocation { path: "/boot/update/env1".into(), offset: 0, size: env_size },
                    EnvLocation { path: "/boot/update/env2".into(), offset: 0, size: env_size },
                ],
            },
            slots: BTreeMap::from([
                (
                    group("kernel"),
                    SlotPair { a: "/dev/disk/by-partlabel/boot-a".into(), b: "/dev/disk/by-partlabel/boot-b".into() },
                ),
                (
                    group("rootfs"),
                    SlotPair {
                        a: "/dev/disk/by-partlabel/rootfs-a".into(),
                        b: "/dev/disk/by-partlabel/rootfs-b".into(),
                    },
                ),
            ]),
            data: vec!["/dev/disk/by-partlabel/data".into()],
            reboot_command: None,
        };
        let mut config = Config::load(&paths).unwrap_or_default();
        config.native = Some(native.clone());
        config.store(&paths)?;
        // Factory content: version in slot A, user data on the data partition.
        let images = root.join("factory");
        std::fs::create_dir_all(&images).map_err(|e| Error::io("create", &images, e))?;
        let v = opts.version.to_string();
        make_rootfs(&images.join("rootfs.img"), &v, "ok", opts.rootfs_mib.min(32), 256)?;
        flash(&images.join("rootfs.img"), &bylabel.join("rootfs-a"))?;
        make_kernel(&images.join("kernel.img"), &v, 1 << 20)?;
        flash(&images.join("kernel.img"), &bylabel.join("boot-a"))?;
        let data_src = images.join("data.d");
        std::fs::create_dir_all(data_src.join("user")).map_err(|e| Error::io("create", &data_src, e))?;
        std::fs::write(data_src.join("user/notes.txt"), format!("written by the user at version {v}\n"))
            .map_err(|e| Error::io("write", &data_src, e))?;
        make_ext4(&images.join("data.img"), &data_src, "data", opts.data_mib)?;
        flash(&images.join("data.img"), &bylabel.join("data"))?;
        std::fs::remove_dir_all(&images).map_err(|e| Error::io("remove", &images, e))?;
        update_native::provision(&paths, &native, &opts.version)?;
        let dev = SimDevice { root: root.to_owned(), native, loop_disk };
        dev.write_cmdline(Slot::A)?;
        Ok(dev)
    }

    /// Leaves the loop device attached after this value is dropped (for `update-sim create`).
    pub fn keep_attached(&mut self) {
        if let Some(d) = self.loop_disk.take() {
            std::mem::forget(d);
        }
    }

    /// The layout.
    #[must_use]
    pub fn paths(&self) -> Paths {
        Paths::new(&self.root)
    }

    /// The device (under the root) of a slot group's slot.
    #[must_use]
    pub fn slot_device(&self, group: &str, slot: Slot) -> PathBuf {
        let pair = &self.native.slots[&SlotGroupName::new(group).expect("valid")];
        self.paths().resolve(match slot {
            Slot::A => &pair.a,
            Slot::B => &pair.b,
        })
    }

    /// The data partition (under the root).
    #[must_use]
    pub fn data_device(&self) -> PathBuf {
        self.paths().resolve(&self.native.data[0])
    }

    fn write_cmdline(&self, slot: Slot) -> Result<()> {
        write_cmdline(&self.paths(), slot)
    }

    /// "Reboots": runs the bootloader algorithm against the environment (writing what the
    /// bootloader writes) and records the chosen slot on the kernel command line.
    ///
    /// # Errors
    /// Environment I/O errors.
    pub fn reboot(&self) -> Result<Slot> {
        reboot_root(&self.root)
    }

    /// Reads a file of the booted rootfs without mounting it.
    ///
    /// # Errors
    /// When debugfs fails.
    pub fn read_rootfs_file(&self, slot: Slot, file: &str) -> Result<String> {
        ext4_cat(&self.slot_device("rootfs", slot), file)
    }
}

/// Reboots the simulated device under `root` (see [`SimDevice::reboot`]).
///
/// # Errors
/// Config or environment errors.
pub fn reboot_root(root: &Path) -> Result<Slot> {
    let paths = Paths::new(root);
    let config = Config::load(&paths)?;
    let native = config.native.ok_or_else(|| Error::Other("no [native] table: not a simulated device".into()))?;
    let driver = update_native::NativeDriver::new(native, paths.clone());
    let mut env = driver.open_env()?;
    let decision = update_boot::simulate_boot(env.as_mut())?;
    let slot = decision.slot;
    write_cmdline(&paths, slot)?;
    Ok(slot)
}

/// Writes the kernel command line the shipped bootloader scripts give a booted slot.
fn write_cmdline(paths: &Paths, slot: Slot) -> Result<()> {
    let p = paths.kernel_cmdline();
    std::fs::create_dir_all(p.parent().expect("has parent")).map_err(|e| Error::io("create", &p, e))?;
    std::fs::write(
        &p,
        format!("console=ttyS0 root=PARTLABEL=rootfs-{} update.slot={slot}\n", slot.as_str().to_lowercase()),
    )
    .map_err(|e| Error::io("write", &p, e))
}

/// The health check of the demo: the booted rootfs's `/etc/health` must say `ok`.
///
/// # Errors
/// When the booted slot or its rootfs cannot be read; [`Error::Refused`] when unhealthy.
pub fn health(root: &Path) -> Result<String> {
    let paths = Paths::new(root);
    let config = Config::load(&paths)?;
    let native = config.native.ok_or_else(|| Error::Other("no [native] table".into()))?;
    let driver = update_native::NativeDriver::new(native.clone(), paths.clone());
    let slot = driver.booted_slot()?;
    let pair = &native.slots[&group("rootfs")];
    let dev = paths.resolve(match slot {
        Slot::A => &pair.a,
        Slot::B => &pair.b,
    });
    let health = ext4_cat(&dev, "/etc/health")?;
    let version = ext4_cat(&dev, "/etc/version")?;
    if health.trim() == "ok" {
        Ok(format!("slot {slot} ({}) is healthy", version.trim()))
    } else {
        Err(Error::Refused(format!(
            "slot {slot} ({}) health check failed: /etc/health says {:?}",
            version.trim(),
            health.trim()
        )))
    }
}

/// Copies the host program `host` into the device root at `device_path` (mode 0755): under
/// `--root` only programs inside the root run (health checks, reboot commands), so a simulated
/// device carries the ones it uses.
///
/// # Errors
/// I/O errors naming the file.
pub fn install_program(root: &Path, host: &Path, device_path: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dest = update_core::Paths::new(root).resolve(device_path);
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let tmp = dest.with_extension("new");
    std::fs::copy(host, &tmp).map_err(|e| Error::io("copy program into the device root", &tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).map_err(|e| Error::io("chmod", &tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io("rename", &dest, e))?;
    Ok(dest)
}

/// Where `update-sim create` puts itself inside the device root, and the device's safe
/// `reboot-command`: `[SIM_PROGRAM, "reboot"]` (it finds the root in `UPDATE_ROOT`).
pub const SIM_PROGRAM: &str = "/usr/sbin/update-sim";
