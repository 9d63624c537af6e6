//! The daemon's decisions: post-boot health checks, and scheduled checks that survive restarts.
//!
//! The loop itself (sleeping, signals) lives in the `update daemon` command; everything here
//! takes `now` as an argument so tests can drive it with any clock.
//!
//! State in `/var/lib/update/daemon.json`: the time of the last scheduled check (written when
//! the check *starts*, so a daemon restarted in the middle of a window does not run it again)
//! and how it ended. An update that is installed and waiting for its reboot is never installed
//! twice: [`crate::Updater::install_now`] skips a candidate that already waits in the primary slot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::registry::DriverTable;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use update_core::audit::{AuditAction, Outcome};
use update_core::config::HealthCheck;
use update_core::driver::{Progress, SlotState};
use update_core::{Error, Paths, Result, atomic};

use crate::fleet::{Fleet, PushEvent};
use crate::{Logger, Severity, Updater, schedule};

/// What the daemon remembers across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DaemonState {
    /// When the last scheduled check started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<String>,
    /// How it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// The rollout assignment of the last check-in answer (issue 14), shown by `update status`
    /// and followed by the daemon ([`follow`]) instead of the newest release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<update_protocol::Assignment>,
    /// The deployment whose release this device refused (not offered by the source, older than
    /// what runs, failed here): a check-in does not try it again (a push or the schedule does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<i64>,
}

fn parse_time(t: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
}

