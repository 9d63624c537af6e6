//! Core types of libupdate.
//!
//! This crate is pure: it parses, validates and serialises, and the only I/O it does is the
//! small, careful file handling every layer shares (atomic writes, the append-only audit log).
//! Everything above it — the facade (`libupdate`), the drivers, the binaries — speaks these types:
//!
//! - [`config::Config`]: the device configuration (`/etc/update/update.toml`), strict TOML.
//! - [`keyring::Keyring`]: named trusted public keys (ed25519).
//! - [`driver::Driver`] / [`driver::DriverFactory`]: the libvirt-shaped driver layer, with
//!   [`driver::Probe`] (declined / available / broken) and [`driver::Capabilities`] as data.
//! - [`component::Handler`]: the interface of a component kind's handler (image, files, app,
//!   firmware, data, or out-of-tree), and the [`component::Component`] a bundle lists.
//! - [`audit::AuditRecord`]: one JSON line per state-changing action.
//! - [`paths::Paths`]: every path the tool touches, re-rootable with `--root`.
//! - [`slot_records::SlotRecords`]: what each A/B slot holds, kept by the native driver and the
//!   adapters alike (`/var/lib/update/slots.json` and the adapters' own files).
//! - [`process::Command`]: the one way to run another program (drained output, timeout that
//!   kills the whole process group, output caps).
//! - [`external`]: what the out-of-tree protocols (handlers, drivers) share.
//! - [`error::Error`] with a stable [`error::ErrorKind`] that binaries map to exit codes.

pub mod atomic;
pub mod audit;
pub mod blockdev;
pub mod component;
pub mod config;
pub mod driver;
pub mod error;
pub mod external;
pub mod keyring;
pub mod names;
pub mod paths;
pub mod process;
pub mod slot_records;
pub mod sort;
pub mod text;
pub mod time_util;

pub use error::{Error, ErrorKind, Result};
pub use names::{KeyName, SlotGroupName};
pub use paths::Paths;
/// Versions are semantic versions (`1.0.0`; `1.0` and `1` are accepted and padded).
pub use semver::Version;

/// Parses a version leniently: `2` and `2.0` are accepted as `2.0.0`.
///
/// # Errors
/// Returns [`Error::InvalidValue`] when the text is not a version.
pub fn parse_version(text: &str) -> Result<Version> {
    let t = text.trim();
    let split = t.find(['-', '+']).unwrap_or(t.len());
    let (core, suffix) = t.split_at(split);
    let padding = match core.matches('.').count() {
        0 => ".0.0",
        1 => ".0",
        _ => "",
    };
    Version::parse(&format!("{core}{padding}{suffix}")).map_err(|e| Error::InvalidValue {
        what: "version".into(),
        value: text.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_padded() {
        assert_eq!(parse_version("2").unwrap(), Version::new(2, 0, 0));
        assert_eq!(parse_version("2.1").unwrap(), Version::new(2, 1, 0));
        assert_eq!(parse_version("2.1.3").unwrap(), Version::new(2, 1, 3));
        assert_eq!(parse_version("2.1-rc1").unwrap().pre.as_str(), "rc1");
        assert!(parse_version("two").is_err());
        assert!(parse_version("").is_err());
    }
}
