//! `update [--secure …] [--verify …] [--source …] [--now] [--noreboot]`.

use libupdate::{Overrides, Updater};
use update_core::Result;
use update_core::config::{Secure, SourceUrl, Verify};
use update_core::driver::Progress;
use update_core::text::Untrusted;

use crate::cli::RunArgs;
use crate::progress::{Fanout, JsonLines, PlainProgress, TerminalProgress};

/// Checks (and with `--now` installs) an update; `progress_fd` is the caller's `--progress-fd`,
/// opened by [`crate::progress::open_fd`] before anything else is done.
///
/// # Errors
/// As [`Updater::check`] and [`Updater::install_now`].
pub fn run(updater: &mut Updater, args: &RunArgs, json: bool, progress_fd: Option<std::fs::File>) -> Result<()> {
    let overrides = Overrides {
        source: args.source.as_deref().map(SourceUrl::new).transpose()?,
        verify: args.verify.map(Verify::from),
        secure: args.secure.map(Secure::from),
    };
    let mut reporters: Vec<Box<dyn Progress>> = Vec::new();
    if let Some(file) = progress_fd {
        reporters.push(Box::new(JsonLines::new(file)));
    }
    updater.apply_overrides(&overrides);
    if !json {
        match (TerminalProgress::for_stderr(), PlainProgress::for_stderr()) {
            (Some(bar), _) => reporters.push(Box::new(bar)),
            (None, Some(lines)) => reporters.push(Box::new(lines)),
            (None, None) => {}
        }
    }
    if !reporters.is_empty() {
        updater.set_progress(Box::new(Fanout(reporters)));
    }
    if !args.now {
        if args.noreboot {
            eprintln!("update: note: --noreboot has no effect without --now");
        }
        let report = updater.check()?;
        if json {
            return crate::json::print(crate::json::Doc::Check, &report);
        }
        let installed = report.installed.as_deref().unwrap_or("unknown");
        match &report.available {
            Some(c) => crate::outln!(
                "update available: {} (installed {installed}) from {}\nqueued for the next update window; run `update --now` to install it now",
                c.info.version,
                Untrusted(&c.path.display().to_string())
            ),
            None => crate::outln!("no update available (installed {installed})"),
        }
        for s in &report.skipped {
            crate::outln!("  skipped {}: {}", Untrusted(&s.path.display().to_string()), Untrusted(&s.reason));
        }
        return Ok(());
    }
    let report = updater.install_now(args.noreboot)?;
    if json {
        return crate::json::print(crate::json::Doc::Install, &report);
    }
    match &report.installed {
        Some(o) if report.rebooted => crate::outln!("{}; rebooting", o.summary()),
        Some(o) if o.reboot_required => crate::outln!("{}; it boots at the next reboot (--noreboot)", o.summary()),
        Some(o) => crate::outln!("{}", o.summary()),
        None => {
            crate::outln!(
                "no update to install (installed {})",
                report.check.installed.as_deref().unwrap_or("unknown")
            );
        }
    }
    Ok(())
}