impl DaemonState {
    /// Reads the state (missing or unreadable: empty, so the daemon checks at once).
    #[must_use]
    pub fn load(updater: &Updater) -> Self {
        std::fs::read(updater.paths().state_dir().join("daemon.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the state atomically.
    ///
    /// # Errors
    /// I/O errors.
    pub fn store(&self, updater: &Updater) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        atomic::write_atomic(&updater.paths().state_dir().join("daemon.json"), &bytes, 0o644)
    }

    /// The last check as a time.
    #[must_use]
    pub fn last_check_time(&self) -> Option<OffsetDateTime> {
        self.last_check.as_deref().and_then(parse_time)
    }
}

/// A stable per-device seed for the jitter: from `/etc/machine-id` under the root, else the root path.
#[must_use]
pub fn device_seed(updater: &Updater) -> u64 {
    let id = std::fs::read_to_string(updater.paths().resolve("/etc/machine-id"))
        .unwrap_or_else(|_| updater.paths().root().display().to_string());
    id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// What a scheduled tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// Scheduled checks are off.
    Off,
    /// Not due yet; due at this time.
    NotDue(OffsetDateTime),
    /// Checked; `Some(version)` when an update was installed.
    Checked(Option<String>),
}

/// Runs the scheduled check if it is due at `now`. With `install`, an available update is
/// installed (and rebooted into unless `noreboot`); otherwise it is only queued.
///
/// # Errors
/// The check's or install's error (the state records it too).
pub fn tick(updater: &Updater, now: OffsetDateTime, install: bool, noreboot: bool) -> Result<Tick> {
    let state = DaemonState::load(updater);
    let seed = device_seed(updater);
    let Some(due) = schedule::next_check(updater.config().schedule, state.last_check_time(), now, seed) else {
        return Ok(Tick::Off);
    };
    if due > now {
        return Ok(Tick::NotDue(due));
    }
    check_now(updater, now, install, noreboot).map(Tick::Checked)
}

/// What the daemon does about its assignment at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// Install the assigned release (if the source offers it and it is not running yet).
    Install,
    /// Start nothing, for this reason (logged).
    Idle(String),
    /// The deployment was aborted with a rollback: go back to the other slot if the assigned
    /// release is what runs ([`rollback_assigned`]); install nothing either way.
    Rollback,
}

/// Decides about an assignment at `now` (pure): `install` only from `allowed-from` on and,
/// with a maintenance window, before the `window-closes` the server gave; `hold`, `wait` and
/// actions this build does not know start nothing.
#[must_use]
pub fn follow(a: &update_protocol::Assignment, now: OffsetDateTime) -> Follow {
    use update_protocol::AssignmentAction;
    let d = a.deployment;
    let opens = a.window_opens.as_deref().map_or_else(String::new, |t| format!("; the next window opens at {t}"));
    let idle = match a.action {
        AssignmentAction::Hold => format!("deployment {d} is paused: installing nothing"),
        AssignmentAction::Wait => format!("deployment {d}: outside its maintenance window{opens}"),
        AssignmentAction::Rollback => return Follow::Rollback,
        AssignmentAction::Unknown => {
            format!("deployment {d}: an action this version does not know: installing nothing")
        }
        AssignmentAction::Install => match (parse_time(&a.allowed_from), &a.window, a.window_closes.as_deref()) {
            (Some(from), ..) if now < from => format!("deployment {d}: this device's wave opens at {}", a.allowed_from),
            (None, ..) => {
                format!("deployment {d}: allowed-from {:?} is not a time: installing nothing", a.allowed_from)
            }
            (_, None, _) => return Follow::Install,
            (_, Some(_), Some(closes)) if parse_time(closes).is_some_and(|c| now < c) => return Follow::Install,
            (_, Some(_), closes) => {
                format!("deployment {d}: its maintenance window closed at {}{opens}", closes.unwrap_or("?"))
            }
        },
    };
    Follow::Idle(idle)
}

/// Runs a check at once, whatever the schedule (an operator's push, or a due tick), and
/// records it as the last check so the schedule counts from it. With an assignment from the
/// fleet server, [`follow`]s it: the assigned release or nothing, never simply the newest.
/// Returns the version installed.
///
/// # Errors
/// The check's or install's error (the state records it too).
pub fn check_now(updater: &Updater, now: OffsetDateTime, install: bool, noreboot: bool) -> Result<Option<String>> {
    let mut state = DaemonState::load(updater);
    state.last_check = Some(update_core::time_util::rfc3339(now));
    state.last_result = Some("started".into());
    state.store(updater)?;
    let assigned = state.assignment.as_ref();
    let result = match assigned.map(|a| (a, follow(a, now))) {
        Some((_, Follow::Idle(why))) => {
            updater.log(Severity::Notice, &why);
            state.last_result = Some(why);
            return state.store(updater).map(|()| None);
        }
        Some((a, Follow::Rollback)) => {
            let outcome = rollback_assigned(updater, a, install, noreboot);
            state.last_result = Some(match &outcome {
                Ok(what) => what.clone(),
                Err(e) => format!("failed: {e}"),
            });
            state.store(updater)?;
            return outcome.map(|_| None);
        }
        _ if install => updater.install_for(assigned, noreboot).map(|r| r.installed.map(|o| o.version.to_string())),
        _ => updater.check_for(assigned).map(|_| None),
    };
    state.last_result = Some(match &result {
        Ok(Some(v)) => format!("installed {v}"),
        Ok(None) => "no update".into(),
        Err(e) => format!("failed: {e}"),
    });
    state.refused = match (&result, assigned) {
        (Err(e), Some(a)) if e.kind() == update_core::ErrorKind::Refused => Some(a.deployment),
        _ => None,
    };
    state.store(updater)?;
    result
}

/// Follows a `rollback` assignment: when the booted slot runs the aborted deployment's
/// release, records the release as failed on this device (so it is never installed again),
/// switches to the other slot (`update rollback`, reported to the server as `rolled-back`)
/// and, unless `noreboot`, reboots into it. When the release is installed but waits for its
/// reboot, drops it instead (`update cancel`) and records it as failed. Without `act`
/// (check-only), or when the device has the release in neither way, it changes nothing.
/// Returns what it did (logged).
///
/// # Errors
/// Status, rollback or reboot errors (a driver that cannot roll back says so).
pub fn rollback_assigned(
    updater: &Updater,
    a: &update_protocol::Assignment,
    act: bool,
    noreboot: bool,
) -> Result<String> {
    let d = a.deployment;
    // Compared as versions (the server may write 2.0 for 2.0.0).
    let wanted = update_core::parse_version(&a.version).map_err(|e| Error::Refused(format!("deployment {d}: {e}")))?;
    let status = updater.status()?;
    let version_of = |slot: &str| status.slots.iter().find(|s| s.name == slot).and_then(|s| s.version.as_ref());
    let running = status.slots.iter().find(|s| s.booted).and_then(|s| s.version.as_ref());
    let runs_it = running == Some(&wanted);
    // Installed but not booted yet: drop it, so the next reboot does not start it.
    if let Some((slot, version)) = crate::slot_ops::pending(&status)
        && !runs_it
        && version_of(&slot) == Some(&wanted)
    {
        if !act {
            let what =
                format!("deployment {d} was aborted with a rollback of {version}: check-only, not cancelling it");
            updater.log(Severity::Notice, &what);
            return Ok(what);
        }
        updater.remember_failed(&version, &format!("deployment {d} was aborted with a rollback"));
        let change = updater.cancel()?;
        let what = format!("deployment {d} was aborted with a rollback: {} (it was in slot {slot})", change.message);
        updater.log(Severity::Notice, &what);
        return Ok(what);
    }
    if !runs_it {
        let what = format!(
            "deployment {d} was aborted with a rollback; this device runs {}, not {}: nothing to roll back",
            running.map_or_else(|| "an unknown version".to_owned(), ToString::to_string),
            a.version
        );
        updater.log(Severity::Info, &what);
        return Ok(what);
    }
    if !act {
        let what = format!("deployment {d} was aborted with a rollback of {}: check-only, not rolling back", a.version);
        updater.log(Severity::Notice, &what);
        return Ok(what);
    }
    updater.remember_failed(&a.version, &format!("deployment {d} was aborted with a rollback"));
    let change = updater.rollback()?;
    let what = format!("deployment {d} was aborted with a rollback: {}", change.message);
    updater.log(Severity::Notice, &what);
    if !noreboot {
        updater.reboot()?;
    }
    Ok(what)
}

/// The result of the post-boot health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostBoot {
    /// The booted slot is already committed (nothing to do).
    Committed,
    /// The booted slot was on trial, every check passed, and it is now marked good.
    MarkedGood,
    /// A check failed: the slot stays on trial; the caller reboots so the bootloader spends a
    /// try (and falls back when none are left).
    Failed(String),
}

