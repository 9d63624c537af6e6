//! Is a slot in use? A slot that is mounted (or, for an image file, attached to a loop device)
//! must never be written: the plan refuses it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Why a path is busy, if it is.
#[must_use]
pub fn busy_reason(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.file_type().is_block_device() {
        let rdev = meta.rdev();
        let (major, minor) = (major(rdev), minor(rdev));
        if let Some(mp) = mount_point_of(major, minor) {
            return Some(format!("{} is mounted at {mp}", path.display()));
        }
        return None;
    }
    if meta.is_file() {
        let canon = std::fs::canonicalize(path).ok()?;
        for (loopdev, majmin) in loops_backed_by(&canon) {
            if let Some(mp) = mount_point_of(majmin.0, majmin.1) {
                return Some(format!("{} is attached to {loopdev} and mounted at {mp}", path.display()));
            }
        }
    }
    None
}

fn major(rdev: u64) -> u64 {
    ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff)
}

fn minor(rdev: u64) -> u64 {
    ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff)
}

/// The mount point of a device number, from /proc/self/mountinfo (field 3 is `major:minor`).
fn mount_point_of(major: u64, minor: u64) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = format!("{major}:{minor}");
    info.lines().find_map(|l| {
        let mut f = l.split(' ');
        let majmin = f.nth(2)?;
        let _root = f.next()?;
        let mp = f.next()?;
        (majmin == want).then(|| mp.to_owned())
    })
}

/// Loop devices whose backing file is `file`, with their device numbers.
fn loops_backed_by(file: &Path) -> Vec<(String, (u64, u64))> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/sys/block") else { return out };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let backing = std::fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
        if Path::new(backing.trim()) != file {
            continue;
        }
        // The loop device itself and any of its partitions.
        let mut devs = vec![e.path()];
        if let Ok(parts) = std::fs::read_dir(e.path()) {
            devs.extend(
                parts.flatten().filter(|p| p.file_name().to_string_lossy().starts_with(&name)).map(|p| p.path()),
            );
        }
        for d in devs {
            if let Some((ma, mi)) = std::fs::read_to_string(d.join("dev")).ok().and_then(|s| {
                let (a, b) = s.trim().split_once(':')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            }) {
                out.push((format!("/dev/{}", d.file_name().unwrap_or_default().to_string_lossy()), (ma, mi)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_filesystem_device_is_busy_and_a_plain_file_is_not() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("slot.img");
        std::fs::write(&f, [0u8; 4096]).unwrap();
        assert_eq!(busy_reason(&f), None);
        // The device behind / (when it is a block device node we can find) is mounted.
        let root_dev = std::fs::metadata("/").unwrap().dev();
        assert!(mount_point_of(major(root_dev), minor(root_dev)).is_some());
    }
}
