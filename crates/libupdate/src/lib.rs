//! libupdate: one OTA API, whatever implementation sits underneath.
//!
//! [`Updater`] is the facade (libvirt's shape): it loads the configuration and keyring from a
//! (re-rootable) device layout, probes the registered drivers once, and turns every request —
//! check, install, status, mark-good, rollback, config and keyring changes — into a checked
//! call on the chosen [`Driver`], with log lines (syslog or a file) and an append-only audit
//! record for every state-changing action. With no driver available every driver operation
//! fails with [`Error::NotImplemented`] and a message that names what to install.

pub mod daemon;
pub mod fleet;
pub mod log;
pub mod registry;
pub mod schedule;
pub mod settings;
pub mod source;

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;
use update_core::audit::{self, AuditAction, AuditRecord, Outcome};
use update_core::config::{Config, Secure, SourceUrl, Verify};
use update_core::driver::{
    BundleInfo, Context, Driver, DriverFactory, Events, InstallOutcome, InstallRequest, NoProgress, Progress,
    SlotChange, Status,
};
use update_core::keyring::{KeyEntry, Keyring, PublicKey};
use update_core::{Error, KeyName, Paths, Result, Version, atomic};

pub use log::{Logger, Severity};
pub use registry::{DriverReport, PROBE_ORDER};
pub use settings::Setting;

/// The `operation` of the NotSupported error a driver without `inspect` returns.
const INSPECT_OPERATION: &str = "inspecting an update";

