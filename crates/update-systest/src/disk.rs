//! The device's disk, built without root or loop devices: a GPT image made with `sfdisk` on a
//! plain file, partition images made with `mkfs.vfat` + mtools and with update-test's
//! `mkfs.ext4 -d` helper, copied in at their offsets, and GRUB's boot.img/core.img written where
//! the BIOS and boot.img look for them (what `grub-install` would do, which needs a block
//! device). Files on the data partition are read from the host with update-test's debugfs
//! helper at the partition's offset.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result, check, io};
use crate::util::{output, p, quiet};

const MIB: u64 = 1024 * 1024;
const SECTOR: u64 = 512;

/// One partition: GPT name, type GUID, size.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// Partition number (1-based, the `gptN` of GRUB and `/dev/vdaN` of Linux).
    pub number: u32,
    /// GPT partition name.
    pub name: &'static str,
    type_guid: &'static str,
    /// Size in MiB.
    pub mib: u64,
}

/// The layout. Every partition starts on a MiB boundary, the first at 1 MiB.
pub const PARTS: [Part; 7] = [
    Part { number: 1, name: "bios_grub", type_guid: "21686148-6449-6E6F-744E-656564454649", mib: 1 },
    Part { number: 2, name: "esp", type_guid: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", mib: 8 },
    Part { number: 3, name: "boot_a", type_guid: "BC13C2FF-59E6-4262-A352-B275FD6F7172", mib: 16 },
    Part { number: 4, name: "boot_b", type_guid: "BC13C2FF-59E6-4262-A352-B275FD6F7172", mib: 16 },
    Part { number: 5, name: "rootfs_a", type_guid: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", mib: 32 },
    Part { number: 6, name: "rootfs_b", type_guid: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", mib: 32 },
    Part { number: 7, name: "data", type_guid: "0FC63DAF-8483-4772-8E79-3D69D8477DE4", mib: 64 },
];

/// The partition with this number.
///
/// # Panics
/// For a number that is not in [`PARTS`] (a bug in the harness).
pub fn part(number: u32) -> Part {
    *PARTS.iter().find(|p| p.number == number).unwrap_or_else(|| panic!("no partition {number} in the layout"))
}

/// Byte offset of a partition.
pub fn offset(number: u32) -> u64 {
    MIB + PARTS.iter().take_while(|p| p.number < number).map(|p| p.mib * MIB).sum::<u64>()
}

/// Byte size of a partition.
pub fn size(number: u32) -> u64 {
    part(number).mib * MIB
}

/// Partition numbers of a slot's boot and rootfs partitions.
pub fn slot_parts(slot: char) -> (u32, u32) {
    if slot == 'A' { (3, 5) } else { (4, 6) }
}

/// The ESP, boot A/B, rootfs A/B and data partition numbers.
pub const ESP: u32 = 2;
/// The data partition.
pub const DATA: u32 = 7;

/// Creates the image file with its GPT.
pub fn create(disk: &Path) -> Result {
    let total = offset(7) + size(7) + MIB; // room for the backup GPT
    let f = std::fs::File::create(disk).map_err(io("create", disk))?;
    f.set_len(total).map_err(io("size", disk))?;
    drop(f);
    let mut script = String::from("label: gpt\nunit: sectors\nfirst-lba: 2048\n");
    for part in &PARTS {
        script += &format!(
            "start={}, size={}, type={}, name=\"{}\"\n",
            offset(part.number) / SECTOR,
            part.mib * MIB / SECTOR,
            part.type_guid,
            part.name
        );
    }
    let mut child = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(disk)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| sfdisk(disk, format!("cannot run it: {e}")))?;
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(script.as_bytes()));
    let status = child.wait().map_err(|e| sfdisk(disk, e.to_string()))?;
    if let Some(Err(e)) = written {
        return Err(sfdisk(disk, format!("writing the table to its input: {e}")));
    }
    if !status.success() {
        return Err(sfdisk(disk, format!("failed with {status}")));
    }
    // Check that sfdisk put every partition where we write it.
    let json = output(Command::new("sfdisk").arg("-J").arg(disk))?;
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| sfdisk(disk, format!("-J: {e}")))?;
    let parts = v["partitiontable"]["partitions"].as_array().cloned().unwrap_or_default();
    for (part, got) in PARTS.iter().zip(&parts) {
        if got["start"].as_u64() != Some(offset(part.number) / SECTOR) {
            return Err(sfdisk(
                disk,
                format!("placed partition {} at {}, not where expected", part.number, got["start"]),
            ));
        }
    }
    if parts.len() != PARTS.len() {
        return Err(sfdisk(disk, format!("made {} partitions, expected {}", parts.len(), PARTS.len())));
    }
    Ok(())
}

fn sfdisk(disk: &Path, detail: String) -> Error {
    Error::Tool { command: format!("sfdisk {}", disk.display()), detail }
}

/// Writes a partition image at its partition's offset. The image must be the partition's size.
pub fn write_part(disk: &Path, number: u32, image: &Path) -> Result {
    let bytes = std::fs::read(image).map_err(io("read", image))?;
    if bytes.len() as u64 != size(number) {
        return Err(check(format!(
            "{} is {} bytes, partition {number} is {}",
            image.display(),
            bytes.len(),
            size(number)
        )));
    }
    write_at(disk, offset(number), &bytes)
}

