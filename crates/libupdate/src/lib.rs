//! libupdate: one OTA API, whatever implementation sits underneath.
//!
//! [`Updater`] is the facade (libvirt's shape): it loads the configuration and keyring from a
//! (re-rootable) device layout, probes the drivers of its [`DriverTable`] once, and turns every
//! request — check, install, status, mark-good, rollback, config and keyring changes — into a
//! checked call on the chosen [`Driver`](update_core::driver::Driver), with log lines (syslog or
//! a file) and an append-only audit record for every state-changing action. With no driver
//! available every driver operation fails with [`Error::NotImplemented`](update_core::Error)
//! and a message that names what to install.
//!
//! The facade by concern:
//! - [`updater`]: the [`Updater`], its driver (probed once, then kept) and the plain reads;
//! - `audited`: the one helper every state-changing call goes through (audit + log + fail);
//! - `config_edit`: `update config …` and keyring changes;
//! - [`policy`]: check and install — which update is eligible, the install itself;
//! - [`failed`]: releases that failed here and are never installed again;
//! - [`slot_ops`]: mark-good, cancel, rollback, reboot;
//! - [`daemon`]: the post-boot health checks and the scheduled loop;
//! - [`registry`]: the driver table and probing.

mod audited;
mod config_edit;
pub mod daemon;
pub mod external;
pub mod failed;
pub mod fleet;
pub mod log;
pub mod policy;
pub mod registry;
pub mod schedule;
pub mod settings;
pub mod slot_ops;
pub mod source;
pub mod updater;

pub use log::{Logger, Severity};
pub use policy::{Candidate, CheckReport, InstallReport, Skipped};
pub use registry::{AbsentDriver, DriverReport, DriverTable};
pub use settings::Setting;
pub use updater::{Overrides, Pending, StatusReport, Updater};

/// Parses a version for callers that only have text.
///
/// # Errors
/// As [`update_core::parse_version`].
pub fn version(text: &str) -> update_core::Result<update_core::Version> {
    update_core::parse_version(text)
}
