//! The [`Updater`]: the device layout, its config and keyring, and the driver, probed once.

use std::cell::RefCell;

use update_core::audit::{AuditAction, AuditRecord, Outcome};
use update_core::config::{Config, Secure, SourceUrl, Verify};
use update_core::driver::{Context, Driver, Events, NoProgress, Progress, Status};
use update_core::keyring::Keyring;
use update_core::{Paths, Result};

use crate::fleet;
use crate::log::{Logger, Severity};
use crate::registry::{DriverReport, DriverTable};

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

/// The facade. See the crate docs.
///
/// The driver is probed the first time an operation needs it and kept for the life of the
/// `Updater` (a config change that can select another driver drops it). An operation takes it
/// out while it runs, so a nested call never sees it borrowed.
pub struct Updater {
    pub(crate) paths: Paths,
    pub(crate) config: Config,
    pub(crate) keyring: Keyring,
    pub(crate) logger: Logger,
    pub(crate) actor: String,
    pub(crate) drivers: DriverTable,
    driver: RefCell<Option<Box<dyn Driver>>>,
    pub(crate) progress: Box<dyn Progress>,
    pub(crate) fleet: Option<fleet::Fleet>,
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
    /// Opens a device layout with the given driver table (a `Vec` of factories converts).
    ///
    /// A config file that does not parse falls back to the last good copy (logged as a
    /// warning); without one, this fails with the parse error.
    ///
    /// # Errors
    /// [`update_core::Error::ConfigParse`] or [`update_core::Error::Io`] when neither the config
    /// nor the last good copy can be used, or the keyring cannot be read.
    pub fn open(paths: Paths, drivers: impl Into<DriverTable>) -> Result<Self> {
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
        // External drivers installed under the root join the table in their probe order.
        let drivers = drivers.into().with_external(paths.root());
        Ok(Self {
            paths,
            config,
            keyring,
            logger,
            actor: actor(),
            drivers,
            driver: RefCell::new(None),
            progress: Box::new(NoProgress),
            fleet,
        })
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
        self.forget_driver();
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

    /// The driver table.
    #[must_use]
    pub fn driver_table(&self) -> &DriverTable {
        &self.drivers
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
    /// later when the server cannot be reached now), with the deployment of the assignment the
    /// device holds, if any. Without `server`, does nothing. Never fails: a report that cannot
    /// even be queued is logged.
    pub fn report(&self, kind: fleet::EventKind, version: Option<String>, reason: Option<String>) {
        let Some(f) = &self.fleet else { return };
        let mut event = fleet::event(kind.clone(), version, reason);
        event.deployment = crate::daemon::DaemonState::load(self).assignment.map(|a| a.deployment);
        if let Err(e) = f.report(event) {
            self.log(Severity::Warning, &format!("fleet report ({kind:?}) not queued: {e}"));
        }
    }

    /// Checks in with the fleet server: sends `update status` and returns the server's answer
    /// (whether an operator asked for a check). `Ok(None)` without `server`. Also sends the
    /// queued events.
    ///
    /// # Errors
    /// Driver errors (status) and [`update_core::Error::Source`] when the server cannot be reached.
    pub fn checkin(&self) -> Result<Option<fleet::CheckinAnswer>> {
        let Some(f) = &self.fleet else { return Ok(None) };
        let _ = f.flush();
        let status = self.status()?;
        let answer = f.checkin(&status)?;
        self.remember_assignment(&answer);
        Ok(Some(answer))
    }

    /// [`Updater::checkin`] with a status already read, a failure logged instead of returned.
    pub(crate) fn checkin_with(&self, status: &Status) {
        let Some(f) = &self.fleet else { return };
        let _ = f.flush();
        match f.checkin(status) {
            Ok(answer) => self.remember_assignment(&answer),
            Err(e) => self.log(Severity::Warning, &format!("fleet check-in failed: {e}")),
        }
    }

    /// Keeps the answer's rollout assignment in the daemon state for `update status` (an
    /// assignment that fails its checks is dropped with a warning; a failure to write is
    /// logged, never returned).
    fn remember_assignment(&self, answer: &fleet::CheckinAnswer) {
        let assignment = match &answer.assignment {
            Some(a) if a.validate().is_err() => {
                self.log(Severity::Warning, "the fleet server sent an assignment that fails its checks; ignored");
                None
            }
            other => other.clone(),
        };
        let mut state = crate::daemon::DaemonState::load(self);
        if state.assignment == assignment {
            return;
        }
        state.assignment = assignment;
        if let Err(e) = state.store(self) {
            self.log(Severity::Warning, &format!("cannot record the rollout assignment: {e}"));
        }
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

    /// A record stamped with the time and this process as actor.
    #[must_use]
    pub fn record(&self, action: AuditAction, outcome: Outcome) -> AuditRecord {
        AuditRecord::new(update_core::time_util::now_rfc3339(), self.actor.clone(), action, outcome)
    }

    /// Appends a record to the audit log. The audit log failing is loud (log and stderr), but
    /// never turns a done operation into a failure.
    pub fn audit_event(&self, record: AuditRecord) {
        if let Err(e) = update_core::audit::append(&self.paths.audit_log(), &record) {
            self.logger.log(Severity::Error, &format!("audit log: {e}"));
            eprintln!("update: error: audit log: {e}");
        }
    }

    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            paths: &self.paths,
            config: &self.config,
            keyring: &self.keyring,
            events: self,
            progress: self.progress.as_ref(),
        }
    }

    /// Logs an error and passes it on.
    pub(crate) fn fail<T>(&self, e: update_core::Error) -> Result<T> {
        self.logger.log(Severity::Error, &e.to_string());
        Err(e)
    }

    /// Records that `version` failed on this device ([`crate::failed`]): it is not installed
    /// again. Never fails: an error writing the list is logged.
    pub fn remember_failed(&self, version: &str, reason: &str) {
        match crate::failed::FailedReleases::record(&self.paths, version, reason) {
            Ok(()) => self.log(
                Severity::Warning,
                &format!("release {version} failed on this device and will not be installed again: {reason}"),
            ),
            Err(e) => self.log(Severity::Error, &format!("cannot record the failed release {version}: {e}")),
        }
    }

    // ---- the driver ---------------------------------------------------------------------

    /// Runs `op` with the driver, probing the table the first time. The driver is taken out of
    /// its cell while `op` runs and put back after, so a nested call probes afresh instead of
    /// finding it borrowed.
    ///
    /// # Errors
    /// The probe's error ([`update_core::Error::NotImplemented`] with no driver; logged here),
    /// or `op`'s.
    pub(crate) fn with_driver<T>(&self, op: impl FnOnce(&mut dyn Driver) -> Result<T>) -> Result<T> {
        let taken = self.driver.borrow_mut().take();
        let mut driver = match taken {
            Some(d) => d,
            None => match self.drivers.select(&self.context()) {
                Ok(d) => d,
                Err(e) => return self.fail(e),
            },
        };
        let result = op(driver.as_mut());
        self.driver.borrow_mut().get_or_insert(driver);
        result
    }

    /// The selected driver's name (probing it if needed).
    ///
    /// # Errors
    /// [`update_core::Error::NotImplemented`] when no driver is installed (logged here), or the
    /// probe's error.
    pub fn driver_name(&self) -> Result<&'static str> {
        self.with_driver(|d| Ok(d.name()))
    }

