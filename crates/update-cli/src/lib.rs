//! The `update` command (see [`cli::Cli`] for the interface).
//!
//! One module per subcommand under [`cmd`]; they turn arguments into calls on
//! [`libupdate::Updater`] and print the result as text or `--json` (versioned documents, see
//! [`json`]). Errors are printed once (`update: error: …` on stderr, or with `--json` an error
//! document on stdout), logged by the facade, and mapped to the exit codes of
//! docs/reference/exit-codes.md through [`update_core::ErrorKind::exit_code`].

pub mod cli;
pub mod cmd;
pub mod json;
pub mod out;
pub mod progress;

use std::process::ExitCode;

use clap::Parser;
use libupdate::{AbsentDriver, DriverTable};
use update_core::driver::DriverFactory;
use update_core::text::Untrusted;
use update_core::{Paths, Result};

pub use cli::Cli;

/// The drivers compiled into this binary, in probing order, and the ones left out of it.
#[must_use]
pub fn drivers() -> DriverTable {
    DriverTable::new(factories()).with_absent(absent_drivers())
}

/// The drivers compiled into this binary, in probing order.
#[must_use]
pub fn factories() -> Vec<&'static dyn DriverFactory> {
    vec![
        #[cfg(feature = "native")]
        &update_native::FACTORY,
        #[cfg(feature = "rauc")]
        &update_adapters::rauc::FACTORY,
        #[cfg(feature = "swupdate")]
        &update_adapters::swupdate::FACTORY,
        #[cfg(feature = "mender")]
        &update_adapters::mender::FACTORY,
        #[cfg(feature = "ostree")]
        &update_adapters::ostree::FACTORY,
        #[cfg(feature = "swupd")]
        &update_adapters::swupd::FACTORY,
    ]
}

/// The drivers this binary's cargo features left out (`update drivers` shows them as `not-built`).
fn absent_drivers() -> Vec<AbsentDriver> {
    let all: [(&'static str, &'static str, bool); 6] = [
        ("native", "the cargo feature native", cfg!(feature = "native")),
        ("rauc", "the cargo feature rauc and rauc (apt install rauc)", cfg!(feature = "rauc")),
        ("swupdate", "the cargo feature swupdate and swupdate (apt install swupdate)", cfg!(feature = "swupdate")),
        ("mender", "the cargo feature mender and mender-client (apt install mender-client)", cfg!(feature = "mender")),
        ("ostree", "the cargo feature ostree and ostree (apt install ostree)", cfg!(feature = "ostree")),
        ("swupd", "the cargo feature swupd and swupd", cfg!(feature = "swupd")),
    ];
    all.into_iter().filter(|(_, _, built)| !built).map(|(name, hint, _)| AbsentDriver { name, hint }).collect()
}

/// The clap command (for man pages and completions).
#[must_use]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs the command line and returns the process exit code.
///
/// Errors are printed once: as `update: error: …` on stderr, or with `--json` as an error
/// document on stdout ([`json::print_error`]); the exit code is the same either way.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse().and_then(|c| c.conflict().map_or(Ok(c), Err)) {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(0);
            }
            let code = update_core::ErrorKind::Usage.exit_code();
            if json::requested(std::env::args_os()) {
                let text = e.render().to_string();
                let message = text.trim().strip_prefix("error: ").unwrap_or(text.trim());
                json::print_error(update_core::ErrorKind::Usage.as_str(), message, code);
            } else {
                let _ = e.print();
            }
            return ExitCode::from(code);
        }
    };
    let json = cli.json;
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.kind().exit_code();
            if json {
                json::print_error(e.kind().as_str(), &e.to_string(), code);
            } else {
                eprintln!("update: error: {}", Untrusted(&e.to_string()));
            }
            ExitCode::from(code)
        }
    }
}

/// Runs a parsed command line; returns the exit code of a run that did not fail (0, or 12 for
/// `update status` on a device that fell back), or of `update history --verify --json`, whose
/// report carries its own error.
///
/// # Errors
/// Whatever the operation reports.
pub fn run(cli: Cli) -> Result<u8> {
    // A bad --progress-fd is a usage error, found before anything else is read.
    let progress_fd = cli.run.progress_fd.map(progress::open_fd).transpose()?;
    let paths = Paths::new(cli.root.clone().unwrap_or_else(|| "/".into()));
    let mut updater = libupdate::Updater::open(paths, drivers())?;
    let json = cli.json;
    // clap refuses `update --now status` (args_conflicts_with_subcommands).
    let Some(command) = cli.command else {
        return cmd::run::run(&mut updater, &cli.run, json, progress_fd).map(|()| 0);
    };
    match command {
        cli::Command::Config(c) => cmd::config::run(&mut updater, c, json),
        cli::Command::Status => return cmd::status::status(&updater, json),
        cli::Command::History { verify: true, .. } => return cmd::audit::verify(&updater, json),
        cli::Command::History { last, verify: false } => cmd::history::history(&updater, json, last),
        cli::Command::Drivers { markdown } => cmd::drivers::drivers(&updater, json, markdown),
        cli::Command::MarkGood => cmd::slots::mark_good(&updater, json),
        cli::Command::Cancel => cmd::slots::cancel(&updater, json),
        cli::Command::MarkBad => cmd::slots::mark_bad(&updater, json),
        cli::Command::Rollback => cmd::slots::rollback(&updater, json),
        cli::Command::Daemon { once, check_only } => {
            cmd::daemon::run(cli.root.unwrap_or_else(|| "/".into()), once, check_only)
        }
    }
    .map(|()| 0)
}
