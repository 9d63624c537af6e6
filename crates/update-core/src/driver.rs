//! The driver layer, in libvirt's shape.
//!
//! A [`DriverFactory`] is registered for each implementation (native, rauc, swupdate, …). The
//! facade probes factories once: each answers [`Probe::Declined`] (not for this system),
//! [`Probe::Available`] with a ready [`Driver`], or [`Probe::Broken`] (installed but unusable).
//! A [`Driver`] must implement [`Driver::status`] and [`Driver::install`]; every other
//! operation defaults to a typed [`Error::NotSupported`] naming the driver and a hint.
//! What a driver can do is data ([`Capabilities`]), from which `update drivers` prints the
//! support matrix.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::Version;
use crate::audit::{AuditAction, AuditRecord, Outcome};
use crate::config::{Config, Verify};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::paths::Paths;

/// One thing a driver can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Installs whole images into an inactive A/B slot.
    AbImage,
    /// Installs file trees atomically (deployments).
    FileTree,
    /// Downloads only what changed.
    Delta,
    /// Installs while downloading, without storing the whole update.
    Streaming,
    /// The bootloader counts boot attempts and falls back.
    BootCounting,
    /// Commits a booted slot (`update mark-good`).
    MarkGood,
    /// Switches back to the other slot (`update rollback`).
    Rollback,
    /// Marks the running slot bad, so the other one boots (`update mark-bad`).
    MarkBad,
    /// Verifies signatures against the keyring.
    Signatures,
    /// Reads what an update contains before installing (`update` without `--now`).
    Inspect,
}

impl Capability {
    /// Every capability, in matrix order.
    pub const ALL: [Capability; 10] = [
        Capability::AbImage,
        Capability::FileTree,
        Capability::Delta,
        Capability::Streaming,
        Capability::BootCounting,
        Capability::MarkGood,
        Capability::Rollback,
        Capability::MarkBad,
        Capability::Signatures,
        Capability::Inspect,
    ];

    /// The stable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::AbImage => "ab-image",
            Capability::FileTree => "file-tree",
            Capability::Delta => "delta",
            Capability::Streaming => "streaming",
            Capability::BootCounting => "boot-counting",
            Capability::MarkGood => "mark-good",
            Capability::Rollback => "rollback",
            Capability::MarkBad => "mark-bad",
            Capability::Signatures => "signatures",
            Capability::Inspect => "inspect",
        }
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Capabilities(BTreeSet<Capability>);

impl Capabilities {
    /// A set from a list.
    #[must_use]
    pub fn of(list: &[Capability]) -> Self {
        Self(crate::sort::collect_set(list.iter().copied()))
    }

    /// Whether the set has `c`.
    #[must_use]
    pub fn has(&self, c: Capability) -> bool {
        self.0.contains(&c)
    }

    /// The capabilities in order.
    pub fn iter(&self) -> impl Iterator<Item = Capability> + '_ {
        self.0.iter().copied()
    }
}

/// Receives audit records and log lines from drivers. The facade implements it.
pub trait Events {
    /// Records a state-changing action in the audit log (and the human log).
    fn audit(&self, record: AuditRecord);
    /// Logs a human-readable line at info level.
    fn info(&self, message: &str);
    /// Logs a warning.
    fn warn(&self, message: &str);
    /// Builds a record stamped with the current time and actor.
    fn record(&self, action: AuditAction, outcome: Outcome) -> AuditRecord;
}

/// Reports progress of long operations (a bar on a terminal, nothing otherwise).
pub trait Progress {
    /// Starts a phase of `total` bytes (0 when unknown).
    fn start(&self, label: &str, total: u64);
    /// Advances the current phase by `n` bytes.
    fn advance(&self, n: u64);
    /// Ends the current phase.
    fn finish(&self);
}

/// Progress that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Everything a driver may read: the layout, the effective config (after command-line
/// overrides), the keyring, and where to report.
pub struct Context<'a> {
    /// The file layout (re-rooted under `--root`).
    pub paths: &'a Paths,
    /// The effective configuration for this run.
    pub config: &'a Config,
    /// The trusted keys.
    pub keyring: &'a Keyring,
    /// Audit and log sink.
    pub events: &'a dyn Events,
    /// Progress reporting.
    pub progress: &'a dyn Progress,
}

/// The state of one slot (A or B) across its slot groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotState {
    /// Committed: known to boot and pass health checks.
    Good,
    /// Installed and primary, still being tried (boot attempts left).
    Trying,
    /// Failed (ran out of tries, or marked bad).
    Bad,
    /// Never written by us, or state unknown.
    Unknown,
}

/// One slot in `update status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SlotStatus {
    /// Slot name (`A`, `B`, or the driver's own name).
    pub name: String,
    /// Its state.
    pub state: SlotState,
    /// The version installed in it, if known.
    #[serde(serialize_with = "ser_opt_version")]
    pub version: Option<Version>,
    /// Whether the running system booted from it.
    pub booted: bool,
    /// Whether the bootloader tries it first on the next boot.
    pub primary: bool,
    /// Boot attempts left while trying.
    pub tries_left: Option<u32>,
    /// Devices or files, `group=path`.
    pub devices: Vec<String>,
}

