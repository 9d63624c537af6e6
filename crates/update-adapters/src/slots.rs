//! What an A/B adapter remembers about its slots when the tool does not say: the version each
//! slot holds and the slot of an install that is not committed yet (to tell a fallback), in a
//! small JSON file in the state directory (`/var/lib/update/`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use update_core::{Error, Paths, Result};

/// What the driver remembers about the slots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Records {
    /// The version installed in each slot.
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    /// The slot of the last install while it is not committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

impl Records {
    fn path(paths: &Paths, file: &str) -> PathBuf {
        paths.state_dir().join(file)
    }

    /// Reads the records (empty when none).
    ///
    /// # Errors
    /// I/O and parse errors naming the file.
    pub fn load(paths: &Paths, file: &str) -> Result<Self> {
        let p = Self::path(paths, file);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Other(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io("read", &p, e)),
        }
    }

    /// Writes the records atomically.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn store(&self, paths: &Paths, file: &str) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        update_core::atomic::write_atomic(&Self::path(paths, file), &text, 0o644)
    }
}

impl Records {
    /// The recorded version of `slot`, when it is a version.
    #[must_use]
    pub fn version(&self, slot: &str) -> Option<update_core::Version> {
        self.versions.get(slot).and_then(|v| update_core::parse_version(v).ok())
    }

    /// `" (VERSION)"` for messages, or nothing.
    #[must_use]
    pub fn label(&self, slot: &str) -> String {
        self.versions.get(slot).filter(|v| !v.is_empty()).map(|v| format!(" ({v})")).unwrap_or_default()
    }
}
