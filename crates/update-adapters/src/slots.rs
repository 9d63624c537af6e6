//! What an A/B adapter remembers about its slots when the tool does not say: the version each
//! slot holds and the slot of an install that is not committed yet (to tell a fallback), in a
//! small JSON file in the state directory (`/var/lib/update/`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use update_core::driver::{SlotState, SlotStatus, Status};
use update_core::{Error, Paths, Result, Version};

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

/// What an A/B adapter read from the system for `status`.
#[derive(Debug, Clone, Copy)]
pub struct AbBoot<'a> {
    /// The slot running now.
    pub booted: Option<&'a str>,
    /// The slot the bootloader boots next.
    pub primary: Option<&'a str>,
    /// Whether the primary slot is on trial.
    pub trial: bool,
    /// The boot attempts a slot on trial has left.
    pub tries_left: u32,
}

impl Records {
    /// The status of slots A and B: a pending install that is neither primary nor running failed
    /// to boot (a fallback); the primary on trial is trying; a slot that runs, boots next or
    /// holds a recorded install is good. `version` reads a recorded name as a version.
    #[must_use]
    pub fn ab_status(
        &self,
        driver: &str,
        boot: &AbBoot<'_>,
        version: fn(&str) -> Option<Version>,
        devices: &dyn Fn(&str) -> Vec<String>,
    ) -> Status {
        let failed =
            self.pending.clone().filter(|p| Some(p.as_str()) != boot.primary && Some(p.as_str()) != boot.booted);
        let slots = ["A", "B"]
            .iter()
            .map(|&s| {
                let primary = boot.primary == Some(s);
                let booted = boot.booted == Some(s);
                let state = if failed.as_deref() == Some(s) {
                    SlotState::Bad
                } else if primary && boot.trial {
                    SlotState::Trying
                } else if booted || primary || self.versions.contains_key(s) {
                    SlotState::Good
                } else {
                    SlotState::Unknown
                };
                SlotStatus {
                    name: s.into(),
                    tries_left: (state == SlotState::Trying).then_some(boot.tries_left),
                    state,
                    version: self.versions.get(s).and_then(|v| version(v)),
                    booted,
                    primary,
                    devices: devices(s),
                }
            })
            .collect();
        Status {
            driver: driver.into(),
            compatible: None,
            version: boot.booted.and_then(|b| self.versions.get(b)).and_then(|v| version(v)),
            booted: boot.booted.map(Into::into),
            primary: boot.primary.map(Into::into),
            slots,
            fallback: failed.map(|f| {
                format!("slot {f}{} failed to boot; running slot {}", self.label(&f), boot.booted.unwrap_or("?"))
            }),
            components: Vec::new(),
        }
    }
}
