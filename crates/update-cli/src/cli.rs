//! The command-line definitions. The doc comments are the help text; the man page and shell
//! completions are generated from the same definitions (`cargo xtask docs`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Over-the-air updates, as ordinary as `reboot`.
///
/// Without a subcommand, `update` checks the configured source (or --source) and reports the
/// update it would install, queueing it for the daemon's next window. With --now it installs
/// that update into the inactive slot and reboots into it, unless --noreboot. --source, --verify
/// and --secure override the stored configuration for this run only.
///
/// Exit codes: 0 success, 1 failure, 2 usage, 3 config, 4 not implemented (no driver),
/// 5 not supported by the driver, 6 verification failed, 7 refused by policy, 8 busy (another
/// update is running), 9 I/O, 10 source unreachable, 11 keyring; `update status` exits 12 when
/// the device fell back from a failed update. The manual page update(1) explains each.
#[derive(Debug, Parser)]
#[command(name = "update", version, max_term_width = 100)]
pub struct Cli {
    /// Treat DIR as the device's root: every path (config, keyring, state, logs, slots,
    /// boot environment, the syslog socket) is taken below it.
    #[arg(long, global = true, value_name = "DIR", env = "UPDATE_ROOT")]
    pub root: Option<PathBuf>,

    /// Print the result as one versioned JSON document (before or after the subcommand:
    /// `update --json status`); an error is then a JSON document on stdout too, with the same
    /// exit code.
    #[arg(long, global = true)]
    pub json: bool,

    #[allow(missing_docs, reason = "a doc comment here would become clap help text")]
    #[command(flatten)]
    pub run: RunArgs,

