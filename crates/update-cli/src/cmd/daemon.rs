//! `update daemon`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use libupdate::daemon::{self, PostBoot, Tick};
use libupdate::{Logger, Severity, Updater};
use update_core::audit::{AuditAction, Outcome};
use update_core::{Paths, Result};

/// Longest single sleep, so config changes and clock jumps are noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How often the daemon checks in with the fleet server when nothing else happens.
const CHECKIN_INTERVAL: Duration = Duration::from_secs(15 * 60);

fn open(root: &PathBuf) -> Result<Updater> {
    Updater::open(Paths::new(root), crate::factories())
}

/// Runs the daemon (see the command's help).
///
/// # Errors
/// Start-up errors; errors of single checks are logged and the loop goes on.
pub fn run(root: PathBuf, once: bool, check_only: bool) -> Result<()> {
    let updater = open(&root)?;
    updater.log(Severity::Notice, "daemon started");
    updater.audit_event(updater.record(AuditAction::Daemon, Outcome::Ok).message("started"));
    match daemon::post_boot(&updater) {
        Ok(PostBoot::Failed(msg)) => {
            updater.log(Severity::Error, &format!("{msg}; rebooting so the bootloader can fall back"));
            return updater.reboot();
        }
        Ok(PostBoot::MarkedGood) => println!("the booted slot passed its health checks and is marked good"),
        Ok(PostBoot::Committed) => {}
        Err(e) => updater.log(Severity::Warning, &format!("post-boot check skipped: {e}")),
    }
    let pushes = if once {
        None
    } else {
        updater
            .fleet()
            .cloned()
            .map(|f| daemon::listen_for_pushes(f, Logger::new(updater.paths(), &updater.config().log)))
    };
    let mut next_checkin = Instant::now();
    loop {
        // Re-read the config each round so `update config schedule …` applies without a restart.
        let updater = open(&root)?;
        let mut forced = false;
        if updater.fleet().is_some() && Instant::now() >= next_checkin {
            if let Some(answer) = updater.checkin_logged() {
                if answer.check_now {
                    updater.log(Severity::Notice, "the fleet server asked for a check now");
                }
                forced = answer.check_now;
            }
            next_checkin = Instant::now() + CHECKIN_INTERVAL;
        }
        let now = time::OffsetDateTime::now_utc();
        let result = if forced {
            daemon::check_now(&updater, now, !check_only, false).map(Tick::Checked)
        } else {
            daemon::tick(&updater, now, !check_only, false)
        };
        let wait = match result {
            Ok(Tick::Off) => {
                if once {
                    println!("scheduled checks are off");
                    return Ok(());
                }
                MAX_SLEEP
            }
            Ok(Tick::NotDue(due)) => {
                if once {
                    println!("next check at {}", update_core::time_util::rfc3339(due));
                    return Ok(());
                }
                let wait: Duration = (due - now).try_into().unwrap_or(Duration::ZERO);
                wait.min(MAX_SLEEP)
            }
            Ok(Tick::Checked(installed)) => {
                println!(
                    "checked: {}",
                    installed.map_or_else(|| "no update installed".to_owned(), |v| format!("installed {v}"))
                );
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
            Some(rx) => rx.recv_timeout(wait).is_ok(),
            None => {
                std::thread::sleep(wait);
                false
            }
        };
        if pushed {
            while pushes.as_ref().is_some_and(|rx| rx.try_recv().is_ok()) {}
            next_checkin = Instant::now();
        }
    }
}