/// After boot: if the booted slot is on trial, run the configured health checks and mark it
/// good when all pass.
///
/// # Errors
/// Driver errors (status, mark-good).
pub fn post_boot(updater: &Updater) -> Result<PostBoot> {
    let status = updater.status()?;
    let booted = status.booted.clone();
    let on_trial = status.slots.iter().any(|s| s.booted && s.state == SlotState::Trying);
    if !on_trial {
        return Ok(PostBoot::Committed);
    }
    let version = status.version.as_ref().map(ToString::to_string);
    updater.report(
        crate::fleet::EventKind::Rebooted,
        version.clone(),
        Some(format!("booted slot {} on trial", booted.clone().unwrap_or_default())),
    );
    for check in &updater.config().health_check {
        if let Err(reason) = run_check(updater, check) {
            let msg = format!("health check '{}' failed: {reason}", check.name);
            updater.log(Severity::Error, &msg);
            updater.report(crate::fleet::EventKind::Failed, version.clone(), Some(msg.clone()));
            if let Some(v) = &version {
                updater.remember_failed(v, &msg);
            }
            updater.audit_event(
                updater
                    .record(AuditAction::HealthCheck, Outcome::Failed)
                    .subject(booted.clone().unwrap_or_default())
                    .message(&msg),
            );
            return Ok(PostBoot::Failed(msg));
        }
        updater.audit_event(
            updater
                .record(AuditAction::HealthCheck, Outcome::Ok)
                .subject(booted.clone().unwrap_or_default())
                .message(format!("health check '{}' passed", check.name)),
        );
    }
    updater.mark_good()?;
    Ok(PostBoot::MarkedGood)
}

