//! `update daemon`.

use std::path::PathBuf;
use std::time::Duration;

use libupdate::daemon::{self, PostBoot, Tick};
use libupdate::{Severity, Updater};
use update_core::audit::{AuditAction, Outcome};
use update_core::{Paths, Result};

/// Longest single sleep, so config changes and clock jumps are noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);

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
    loop {
        // Re-read the config each round so `update config schedule …` applies without a restart.
        let updater = open(&root)?;
        let now = time::OffsetDateTime::now_utc();
        match daemon::tick(&updater, now, !check_only, false) {
            Ok(Tick::Off) => {
                if once {
                    println!("scheduled checks are off");
                    return Ok(());
                }
                std::thread::sleep(MAX_SLEEP);
            }
            Ok(Tick::NotDue(due)) => {
                if once {
                    println!("next check at {}", update_core::time_util::rfc3339(due));
                    return Ok(());
                }
                let wait = (due - now).try_into().unwrap_or(Duration::ZERO);
                std::thread::sleep(wait.min(MAX_SLEEP));
            }
            Ok(Tick::Checked(installed)) => {
                println!(
                    "checked: {}",
                    installed.map_or_else(|| "no update installed".to_owned(), |v| format!("installed {v}"))
                );
                if once {
                    return Ok(());
                }
            }
            Err(e) => {
                updater.log(Severity::Error, &format!("scheduled check failed: {e}"));
                if once {
                    return Err(e);
                }
                std::thread::sleep(MAX_SLEEP);
            }
        }
    }
}