    /// Drops the probed driver: the next operation probes again (after a config change).
    pub(crate) fn forget_driver(&mut self) {
        *self.driver.get_mut() = None;
    }

    /// `update drivers`: every known driver, probed.
    #[must_use]
    pub fn drivers(&self) -> Vec<DriverReport> {
        self.drivers.report(&self.context())
    }

    /// `update status`.
    ///
    /// # Errors
    /// [`update_core::Error::NotImplemented`] with no driver; driver errors.
    pub fn status(&self) -> Result<Status> {
        self.with_driver(|d| d.status(&self.context()).or_else(|e| self.fail(e)))
    }

    /// `update history`: the audit log's records (rotated files first) and, for each line that
    /// is not a record, a message naming it (it is skipped, not fatal).
    ///
    /// # Errors
    /// I/O errors naming the log.
    pub fn history(&self, last: Option<usize>) -> Result<update_core::audit::History> {
        update_core::audit::history(&self.paths.audit_log(), last)
    }
}

impl Events for Updater {
    fn audit(&self, record: AuditRecord) {
        let fallback = (record.action == AuditAction::Fallback).then(|| {
            let text = |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| v.as_str()).map(str::to_owned);
            (text(&record.old), text(&record.new), record.message.clone())
        });
        self.audit_event(record);
        if let Some((failed, version, message)) = fallback {
            // The release the bootloader fell back from is never offered again.
            if let Some(failed) = failed {
                self.remember_failed(&failed, message.as_deref().unwrap_or("the bootloader fell back"));
            }
            // The driver noticed that the bootloader fell back: the fleet hears of the rollback.
            self.report(fleet::EventKind::RolledBack, version, message);
        }
    }
    fn info(&self, message: &str) {
        self.logger.log(Severity::Info, message);
    }
    fn warn(&self, message: &str) {
        self.logger.log(Severity::Warning, message);
    }
    fn record(&self, action: AuditAction, outcome: Outcome) -> AuditRecord {
        Updater::record(self, action, outcome)
    }
}

