//! Releases that failed on this device: never installed again.
//!
//! After the bootloader fell back from version X, or a post-boot health check of X failed, or
//! the driver's install of X failed (not a busy lock, a source or an I/O error: those are
//! transient), X is recorded in `/var/lib/update/failed-releases.json`. A check skips X from
//! then on (audited as refused, with the reason), so a scheduled daemon never loops
//! install → failed boots → fallback; a newer release is eligible as usual. Deleting the file
//! (or the entry) makes X eligible again.

use serde::{Deserialize, Serialize};
use update_core::{Error, Paths, Result, Version, atomic};

/// The most entries kept (oldest dropped first).
const MAX_ENTRIES: usize = 64;

/// One failed release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FailedRelease {
    /// The version that failed.
    pub version: String,
    /// What failed.
    pub reason: String,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// The list on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedReleases {
    /// Oldest first.
    pub releases: Vec<FailedRelease>,
}

fn file(paths: &Paths) -> std::path::PathBuf {
    paths.state_dir().join("failed-releases.json")
}

impl FailedReleases {
    /// Reads the list; a missing or unreadable file is an empty list.
    #[must_use]
    pub fn load(paths: &Paths) -> Self {
        std::fs::read(file(paths)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// The entry for `version`, if it failed here.
    #[must_use]
    pub fn find(&self, version: &Version) -> Option<&FailedRelease> {
        let v = version.to_string();
        self.releases.iter().find(|r| r.version == v)
    }

    /// Records that `version` failed (once; the first reason is kept).
    ///
    /// # Errors
    /// I/O errors writing the list.
    pub fn record(paths: &Paths, version: &str, reason: &str) -> Result<()> {
        let mut list = Self::load(paths);
        if list.releases.iter().any(|r| r.version == version) {
            return Ok(());
        }
        list.releases.push(FailedRelease {
            version: version.to_owned(),
            reason: reason.to_owned(),
            at: update_core::time_util::now_rfc3339(),
        });
        let excess = list.releases.len().saturating_sub(MAX_ENTRIES);
        list.releases.drain(..excess);
        let bytes = serde_json::to_vec_pretty(&list).map_err(|e| Error::Other(e.to_string()))?;
        atomic::write_atomic(&file(paths), &bytes, 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_once_found_by_version_and_bounded() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path());
        let v3 = update_core::parse_version("3.0.0").unwrap();
        assert!(FailedReleases::load(&paths).find(&v3).is_none());
        FailedReleases::record(&paths, "3.0.0", "fell back").unwrap();
        FailedReleases::record(&paths, "3.0.0", "again").unwrap();
        let list = FailedReleases::load(&paths);
        assert_eq!(list.releases.len(), 1);
        assert_eq!(list.find(&v3).unwrap().reason, "fell back");
        for i in 0..100 {
            FailedReleases::record(&paths, &format!("9.{i}.0"), "x").unwrap();
        }
        let list = FailedReleases::load(&paths);
        assert_eq!(list.releases.len(), MAX_ENTRIES);
        assert_eq!(list.releases.last().unwrap().version, "9.99.0");
    }
}
