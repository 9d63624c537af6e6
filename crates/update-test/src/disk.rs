//! Disk images for simulated devices: a GPT image attached as a loop device with its partitions
//! made visible by `partx -a` (our kernels make no partition nodes for `losetup -P`, see
//! TEST-RIG.md), or plain files when loop devices are not available (not root).

use std::path::{Path, PathBuf};
use std::process::Command;

use update_core::{Error, Result};

/// One partition of the simulated disk.
#[derive(Debug, Clone)]
pub struct PartSpec {
    /// GPT partition name (also the file name in plain mode).
    pub label: &'static str,
    /// Size in MiB.
    pub size_mib: u64,
}

/// Runs a command, failing with its stderr.
///
/// # Errors
/// [`Error::Other`] with the command and its output.
pub fn sh(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| Error::Other(format!("cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Other(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether this process can attach loop devices (root, and `losetup` works).
#[must_use]
pub fn can_use_loop_devices() -> bool {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    root && Path::new("/dev/loop-control").exists() && Command::new("partx").arg("--version").output().is_ok()
}

/// A GPT disk image attached to a loop device; detached on drop.
#[derive(Debug)]
pub struct LoopDisk {
    /// The image file.
    pub image: PathBuf,
    /// `/dev/loopN`.
    pub device: String,
    /// Partition nodes in table order (`/dev/loopNp1` …).
    pub partitions: Vec<PathBuf>,
}

impl LoopDisk {
    /// Creates the image with a GPT table of `parts`, attaches it and exposes the partitions.
    ///
    /// # Errors
    /// When sfdisk, losetup or partx fail.
    pub fn create(image: &Path, parts: &[PartSpec]) -> Result<Self> {
        let total: u64 = parts.iter().map(|p| p.size_mib).sum::<u64>() + 2;
        let f = std::fs::File::create(image).map_err(|e| Error::io("create", image, e))?;
        f.set_len(total << 20).map_err(|e| Error::io("size", image, e))?;
        drop(f);
        let mut table = String::from("label: gpt\n");
        for p in parts {
            table.push_str(&format!(
                "size={}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"{}\"\n",
                p.size_mib, p.label
            ));
        }
        let mut child = Command::new("sfdisk")
            .arg("--quiet")
            .arg(image)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| Error::Other(format!("cannot run sfdisk (install fdisk): {e}")))?;
        std::io::Write::write_all(child.stdin.as_mut().expect("piped"), table.as_bytes())
            .map_err(|e| Error::Other(format!("sfdisk: {e}")))?;
        if !child.wait().map_err(|e| Error::Other(e.to_string()))?.success() {
            return Err(Error::Other("sfdisk failed to write the partition table".into()));
        }
        let device = sh(Command::new("losetup").args(["-f", "--show"]).arg(image))?.trim().to_owned();
        let mut disk = LoopDisk { image: image.to_owned(), device: device.clone(), partitions: Vec::new() };
        if let Err(e) = sh(Command::new("partx").args(["-a", &device])) {
            // Something else (udev reacting to the new loop device) may add some partitions
            // first, and `partx -a` then fails for those: `-u` adds what is missing and keeps
            // what is there. Fail only if a partition is still absent.
            let _ = sh(Command::new("partx").args(["-u", &device]));
            let name = device.trim_start_matches("/dev/");
            if (1..=parts.len()).any(|i| !Path::new(&format!("/sys/block/{name}/{name}p{i}")).exists()) {
                return Err(e);
            }
        }
        let partitions: Vec<PathBuf> = (1..=parts.len()).map(|i| PathBuf::from(format!("{device}p{i}"))).collect();
        for p in &partitions {
            // udev may create nodes late or not at all: wait briefly, then make them by hand.
            for _ in 0..50 {
                if p.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if !p.exists() {
                make_node_from_sysfs(p)?;
            }
        }
        disk.partitions = partitions;
        Ok(disk)
    }

    /// Detaches the loop device (also done on drop).
    pub fn detach(&mut self) {
        if self.device.is_empty() {
            return;
        }
        let _ = Command::new("partx").args(["-d", &self.device]).output();
        let _ = Command::new("losetup").args(["-d", &self.device]).output();
        self.device.clear();
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        self.detach();
    }
}

fn make_node_from_sysfs(node: &Path) -> Result<()> {
    let name = node.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let disk = name.split('p').next().unwrap_or_default();
    let dev = std::fs::read_to_string(format!("/sys/block/{disk}/{name}/dev"))
        .map_err(|e| Error::Other(format!("partition {name} did not appear: {e}")))?;
    let (ma, mi) = dev.trim().split_once(':').ok_or_else(|| Error::Other(format!("bad sysfs dev {dev}")))?;
    sh(Command::new("mknod").arg(node).args(["b", ma, mi]))?;
    Ok(())
}

/// Makes an ext4 image of `size_mib` MiB from the directory `src` (no root needed).
///
/// # Errors
/// When mkfs.ext4 fails.
pub fn make_ext4(image: &Path, src: &Path, label: &str, size_mib: u64) -> Result<()> {
    mkfs_ext4(image, src, label, size_mib, &[])
}

/// [`make_ext4`] with 4 KiB blocks, as a real root file system has: mkfs.ext4 picks 1 KiB blocks
/// for a file system under 512 MiB, so a file's blocks would not line up with an image's 4 KiB
/// blocks the way they do on a device (what a delta update looks for).
///
/// # Errors
/// When mkfs.ext4 fails.
pub fn make_ext4_4k(image: &Path, src: &Path, label: &str, size_mib: u64) -> Result<()> {
    mkfs_ext4(image, src, label, size_mib, &["-b", "4096"])
}

fn mkfs_ext4(image: &Path, src: &Path, label: &str, size_mib: u64, extra: &[&str]) -> Result<()> {
    let _ = std::fs::remove_file(image);
    sh(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", label, "-E", "lazy_itable_init=0,lazy_journal_init=0"])
        .args(extra)
        .arg("-d")
        .arg(src)
        .arg(image)
        .arg(format!("{size_mib}M"))
        .env("E2FSPROGS_FAKE_TIME", "1700000000"))?;
    Ok(())
}

/// Reads a file from an ext4 image or device without mounting it (`debugfs -R cat`).
///
/// # Errors
/// When debugfs fails.
pub fn ext4_cat(device: &Path, file: &str) -> Result<String> {
    sh(Command::new("debugfs").args(["-R", &format!("cat {file}")]).arg(device).stderr(std::process::Stdio::null()))
}

/// Reads a file from an ext4 image or device without mounting it, byte for byte; a file that is
/// not there is an error (debugfs itself exits 0 then). `device` may be `image?offset=BYTES` for
/// a file system inside a disk image.
///
/// # Errors
/// When debugfs cannot run, fails, or does not find the file.
pub fn ext4_read(device: &Path, file: &str) -> Result<Vec<u8>> {
    let out = Command::new("debugfs")
        .args(["-R", &format!("cat {file}")])
        .arg(device)
        .output()
        .map_err(|e| Error::Other(format!("cannot run debugfs (install e2fsprogs): {e}")))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || err.contains("File not found") || err.contains("not found by ext2_lookup") {
        return Err(Error::Other(format!("debugfs: cat {file} in {}: {}", device.display(), err.trim())));
    }
    Ok(out.stdout)
}

/// Detaches every loop device backed by `image` (and its partitions).
///
/// # Errors
/// When losetup cannot be run.
pub fn detach_image(image: &Path) -> Result<()> {
    if !image.exists() {
        return Ok(());
    }
    let out = sh(Command::new("losetup").arg("-j").arg(image))?;
    for line in out.lines() {
        if let Some(dev) = line.split(':').next() {
            let _ = Command::new("partx").args(["-d", dev]).output();
            let _ = Command::new("losetup").args(["-d", dev]).output();
        }
    }
    Ok(())
}
