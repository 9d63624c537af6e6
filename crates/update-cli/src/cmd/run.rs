//! `update [--secure …] [--verify …] [--source …] [--now] [--noreboot]`.

use libupdate::{Overrides, Updater};
use update_core::Result;
use update_core::config::{Secure, SourceUrl, Verify};

use crate::cli::RunArgs;
use crate::progress::TerminalProgress;

/// Checks (and with `--now` installs) an update.
///
/// # Errors
/// As [`Updater::check`] and [`Updater::install_now`].
pub fn run(updater: &mut Updater, args: &RunArgs) -> Result<()> {
    let overrides = Overrides {
        source: args.source.as_deref().map(SourceUrl::new).transpose()?,
        verify: args.verify.map(Verify::from),
        secure: args.secure.map(Secure::from),
    };
    updater.apply_overrides(&overrides);
    if let Some(p) = TerminalProgress::for_stderr()
        && !args.json
    {
        updater.set_progress(Box::new(p));
    }
    if !args.now {
        if args.noreboot {
            eprintln!("update: note: --noreboot has no effect without --now");
        }
        let report = updater.check()?;
        if args.json {
            return crate::print_json(&report);
        }
        let installed = report.installed.as_deref().unwrap_or("unknown");
        match &report.available {
            Some(c) => println!(
                "update available: {} (installed {installed}) from {}\nqueued for the next update window; run `update --now` to install it now",
                c.info.version,
                c.path.display()
            ),
            None => println!("no update available (installed {installed})"),
        }
        for s in &report.skipped {
            println!("  skipped {}: {}", s.path.display(), s.reason);
        }
        return Ok(());
    }
    let report = updater.install_now(args.noreboot)?;
    if args.json {
        return crate::print_json(&report);
    }
    match &report.installed {
        Some(o) if report.rebooted => println!("installed {} into slot {}; rebooting", o.version, o.slot),
        Some(o) if o.reboot_required => {
            println!("installed {} into slot {}; it boots at the next reboot (--noreboot)", o.version, o.slot);
        }
        Some(o) => println!("installed {} into slot {}", o.version, o.slot),
        None => println!("no update to install (installed {})", report.check.installed.as_deref().unwrap_or("unknown")),
    }
    Ok(())
}