fn run_check(updater: &Updater, check: &HealthCheck) -> std::result::Result<(), String> {
    let (prog, args) = check.command.split_first().ok_or("empty command")?;
    let out = update_core::process::Command::new(prog)
        .args(args)
        .under_root(updater.paths().root())
        .timeout(Duration::from_secs(check.timeout_secs))
        .run()
        .map_err(|e| match e {
            Error::TimedOut { .. } => format!("timed out after {} s", check.timeout_secs),
            e => e.to_string(),
        })?;
    if out.success() {
        Ok(())
    } else {
        Err(format!("{}: {}", out.status, update_core::process::tail(out.stderr.trim(), 30)))
    }
}

/// What `update daemon` was asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Do the post-boot step, a check-in and one due check, then return.
    pub once: bool,
    /// Check and queue only; never install.
    pub check_only: bool,
    /// Makes the reporter of each round's install progress (`update daemon`: plain percentage
    /// lines for journald); none reports nothing.
    pub progress: Option<fn() -> Box<dyn Progress>>,
}

/// Longest single sleep, so config changes and clock jumps are noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How often the daemon checks in with the fleet server when nothing else happens.
const CHECKIN_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Waits up to `wait` for a push; `true` when one came. Returns early when `stop` is set.
fn wait_for_push(rx: &mpsc::Receiver<()>, wait: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + wait;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(()) => return true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The listener never ends while the receiver lives; if it did, sleep instead.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                sleep_unless_stopped(left, stop);
                return false;
            }
        }
    }
    false
}

fn sleep_unless_stopped(wait: Duration, stop: &AtomicBool) {
    let end = Instant::now() + wait;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
}

