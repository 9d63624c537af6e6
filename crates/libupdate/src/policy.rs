//! Check and install policy: which update the source offers, which one is eligible for this
//! device, and the install itself (`update`, `update --now`).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;
use update_core::audit::{AuditAction, Outcome};
use update_core::config::Verify;
use update_core::driver::{BundleInfo, Capability, Driver, InstallOutcome, InstallRequest, SlotState, Status};
use update_core::{Error, ErrorKind, Result, Version, atomic};

use crate::audited::Done;
use crate::failed::FailedReleases;
use crate::log::Severity;
use crate::slot_ops::LOCK_WAIT;
use crate::{Updater, fleet, source};

/// What a check found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
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
#[serde(rename_all = "kebab-case")]
pub struct Candidate {
    /// Where it is (local path after fetching; the URL of a streamed update).
    pub path: PathBuf,
    /// What it contains.
    pub info: BundleInfo,
    /// How to read it from the network, for a streamed update.
    #[serde(skip)]
    pub stream: Option<update_core::driver::Stream>,
}

/// An update that is not eligible.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Skipped {
    /// Where it is.
    pub path: PathBuf,
    /// Why it is skipped.
    pub reason: String,
    /// The kind of the error that ruled it out (`verification`, `refused`, …), or [`PENDING`].
    pub kind: &'static str,
}

/// What `update --now` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstallReport {
    /// The check that chose the update.
    pub check: CheckReport,
    /// The install, if one happened.
    pub installed: Option<InstallOutcome>,
    /// Whether a reboot was started.
    pub rebooted: bool,
}

/// The [`Skipped::kind`] of an update that is installed and waits for its reboot.
pub const PENDING: &str = "pending";

impl Updater {
    /// `update` without `--now`: finds the update that would be installed and queues it for
    /// the daemon's next window (`/var/lib/update/queued.json`).
    ///
    /// # Errors
    /// [`Error::NotImplemented`] with no driver; source and verification errors.
    pub fn check(&self) -> Result<CheckReport> {
        self.check_for(None)
    }

    /// [`Updater::check`], restricted to a fleet assignment's target and version when given
    /// (see [`Updater::install_for`]).
    ///
    /// # Errors
    /// As [`Updater::check`]; [`Error::Refused`] when the source does not offer the assigned
    /// release for this device.
    pub fn check_for(&self, assigned: Option<&fleet::Assignment>) -> Result<CheckReport> {
        self.with_driver(|driver| {
            let record = self.record(AuditAction::Check, Outcome::Ok).driver(driver.name());
            self.audited(
                record,
                || {
                    let (report, _) = self.check_with(driver, assigned)?;
                    self.refuse_unverified(&report)?;
                    Ok(report)
                },
                |report, record| {
                    let found = report.available.as_ref().map(|c| c.info.version.to_string());
                    self.queue(report);
                    let line = match &found {
                        Some(v) => format!("update {v} available"),
                        None => "no update available".to_owned(),
                    };
                    Done {
                        record: record.message(&line).change(None, found.map(Into::into)),
                        severity: Severity::Info,
                        line,
                    }
                },
            )
        })
    }

    /// Writes what a check found for the daemon's next window.
    fn queue(&self, report: &CheckReport) {
        let queued = serde_json::to_vec_pretty(&json!({
            "found-at": update_core::time_util::now_rfc3339(),
            "available": report.available,
        }))
        .unwrap_or_default();
        if let Err(e) = atomic::write_atomic(&self.paths.queue_file(), &queued, 0o644) {
            self.log(Severity::Warning, &e.to_string());
        }
    }

