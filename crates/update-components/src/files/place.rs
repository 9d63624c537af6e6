//! An A/B place: two sides `a` and `b` in a base directory, a symbolic link switched between
//! them, a version stamp beside each side, and a record of the open transaction.
//!
//! ```text
//! <base>/a/            one side (a tree)          <base>/a.version   {"version","sha256"} of a
//! <base>/b/            the other side             <base>/b.version
//! <link> -> …/a        the active side (relative link, replaced by rename)
//! <state_dir>/place.json   the transaction record (below)
//! ```
//!
//! The record says which transaction is open, which side was active when its install began
//! (`before`, or none), which side it installs into (`target`) and how far it got. Every step
//! is written before (intent) or after (completion) the file-system change it describes, so a
//! repeated phase after a power cut finds either the old or the new state and finishes the
//! work:
//!
//! - `install` writes the record (`installing`), removes the target's stamp, empties and fills
//!   the target, fsyncs it, then writes the stamp and the record (`installed`). The stamp exists
//!   only for a complete, durable side.
//! - `activate` records `activating`, then replaces the link (a new link renamed over it) and
//!   fsyncs its directory.
//! - `commit` records `committed`; the previous side stays as it is, so a rollback of the same
//!   transaction (another component failed to commit) still returns to it.
//! - `rollback` points the link back at `before` (or removes it when there was none) and
//!   records `rolled-back`; from any phase, and again.
//!
//! Failpoints ([`Steps`]) stop a phase between two of these steps, which is how the tests
//! simulate a power cut.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use update_core::component::{Component, ComponentState, ComponentStatus};
use update_core::{Error, Result, Version, atomic};

/// One side of a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// `a`.
    A,
    /// `b`.
    B,
}

impl Side {
    /// `a` or `b`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }

    /// The other side.
    #[must_use]
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// How far the open transaction got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The target is being emptied and filled.
    Installing,
    /// The target is complete and stamped.
    Installed,
    /// The link is being (or has been) switched to the target.
    Activating,
    /// The target is the committed side.
    Committed,
    /// The link is back at `before`.
    RolledBack,
}

/// The record of the last transaction (`place.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The transaction id.
    pub transaction: String,
    /// The side active when the install began (none: nothing was there).
    pub before: Option<Side>,
    /// The side installed into.
    pub target: Side,
    /// The version installed.
    pub version: Version,
    /// Its payload digest.
    pub sha256: String,
    /// How far it got.
    pub phase: Phase,
    /// Whether the switch to the target began (a rollback then restarts what runs there).
    #[serde(default)]
    pub activated: bool,
}

/// What a side holds (`<side>.version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    version: Version,
    sha256: String,
}

/// What the link is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Active {
    /// Nothing at the link's path.
    Missing,
    /// A plain directory (not adopted yet: a `files` tree from before libupdate).
    Plain,
    /// A link to a side.
    Side(Side),
}

/// Failpoints: a phase stops with an error before its `n`-th step (tests simulate power cuts
/// with it); `None` never stops.
#[derive(Debug, Default)]
pub struct Steps {
    left: Cell<Option<usize>>,
}

impl Steps {
    /// Stops before step `n` (counted from 0 over every phase of this handler).
    #[must_use]
    pub fn cut_after(n: usize) -> Self {
        Self { left: Cell::new(Some(n)) }
    }

    /// Passes a step boundary, or stops there.
    ///
    /// # Errors
    /// [`Error::Other`] "simulated power cut" when the count is reached.
    pub fn step(&self, name: &str) -> Result<()> {
        match self.left.get() {
            Some(0) => Err(Error::Other(format!("simulated power cut before {name}"))),
            Some(n) => {
                self.left.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// An A/B place (see the module docs).
pub struct Place<'a> {
    /// Where the sides and their stamps live.
    pub base: PathBuf,
    /// The switched link.
    pub link: PathBuf,
    /// The link's text for side `a` is `<link_prefix>a` (relative to the link's directory).
    pub link_prefix: String,
    /// The transaction record.
    pub record_file: PathBuf,
    /// The component, for messages (`files component site`).
    pub what: String,
    /// Failpoints.
    pub steps: &'a Steps,
}

impl Place<'_> {
    /// The directory of a side.
    #[must_use]
    pub fn side_dir(&self, side: Side) -> PathBuf {
        self.base.join(side.as_str())
    }

    fn stamp_file(&self, side: Side) -> PathBuf {
        self.base.join(format!("{}.version", side.as_str()))
    }

    fn link_dir(&self) -> &Path {
        self.link.parent().unwrap_or(Path::new("/"))
    }

    /// What the link is now.
    ///
    /// # Errors
    /// [`Error::Refused`] when the path is something we did not make (a file, a link elsewhere).
    pub fn active(&self) -> Result<Active> {
        let meta = match fs::symlink_metadata(&self.link) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Active::Missing),
            Err(e) => return Err(Error::io("inspect", &self.link, e)),
        };
        if meta.is_dir() {
            return Ok(Active::Plain);
        }
        if meta.file_type().is_symlink() {
            let to = fs::read_link(&self.link).map_err(|e| Error::io("read link", &self.link, e))?;
            for side in [Side::A, Side::B] {
                if to == Path::new(&self.link_text(side)) {
                    return Ok(Active::Side(side));
                }
            }
            return Err(Error::Refused(format!(
                "{}: {} points to {}, not to {} or {}; move it away to let the handler manage it",
                self.what,
                self.link.display(),
                to.display(),
                self.link_text(Side::A),
                self.link_text(Side::B)
            )));
        }
        Err(Error::Refused(format!(
            "{}: {} is neither a directory nor a link made by the handler; move it away",
            self.what,
            self.link.display()
        )))
    }

