//! The `update` command (see [`cli::Cli`] for the interface).
//!
//! One module per subcommand under [`cmd`]; they turn arguments into calls on
//! [`libupdate::Updater`] and print the result as text or `--json`. Errors are printed once
//! (`update: error: …`), logged by the facade, and mapped to the exit codes of
//! docs/reference/exit-codes.md through [`update_core::ErrorKind::exit_code`].

pub mod cli;
pub mod cmd;
pub mod progress;

use std::process::ExitCode;

use clap::Parser;
use update_core::driver::DriverFactory;
use update_core::{Error, Paths, Result};

pub use cli::Cli;

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

/// The clap command (for man pages and completions).
#[must_use]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs the command line and returns the process exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { update_core::ErrorKind::Usage.exit_code() } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("update: error: {e}");
            ExitCode::from(e.kind().exit_code())
        }
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// Whatever the operation reports.
pub fn run(cli: Cli) -> Result<()> {
    let paths = Paths::new(cli.root.clone().unwrap_or_else(|| "/".into()));
    let mut updater = libupdate::Updater::open(paths, factories())?;
    match cli.command {
        None => cmd::run::run(&mut updater, &cli.run),
        Some(command) => {
            if cli.run.now
                || cli.run.noreboot
                || cli.run.json
                || cli.run.source.is_some()
                || cli.run.verify.is_some()
                || cli.run.secure.is_some()
            {
                return Err(Error::Usage(
                    "--now, --noreboot, --json, --source, --verify and --secure go before no subcommand: `update --now`".into(),
                ));
            }
            match command {
                cli::Command::Config(c) => cmd::config::run(&mut updater, c),
                cli::Command::Status { json } => cmd::status::status(&updater, json),
                cli::Command::History { json, last } => cmd::status::history(&updater, json, last),
                cli::Command::Drivers { json, markdown } => cmd::status::drivers(&updater, json, markdown),
                cli::Command::MarkGood => cmd::status::mark_good(&updater),
                cli::Command::Rollback => cmd::status::rollback(&updater),
                cli::Command::Daemon { once, check_only } => {
                    cmd::daemon::run(cli.root.unwrap_or_else(|| "/".into()), once, check_only)
                }
            }
        }
    }
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}