    /// Resolves the source and inspects every candidate; returns the report and the status it
    /// was judged against (so the install does not ask the driver again). With an assignment,
    /// only its target is resolved and only its exact version is eligible (every other check
    /// still applies); a device that already runs it checks nothing.
    fn check_with(
        &self,
        driver: &mut dyn Driver,
        assigned: Option<&fleet::Assignment>,
    ) -> Result<(CheckReport, Status)> {
        let ctx = self.context();
        if self.config.verify == Verify::IntegrityOnly {
            self.log(Severity::Warning, "verify is false: signatures are not checked for this run (hashes still are)");
        }
        let status = driver.status(&ctx)?;
        let wanted = assigned
            .map(|a| {
                update_core::parse_version(&a.version)
                    .map_err(|e| Error::Refused(format!("deployment {}: {e}", a.deployment)))
            })
            .transpose()?;
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
            is_update_extension: &|ext: &str| self.drivers.is_update_extension(ext),
            streaming: driver.capabilities().has(Capability::Streaming),
            only: assigned.map(|a| a.target.as_str()),
        };
        let installed = status.version.as_ref().map(ToString::to_string);
        let mut report = CheckReport {
            driver: driver.name().into(),
            installed,
            available: None,
            skipped: Vec::new(),
            single_file: false,
            uninspected: None,
        };
        if wanted.is_some() && wanted == status.version {
            return Ok((report, status));
        }
        let offer = if driver.reads_source() {
            // The driver reads the source itself (an apt archive): it is the one update.
            let at = url.file_path().map_or_else(|| url.as_str().into(), |p| self.paths.resolve(p));
            source::Offer { files: vec![at], single: true, ..source::Offer::default() }
        } else {
            source::candidates(&self.paths, &url, trust)?
        };
        report.single_file = offer.single;
        let inspects = driver.capabilities().has(Capability::Inspect);
        let failed = FailedReleases::load(&self.paths);
        for path in offer.files.clone() {
            if !inspects {
                // The driver cannot look inside: a single named file is installed as it is
                // (the driver and its tool verify it); in a directory it cannot be chosen.
                if offer.single {
                    report.uninspected = Some(path);
                    return Ok((report, status));
                }
                report.skipped.push(Skipped {
                    path,
                    reason: format!("the {} driver cannot inspect updates; name the file as the source", driver.name()),
                    kind: ErrorKind::NotSupported.as_str(),
                });
                continue;
            }
            let req = offer.request(&path, self.config.verify);
            let info = match driver.inspect(&ctx, &req) {
                Ok(info) => info,
                Err(e) => {
                    report.skipped.push(Skipped { path, reason: e.to_string(), kind: e.kind().as_str() });
                    continue;
                }
            };
            if let Some(w) = wanted.as_ref().filter(|w| **w != info.version) {
                let reason = format!("version {} is not the assigned {w}", info.version);
                report.skipped.push(Skipped { path, reason, kind: ErrorKind::Refused.as_str() });
                continue;
            }
            if let Some(reason) = ineligible(&status, &info) {
                report.skipped.push(Skipped { path, reason, kind: ErrorKind::Refused.as_str() });
                continue;
            }
            if let Some(f) = failed.find(&info.version) {
                let reason = format!(
                    "version {} failed on this device ({}, at {}); waiting for a newer release",
                    info.version, f.reason, f.at
                );
                self.audit_event(
                    self.record(AuditAction::Check, Outcome::Refused)
                        .driver(driver.name())
                        .subject(info.version.to_string())
                        .message(format!("skipped: {reason}")),
                );
                report.skipped.push(Skipped { path, reason, kind: ErrorKind::Refused.as_str() });
                continue;
            }
            if report.available.as_ref().is_none_or(|b| info.version > b.info.version) {
                report.available = Some(Candidate { path, info, stream: req.stream });
            }
        }
        // An update already installed and waiting for its reboot is not offered again: check
        // and `--now` say so alike.
        if let Some(c) = &report.available
            && let Some(reason) = waiting_for_reboot(&status, &c.info.version)
        {
            self.log(Severity::Info, &reason);
            let path = c.path.clone();
            report.available = None;
            report.skipped.push(Skipped { path, reason, kind: PENDING });
        }
        // An assigned release the source does not offer for this device (not signed, another
        // version, older than what runs, failed here, ...) is refused, never replaced by another.
        if let Some(a) = assigned
            && report.available.is_none()
            && !report.skipped.iter().any(|s| s.kind == PENDING)
        {
            let why = reasons(&report);
            return Err(Error::Refused(format!(
                "deployment {}: the source offers no {} of version {} this device can install ({})",
                a.deployment,
                a.target,
                a.version,
                if why.is_empty() { "the signed repository does not list it" } else { &why }
            )));
        }
        Ok((report, status))
    }

    /// `update --now`: checks, installs the chosen update into the inactive slot, and reboots
    /// unless `noreboot`.
    ///
    /// # Errors
    /// [`Error::NotImplemented`] with no driver; [`Error::Busy`] when another update runs;
    /// source, verification, policy and I/O errors (the running system is untouched).
    pub fn install_now(&self, noreboot: bool) -> Result<InstallReport> {
        self.install_for(None, noreboot)
    }

    /// [`Updater::install_now`] following a fleet assignment: installs exactly its target at
    /// its version, resolved and verified like any other update (never one the source does not
    /// sign, never an older one than runs), or nothing when it already runs.
    ///
    /// # Errors
    /// As [`Updater::install_now`]; [`Error::Refused`] when the source does not offer the
    /// assigned release for this device (reported to the fleet as `failed`).
    pub fn install_for(&self, assigned: Option<&fleet::Assignment>, noreboot: bool) -> Result<InstallReport> {
        self.with_driver(|driver| {
            let lock = match atomic::Lock::acquire_within(&self.paths.lock_file(), LOCK_WAIT) {
                Ok(l) => l,
                Err(e) => return self.install_failed(driver.name(), None, e),
            };
            let (check, _) = match self.check_with(driver, assigned) {
                Ok(c) => c,
                Err(e) => return self.install_failed(driver.name(), None, e),
            };
            if let (None, Some(path)) = (&check.available, &check.uninspected) {
                let request = InstallRequest::file(path.clone(), self.config.verify);
                return self.install_file(driver, check, request, None, lock, noreboot);
            }
            let Some(candidate) = check.available.clone() else {
                self.log(Severity::Info, "no update to install");
                return match self.refuse_unverified(&check) {
                    Ok(()) => Ok(InstallReport { check, installed: None, rebooted: false }),
                    Err(e) => self.install_failed(driver.name(), None, e),
                };
            };
            let request =
                InstallRequest { bundle: candidate.path, verify: self.config.verify, stream: candidate.stream };
            self.install_file(driver, check, request, Some(candidate.info.version), lock, noreboot)
        })
    }

    /// The error for a check that found nothing to install, if it is one. A bundle that fails
    /// verification is an attack or corruption: always an error (exit code 6), for `update` and
    /// `update --now` alike. Older or foreign bundles in a directory of releases are normal
    /// ("no update"); a single named file that is not eligible is refused (exit code 7). An
    /// update waiting for its reboot is neither.
    fn refuse_unverified(&self, check: &CheckReport) -> Result<()> {
        if check.available.is_some() || check.uninspected.is_some() {
            return Ok(());
        }
        let reasons = || reasons(check);
        let verification = ErrorKind::Verification.as_str();
        if check.skipped.iter().any(|s| s.kind == verification) {
            let source = self.config.source.as_ref().map_or_else(String::new, ToString::to_string);
            return Err(Error::verification(source, format!("no update in the source verifies; {}", reasons())));
        }
        if check.single_file && check.skipped.iter().any(|s| s.kind != PENDING) {
            return Err(Error::Refused(format!("no eligible update; {}", reasons())));
        }
        Ok(())
    }

    /// Audits an install that was refused or failed (outcome from the error's kind), reports it
    /// to the fleet, logs the error and returns it.
    fn install_failed<T>(&self, driver: &str, subject: Option<&Path>, e: Error) -> Result<T> {
        let mut record = self.record(AuditAction::Install, Outcome::Failed).driver(driver);
        if let Some(p) = subject {
            record = record.subject(p.display().to_string());
        }
        // Another run holding the lock is not a failure of the update.
        if e.kind() != ErrorKind::Busy {
            self.report(fleet::EventKind::Failed, None, Some(e.to_string()));
        }
        self.audit_failure(record, e)
    }

    /// Installs one chosen file through the driver, audits it, and reboots unless `noreboot`.
    fn install_file(
        &self,
        driver: &mut dyn Driver,
        check: CheckReport,
        req: InstallRequest,
        version: Option<Version>,
        lock: atomic::Lock,
        noreboot: bool,
    ) -> Result<InstallReport> {
        let ctx = self.context();
        let label = version.as_ref().map_or_else(|| "an uninspected update".to_owned(), ToString::to_string);
        let path = req.bundle.clone();
        if req.stream.is_some() {
            // The download is the install: the fleet hears of it as it starts.
            self.report(
                fleet::EventKind::Downloading,
                None,
                Some(format!("streaming {label} from {}", path.display())),
            );
            self.log(Severity::Notice, &format!("installing {label} while streaming it from {}", path.display()));
        } else {
            self.log(Severity::Notice, &format!("installing {label} from {}", path.display()));
        }
        let outcome = match driver.install(&ctx, &req) {
            Ok(o) => o,
            Err(e) => {
                // The driver's own failure of this release (not a lock, the network, the disk or
                // a bad download, which may all pass) rules it out for good.
                if let (Some(version), ErrorKind::Failure) = (&version, e.kind()) {
                    self.remember_failed(&version.to_string(), &format!("install failed: {e}"));
                }
                return self.install_failed(driver.name(), Some(&path), e);
            }
        };
        let msg = outcome.summary();
        self.log(Severity::Notice, &msg);
        self.report(fleet::EventKind::Installed, Some(outcome.version.to_string()), Some(msg.clone()));
        // The server sees the new slot states before the reboot (best effort).
        if self.fleet.is_some() {
            match driver.status(&ctx) {
                Ok(status) => self.checkin_with(&status),
                Err(e) => self.log(Severity::Warning, &format!("fleet check-in failed: {e}")),
            }
        }
        self.audit_event(
            self.record(AuditAction::Install, Outcome::Ok)
                .driver(driver.name())
                .subject(outcome.slot.clone())
                .change(check.installed.clone().map(Into::into), Some(outcome.version.to_string().into()))
                .message(msg),
        );
        let _ = std::fs::remove_file(self.paths.queue_file());
        drop(lock);
        let mut rebooted = false;
        if outcome.reboot_required && !noreboot {
            self.audit_event(
                self.record(AuditAction::Reboot, Outcome::Ok).driver(driver.name()).subject(outcome.slot.clone()),
            );
            self.log(Severity::Notice, "rebooting into the new slot");
            if let Err(e) = driver.reboot(&ctx) {
                return self.fail(e);
            }
            rebooted = true;
        }
        Ok(InstallReport { check, installed: Some(outcome), rebooted })
    }
}

/// Why each update a check skipped was skipped (`PATH: REASON; …`; not the pending one).
fn reasons(check: &CheckReport) -> String {
    check
        .skipped
        .iter()
        .filter(|s| s.kind != PENDING)
        .map(|s| format!("{}: {}", s.path.display(), s.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether `version` is already installed in the primary slot, on trial and not yet booted.
fn waiting_for_reboot(status: &Status, version: &Version) -> Option<String> {
    status
        .slots
        .iter()
        .find(|s| s.primary && !s.booted && s.state == SlotState::Trying && s.version.as_ref() == Some(version))
        .map(|s| format!("{version} is already installed in slot {} and boots at the next reboot", s.name))
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
