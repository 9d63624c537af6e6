//! `update daemon`: the loop is [`libupdate::daemon::run`].

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use libupdate::daemon::{self, RunOptions};
use update_core::{Paths, Result};

/// Never set: the daemon runs until it is killed (systemd stops it with SIGTERM).
static NEVER: AtomicBool = AtomicBool::new(false);

/// Runs the daemon (see the command's help).
///
/// # Errors
/// Start-up errors; errors of single checks are logged and the loop goes on.
pub fn run(root: PathBuf, once: bool, check_only: bool) -> Result<()> {
    daemon::run(&Paths::new(root), &crate::drivers(), RunOptions { once, check_only }, &NEVER, &mut |line| {
        crate::outln!("{line}");
    })
}
