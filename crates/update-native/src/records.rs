//! What each slot holds: `/var/lib/update/slots.json` ([`update_core::slot_records`]), written
//! atomically after an image is verified in its slot and before the switch. `/var/lib/update` must
//! live on storage shared by both slots (the data partition on a real device).

use std::path::PathBuf;

use update_core::slot_records::{SlotRecord, SlotRecords};
use update_core::{Error, Paths, Result, Version};

fn file(paths: &Paths) -> PathBuf {
    paths.state_dir().join("slots.json")
}

/// Reads the records (none yet: empty). The native driver records only versions it verified,
/// so a slot whose version is not a semantic version means the file was changed behind its back.
///
/// # Errors
/// I/O and parse errors naming the file, also for a version that is not a semantic version.
pub fn load(paths: &Paths) -> Result<SlotRecords> {
    let path = file(paths);
    let records = SlotRecords::load(&path)?;
    for (slot, record) in &records.slots {
        record
            .version()
            .map_err(|e| Error::ConfigParse { path: path.clone(), message: format!("slot {slot}: {e}") })?;
    }
    Ok(records)
}

/// Writes the records atomically.
///
/// # Errors
/// I/O errors naming the file.
pub fn store(paths: &Paths, records: &SlotRecords) -> Result<()> {
    records.store(&file(paths))
}

/// The record of an install of `version` now, with the SHA-256 of each image by slot group.
#[must_use]
pub fn installed(version: &Version, images: impl IntoIterator<Item = (String, String)>) -> SlotRecord {
    SlotRecord {
        version: version.to_string(),
        installed: Some(update_core::time_util::now_rfc3339()),
        images: images.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        std::fs::create_dir_all(paths.state_dir()).unwrap();
        (dir, paths)
    }

    #[test]
    fn a_version_that_is_not_semantic_is_refused_naming_the_file() {
        let (_dir, paths) = device();
        for (text, bad) in [
            (r#"{"A": {"version": "1.0.0", "installed": "t"}, "B": {"version": "two", "installed": "t"}}"#, "two"),
            (r#"{"format": 1, "slots": {"A": {"version": "1.0"}}}"#, "1.0"),
            (r#"{"format": 1, "slots": {"B": {"version": ""}}}"#, "''"),
        ] {
            std::fs::write(file(&paths), text).unwrap();
            let e = load(&paths).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&file(&paths).display().to_string()) && msg.contains(bad), "{msg}");
            assert_eq!(e.kind(), update_core::ErrorKind::Config);
            assert_eq!(std::fs::read_to_string(file(&paths)).unwrap(), text, "left as it was");
        }
    }

    #[test]
    fn an_old_file_is_read_and_rewritten_in_format_1() {
        let (_dir, paths) = device();
        let old = r#"{"A": {"version": "1.0.0", "installed": "2026-11-01T10:00:00Z", "images": {"rootfs": "aa"}}}"#;
        std::fs::write(file(&paths), old).unwrap();
        let mut records = load(&paths).unwrap();
        assert_eq!(records.get("A").unwrap().version().unwrap(), Version::new(1, 0, 0));
        assert_eq!(records.get("A").unwrap().images["rootfs"], "aa");
        let v2 = Version::new(2, 0, 0);
        records.slots.insert("B".into(), installed(&v2, [("rootfs".into(), "bb".into())]));
        store(&paths, &records).unwrap();
        assert!(std::fs::read_to_string(file(&paths)).unwrap().contains("\"format\": 1"));
        let back = load(&paths).unwrap();
        assert_eq!(back, records);
        assert_eq!(back.get("B").unwrap().version().unwrap(), v2);
        assert_eq!(back.label("B"), " (2.0.0)");
    }
}