/// The daemon (`update daemon`): after boot, health-check a slot on trial and mark it good (or
/// reboot so the bootloader falls back); then, round after round, check in with the fleet
/// server, run the scheduled check when it is due or at once when the server asks (push or
/// check-in answer), and sleep. `say` gets the lines a person running it should see. Returns
/// when `stop` is set (checked between rounds and while sleeping without a push channel), or
/// after one round with `once`.
///
/// # Errors
/// Start-up errors; errors of single checks are logged and the loop goes on.
pub fn run(
    paths: &Paths,
    drivers: &DriverTable,
    options: RunOptions,
    stop: &AtomicBool,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let RunOptions { once, check_only, progress } = options;
    let open = || {
        let mut updater = Updater::open(paths.clone(), drivers.clone())?;
        if let Some(make) = progress {
            updater.set_progress(make());
        }
        Ok::<_, Error>(updater)
    };
    let updater = open()?;
    updater.log(Severity::Notice, "daemon started");
    updater.audit_event(updater.record(AuditAction::Daemon, Outcome::Ok).message("started"));
    match post_boot(&updater) {
        Ok(PostBoot::Failed(msg)) => {
            updater.log(Severity::Error, &format!("{msg}; rebooting so the bootloader can fall back"));
            return updater.reboot();
        }
        Ok(PostBoot::MarkedGood) => say("the booted slot passed its health checks and is marked good"),
        Ok(PostBoot::Committed) => {}
        Err(e) => updater.log(Severity::Warning, &format!("post-boot check skipped: {e}")),
    }
    let pushes = if once {
        None
    } else {
        updater.fleet().cloned().map(|f| listen_for_pushes(f, Logger::new(updater.paths(), &updater.config().log)))
    };
    let mut next_checkin = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Re-read the config each round so `update config schedule …` applies without a restart.
        let updater = open()?;
        let mut forced = false;
        if updater.fleet().is_some() && Instant::now() >= next_checkin {
            next_checkin = Instant::now() + CHECKIN_INTERVAL;
            if let Some(answer) = updater.checkin_logged() {
                if answer.check_now {
                    updater.log(Severity::Notice, "the fleet server asked for a check now");
                }
                // An assignment to install is followed at once (not at the schedule), unless
                // this device already refused that deployment's release.
                let assigned = answer.assignment.as_ref();
                let install = assigned.is_some_and(|a| {
                    a.action == update_protocol::AssignmentAction::Install
                        && DaemonState::load(&updater).refused != Some(a.deployment)
                });
                // A rollback is followed at once too (it does nothing where the release does
                // not run).
                let rollback = assigned.is_some_and(|a| a.action == update_protocol::AssignmentAction::Rollback);
                forced = answer.check_now || install || rollback;
                // Why nothing starts (a forced check logs it itself).
                if !forced && let Some(Follow::Idle(why)) = assigned.map(|a| follow(a, OffsetDateTime::now_utc())) {
                    updater.log(Severity::Info, &why);
                }
                // Waiting for a window: check in when it opens (spread over up to a quarter of
                // it, at most 10 minutes, so a fleet does not arrive at once).
                if let Some(a) = assigned
                    && let Some(opens) = a.window_opens.as_deref().and_then(parse_time)
                {
                    let spread = a.window.as_ref().map_or(0, |w| (w.duration_secs / 4).min(600));
                    let jitter = device_seed(&updater) % spread.max(1);
                    let wait = u64::try_from(opens.unix_timestamp() - OffsetDateTime::now_utc().unix_timestamp());
                    next_checkin = next_checkin
                        .min(Instant::now() + Duration::from_secs(wait.unwrap_or(0).saturating_add(jitter)));
                }
            }
        }
        let now = OffsetDateTime::now_utc();
        let result = if forced {
            check_now(&updater, now, !check_only, false).map(Tick::Checked)
        } else {
            tick(&updater, now, !check_only, false)
        };
        let wait = match result {
            Ok(Tick::Off) => {
                if once {
                    say("scheduled checks are off");
                    return Ok(());
                }
                MAX_SLEEP
            }
            Ok(Tick::NotDue(due)) => {
                if once {
                    say(&format!("next check at {}", update_core::time_util::rfc3339(due)));
                    return Ok(());
                }
                let wait: Duration = (due - now).try_into().unwrap_or(Duration::ZERO);
                wait.min(MAX_SLEEP)
            }
            Ok(Tick::Checked(installed)) => {
                say(&format!(
                    "checked: {}",
                    installed.map_or_else(|| "no update installed".to_owned(), |v| format!("installed {v}"))
                ));
                if once {
                    return Ok(());
                }
                Duration::ZERO
            }
            Err(e) => {
                updater.log(Severity::Error, &format!("scheduled check failed: {e}"));
                if once {
                    return Err(e);
                }
                MAX_SLEEP
            }
        };
        // Sleep, but wake at once when the server pushes `check-now`: the next round checks in,
        // which returns (and clears) the server's flag, and runs the check.
        let pushed = match &pushes {
            Some(rx) => wait_for_push(rx, wait, stop),
            None => {
                sleep_unless_stopped(wait, stop);
                false
            }
        };
        if pushed {
            while pushes.as_ref().is_some_and(|rx| rx.try_recv().is_ok()) {}
            next_checkin = Instant::now();
        }
    }
}

