//! Human-readable log lines: to syslog (RFC 3164 over the `/dev/log` datagram socket, as glibc's
//! `syslog(3)` sends them) or appended to a file. The audit trail is separate ([`crate::Updater`]
//! writes it through `update_core::audit`).

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use update_core::Paths;
use update_core::config::LogTarget;

/// Syslog severities used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// LOG_ERR.
    Error = 3,
    /// LOG_WARNING.
    Warning = 4,
    /// LOG_NOTICE.
    Notice = 5,
    /// LOG_INFO.
    Info = 6,
}

impl Severity {
    fn word(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Info => "info",
        }
    }
}

/// The syslog facility: LOG_DAEMON.
const FACILITY_DAEMON: u8 = 3;

/// Where log lines go, resolved under the root.
#[derive(Debug, Clone)]
pub enum Logger {
    /// A syslog socket.
    Syslog {
        /// The socket path (`/dev/log` under the root).
        socket: PathBuf,
    },
    /// A file.
    File {
        /// The file (under the root).
        path: PathBuf,
    },
}

impl Logger {
    /// The logger for a configured target.
    #[must_use]
    pub fn new(paths: &Paths, target: &LogTarget) -> Self {
        match target {
            LogTarget::Syslog => Logger::Syslog { socket: paths.syslog_socket() },
            LogTarget::File(p) => Logger::File { path: paths.resolve(p) },
        }
    }

    /// Writes one line. Logging never fails the operation: a logger that cannot write
    /// (no syslog daemon, read-only file) reports that once on stderr and carries on.
    /// Messages carry text from outside (versions, file names, tool output): every control
    /// character is escaped ([`update_core::text`]), so no message forges a line or a terminal
    /// sequence.
    pub fn log(&self, severity: Severity, message: &str) {
        let message = update_core::text::escape(message);
        let result = match self {
            Logger::Syslog { socket } => send_syslog(socket, severity, &message),
            Logger::File { path } => append_line(path, severity, &message),
        };
        if let Err(e) = result {
            let (what, where_) = match self {
                Logger::Syslog { socket } => ("syslog", socket),
                Logger::File { path } => ("log file", path),
            };
            if !matches!(self, Logger::Syslog { .. }) || e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("update: warning: cannot write to {what} {}: {e}", where_.display());
            }
        }
    }
}

fn ident_pid() -> String {
    format!("update[{}]", std::process::id())
}

/// Formats an RFC 3164 line as glibc sends it to `/dev/log` (no hostname).
#[must_use]
pub fn format_rfc3164(severity: Severity, message: &str, now: time::OffsetDateTime) -> String {
    let pri = FACILITY_DAEMON * 8 + severity as u8;
    let fmt = time::macros::format_description!("[month repr:short] [day padding:space] [hour]:[minute]:[second]");
    let ts = now.format(&fmt).unwrap_or_default();
    format!("<{pri}>{ts} {}: {message}", ident_pid())
}

fn send_syslog(socket: &std::path::Path, severity: Severity, message: &str) -> std::io::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let line = format_rfc3164(severity, message, now);
    let sock = UnixDatagram::unbound()?;
    sock.send_to(line.as_bytes(), socket)?;
    Ok(())
}

fn append_line(path: &std::path::Path, severity: Severity, message: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let line = format!("{} {} {}: {message}\n", update_core::time_util::now_rfc3339(), ident_pid(), severity.word());
    // Never through a symbolic link planted at the log path (O_NOFOLLOW); the console is fine.
    update_core::atomic::open_log(path, 0o640, "open log file")
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3164_shape() {
        let t = time::macros::datetime!(2026-11-04 08:05:09 UTC);
        let l = format_rfc3164(Severity::Error, "boom", t);
        assert!(l.starts_with("<27>Nov  4 08:05:09 update["), "{l}");
        assert!(l.ends_with("]: boom"));
    }
}