fn ser_opt_version<S: serde::Serializer>(v: &Option<Version>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&v.to_string()),
        None => s.serialize_none(),
    }
}

/// `update status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Status {
    /// The driver that answered.
    pub driver: String,
    /// The board name updates must be compatible with.
    pub compatible: Option<String>,
    /// The running version.
    #[serde(serialize_with = "ser_opt_version")]
    pub version: Option<Version>,
    /// The slot the running system booted from.
    pub booted: Option<String>,
    /// The slot the bootloader tries first next time.
    pub primary: Option<String>,
    /// Slots.
    pub slots: Vec<SlotStatus>,
    /// Set when the bootloader fell back after failed boots and it has not been acknowledged.
    pub fallback: Option<String>,
    /// The components beside the OS (`[components.NAME]`), as their handlers read them back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentReport>,
}

/// One component in `update status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ComponentReport {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// What its handler read back.
    #[serde(flatten)]
    pub status: Option<crate::component::ComponentStatus>,
    /// Why it could not be read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an update contains (read from its signed manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BundleInfo {
    /// Its version.
    #[serde(serialize_with = "ser_version")]
    pub version: Version,
    /// The board it is for.
    pub compatible: String,
    /// Total bytes it writes.
    pub size: u64,
    /// Slot groups it updates.
    pub images: Vec<String>,
}

fn ser_version<S: serde::Serializer>(v: &Version, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    /// The update file (bundle, `.raucb`, `.swu`, `.mender`, …) on local storage; for a
    /// streamed update, its URL (for messages only: nothing is read from this path).
    pub bundle: PathBuf,
    /// Signature policy for this run.
    pub verify: Verify,
    /// The update is read from the network as it is installed instead of from `bundle`. Only
    /// drivers with [`Capability::Streaming`] are given one.
    pub stream: Option<Stream>,
}

impl InstallRequest {
    /// A request for a local file.
    #[must_use]
    pub fn file(bundle: PathBuf, verify: Verify) -> Self {
        Self { bundle, verify, stream: None }
    }
}

/// A file that can be read from anywhere and repositioned: a local file or a remote one read by
/// HTTP Range.
pub trait ReadSeek: std::io::Read + std::io::Seek + Send {}
impl<T: std::io::Read + std::io::Seek + Send> ReadSeek for T {}

/// Opens a stream from its start (each call is a fresh reader; a driver reads a bundle's head
/// to inspect it and opens it again to install).
pub type OpenStream = dyn Fn() -> Result<Box<dyn ReadSeek>> + Send + Sync;

/// The target-metadata field (TUF `custom`) giving the SHA-256 of a bundle's head: its header,
/// manifest and signature block. The manifest fixes every payload chunk by hash, so this one
/// hash binds the whole file to the signed repository metadata without reading it first.
pub const BUNDLE_HEAD_SHA256: &str = "bundle-head-sha256";

/// An update read from the network while it is installed.
#[derive(Clone)]
pub struct Stream {
    /// Where it comes from (for messages).
    pub url: String,
    /// The exact length, when signed metadata gives it.
    pub length: Option<u64>,
    /// The SHA-256 of the bundle's head ([`BUNDLE_HEAD_SHA256`]) from signed repository
    /// metadata; the driver refuses a head that does not match. `None` for a bare bundle URL,
    /// which only its own signatures protect.
    pub head_sha256: Option<String>,
    /// Opens the stream.
    pub open: std::sync::Arc<OpenStream>,
    /// Reads byte ranges of it, one exact request each (a delta install fetches only the
    /// pieces it lacks). `None`: only [`Stream::open`].
    pub ranges: Option<std::sync::Arc<ReadRanges>>,
}

/// Reads the given byte ranges of a stream (sorted, not overlapping), one request each,
/// passing `(file offset, bytes)` to the sink in order as they arrive.
pub type ReadRanges =
    dyn Fn(&[std::ops::Range<u64>], &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()> + Send + Sync;

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("url", &self.url)
            .field("length", &self.length)
            .field("head_sha256", &self.head_sha256)
            .finish_non_exhaustive()
    }
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstallOutcome {
    /// The version installed.
    #[serde(serialize_with = "ser_version")]
    pub version: Version,
    /// The slot it went into.
    pub slot: String,
    /// Whether a reboot is needed to run it.
    pub reboot_required: bool,
}

impl InstallOutcome {
    /// The `slot` of an update that carried components only: no OS slot was written.
    pub const COMPONENTS_ONLY: &'static str = "components";

    /// One line for people: `installed 2.0.0 into slot B`, or `installed 2.1.0 (components
    /// only, no slot)`.
    #[must_use]
    pub fn summary(&self) -> String {
        if self.slot == Self::COMPONENTS_ONLY {
            format!("installed {} (components only, no slot)", self.version)
        } else {
            format!("installed {} into slot {}", self.version, self.slot)
        }
    }
}

