//! What each slot holds: `/var/lib/update/slots.json`, written atomically after an image is
//! verified in its slot and before the switch. `/var/lib/update` must live on storage shared by
//! both slots (the data partition on a real device).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use update_boot::Slot;
use update_core::atomic::write_atomic;
use update_core::{Error, Paths, Result, Version};

/// One slot's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SlotRecord {
    /// The version installed.
    pub version: Version,
    /// When (RFC 3339).
    pub installed: String,
    /// SHA-256 of each image as written, by slot group.
    #[serde(default)]
    pub images: BTreeMap<String, String>,
}

/// Both slots' records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecords {
    /// Slot A.
    #[serde(rename = "A", default, skip_serializing_if = "Option::is_none")]
    pub a: Option<SlotRecord>,
    /// Slot B.
    #[serde(rename = "B", default, skip_serializing_if = "Option::is_none")]
    pub b: Option<SlotRecord>,
}

impl SlotRecords {
    fn path(paths: &Paths) -> std::path::PathBuf {
        paths.state_dir().join("slots.json")
    }

    /// Reads the records (none yet: empty).
    ///
    /// # Errors
    /// I/O or parse errors naming the file.
    pub fn load(paths: &Paths) -> Result<Self> {
        let p = Self::path(paths);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::ConfigParse { path: p, message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io("read", p, e)),
        }
    }

    /// Writes the records atomically.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn store(&self, paths: &Paths) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        write_atomic(&Self::path(paths), &bytes, 0o644)
    }

    /// The record of a slot.
    #[must_use]
    pub fn get(&self, slot: Slot) -> Option<&SlotRecord> {
        match slot {
            Slot::A => self.a.as_ref(),
            Slot::B => self.b.as_ref(),
        }
    }

    /// Sets (or clears) a slot's record.
    pub fn set(&mut self, slot: Slot, record: Option<SlotRecord>) {
        match slot {
            Slot::A => self.a = record,
            Slot::B => self.b = record,
        }
    }
}