    #[allow(missing_docs, reason = "a doc comment here would become clap help text")]
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// clap's conflict error when options of `update` itself (`--now`, `--source`, …) come with
    /// a subcommand: they only mean something without one. (clap's own
    /// `args_conflicts_with_subcommands` would also refuse the global `--root` and `--json`.)
    #[must_use]
    pub fn conflict(&self) -> Option<clap::Error> {
        self.command.as_ref()?;
        let r = &self.run;
        let given: Vec<&str> = [
            (r.now, "--now"),
            (r.noreboot, "--noreboot"),
            (r.source.is_some(), "--source"),
            (r.verify.is_some(), "--verify"),
            (r.secure.is_some(), "--secure"),
            (r.progress_fd.is_some(), "--progress-fd"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if given.is_empty() {
            return None;
        }
        let mut cmd = <Self as clap::CommandFactory>::command();
        Some(cmd.error(
            clap::error::ErrorKind::ArgumentConflict,
            format!("{} cannot be used with a subcommand: `update --now` installs, `update` checks", given.join(", ")),
        ))
    }
}

/// Options of `update` itself (check, or install with --now).
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Use mutual TLS (the device certificate) for this run: true or false.
    #[arg(long, value_name = "true|false", value_parser = clap::value_parser!(bool))]
    pub secure: Option<bool>,
    /// Require signatures from trusted keys for this run: true or false. false skips signature
    /// checks only (hashes are always checked) and is logged as a warning.
    #[arg(long, value_name = "true|false", value_parser = clap::value_parser!(bool))]
    pub verify: Option<bool>,
    /// Use this source URL for this run (https://, http:// or file://).
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,
    /// Install now instead of only checking.
    #[arg(long)]
    pub now: bool,
    /// Do not reboot after a successful install (the new slot boots at the next reboot).
    #[arg(long)]
    pub noreboot: bool,
    /// Write progress as JSON Lines to the open file descriptor N (a pipe, file or terminal
    /// the caller opened for writing; not 0 or 1): one object per phase start, whole percent
    /// and phase end.
    #[arg(long, value_name = "N")]
    pub progress_fd: Option<usize>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show or change the configuration (/etc/update/update.toml) and the keyring.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show the slots, the running version and the boot state.
    Status,
    /// Show the audit log: every config change, check, install, switch, mark-good and rollback.
    History {
        /// Show only the last N records.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
        /// Check the hash chain of the audit log and its rotated files instead: exit 6 when a
        /// record was edited, removed, inserted or reordered.
        #[arg(long, conflicts_with = "last")]
        verify: bool,
    },
    /// Show the drivers, whether each is available here, and what each can do.
    Drivers {
        /// Print the capability matrix as a Markdown table; not with --json.
        #[arg(long)]
        markdown: bool,
    },
    /// Commit the running slot after a successful boot (stops the boot-retry countdown).
    MarkGood,
    /// Drop an installed update that waits for its reboot: the running slot stays the one that
    /// boots. (`mark-good` refuses while an update is pending, so it never cancels one silently.)
    Cancel,
    /// Mark the running slot bad: it is not booted again, the other (committed) slot boots next,
    /// and its release is never installed again. Refused when it holds the only committed version.
    MarkBad,
    /// Make the other (good) slot boot next, undoing the last update.
    Rollback,
    /// Run the update daemon: after boot, health-check a slot on trial and mark it good (or
    /// reboot so the boot counter falls back); then check the source on the configured
    /// schedule (with jitter; a missed window is caught up at start) and install what it finds.
    Daemon {
        /// Do the post-boot step and one scheduled check if it is due, then exit.
        #[arg(long)]
        once: bool,
        /// Check and queue only; never install from the daemon.
        #[arg(long)]
        check_only: bool,
    },
}

/// `update config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set the update source: an https://, http:// or file:// URL.
    Source {
        /// The URL.
        url: String,
    },
    /// Manage trusted public keys (ed25519).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Check every N units: `schedule hourly 6` checks every six hours; `schedule off` stops
    /// scheduled checks.
    Schedule {
        /// monthly, weekly, daily, hourly, minute, or off.
        unit: String,
        /// How many units between checks (1 to 10000); not given with off.
        count: Option<String>,
    },
    /// Where log lines go: a file path, or syslog (the default).
    Log {
        /// An absolute path, or syslog.
        target: String,
    },
    /// Require signatures from trusted keys: true (the default) or false.
    Verify {
        /// true or false.
        value: String,
    },
    /// Boot attempts of a new slot before falling back to the old one (1 to 9).
    BootRetryLimit {
        /// The number of attempts.
        limit: String,
    },
    /// Use mutual TLS with the device certificate: true or false.
    Secure {
        /// true or false.
        value: String,
    },
    /// The device certificate (PEM) used when secure is true; `none` clears it.
    ClientCert {
        /// An absolute path, or none.
        path: String,
    },
    /// The device private key (PEM) used when secure is true; `none` clears it.
    ClientKey {
        /// An absolute path, or none.
        path: String,
    },
    /// A CA certificate (PEM) that signs the source's certificate; `none` uses the system store.
    ServerCa {
        /// An absolute path, or none.
        path: String,
    },
    /// The fleet server (update-server) to check in with, report each update step to and take
    /// pushed checks from: an https:// URL, or `none`. Uses the client certificate of `tls.client-cert`.
    Server {
        /// The server's base URL (https://host:port), or none.
        url: String,
    },
    /// How many distinct trusted keys must sign an update (1 to 16).
    SignatureThreshold {
        /// The threshold.
        count: String,
    },
    /// Which implementation to use: auto (probe), native, rauc, swupdate, mender, ostree, swupd.
    Driver {
        /// The driver name, or auto.
        name: String,
    },
    /// Show the configuration.
    Show,
}

/// `update config key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Trust a new key under a new name.
    Add {
        /// The key's name (A-Z a-z 0-9 - _ .).
        name: String,
        /// The public key: base64 of the 32 raw bytes, 64 hex digits, or PEM; @FILE reads it
        /// from a file and - from standard input.
        public_key: String,
    },
    /// Remove a trusted key.
    Delete {
        /// The key's name.
        name: String,
    },
    /// Replace the key stored under a name.
    Update {
        /// The key's name.
        name: String,
        /// The new public key (as for add).
        public_key: String,
    },
    /// List the trusted keys.
    List,
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand (a conflict naming a global
    /// argument, a duplicate name, …), which otherwise only fire when that subcommand runs.
    #[test]
    fn the_command_line_definition_is_consistent() {
        crate::command().debug_assert();
    }
}