/// What a mark-good or rollback changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SlotChange {
    /// The slot acted on.
    pub slot: String,
    /// What it means, for people.
    pub message: String,
}

/// An update implementation, ready to use (see the module docs).
pub trait Driver {
    /// The driver's name (`native`, `rauc`, …).
    fn name(&self) -> &'static str;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// The slots, versions and boot state.
    ///
    /// # Errors
    /// Driver errors.
    fn status(&mut self, ctx: &Context<'_>) -> Result<Status>;

    /// Installs an update into the inactive slot and makes it primary for the next boot.
    ///
    /// # Errors
    /// Verification, policy and I/O errors; on any error the running slot and boot state are untouched.
    fn install(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<InstallOutcome>;

    /// Whether the driver reads the configured `source` itself (an apt archive, a tool's own
    /// server) instead of being handed update files from it: the facade then passes the
    /// source's location (a path under the root for `file://`, else the URL) as the one
    /// update to inspect and install. The default is `false`.
    fn reads_source(&self) -> bool {
        false
    }

    /// Reads an update's signed description without installing it.
    ///
    /// # Errors
    /// [`Error::NotSupported`] by default.
    fn inspect(&mut self, _ctx: &Context<'_>, _request: &InstallRequest) -> Result<BundleInfo> {
        Err(self.not_supported("inspecting an update"))
    }

    /// Commits the booted slot.
    ///
    /// # Errors
    /// [`Error::NotSupported`] by default.
    fn mark_good(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        Err(self.not_supported("mark-good"))
    }

    /// Makes the other good slot primary.
    ///
    /// # Errors
    /// [`Error::NotSupported`] by default.
    fn rollback(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        Err(self.not_supported("rollback"))
    }

    /// Marks the booted slot bad: it is not booted again, the other (committed) slot boots
    /// next. Refused when the booted slot holds the only committed version.
    ///
    /// # Errors
    /// [`Error::NotSupported`] by default.
    fn mark_bad(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        Err(self.not_supported("mark-bad"))
    }

    /// Reboots into the primary slot.
    ///
    /// # Errors
    /// [`Error::NotSupported`] by default.
    fn reboot(&mut self, _ctx: &Context<'_>) -> Result<()> {
        Err(self.not_supported("reboot"))
    }

    /// Builds the typed "not supported" error for this driver.
    fn not_supported(&self, operation: &str) -> Error {
        Error::NotSupported { driver: self.name().into(), operation: operation.into(), hint: None }
    }
}

/// The result of probing a factory.
pub enum Probe {
    /// Not for this system (its tool is not installed); the reason is for logs.
    Declined(String),
    /// Its tool is installed but not set up for this system (no tool config, no slots): the
    /// reason is shown in "Not implemented" so the user learns what is missing.
    Unconfigured(String),
    /// Ready.
    Available(Box<dyn Driver>),
    /// Present but unusable.
    Broken(Error),
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Declined(r) => write!(f, "Declined({r})"),
            Probe::Unconfigured(r) => write!(f, "Unconfigured({r})"),
            Probe::Available(d) => write!(f, "Available({})", d.name()),
            Probe::Broken(e) => write!(f, "Broken({e})"),
        }
    }
}

/// A registered implementation, probed once per run.
pub trait DriverFactory: Sync {
    /// The driver's name, as used in `driver = "…"`.
    fn name(&self) -> &'static str;
    /// What to install to make it available (`rauc (apt install rauc)`).
    fn install_hint(&self) -> &'static str;
    /// What the driver can do, for the support matrix.
    fn capabilities(&self) -> Capabilities;
    /// The file extensions (without the dot) of the update files this driver installs
    /// (`bundle`, `raucb`, …): a directory or repository source offers only files with an
    /// extension some registered driver names. The default names none.
    fn update_extensions(&self) -> &'static [&'static str] {
        &[]
    }
    /// The component kinds beside the OS image ([`crate::component::Kind`] names: `files`,
    /// `app`, `firmware`, `data`, `external` for out-of-tree handlers) that this driver's update
    /// format can carry, for the support matrix. The default names none.
    fn component_kinds(&self) -> &'static [&'static str] {
        &[]
    }
    /// Decides whether the driver serves this system.
    fn probe(&self, ctx: &Context<'_>) -> Probe;
    /// Whether the driver can honour `config` (its tool-facing keys: `verify`,
    /// `signature-threshold`, `boot-retry-limit`). `update config` calls it before storing a
    /// change, so a value the driver cannot honour is refused when it is set, not at the next
    /// install. The default accepts everything.
    ///
    /// # Errors
    /// [`crate::Error::NotSupported`] naming the key, the value and the driver.
    fn check_config(&self, _config: &crate::config::Config) -> crate::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_names_its_slot_unless_it_installed_components_only() {
        let mut o = InstallOutcome { version: Version::new(2, 0, 0), slot: "B".into(), reboot_required: true };
        assert_eq!(o.summary(), "installed 2.0.0 into slot B");
        o.slot = InstallOutcome::COMPONENTS_ONLY.into();
        assert_eq!(o.summary(), "installed 2.0.0 (components only, no slot)");
    }
}
