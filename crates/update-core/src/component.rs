//! Components: what a bundle updates beside (or instead of) the OS slots, and the interface a
//! handler of each kind implements (docs/components.md).
//!
//! A bundle lists components, each with a [`Kind`] and a version. The engine plans one
//! transaction over all of them: every handler's [`Handler::check`] passes before any byte is
//! written; every [`Handler::install`] writes into an inactive place; then every
//! [`Handler::activate`]; after activation (and the reboot, if a component needs one) every
//! [`Handler::health`]; then every [`Handler::commit`] — or, on any failure, every
//! [`Handler::rollback`].
//!
//! **Every phase is idempotent and survives a power cut**: the engine journals the phase it
//! enters and, after a cut, repeats the phase it was in. A handler must therefore accept being
//! called again for a phase it already completed (or half completed), and `rollback` must work
//! from any phase, including before `install` started and after `commit` of other components.
//!
//! A handler reads back what is really active in [`Handler::status`] (from the target itself
//! where it can say: the MCU's image list, the app's current link, not only from our records), so
//! a handler that reports success without doing the work is caught by the engine comparing the
//! version `status` reads back after `activate` with the version installed.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Version;
use crate::driver::Events;
use crate::error::{Error, Result};
use crate::paths::Paths;

/// Settings or options of one component: a JSON object (TOML tables are converted).
pub type Settings = serde_json::Map<String, serde_json::Value>;

/// A component's name, in a bundle and in the device config (`mcu`, `web-ui`, `calibration`):
/// 1 to 64 of `a-z 0-9 - _`, starting with a letter. It names a directory on the device
/// (`/var/lib/update/components/<name>`), hence the strict alphabet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ComponentName(String);

fn check_component_word(what: &str, text: &str) -> Result<()> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text.as_bytes()[0].is_ascii_lowercase()
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            what: what.into(),
            value: text.into(),
            reason: "use 1 to 64 characters from a-z 0-9 - _, starting with a letter".into(),
        })
    }
}

impl ComponentName {
    /// Validates and wraps a name.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for characters outside `a-z0-9-_`, a leading non-letter, or more
    /// than 64 characters.
    pub fn new(text: &str) -> Result<Self> {
        check_component_word("component name", text)?;
        Ok(Self(text.to_owned()))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ComponentName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}

impl From<ComponentName> for String {
    fn from(n: ComponentName) -> String {
        n.0
    }
}

impl fmt::Display for ComponentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ComponentName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

/// What a component is, and so which handler installs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Kind {
    /// Whole images into the inactive A/B slot group (the OS); activated by the boot switch.
    Image,
    /// A file tree (tar) into an inactive directory, switched atomically.
    Files,
    /// An application with its own A/B place, switched and restarted without a reboot.
    App,
    /// Microcontroller or FPGA firmware, flashed through the device's own protocol.
    Firmware,
    /// Device-specific data with a per-file policy (replace, keep if changed, merge).
    Data,
    /// Server-class firmware (UEFI capsules, NICs, disks, BMC peripherals) installed by the fwupd
    /// daemon from a signed `.cab` archive.
    Fwupd,
    /// Any other kind: an out-of-tree handler `/usr/lib/update/handlers/<kind>`.
    External(String),
}

impl Kind {
    /// The built-in kinds, in documentation order.
    pub const BUILT_IN: [Kind; 6] = [Kind::Image, Kind::Files, Kind::App, Kind::Firmware, Kind::Data, Kind::Fwupd];

    /// The stable name (`image`, `files`, `app`, `firmware`, `data`, `fwupd`, or the external kind).
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Image => "image",
            Kind::Files => "files",
            Kind::App => "app",
            Kind::Firmware => "firmware",
            Kind::Data => "data",
            Kind::Fwupd => "fwupd",
            Kind::External(k) => k,
        }
    }

    /// Parses a kind; any other valid word is an external kind.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the word has characters outside `a-z0-9-_`.
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "image" => Kind::Image,
            "files" => Kind::Files,
            "app" => Kind::App,
            "firmware" => Kind::Firmware,
            "data" => Kind::Data,
            "fwupd" => Kind::Fwupd,
            other => {
                check_component_word("component kind", other)?;
                Kind::External(other.to_owned())
            }
        })
    }
}