/// `update status`: the driver's status and what the device's update state adds to it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StatusReport {
    /// The driver's status (slots, versions, boot state).
    #[serde(flatten)]
    pub status: Status,
    /// An installed update that waits for its reboot: slot and version.
    pub pending: Option<Pending>,
    /// The configured source (after `--source`), if any.
    pub source: Option<String>,
    /// The schedule (`off`, `daily 3`, …).
    pub schedule: String,
    /// When the last scheduled check started (RFC 3339), and how it ended.
    pub last_check: Option<String>,
    /// How the last check ended.
    pub last_result: Option<String>,
    /// When the next scheduled check is due (RFC 3339), if any.
    pub next_check: Option<String>,
    /// Releases that failed on this device and are not installed again.
    pub failed_releases: Vec<String>,
    /// The rollout assignment the fleet server gave at the last check-in, if any.
    pub assignment: Option<update_protocol::Assignment>,
}

/// An installed update waiting for its reboot.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Pending {
    /// The slot it is in.
    pub slot: String,
    /// Its version.
    pub version: String,
}

impl Updater {
    /// `update status` with the update state: pending update, source, schedule, last and next
    /// check, failed releases.
    ///
    /// # Errors
    /// As [`Updater::status`].
    pub fn status_report(&self) -> Result<StatusReport> {
        let status = self.status()?;
        let pending = crate::slot_ops::pending(&status).map(|(slot, version)| Pending { slot, version });
        let state = crate::daemon::DaemonState::load(self);
        let next = crate::schedule::next_check(
            self.config.schedule,
            state.last_check_time(),
            time::OffsetDateTime::now_utc(),
            crate::daemon::device_seed(self),
        );
        Ok(StatusReport {
            status,
            pending,
            source: self.config.source.as_ref().map(ToString::to_string),
            schedule: self.config.schedule.to_string(),
            last_check: state.last_check,
            last_result: state.last_result,
            assignment: state.assignment,
            next_check: next.map(update_core::time_util::rfc3339),
            failed_releases: crate::failed::FailedReleases::load(&self.paths)
                .releases
                .into_iter()
                .map(|r| r.version)
                .collect(),
        })
    }
}