    fn link_text(&self, side: Side) -> String {
        format!("{}{}", self.link_prefix, side.as_str())
    }

    /// The last transaction's record.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read or parsed.
    pub fn record(&self) -> Result<Option<Record>> {
        read_json(&self.record_file)
    }

    fn write_record(&self, record: &Record) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| Error::Other(format!("encode the record: {e}")))?;
        atomic::write_atomic(&self.record_file, &bytes, 0o644)
    }

    fn stamp(&self, side: Side) -> Result<Option<Stamp>> {
        read_json(&self.stamp_file(side))
    }

    /// The version stamped on a side, if it is complete.
    ///
    /// # Errors
    /// [`Error::Io`] when the stamp cannot be read.
    pub fn version(&self, side: Side) -> Result<Option<Version>> {
        Ok(self.stamp(side)?.map(|s| s.version))
    }

    /// Points the link at `to` (new link renamed over the old one, directory fsynced), or removes
    /// it for `None`. Does nothing but the fsync when it already is so.
    ///
    /// # Errors
    /// [`Error::Io`] naming the link.
    pub fn switch(&self, to: Option<Side>) -> Result<()> {
        let now = self.active()?;
        match to {
            Some(side) if now != Active::Side(side) => {
                let name = self.link.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = self.link_dir().join(format!(".{name}.update-link"));
                let _ = fs::remove_file(&tmp);
                std::os::unix::fs::symlink(self.link_text(side), &tmp)
                    .map_err(|e| Error::io("create symbolic link", &tmp, e))?;
                self.steps.step("renaming the new link over the old one")?;
                fs::rename(&tmp, &self.link).map_err(|e| Error::io("switch the link", &self.link, e))?;
            }
            None if matches!(now, Active::Side(_)) => {
                fs::remove_file(&self.link).map_err(|e| Error::io("remove the link", &self.link, e))?;
            }
            _ => {}
        }
        atomic::sync_dir(self.link_dir())
    }

    /// Moves a plain directory at the link's path into side `a` and links it (the first
    /// install over a tree from before libupdate). Repeatable after a cut at any point.
    ///
    /// # Errors
    /// [`Error::Refused`] when `a` exists already beside a plain directory; [`Error::Io`].
    pub fn adopt(&self) -> Result<()> {
        let marker = self.base.join("adopted");
        match self.active()? {
            Active::Plain => {
                let a = self.side_dir(Side::A);
                if a.exists() && !marker.exists() {
                    return Err(Error::Refused(format!(
                        "{}: cannot adopt the directory {}: {} exists already; remove one of them",
                        self.what,
                        self.link.display(),
                        a.display()
                    )));
                }
                atomic::ensure_dir(&self.base)?;
                atomic::write_atomic(&marker, b"a holds the directory found at the first install\n", 0o644)?;
                self.steps.step("moving the plain directory into a")?;
                if a.exists() {
                    // A cut between the rename and the link can leave both only if someone
                    // recreated the path since: refuse rather than guess.
                    return Err(Error::Refused(format!(
                        "{}: both {} and {} exist after an interrupted adoption; remove one of them",
                        self.what,
                        self.link.display(),
                        a.display()
                    )));
                }
                fs::rename(&self.link, &a).map_err(|e| Error::io("move into the A/B place", &self.link, e))?;
                atomic::sync_dir(&self.base)?;
                atomic::sync_dir(self.link_dir())?;
                self.steps.step("linking the adopted directory")?;
                self.switch(Some(Side::A))
            }
            Active::Missing | Active::Side(_) => self.repair(),
        }
    }

    /// Finishes an adoption cut between moving the directory and linking it (the live path
    /// is missing); does nothing otherwise. Never adopts.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn repair(&self) -> Result<()> {
        if self.active()? == Active::Missing && self.base.join("adopted").exists() && self.side_dir(Side::A).is_dir() {
            self.switch(Some(Side::A))?;
        }
        Ok(())
    }

    /// Opens (or resumes) `transaction`'s install; returns the record to fill the target of, or
    /// `None` when that side is already installed (or activated) for this transaction.
    ///
    /// # Errors
    /// [`Error::Refused`] when another transaction is activated and neither committed nor
    /// rolled back, or the link is not ours.
    pub fn begin_install(&self, transaction: &str, component: &Component) -> Result<Option<Record>> {
        let active = self.active()?;
        if active == Active::Plain {
            return Err(Error::Refused(format!("{}: {} is not adopted yet", self.what, self.link.display())));
        }
        if let Some(r) = self.record()? {
            if r.transaction == transaction {
                if r.version != component.version || r.sha256 != component.sha256 {
                    return Err(Error::Refused(format!(
                        "{}: transaction {transaction} installs {} here already, not {}",
                        self.what, r.version, component.version
                    )));
                }
                return Ok(match r.phase {
                    Phase::Installing => Some(r),
                    Phase::Installed | Phase::Activating | Phase::Committed => None,
                    Phase::RolledBack => {
                        return Err(Error::Refused(format!(
                            "{}: transaction {transaction} was rolled back here",
                            self.what
                        )));
                    }
                });
            }
            if r.phase == Phase::Activating {
                return Err(Error::Refused(format!(
                    "{}: transaction {} is still on trial here (neither committed nor rolled back)",
                    self.what, r.transaction
                )));
            }
        }
        let before = match active {
            Active::Side(s) => Some(s),
            Active::Missing | Active::Plain => None,
        };
        let record = Record {
            transaction: transaction.to_owned(),
            before,
            target: before.map_or(Side::A, Side::other),
            version: component.version.clone(),
            sha256: component.sha256.clone(),
            phase: Phase::Installing,
            activated: false,
        };
        self.write_record(&record)?;
        Ok(Some(record))
    }

    /// Removes the target's stamp and empties it (step 2 of an install).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn empty_target(&self, record: &Record) -> Result<PathBuf> {
        self.steps.step("removing the target's stamp")?;
        let stamp = self.stamp_file(record.target);
        match fs::remove_file(&stamp) {
            Ok(()) => atomic::sync_dir(&self.base)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &stamp, e)),
        }
        self.steps.step("emptying the target")?;
        let dir = self.side_dir(record.target);
        if fs::symlink_metadata(&dir).is_ok() {
            fs::remove_dir_all(&dir).map_err(|e| Error::io("empty", &dir, e))?;
        }
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        atomic::sync_dir(&self.base)?;
        Ok(dir)
    }

    /// Stamps the filled target and records the install complete.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn finish_install(&self, mut record: Record) -> Result<()> {
        self.steps.step("stamping the target")?;
        let stamp = Stamp { version: record.version.clone(), sha256: record.sha256.clone() };
        let bytes = serde_json::to_vec(&stamp).map_err(|e| Error::Other(format!("encode the stamp: {e}")))?;
        atomic::write_atomic(&self.stamp_file(record.target), &bytes, 0o644)?;
        self.steps.step("recording the install")?;
        record.phase = Phase::Installed;
        self.write_record(&record)
    }

    /// The record of `transaction`, which must have reached `at_least`.
    fn record_for(&self, transaction: &str, component: &Component, at_least: Phase, doing: &str) -> Result<Record> {
        match self.record()? {
            Some(r)
                if r.transaction == transaction && r.version == component.version && r.sha256 == component.sha256 =>
            {
                if r.phase == Phase::RolledBack {
                    return Err(Error::Refused(format!(
                        "{}: cannot {doing}: transaction {transaction} was rolled back",
                        self.what
                    )));
                }
                if r.phase < at_least {
                    return Err(Error::Refused(format!(
                        "{}: cannot {doing}: {} is not installed completely yet",
                        self.what, component.version
                    )));
                }
                Ok(r)
            }
            _ => Err(Error::Refused(format!(
                "{}: cannot {doing}: transaction {transaction} installed nothing here",
                self.what
            ))),
        }
    }

    /// Switches the link to the installed side.
    ///
    /// # Errors
    /// [`Error::Refused`] when the install is not complete or its stamp does not match.
    pub fn activate(&self, transaction: &str, component: &Component) -> Result<Record> {
        let mut record = self.record_for(transaction, component, Phase::Installed, "activate")?;
        let stamp = self.stamp(record.target)?;
        if stamp.as_ref().is_none_or(|s| s.version != record.version || s.sha256 != record.sha256) {
            return Err(Error::Refused(format!(
                "{}: cannot activate: side {} does not hold {} (its stamp is missing or different)",
                self.what,
                record.target.as_str(),
                record.version
            )));
        }
        if record.phase == Phase::Installed {
            self.steps.step("recording the activation")?;
            record.phase = Phase::Activating;
            record.activated = true;
            self.write_record(&record)?;
        }
        self.steps.step("switching the link")?;
        if record.phase == Phase::Activating {
            self.switch(Some(record.target))?;
        }
        Ok(record)
    }

    /// Whether the link points at the installed side: what `activate` should have left.
    ///
    /// # Errors
    /// [`Error::Refused`] naming what is active instead.
    pub fn check_active(&self, transaction: &str, component: &Component) -> Result<Record> {
        let record = self.record_for(transaction, component, Phase::Activating, "check")?;
        let active = self.active()?;
        if active != Active::Side(record.target) {
            return Err(Error::Refused(format!(
                "{}: {} is active, not {} on side {}",
                self.what,
                self.describe(&active),
                component.version,
                record.target.as_str()
            )));
        }
        Ok(record)
    }

    fn describe(&self, active: &Active) -> String {
        match active {
            Active::Missing => "nothing".into(),
            Active::Plain => "a plain directory".into(),
            Active::Side(s) => {
                let v = self.version(*s).ok().flatten().map_or_else(|| "an unversioned tree".into(), |v| v.to_string());
                format!("{v} on side {}", s.as_str())
            }
        }
    }

    /// Records the activated side committed (the previous side stays for a rollback of the same
    /// transaction).
    ///
    /// # Errors
    /// [`Error::Refused`] when the transaction was not activated (or was rolled back).
    pub fn commit(&self, transaction: &str, component: &Component) -> Result<()> {
        let mut record = self.check_active(transaction, component)?;
        if record.phase == Phase::Activating {
            self.steps.step("recording the commit")?;
            record.phase = Phase::Committed;
            self.write_record(&record)?;
        }
        Ok(())
    }

    /// Returns the link to the side active before `transaction` (or removes it). Returns the
    /// record when the transaction had started activating (the caller restarts what runs
    /// there), `None` when nothing visible had changed.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn rollback(&self, transaction: &str) -> Result<Option<Record>> {
        let Some(mut record) = self.record()?.filter(|r| r.transaction == transaction) else {
            return Ok(None);
        };
        self.steps.step("switching the link back")?;
        self.switch(record.before)?;
        if record.phase != Phase::RolledBack {
            // A rolled-back side keeps no stamp, so it is never taken for installed.
            self.steps.step("removing the rolled-back side's stamp")?;
            let stamp = self.stamp_file(record.target);
            match fs::remove_file(&stamp) {
                Ok(()) => atomic::sync_dir(&self.base)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &stamp, e)),
            }
            self.steps.step("recording the rollback")?;
            record.phase = Phase::RolledBack;
            self.write_record(&record)?;
        }
        Ok(record.activated.then_some(record))
    }

    /// What the place holds, read back from the link and the stamps.
    ///
    /// # Errors
    /// [`Error::Refused`] when the link is not ours; [`Error::Io`].
    pub fn status(&self) -> Result<ComponentStatus> {
        let active = self.active()?;
        let record = self.record()?;
        let open = |phase: Phase| record.as_ref().filter(|r| r.phase == phase);
        Ok(match active {
            Active::Missing => match open(Phase::Installed) {
                Some(r) => ComponentStatus {
                    active: None,
                    inactive: self.version(r.target)?,
                    state: ComponentState::Installed,
                    detail: Some(format!("{} does not exist yet", self.link.display())),
                },
                None => ComponentStatus { active: None, inactive: None, state: ComponentState::Absent, detail: None },
            },
            Active::Plain => ComponentStatus {
                active: None,
                inactive: None,
                state: ComponentState::Committed,
                detail: Some(format!(
                    "{} is a plain directory; the first install moves it into {}",
                    self.link.display(),
                    self.side_dir(Side::A).display()
                )),
            },
            Active::Side(side) => {
                let state = if open(Phase::Activating).is_some_and(|r| r.target == side) {
                    ComponentState::Trial
                } else if open(Phase::Installed).is_some_and(|r| r.target != side) {
                    ComponentState::Installed
                } else {
                    ComponentState::Committed
                };
                ComponentStatus {
                    active: self.version(side)?,
                    inactive: self.version(side.other())?,
                    state,
                    detail: Some(format!("{} -> {}", self.link.display(), self.link_text(side))),
                }
            }
        })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::io("parse", path, std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}
