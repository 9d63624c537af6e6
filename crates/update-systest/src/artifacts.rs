//! What every disk image is made of: the binaries (a statically linked `update` for the guest,
//! `update-tool` and `update-server` for the host), the Debian kernel with the modules the
//! guest needs, the busybox initramfs, and GRUB's BIOS core image.
//!
//! Cached under `target/system/`: the static build (cargo's own cache) and the kernel package
//! with its extracted files (`target/system/kernel/<package>/`), so a second run only rebuilds
//! the small things.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result, io};
use crate::util::{output, p, quiet, shell};
use crate::{cargo, workspace};

/// The Rust target of the guest binary.
const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Modules the guest loads from its initramfs (with their dependencies): the virtio disk and
/// network, ext4 for the root and data file systems, FAT for the ESP and boot partitions.
const MODULES: &[&str] =
    &["virtio_pci", "virtio_blk", "virtio_net", "ext4", "vfat", "nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859_1"];

/// Kernel-package paths to extract (tar wildcards).
const KERNEL_PATHS: &[&str] = &[
    "./boot/vmlinuz-*",
    "./lib/modules/*/modules.*",
    "./lib/modules/*/kernel/drivers/virtio",
    "./lib/modules/*/kernel/drivers/block/virtio_blk.ko",
    "./lib/modules/*/kernel/drivers/net/virtio_net.ko",
    "./lib/modules/*/kernel/drivers/net/net_failover.ko",
    "./lib/modules/*/kernel/net/core/failover.ko",
    "./lib/modules/*/kernel/fs/ext4",
    "./lib/modules/*/kernel/fs/jbd2",
    "./lib/modules/*/kernel/fs/mbcache.ko",
    "./lib/modules/*/kernel/fs/fat",
    "./lib/modules/*/kernel/fs/nls",
    "./lib/modules/*/kernel/lib",
    "./lib/modules/*/kernel/crypto",
    "./lib/modules/*/kernel/arch/x86/crypto",
];

/// GRUB modules built into core.img: disk, GPT, FAT, script, environment blocks, Linux loader,
/// serial console.
const GRUB_MODULES: &[&str] = &[
    "biosdisk",
    "part_gpt",
    "fat",
    "normal",
    "configfile",
    "loadenv",
    "test",
    "echo",
    "linux",
    "linux16",
    "serial",
    "terminal",
    "reboot",
    "halt",
];

/// Everything built or fetched once per run.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// `update`, statically linked (runs in the guest; also used on the host to provision).
    pub update: PathBuf,
    /// `update-tool` (host).
    pub update_tool: PathBuf,
    /// `update-server` (host).
    pub update_server: PathBuf,
    /// The Debian kernel.
    pub kernel: PathBuf,
    /// Its package name, e.g. `linux-image-6.1.0-57-amd64`.
    pub kernel_package: String,
    /// The busybox initramfs (gzip'ed newc cpio), the same in every release.
    pub initrd: PathBuf,
    /// GRUB's i386-pc core.img with prefix `(hd0,gpt2)/grub`.
    pub core_img: PathBuf,
    /// The static busybox.
    pub busybox: PathBuf,
}

/// `target/system/`.
pub fn system_dir() -> PathBuf {
    workspace().join("target/system")
}

fn host_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// Runs cargo in the workspace, its output going to ours. The variables cargo set for this
/// test process (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, …) are removed: build scripts (ring's)
/// name them in `rerun-if-env-changed`, so inheriting them would rebuild everything below ring.
fn build(cmd: &mut Command) -> Result {
    cmd.current_dir(workspace());
    let ours = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_TARGET_TMPDIR", "OUT_DIR"];
    for (name, _) in std::env::vars_os() {
        if ours.iter().any(|p| name.to_string_lossy().starts_with(p)) || name == "LD_LIBRARY_PATH" {
            cmd.env_remove(name);
        }
    }
    eprintln!("system-test: + {cmd:?}");
    let status = cmd.status().map_err(|e| Error::Tool { command: format!("{cmd:?}"), detail: e.to_string() })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Tool { command: format!("{cmd:?}"), detail: format!("failed with {status}") })
    }
}

/// Builds the binaries, fetches the kernel, makes the initramfs and core.img in `work`.
pub fn prepare(work: &Path) -> Result<Artifacts> {
    let sys = system_dir();
    std::fs::create_dir_all(work).map_err(io("create", work))?;
    // The guest binary: static, so it runs on the busybox rootfs without a C library.
    build(
        Command::new(cargo())
            .args(["build", "--release", "-p", "update-cli", "--target", GUEST_TARGET, "--target-dir"])
            .arg(&sys)
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )?;
    let update = sys.join(GUEST_TARGET).join("release/update");
    // Host tools: the workspace's debug build (the test suite has usually built it already).
    build(Command::new(cargo()).args(["build", "-p", "update-tool", "-p", "update-server"]))?;
    let host = host_target_dir().join("debug");
    let busybox = PathBuf::from("/bin/busybox");
    if !is_static_elf(&busybox) {
        return Err(Error::Setup("the guest needs a static /bin/busybox (Debian package busybox-static)".into()));
    }
    let (kernel_package, kdir) = kernel()?;
    let kver = only_child(&kdir.join("lib/modules"))?;
    let kernel = find_vmlinuz(&kdir)?;
    let initrd = initramfs(work, &kdir, &kver, &busybox)?;
    let core_img = work.join("core.img");
    quiet(
        Command::new("grub-mkimage")
            .args(["-O", "i386-pc", "-o"])
            .arg(&core_img)
            .args(["-p", "(hd0,gpt2)/grub"])
            .args(GRUB_MODULES),
    )?;
    Ok(Artifacts {
        update,
        update_tool: host.join("update-tool"),
        update_server: host.join("update-server"),
        kernel,
        kernel_package,
        initrd,
        core_img,
        busybox,
    })
}