impl TryFrom<String> for Kind {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<Kind> for String {
    fn from(k: Kind) -> String {
        k.as_str().to_owned()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A constraint on another component of the same device (`firmware >= 2.1`), checked when the
/// transaction is planned against the versions the transaction would leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// The other component.
    pub component: ComponentName,
    /// The versions it must have (semver requirement syntax: `>=2.1`, `^3`, `=1.4.2`).
    pub versions: semver::VersionReq,
}

/// A component as the verified manifest describes it. Handlers only ever see verified
/// components and verified payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// Its name (the device config's `[components.<name>]` says where it goes).
    pub name: ComponentName,
    /// Its kind.
    pub kind: Kind,
    /// The version it installs.
    pub version: Version,
    /// Uncompressed payload size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the uncompressed payload.
    pub sha256: String,
    /// Constraints on other components.
    #[serde(default)]
    pub requires: Vec<Requirement>,
    /// Kind-specific options signed by the vendor (for example the files handler's
    /// `allow-devices`); a handler refuses options it does not know.
    #[serde(default)]
    pub options: Settings,
}

/// Where a component lives on this device: `update.toml` `[components.<name>]` (`kind` plus the
/// handler's settings, e.g. the firmware handler's serial port). Device facts, not vendor facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceComponent {
    /// Its name.
    pub name: ComponentName,
    /// Its kind (must match the bundle's).
    pub kind: Kind,
    /// Handler settings; a handler refuses settings it does not know.
    pub settings: Settings,
}

/// Everything a handler may use for one component in one transaction.
pub struct HandlerContext<'a> {
    /// The file layout (re-rooted under `--root`: a handler opens every path through it and runs
    /// programs with [`crate::process::Command::under_root`]).
    pub paths: &'a Paths,
    /// Audit and log sink.
    pub events: &'a dyn Events,
    /// The transaction id; audit records of every component step carry it.
    pub transaction: &'a str,
    /// The device's entry for this component.
    pub device: &'a DeviceComponent,
    /// This component's private state directory (`/var/lib/update/components/<name>`, under the
    /// root), created by the engine before the first call.
    pub state_dir: PathBuf,
    /// How long one phase may take before the engine treats the handler as hung.
    pub timeout: Duration,
}

/// When an activated component runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// Running now (an app swapped and restarted, data in place, an MCU reset into its new bank).
    Now,
    /// Runs after the next reboot (OS images and OS file trees).
    AtReboot,
}

/// Where a component stands, as its handler reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentState {
    /// Nothing of ours is there yet.
    Absent,
    /// The active version is committed.
    Committed,
    /// A new version is installed in the inactive place, not active.
    Installed,
    /// The new version is active and on trial (not committed; a rollback returns to the old).
    Trial,
}

/// What [`Handler::status`] reads back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentStatus {
    /// The version that is active now, if known.
    pub active: Option<Version>,
    /// The version in the inactive place (installed, or the previous one kept for rollback).
    pub inactive: Option<Version>,
    /// The state.
    pub state: ComponentState,
    /// Anything worth showing (`bank 1 confirmed`, `service web-ui active`), escaped on display.
    pub detail: Option<String>,
}

/// The handler of one kind (see the module docs for the transaction and the idempotency rule).
pub trait Handler {
    /// The kind it installs.
    fn kind(&self) -> Kind;