/// Listens on the fleet server's push channel on a thread, reconnecting with backoff
/// (1 s doubling to 60 s); sends one message per [`PushEvent::CheckNow`] and ignores events
/// it does not know (a newer server may push more). The thread ends when the
/// receiver is dropped and the next event arrives.
#[must_use]
pub fn listen_for_pushes(fleet: Fleet, logger: Logger) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut backoff = Duration::from_secs(1);
        loop {
            match fleet.push_stream() {
                Ok(stream) => {
                    logger.log(Severity::Info, &format!("push channel open: {}", fleet.base()));
                    backoff = Duration::from_secs(1);
                    for event in stream {
                        match event {
                            Ok(e) if PushEvent::from_name(&e.event) == Some(PushEvent::CheckNow) => {
                                if tx.send(()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                logger.log(Severity::Info, &format!("push channel closed: {e}"));
                                break;
                            }
                        }
                    }
                }
                Err(e) => logger.log(Severity::Warning, &format!("push channel: {e}")),
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_keeps_the_assignment_and_reads_older_files() {
        let old: DaemonState =
            serde_json::from_str(r#"{"last-check":"2026-03-01T10:00:00Z","last-result":"no update"}"#).unwrap();
        assert_eq!(old.assignment, None);
        let state = DaemonState {
            assignment: Some(update_protocol::Assignment {
                deployment: 3,
                target: "demo-2.0.0.bundle".into(),
                version: "2.0.0".into(),
                wave: 1,
                action: update_protocol::AssignmentAction::Hold,
                allowed_from: "2026-03-01T10:00:00Z".into(),
                window: None,
                window_closes: None,
                window_opens: None,
            }),
            ..old
        };
        let text = serde_json::to_string(&state).unwrap();
        let back: DaemonState = serde_json::from_str(&text).unwrap();
        assert_eq!(back.assignment, state.assignment);
        assert_eq!(back.last_result.as_deref(), Some("no update"));
    }

    #[test]
    fn an_assignment_is_followed_only_when_it_says_install_inside_its_window() {
        use time::macros::datetime;
        use update_protocol::{Assignment, AssignmentAction};
        let a = Assignment {
            deployment: 4,
            target: "demo-2.0.0.bundle".into(),
            version: "2.0.0".into(),
            wave: 0,
            action: AssignmentAction::Install,
            allowed_from: "2026-03-01T10:00:00Z".into(),
            window: None,
            window_closes: None,
            window_opens: None,
        };
        let t = datetime!(2026-03-01 10:00 UTC);
        assert_eq!(follow(&a, t), Follow::Install);
        let idle = |a: &Assignment, now| match follow(a, now) {
            Follow::Idle(why) => why,
            other => panic!("{a:?} at {now}: {other:?}"),
        };
        // A rollback, whatever the time: the device decides by what it runs.
        let rollback = Assignment { action: AssignmentAction::Rollback, ..a.clone() };
        assert_eq!(follow(&rollback, t - time::Duration::days(1)), Follow::Rollback);
        assert!(idle(&a, t - time::Duration::seconds(1)).contains("wave opens at 2026-03-01T10:00:00Z"));
        assert!(idle(&Assignment { action: AssignmentAction::Hold, ..a.clone() }, t).contains("paused"));
        assert!(idle(&Assignment { action: AssignmentAction::Unknown, ..a.clone() }, t).contains("does not know"));
        assert!(idle(&Assignment { allowed_from: "soon".into(), ..a.clone() }, t).contains("not a time"));
        let window = update_protocol::window::MaintenanceWindow {
            cron: "0 10 * * *".into(),
            duration_secs: 3600,
            time_zone: "Europe/Berlin".into(),
        };
        let waiting = Assignment {
            action: AssignmentAction::Wait,
            window: Some(window),
            window_opens: Some("2026-03-02T09:00:00Z".into()),
            ..a.clone()
        };
        assert_eq!(
            idle(&waiting, t),
            "deployment 4: outside its maintenance window; the next window opens at 2026-03-02T09:00:00Z"
        );
        // The server said install, inside a window closing at 11:00: the device's own clock decides.
        let open = Assignment {
            action: AssignmentAction::Install,
            window_closes: Some("2026-03-01T11:00:00Z".into()),
            ..waiting.clone()
        };
        assert_eq!(follow(&open, t + time::Duration::minutes(59)), Follow::Install);
        assert!(
            idle(&open, t + time::Duration::hours(1)).contains("closed at 2026-03-01T11:00:00Z; the next window opens")
        );
        // A window without its closing time (a faulty server) is closed.
        assert!(idle(&Assignment { window_closes: None, ..open }, t).contains("closed at ?"));
    }
}