/// Whether an ELF64 file has no program interpreter (PT_INTERP), i.e. runs without ld.so.
fn is_static_elf(file: &Path) -> bool {
    let Ok(b) = std::fs::read(file) else { return false };
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])));
    let u64_at = |o: usize| b.get(o..o + 8).and_then(|s| usize::try_from(u64::from_le_bytes(s.try_into().ok()?)).ok());
    if b.get(..5) != Some(b"\x7fELF\x02".as_slice()) {
        return false;
    }
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else { return false };
    (0..count).all(|i| b.get(phoff + i * size..phoff + i * size + 4) != Some([3u8, 0, 0, 0].as_slice()))
}

fn only_child(dir: &Path) -> Result<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io("read", dir))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names.pop().ok_or_else(|| Error::Setup(format!("{} is empty", dir.display())))
}

fn find_vmlinuz(kdir: &Path) -> Result<PathBuf> {
    let boot = kdir.join("boot");
    let name = only_child(&boot)?;
    Ok(boot.join(name))
}

/// The kernel package `linux-image-amd64` depends on, downloaded with `apt-get download` and
/// extracted into `target/system/kernel/<package>/` (once).
fn kernel() -> Result<(String, PathBuf)> {
    let cache = system_dir().join("kernel");
    std::fs::create_dir_all(&cache).map_err(io("create", &cache))?;
    let package = match output(Command::new("apt-cache").args(["depends", "linux-image-amd64"])) {
        Ok(text) => text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends:"))
            .map(str::trim)
            .find(|d| d.starts_with("linux-image-") && !d.starts_with('<'))
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::Setup(format!("apt-cache depends linux-image-amd64 names no kernel package:\n{text}"))
            })?,
        Err(e) => return Err(Error::Setup(format!("{e} (is this Debian, and has `apt-get update` run?)"))),
    };
    let dir = cache.join(&package);
    if dir.join("ok").exists() {
        return Ok((package, dir));
    }
    eprintln!("system-test: fetching {package} with apt-get download");
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).map_err(io("create", &debs))?;
    quiet(Command::new("apt-get").args(["download", "-q", &package]).current_dir(&debs))?;
    let deb = std::fs::read_dir(&debs)
        .map_err(io("read", &debs))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{package}_"))))
        .ok_or_else(|| Error::Setup(format!("apt-get download {package} left no .deb in {}", debs.display())))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let patterns: Vec<String> = KERNEL_PATHS.iter().map(|s| format!("'{s}'")).collect();
    shell(&format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards {}",
        p(&deb),
        p(&dir),
        patterns.join(" ")
    ))?;
    let kver = only_child(&dir.join("lib/modules"))?;
    quiet(Command::new("depmod").arg("-b").arg(&dir).arg(&kver))?;
    std::fs::write(dir.join("ok"), "").map_err(io("write", &dir))?;
    let _ = std::fs::remove_file(&deb);
    Ok((package, dir))
}

/// The initramfs: busybox, the modules in load order, and `tests/system/initramfs-init`.
fn initramfs(work: &Path, kdir: &Path, kver: &str, busybox: &Path) -> Result<PathBuf> {
    let root = work.join("initramfs");
    for d in ["bin", "proc", "sys", "dev", "newroot", "etc", "lib/modules"] {
        std::fs::create_dir_all(root.join(d)).map_err(io("create", &root))?;
    }
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(io("copy", busybox))?;
    let init = workspace().join("tests/system/initramfs-init");
    std::fs::copy(&init, root.join("init")).map_err(io("copy", &init))?;
    let mut order = Vec::new();
    for m in MODULES {
        let deps = output(Command::new("modprobe").arg("-d").arg(kdir).args(["-S", kver, "--show-depends", m]))?;
        for line in deps.lines() {
            let mut w = line.split_whitespace();
            if w.next() != Some("insmod") {
                continue; // "builtin ..." lines: nothing to load
            }
            let Some(file) = w.next() else { continue };
            let name = Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let entry = format!("/lib/modules/{name}");
            if !order.contains(&entry) {
                std::fs::copy(file, root.join("lib/modules").join(&name)).map_err(io("copy", Path::new(file)))?;
                order.push(entry);
            }
        }
    }
    order.push(String::new());
    std::fs::write(root.join("etc/modules.order"), order.join("\n")).map_err(io("write", &root))?;
    let out = work.join("initrd.gz");
    shell(&format!(
        "cd '{}' && chmod 755 init && find . | sort | cpio -o -H newc --quiet -R 0:0 | gzip -1 > '{}'",
        p(&root),
        p(&out)
    ))?;
    Ok(out)
}