    /// What is active now, read back from the target.
    ///
    /// # Errors
    /// The target cannot be read (a missing serial port, an unreadable directory).
    fn status(&mut self, ctx: &HandlerContext<'_>) -> Result<ComponentStatus>;

    /// Whether `component` can be installed: settings and options known and valid, the target
    /// present and compatible, enough space. Writes nothing.
    ///
    /// # Errors
    /// [`Error::Refused`]-kind errors naming the component and the reason.
    fn check(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()>;

    /// Writes the verified payload into the inactive place. The active version is untouched.
    ///
    /// # Errors
    /// I/O or target errors; the active version stays active.
    fn install(&mut self, ctx: &HandlerContext<'_>, component: &Component, payload: &mut dyn Read) -> Result<()>;

    /// Makes the installed version the active one (on trial).
    ///
    /// # Errors
    /// The switch failed; the engine rolls the transaction back.
    fn activate(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<Activation>;

    /// The component's own health check of the active new version (an app's check command, the
    /// MCU answering with the new image). The default has none.
    ///
    /// # Errors
    /// The check failed; the engine rolls the transaction back.
    fn health(&mut self, _ctx: &HandlerContext<'_>, _component: &Component) -> Result<()> {
        Ok(())
    }

    /// Makes the active new version permanent (the previous one may be dropped after this).
    ///
    /// # Errors
    /// The commit could not be recorded.
    fn commit(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()>;

    /// Returns to the version that was active before the transaction, from any phase.
    ///
    /// # Errors
    /// The previous version cannot be restored (the engine reports and audits it).
    fn rollback(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()>;
}

/// Checks `requires` of every component against the versions a transaction would leave:
/// `planned` (name → version after the transaction: the bundle's versions over the installed
/// ones).
///
/// # Errors
/// [`Error::Refused`] naming the component, the requirement and the version found (or that the
/// required component is absent).
pub fn check_requirements(components: &[Component], planned: &BTreeMap<ComponentName, Version>) -> Result<()> {
    for c in components {
        for r in &c.requires {
            match planned.get(&r.component) {
                Some(v) if r.versions.matches(v) => {}
                Some(v) => {
                    return Err(Error::Refused(format!(
                        "component {} requires {} {}, but the update leaves {} at {v}",
                        c.name, r.component, r.versions, r.component
                    )));
                }
                None => {
                    return Err(Error::Refused(format!(
                        "component {} requires {} {}, which is not on this device",
                        c.name, r.component, r.versions
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(name: &str, version: &str, requires: &[(&str, &str)]) -> Component {
        Component {
            name: ComponentName::new(name).unwrap(),
            kind: Kind::App,
            version: Version::parse(version).unwrap(),
            size: 0,
            sha256: "0".repeat(64),
            requires: requires
                .iter()
                .map(|(n, r)| Requirement {
                    component: ComponentName::new(n).unwrap(),
                    versions: semver::VersionReq::parse(r).unwrap(),
                })
                .collect(),
            options: Settings::new(),
        }
    }

    #[test]
    fn names_and_kinds_are_validated() {
        for good in ["mcu", "web-ui", "calibration_2"] {
            assert!(ComponentName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Mcu", "1mcu", "../x", "a b", "x/y", "-a", &"a".repeat(65)] {
            assert!(ComponentName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Kind::parse("firmware").unwrap(), Kind::Firmware);
        assert_eq!(Kind::parse("container").unwrap(), Kind::External("container".into()));
        assert!(Kind::parse("../sh").is_err());
        let json = serde_json::to_string(&Kind::External("container".into())).unwrap();
        assert_eq!(json, "\"container\"");
        assert_eq!(serde_json::from_str::<Kind>("\"data\"").unwrap(), Kind::Data);
        assert_eq!(Kind::parse("fwupd").unwrap(), Kind::Fwupd);
        assert_eq!(Kind::Fwupd.as_str(), "fwupd");
    }

    #[test]
    fn requirements_are_checked_against_the_planned_versions() {
        let app = component("app", "2.0.0", &[("mcu", ">=2.1")]);
        let mut planned = BTreeMap::new();
        planned.insert(ComponentName::new("mcu").unwrap(), Version::new(2, 0, 9));
        let e = check_requirements(std::slice::from_ref(&app), &planned).unwrap_err();
        assert!(e.to_string().contains("requires mcu >=2.1"), "{e}");
        planned.insert(ComponentName::new("mcu").unwrap(), Version::new(2, 1, 0));
        check_requirements(std::slice::from_ref(&app), &planned).unwrap();
        planned.clear();
        let e = check_requirements(&[app], &planned).unwrap_err();
        assert!(e.to_string().contains("not on this device"), "{e}");
    }
}
