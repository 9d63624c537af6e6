//! `update daemon`: the loop is [`libupdate::daemon::run`].

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use libupdate::daemon::{self, RunOptions};
use update_core::driver::Progress;
use update_core::{Paths, Result};

use crate::progress::PlainProgress;

/// Never set: the daemon runs until it is killed (systemd stops it with SIGTERM).
static NEVER: AtomicBool = AtomicBool::new(false);

/// An install's progress as plain lines on stderr (`update: installing 30% (…)`), terminal or
/// not: the daemon's output is journald's, and a redrawn bar would mix with its log lines.
fn plain_lines() -> Box<dyn Progress> {
    Box::new(PlainProgress::default())
}

/// Runs the daemon (see the command's help).
///
/// # Errors
/// Start-up errors; errors of single checks are logged and the loop goes on.
pub fn run(root: PathBuf, once: bool, check_only: bool) -> Result<()> {
    let options = RunOptions { once, check_only, progress: Some(plain_lines) };
    daemon::run(&Paths::new(root), &crate::drivers(), options, &NEVER, &mut |line| {
        crate::outln!("{line}");
    })
}