fn write_at(disk: &Path, at: u64, bytes: &[u8]) -> Result {
    let mut f = OpenOptions::new().write(true).open(disk).map_err(io("open", disk))?;
    f.seek(SeekFrom::Start(at)).map_err(io("seek", disk))?;
    f.write_all(bytes).map_err(io("write", disk))?;
    f.sync_all().map_err(io("sync", disk))
}

/// Installs GRUB for BIOS: boot.img into the MBR's code area (the partition table stays), core.img
/// into the bios_grub partition, each patched with where the next stage is.
pub fn install_grub(disk: &Path, core_img: &Path) -> Result {
    let mut core = std::fs::read(core_img).map_err(io("read", core_img))?;
    core.resize(core.len().div_ceil(512) * 512, 0);
    let sectors = core.len() as u64 / SECTOR;
    let bios_grub = part(1);
    if sectors > bios_grub.mib * MIB / SECTOR {
        return Err(check(format!("core.img ({sectors} sectors) does not fit the bios_grub partition")));
    }
    let lba = offset(1) / SECTOR;
    // diskboot.img (core.img's first sector) ends with a block list: the rest of core.img,
    // starting at the next sector, loaded at segment 0x820.
    let list = 512 - 12;
    core[list..list + 8].copy_from_slice(&(lba + 1).to_le_bytes());
    core[list + 8..list + 10].copy_from_slice(&u16::try_from(sectors - 1).unwrap_or(u16::MAX).to_le_bytes());
    core[list + 10..list + 12].copy_from_slice(&0x820u16.to_le_bytes());
    let boot_path = Path::new("/usr/lib/grub/i386-pc/boot.img");
    let mut boot = std::fs::read(boot_path).map_err(io("read", boot_path))?;
    if boot.len() != 512 {
        return Err(Error::Setup(format!("{} is not one sector", boot_path.display())));
    }
    boot[0x5c..0x64].copy_from_slice(&lba.to_le_bytes()); // GRUB_BOOT_MACHINE_KERNEL_SECTOR
    boot[0x66] = 0x90; // GRUB_BOOT_MACHINE_DRIVE_CHECK: boot from a hard disk, not a floppy
    boot[0x67] = 0x90;
    write_at(disk, 0, &boot[..440])?;
    write_at(disk, offset(1), &core)
}

/// Makes a FAT image of `mib` MiB holding `files` (path in the image, source file); directories
/// in the paths are created.
pub fn fat_image(image: &Path, label: &str, mib: u64, files: &[(&str, &Path)]) -> Result {
    let _ = std::fs::remove_file(image);
    quiet(Command::new("mkfs.vfat").args(["-C", "-n", label]).arg(image).arg((mib * 1024).to_string()))?;
    let mut dirs: Vec<String> = Vec::new();
    for (dest, _) in files {
        let mut acc = String::new();
        let comps: Vec<&str> = dest.split('/').filter(|c| !c.is_empty()).collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            acc = format!("{acc}/{c}");
            if !dirs.contains(&acc) {
                quiet(Command::new("mmd").arg("-i").arg(image).arg(format!("::{acc}")))?;
                dirs.push(acc.clone());
            }
        }
    }
    for (dest, src) in files {
        quiet(Command::new("mcopy").arg("-i").arg(image).arg(src).arg(format!("::{dest}")))?;
    }
    Ok(())
}

/// Makes an ext4 image of `mib` MiB from a directory (update-test's `mkfs.ext4 -d`, with fixed
/// timestamps, so a version's image is the same every time it is built).
pub fn ext4_image(image: &Path, label: &str, mib: u64, dir: &Path) -> Result {
    Ok(update_test::disk::make_ext4(image, dir, label, mib)?)
}

/// [`ext4_image`] with 4 KiB blocks, as a real root file system has (mkfs.ext4 would pick 1 KiB
/// blocks for a partition this small): a rootfs, whose unchanged files a delta update finds
/// again by their 4 KiB blocks.
pub fn rootfs_image(image: &Path, label: &str, mib: u64, dir: &Path) -> Result {
    Ok(update_test::disk::make_ext4_4k(image, dir, label, mib)?)
}

/// Copies a partition out of the disk image into a file of the partition's size (the image a
/// slot holds: a delta bundle's base is the image the device runs).
pub fn read_part(disk: &Path, number: u32, out: &Path) -> Result {
    let mut f = std::fs::File::open(disk).map_err(io("open", disk))?;
    f.seek(SeekFrom::Start(offset(number))).map_err(io("seek", disk))?;
    let mut bytes = vec![0u8; usize::try_from(size(number)).unwrap_or(usize::MAX)];
    std::io::Read::read_exact(&mut f, &mut bytes).map_err(io("read", disk))?;
    std::fs::write(out, &bytes).map_err(io("write", out))
}

/// Reads a file from the ext4 data partition of a disk image, from the host: debugfs opens
/// the partition at its byte offset (nothing is mounted, nothing written).
pub fn read_data_file(disk: &Path, path: &str) -> Result<Vec<u8>> {
    let at = Path::new(&format!("{}?offset={}", p(disk), offset(DATA))).to_owned();
    Ok(update_test::disk::ext4_read(&at, path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_each_other_from_one_mib() {
        assert_eq!(offset(1), MIB);
        assert_eq!(offset(2), 2 * MIB);
        assert_eq!(offset(3), 10 * MIB);
        for n in 2..=7 {
            assert_eq!(offset(n), offset(n - 1) + size(n - 1), "partition {n}");
        }
        assert_eq!(slot_parts('A'), (3, 5));
        assert_eq!(slot_parts('B'), (4, 6));
        assert_eq!(part(DATA).name, "data");
    }
}