/// How long an operation waits for the install lock before reporting "busy".
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Per-run overrides of the stored config (`update --source … --verify … --secure …`).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--source`.
    pub source: Option<SourceUrl>,
    /// `--verify`.
    pub verify: Option<Verify>,
    /// `--secure`.
    pub secure: Option<Secure>,
}

/// What a check found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The driver used.
    pub driver: String,
    /// The running version.
    pub installed: Option<String>,
    /// The update that would be installed, if any.
    pub available: Option<Candidate>,
    /// Updates seen but not eligible, with the reason.
    pub skipped: Vec<Skipped>,
    /// Whether the source named a single file (an ineligible one is then an error).
    #[serde(skip)]
    pub single_file: bool,
    /// A single update file the driver cannot inspect (it checks it itself at install).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uninspected: Option<PathBuf>,
}

/// An eligible update.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Where it is (local path after fetching).
    pub path: PathBuf,
    /// What it contains.
    pub info: BundleInfo,
}

/// An update that is not eligible.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Where it is.
    pub path: PathBuf,
    /// Why it is skipped.
    pub reason: String,
    /// The kind of the error that ruled it out (`verification`, `refused`, …).
    pub kind: &'static str,
}

/// What `update --now` did.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    /// The check that chose the update.
    pub check: CheckReport,
    /// The install, if one happened.
    pub installed: Option<InstallOutcome>,
    /// Whether a reboot was started.
    pub rebooted: bool,
}

/// The facade. See the crate docs.
pub struct Updater {
    paths: Paths,
    config: Config,
    keyring: Keyring,
    logger: Logger,
    actor: String,
    factories: Vec<&'static dyn DriverFactory>,
    progress: Box<dyn Progress>,
    fleet: Option<fleet::Fleet>,
}

impl std::fmt::Debug for Updater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updater").field("root", &self.paths.root()).finish_non_exhaustive()
    }
}

fn actor() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid().to_string()).unwrap_or_else(|_| "?".into());
    let mut a = format!("uid={uid} pid={}", std::process::id());
    if let Ok(user) = std::env::var("SUDO_USER") {
        a.push_str(&format!(" sudo-user={user}"));
    }
    a
}

impl Updater {
    /// Opens a device layout with the given driver table.
    ///
    /// A config file that does not parse falls back to the last good copy (logged as a
    /// warning); without one, this fails with the parse error.
    ///
    /// # Errors
    /// [`Error::ConfigParse`] or [`Error::Io`] when neither the config nor the last good copy
    /// can be used, or the keyring cannot be read.
    pub fn open(paths: Paths, factories: Vec<&'static dyn DriverFactory>) -> Result<Self> {
        let (config, fallback) = match Config::load_or_last_good(&paths) {
            Ok(v) => v,
            Err(e) => {
                Logger::new(&paths, &update_core::config::LogTarget::Syslog).log(Severity::Error, &e.to_string());
                return Err(e);
            }
        };
        let logger = Logger::new(&paths, &config.log);
        if let Some(e) = fallback {
            let msg = format!("{e}; using the last good configuration {}", paths.last_good_config().display());
            logger.log(Severity::Warning, &msg);
            eprintln!("update: warning: {msg}");
        }
        let keyring = match Keyring::load(&paths) {
            Ok(k) => k,
            Err(e) => {
                logger.log(Severity::Error, &e.to_string());
                return Err(e);
            }
        };
        let fleet = fleet::Fleet::from_config(&paths, &config);
        Ok(Self { paths, config, keyring, logger, actor: actor(), factories, progress: Box::new(NoProgress), fleet })
    }

    /// Sets how long operations report progress.
    pub fn set_progress(&mut self, progress: Box<dyn Progress>) {
        self.progress = progress;
    }

    /// Applies per-run overrides; the stored config is not changed.
    pub fn apply_overrides(&mut self, o: &Overrides) {
        if let Some(s) = &o.source {
            self.config.source = Some(s.clone());
        }
        if let Some(v) = o.verify {
            self.config.verify = v;
        }
        if let Some(s) = o.secure {
            self.config.secure = s;
        }
    }

    /// The effective config for this run.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The layout.
    #[must_use]
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The keyring.
    #[must_use]
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Logs a line.
    pub fn log(&self, severity: Severity, message: &str) {
        self.logger.log(severity, message);
    }

    /// The fleet server connection (`server` in the config), if any.
    #[must_use]
    pub fn fleet(&self) -> Option<&fleet::Fleet> {
        self.fleet.as_ref()
    }

    /// Reports one update step to the fleet server (queued in the outbox first, so it is sent
    /// later when the server cannot be reached now). Without `server`, does nothing. Never
    /// fails: a report that cannot even be queued is logged.
    pub fn report(&self, kind: fleet::EventKind, version: Option<String>, reason: Option<String>) {
        if let Some(f) = &self.fleet
            && let Err(e) = f.report(fleet::event(kind, version, reason))
        {
            self.log(Severity::Warning, &format!("fleet report ({kind:?}) not queued: {e}"));
        }
    }

    /// Checks in with the fleet server: sends `update status` and returns the server's answer
    /// (whether an operator asked for a check). `Ok(None)` without `server`. Also sends the
    /// queued events.
    ///
    /// # Errors
    /// Driver errors (status) and [`Error::Source`] when the server cannot be reached.
    pub fn checkin(&self) -> Result<Option<fleet::CheckinAnswer>> {
        let Some(f) = &self.fleet else { return Ok(None) };
        let _ = f.flush();
        let status = self.status()?;
        f.checkin(&status).map(Some)
    }

    /// [`Updater::checkin`], with a failure logged as a warning instead of returned.
    pub fn checkin_logged(&self) -> Option<fleet::CheckinAnswer> {
        match self.checkin() {
            Ok(a) => a,
            Err(e) => {
                self.log(Severity::Warning, &format!("fleet check-in failed: {e}"));
                None
            }
        }
    }

    fn audit_record(&self, action: AuditAction, outcome: Outcome) -> AuditRecord {
        AuditRecord::new(update_core::time_util::now_rfc3339(), self.actor.clone(), action, outcome)
    }

    fn write_audit(&self, record: &AuditRecord) {
        if let Err(e) = audit::append(&self.paths.audit_log(), record) {
            // The audit log failing must be loud, but must not turn a done install into a failure.
            self.logger.log(Severity::Error, &format!("audit log: {e}"));
            eprintln!("update: error: audit log: {e}");
        }
    }

    fn context(&self) -> Context<'_> {
        Context {
            paths: &self.paths,
            config: &self.config,
            keyring: &self.keyring,
            events: self,
            progress: self.progress.as_ref(),
        }
    }

    /// Logs an error and passes it on.
    fn fail<T>(&self, e: Error) -> Result<T> {
        self.logger.log(Severity::Error, &e.to_string());
        Err(e)
    }

    /// A record stamped with the time and this process as actor.
    #[must_use]
    pub fn record(&self, action: AuditAction, outcome: Outcome) -> AuditRecord {
        self.audit_record(action, outcome)
    }

    /// Appends a record to the audit log.
    pub fn audit_event(&self, record: AuditRecord) {
        self.write_audit(&record);
    }

    /// Reboots through the driver (audited).
    ///
    /// # Errors
    /// [`Error::NotImplemented`] with no driver; the driver's reboot errors.
    pub fn reboot(&self) -> Result<()> {
        let mut driver = match self.driver() {
            Ok(d) => d,
            Err(e) => return self.fail(e),
        };
        self.write_audit(&self.audit_record(AuditAction::Reboot, Outcome::Ok).driver(driver.name()));
        driver.reboot(&self.context()).or_else(|e| self.fail(e))
    }

    // ---- configuration and keyring -------------------------------------------------------

    /// Changes one config key: locks, re-reads the file strictly (a broken file is refused,
    /// never overwritten), applies, validates, writes atomically and audits the old and new value.
    ///
    /// # Errors
    /// [`Error::ConfigParse`] when the file on disk is broken; [`Error::InvalidValue`]; I/O errors.
    pub fn set(&mut self, setting: &Setting) -> Result<()> {
        let result = (|| -> Result<_> {
            let _lock = atomic::Lock::acquire(&self.paths.config_lock_file())?;
            let mut stored = Config::load(&self.paths)?;
            let old = setting.current(&stored);
            setting.apply(&mut stored);
            stored.validate()?;
            self.check_driver_accepts(&stored)?;
            let new = setting.current(&stored);
            stored.store(&self.paths)?;
            Ok((old, new, stored))
        })();
        match result {
            Ok((old, new, stored)) => {
                if setting == &Setting::Verify(Verify::IntegrityOnly) {
                    self.log(
                        Severity::Warning,
                        "verify set to false: updates will be installed without signature checks",
                    );
                }
                self.log(Severity::Notice, &format!("config {} changed from {old} to {new}", setting.key()));
                self.write_audit(
                    &self
                        .audit_record(AuditAction::ConfigChange, Outcome::Ok)
                        .subject(setting.key())
                        .change(Some(old), Some(new)),
                );
                self.logger = Logger::new(&self.paths, &stored.log);
                self.config = stored;
                Ok(())
            }
            Err(e) => {
                self.write_audit(
                    &self
                        .audit_record(AuditAction::ConfigChange, Outcome::Refused)
                        .subject(setting.key())
                        .message(e.to_string()),
                );
                self.fail(e)
            }
        }
    }

    /// Refuses a config the driver it selects cannot honour (a tool-facing key such as
    /// `boot-retry-limit` where the tool owns boot counting). With no driver available there is
    /// nothing to check against: the change is stored, and operations fail with "Not implemented".
    fn check_driver_accepts(&self, config: &Config) -> Result<()> {
        let ctx = Context { config, ..self.context() };
        let Ok(driver) = registry::select(&self.factories, &ctx) else { return Ok(()) };
        match self.factories.iter().find(|f| f.name() == driver.name()) {
            Some(factory) => factory.check_config(config),
            None => Ok(()),
        }
    }

    /// The stored config file's content (strict: a broken file is an error here).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn stored_config(&self) -> Result<Config> {
        Config::load(&self.paths)
    }

    fn change_keyring(
        &mut self,
        action: AuditAction,
        name: &KeyName,
        f: impl FnOnce(&mut Keyring) -> Result<(Option<String>, Option<String>)>,
    ) -> Result<()> {
        let result = (|| -> Result<_> {
            let _lock = atomic::Lock::acquire(&self.paths.config_lock_file())?;
            let mut ring = Keyring::load(&self.paths)?;
            let change = f(&mut ring)?;
            ring.store(&self.paths)?;
            Ok((ring, change))
        })();
        match result {
            Ok((ring, (old, new))) => {
                self.keyring = ring;
                self.log(Severity::Notice, &format!("keyring: {action:?} key '{name}'"));
                let describe = |id: Option<String>| id.map(|id| json!({ "key-id": id }));
                self.write_audit(
                    &self.audit_record(action, Outcome::Ok).subject(name.as_str()).change(describe(old), describe(new)),
                );
                Ok(())
            }
            Err(e) => {
                self.write_audit(
                    &self.audit_record(action, Outcome::Refused).subject(name.as_str()).message(e.to_string()),
                );
                self.fail(e)
            }
        }
    }

    /// `update config key add`.
    ///
    /// # Errors
    /// [`Error::Keyring`] for a duplicate name or key.
    pub fn key_add(&mut self, name: &KeyName, key: PublicKey) -> Result<()> {
        let now = update_core::time_util::now_rfc3339();
        self.change_keyring(AuditAction::KeyAdd, name, |r| {
            let e = r.add(name.clone(), key, &now)?;
            Ok((None, Some(e.key_id.clone())))
        })
    }

    /// `update config key update`.
    ///
    /// # Errors
    /// [`Error::Keyring`] when the name is missing.
    pub fn key_update(&mut self, name: &KeyName, key: PublicKey) -> Result<()> {
        let now = update_core::time_util::now_rfc3339();
        self.change_keyring(AuditAction::KeyUpdate, name, |r| {
            let old = r.update(name, key, &now)?;
            Ok((Some(old.key_id), Some(key.key_id())))
        })
    }

    /// `update config key delete`.
    ///
    /// # Errors
    /// [`Error::Keyring`] when the name is missing.
    pub fn key_delete(&mut self, name: &KeyName) -> Result<()> {
        self.change_keyring(AuditAction::KeyDelete, name, |r| {
            let old = r.delete(name)?;
            Ok((Some(old.key_id), None))
        })
    }

    /// `update config key list`.
    #[must_use]
    pub fn keys(&self) -> Vec<KeyEntry> {
        self.keyring.iter().cloned().collect()
    }

    // ---- drivers ----------------------------------------------------------------------

    fn driver(&self) -> Result<Box<dyn Driver>> {
        registry::select(&self.factories, &self.context())
    }

    /// `update drivers`: every known driver, probed.
    #[must_use]
    pub fn drivers(&self) -> Vec<DriverReport> {
        registry::report(&self.factories, &self.context())
    }

    /// `update status`.
    ///
    /// # Errors
    /// [`Error::NotImplemented`] with no driver; driver errors.
    pub fn status(&self) -> Result<Status> {
        let r = self.driver().and_then(|mut d| d.status(&self.context()));
        r.or_else(|e| self.fail(e))
    }

    /// `update mark-good`.
    ///
    /// # Errors
    /// [`Error::NotImplemented`] with no driver; driver errors.
    pub fn mark_good(&self) -> Result<SlotChange> {
        self.slot_operation(AuditAction::MarkGood, |d, ctx| d.mark_good(ctx))
    }

    /// `update rollback`.
    ///
    /// # Errors
    /// [`Error::NotImplemented`] with no driver; driver errors.
    pub fn rollback(&self) -> Result<SlotChange> {
        self.slot_operation(AuditAction::Rollback, |d, ctx| d.rollback(ctx))
    }

    fn slot_operation(
        &self,
        action: AuditAction,
        op: impl FnOnce(&mut dyn Driver, &Context<'_>) -> Result<SlotChange>,
    ) -> Result<SlotChange> {
        let mut driver = match self.driver() {
            Ok(d) => d,
            Err(e) => return self.fail(e),
        };
        let lock = match atomic::Lock::acquire_within(&self.paths.lock_file(), LOCK_WAIT) {
            Ok(l) => l,
            Err(e) => return self.fail(e),
        };
        let result = op(driver.as_mut(), &self.context());
        drop(lock);
        match result {
            Ok(change) => {
                if self.fleet.is_some() {
                    let version = driver
                        .status(&self.context())
                        .ok()
                        .and_then(|s| s.slots.into_iter().find(|x| x.name == change.slot).and_then(|x| x.version))
                        .map(|v| v.to_string());
                    match action {
                        AuditAction::MarkGood => self.report(fleet::EventKind::Committed, version, None),
                        AuditAction::Rollback => {
                            self.report(fleet::EventKind::RolledBack, version, Some(change.message.clone()));
                        }
                        _ => {}
                    }
                }
                self.log(Severity::Notice, &change.message);
                self.write_audit(
                    &self
                        .audit_record(action, Outcome::Ok)
                        .subject(&change.slot)
                        .driver(driver.name())
                        .message(&change.message),
                );
                Ok(change)
            }
            Err(e) => {
                self.write_audit(
                    &self.audit_record(action, outcome_of(&e)).driver(driver.name()).message(e.to_string()),
                );
                self.fail(e)
            }
        }
    }

    /// `update` without `--now`: finds the update that would be installed and queues it for
    /// the daemon's next window (`/var/lib/update/queued.json`).
    ///
    /// # Errors
    /// [`Error::NotImplemented`] with no driver; source and verification errors.
    pub fn check(&self) -> Result<CheckReport> {
        let mut driver = match self.driver() {
            Ok(d) => d,
            Err(e) => return self.fail(e),
        };
        let result = self.check_with(driver.as_mut());
        match &result {
            Ok(report) => {
                let found = report.available.as_ref().map(|c| c.info.version.to_string());
                let queued = serde_json::to_vec_pretty(&json!({
                    "found-at": update_core::time_util::now_rfc3339(),
                    "available": report.available,
                }))
                .unwrap_or_default();
                if let Err(e) = atomic::write_atomic(&self.paths.queue_file(), &queued, 0o644) {
                    self.log(Severity::Warning, &e.to_string());
                }
                let msg = match &found {
                    Some(v) => format!("update {v} available"),
                    None => "no update available".to_owned(),
                };
                self.log(Severity::Info, &msg);
                self.write_audit(
                    &self
                        .audit_record(AuditAction::Check, Outcome::Ok)
                        .driver(driver.name())
                        .message(msg)
                        .change(None, found.map(Into::into)),
                );
            }
            Err(e) => {
                self.write_audit(
                    &self.audit_record(AuditAction::Check, outcome_of(e)).driver(driver.name()).message(e.to_string()),
                );
                self.log(Severity::Error, &e.to_string());
            }
        }
        result
    }

    fn check_with(&self, driver: &mut dyn Driver) -> Result<CheckReport> {
        let ctx = self.context();
        if self.config.verify == Verify::IntegrityOnly {
            self.log(Severity::Warning, "verify is false: signatures are not checked for this run (hashes still are)");
        }
        let status = driver.status(&ctx)?;
        let url = self.config.source.clone().ok_or_else(|| {
            Error::Refused("no update source configured: run `update config source URL` or pass --source URL".into())
        })?;
        let trust = source::Trust {
            keyring: &self.keyring,
            threshold: self.config.signature_threshold,
            now: time::OffsetDateTime::now_utc(),
            config: &self.config,
            progress: self.progress.as_ref(),
            on_download: &|name: &str| {
                self.report(fleet::EventKind::Downloading, None, Some(format!("downloading {name}")));
            },
        };
        let offer = source::candidates(&self.paths, &url, trust)?;
        let mut best: Option<Candidate> = None;
        let mut skipped = Vec::new();
        for path in offer.files {
            let req = InstallRequest { bundle: path.clone(), verify: self.config.verify };
            let info = match driver.inspect(&ctx, &req) {
                Ok(info) => info,
                Err(Error::NotSupported { operation, .. }) if operation == INSPECT_OPERATION => {
                    // The driver cannot look inside: a single named file is installed as it is
                    // (the driver and its tool verify it); in a directory it cannot be chosen.
                    if offer.single {
                        return Ok(CheckReport {
                            driver: driver.name().into(),
                            installed: status.version.as_ref().map(ToString::to_string),
                            available: None,
                            skipped: Vec::new(),
                            single_file: true,
                            uninspected: Some(path),
                        });
                    }
                    skipped.push(Skipped {
                        path,
                        reason: format!(
                            "the {} driver cannot inspect updates; name the file as the source",
                            driver.name()
                        ),
                        kind: update_core::ErrorKind::NotSupported.as_str(),
                    });
                    continue;
                }
                Err(e) => {
                    skipped.push(Skipped { path, reason: e.to_string(), kind: e.kind().as_str() });
                    continue;
                }
            };
            if let Some(reason) = ineligible(&status, &info) {
                skipped.push(Skipped { path, reason, kind: update_core::ErrorKind::Refused.as_str() });
                continue;
            }
            if best.as_ref().is_none_or(|b| info.version > b.info.version) {
                best = Some(Candidate { path, info });
            }
        }
        Ok(CheckReport {
            driver: driver.name().into(),
            installed: status.version.as_ref().map(ToString::to_string),
            available: best,
            skipped,
            single_file: offer.single,
            uninspected: None,
        })
    }

    /// `update --now`: checks, installs the chosen update into the inactive slot, and reboots
    /// unless `noreboot`.
    ///
    /// # Errors
    /// [`Error::NotImplemented`] with no driver; [`Error::Busy`] when another update runs;
    /// source, verification, policy and I/O errors (the running system is untouched).
    pub fn install_now(&self, noreboot: bool) -> Result<InstallReport> {
        let mut driver = match self.driver() {
            Ok(d) => d,
            Err(e) => return self.fail(e),
        };
        let lock = match atomic::Lock::acquire_within(&self.paths.lock_file(), LOCK_WAIT) {
            Ok(l) => l,
            Err(e) => return self.install_failed(driver.name(), None, e),
        };
        let check = match self.check_with(driver.as_mut()) {
            Ok(c) => c,
            Err(e) => return self.install_failed(driver.name(), None, e),
        };
        if let (None, Some(path)) = (&check.available, &check.uninspected) {
            let path = path.clone();
            return self.install_file(driver.as_mut(), check, &path, "an uninspected update", lock, noreboot);
        }
        let Some(candidate) = check.available.clone() else {
            let reasons: Vec<String> =
                check.skipped.iter().map(|s| format!("{}: {}", s.path.display(), s.reason)).collect();
            self.log(Severity::Info, "no update to install");
            // A bundle that fails verification is an attack or corruption: always an error (exit
            // code 6). Older or foreign bundles in a directory of releases are normal ("no update");
            // a single named file that is not eligible is refused (exit code 7).
            let verification = update_core::ErrorKind::Verification.as_str();
            let failed_verification = check.skipped.iter().any(|s| s.kind == verification);
            if failed_verification || (check.single_file && !reasons.is_empty()) {
                let e = if failed_verification {
                    Error::verification(
                        self.config.source.as_ref().map_or_else(String::new, ToString::to_string),
                        format!("no update in the source verifies; {}", reasons.join("; ")),
                    )
                } else {
                    Error::Refused(format!("no eligible update; {}", reasons.join("; ")))
                };
                return self.install_failed(driver.name(), None, e);
            }
            return Ok(InstallReport { check, installed: None, rebooted: false });
        };
        if let Some(waiting) = self.waiting_for_reboot(driver.as_mut(), &candidate.info.version) {
            self.log(Severity::Info, &waiting);
            let mut check = check;
            check.skipped.push(Skipped {
                path: candidate.path,
                reason: waiting,
                kind: update_core::ErrorKind::Refused.as_str(),
            });
            check.available = None;
            return Ok(InstallReport { check, installed: None, rebooted: false });
        }
        let label = candidate.info.version.to_string();
        self.install_file(driver.as_mut(), check, &candidate.path, &label, lock, noreboot)
    }

    /// Audits an install that was refused or failed (outcome from the error's kind), logs the
    /// error and returns it.
    fn install_failed<T>(&self, driver: &str, subject: Option<&std::path::Path>, e: Error) -> Result<T> {
        let mut record = self.audit_record(AuditAction::Install, outcome_of(&e)).driver(driver).message(e.to_string());
        if let Some(p) = subject {
            record = record.subject(p.display().to_string());
        }
        self.write_audit(&record);
        // Another run holding the lock is not a failure of the update.
        if e.kind() != update_core::ErrorKind::Busy {
            self.report(fleet::EventKind::Failed, None, Some(e.to_string()));
        }
        self.fail(e)
    }

    /// Installs one chosen file through the driver, audits it, and reboots unless `noreboot`.
    fn install_file(
        &self,
        driver: &mut dyn Driver,
        check: CheckReport,
        path: &std::path::Path,
        label: &str,
        lock: atomic::Lock,
        noreboot: bool,
    ) -> Result<InstallReport> {
        let ctx = self.context();
        let req = InstallRequest { bundle: path.to_owned(), verify: self.config.verify };
        self.log(Severity::Notice, &format!("installing {label} from {}", path.display()));
        let outcome = match driver.install(&ctx, &req) {
            Ok(o) => o,
            Err(e) => return self.install_failed(driver.name(), Some(path), e),
        };
        let msg = format!("installed {} into slot {}", outcome.version, outcome.slot);
        self.log(Severity::Notice, &msg);
        self.report(fleet::EventKind::Installed, Some(outcome.version.to_string()), Some(msg.clone()));
        // The server sees the new slot states before the reboot (best effort).
        if self.fleet.is_some() {
            drop(self.checkin_logged());
        }
        self.write_audit(
            &self
                .audit_record(AuditAction::Install, Outcome::Ok)
                .driver(driver.name())
                .subject(outcome.slot.clone())
                .change(check.installed.clone().map(Into::into), Some(outcome.version.to_string().into()))
                .message(msg),
        );
        let _ = std::fs::remove_file(self.paths.queue_file());
        drop(lock);
        let mut rebooted = false;
        if outcome.reboot_required && !noreboot {
            self.write_audit(
                &self
                    .audit_record(AuditAction::Reboot, Outcome::Ok)
                    .driver(driver.name())
                    .subject(outcome.slot.clone()),
            );
            self.log(Severity::Notice, "rebooting into the new slot");
            if let Err(e) = driver.reboot(&ctx) {
                return self.fail(e);
            }
            rebooted = true;
        }
        Ok(InstallReport { check, installed: Some(outcome), rebooted })
    }

    /// Whether `version` is already installed in the primary slot, on trial and not yet booted.
    fn waiting_for_reboot(&self, driver: &mut dyn Driver, version: &Version) -> Option<String> {
        let status = driver.status(&self.context()).ok()?;
        status
            .slots
            .iter()
            .find(|s| {
                s.primary
                    && !s.booted
                    && s.state == update_core::driver::SlotState::Trying
                    && s.version.as_ref() == Some(version)
            })
            .map(|s| format!("{version} is already installed in slot {} and boots at the next reboot", s.name))
    }

    /// `update history`: the audit log.
    ///
    /// # Errors
    /// I/O or parse errors naming the log and line.
    pub fn history(&self) -> Result<Vec<AuditRecord>> {
        audit::read_all(&self.paths.audit_log())
    }
}

impl Events for Updater {
    fn audit(&self, record: AuditRecord) {
        self.write_audit(&record);
        // The driver noticed that the bootloader fell back: the fleet hears of the rollback.
        if record.action == AuditAction::Fallback {
            let version = record.new.as_ref().and_then(|v| v.as_str()).map(str::to_owned);
            self.report(fleet::EventKind::RolledBack, version, record.message.clone());
        }
    }
    fn info(&self, message: &str) {
        self.logger.log(Severity::Info, message);
    }
    fn warn(&self, message: &str) {
        self.logger.log(Severity::Warning, message);
    }
    fn record(&self, action: AuditAction, outcome: Outcome) -> AuditRecord {
        self.audit_record(action, outcome)
    }
}

fn outcome_of(e: &Error) -> Outcome {
    use update_core::ErrorKind as K;
    match e.kind() {
        K::Verification
        | K::Refused
        | K::Busy
        | K::NotImplemented
        | K::NotSupported
        | K::Usage
        | K::Config
        | K::Keyring => Outcome::Refused,
        _ => Outcome::Failed,
    }
}

/// Why an update is not eligible for this device, if it is not.
fn ineligible(status: &Status, info: &BundleInfo) -> Option<String> {
    if let Some(c) = &status.compatible
        && c != &info.compatible
    {
        return Some(format!("it is for '{}', this device is '{c}'", info.compatible));
    }
    match &status.version {
        Some(v) if &info.version <= v => Some(format!("version {} is not newer than the installed {v}", info.version)),
        _ => None,
    }
}

/// Parses a version for callers that only have text.
///
/// # Errors
/// As [`update_core::parse_version`].
pub fn version(text: &str) -> Result<Version> {
    update_core::parse_version(text)
}
