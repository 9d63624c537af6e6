//! The device configuration: `/etc/update/update.toml`.
//!
//! Strict TOML: unknown keys are refused with the file, line, table and key in the message.
//! Every write is atomic ([`crate::atomic::write_atomic`]) and also refreshes a "last good" copy
//! in the state directory, so a file broken by hand never leaves the device without a working
//! configuration: commands that change the config refuse until it is fixed, while the operations
//! that keep the device updating (`update`, `status`, the daemon) fall back to the last good copy
//! with a warning. The reference is docs/reference/config.md.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::names::SlotGroupName;
use crate::paths::Paths;

/// Whether updates must carry valid signatures from the keyring.
///
/// In the file this is `verify = true | false`. `false` skips signature checks only; integrity
/// hashes are always checked, and every use of `false` is logged as a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "bool", into = "bool")]
pub enum Verify {
    /// Require a threshold of valid signatures from trusted keys (the default).
    #[default]
    Signatures,
    /// Check integrity hashes only. Dangerous: anyone who can reach the source can install code.
    IntegrityOnly,
}

impl From<bool> for Verify {
    fn from(b: bool) -> Self {
        if b { Verify::Signatures } else { Verify::IntegrityOnly }
    }
}
impl From<Verify> for bool {
    fn from(v: Verify) -> bool {
        v == Verify::Signatures
    }
}

/// Transport security towards the source. In the file: `secure = true | false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "bool", into = "bool")]
pub enum Secure {
    /// Server authentication only (HTTPS with the server's certificate verified).
    #[default]
    ServerAuth,
    /// Mutual TLS: the device also presents its client certificate.
    MutualTls,
}

impl From<bool> for Secure {
    fn from(b: bool) -> Self {
        if b { Secure::MutualTls } else { Secure::ServerAuth }
    }
}
impl From<Secure> for bool {
    fn from(s: Secure) -> bool {
        s == Secure::MutualTls
    }
}

/// Parses the words `true` and `false` (the CLI's `verify`/`secure` values).
///
/// # Errors
/// [`Error::InvalidValue`] for anything else.
pub fn parse_bool(what: &str, text: &str) -> Result<bool> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => {
            Err(Error::InvalidValue { what: what.into(), value: text.into(), reason: "expected true or false".into() })
        }
    }
}

/// An update source URL: `https://`, `http://` or `file://`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SourceUrl(String);

impl SourceUrl {
    /// The URL schemes accepted.
    pub const SCHEMES: [&'static str; 3] = ["https", "http", "file"];

    /// Validates a source URL.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for other schemes, a missing host, a relative `file://` path,
    /// or characters that cannot appear in a URL.
    pub fn new(text: &str) -> Result<Self> {
        let bad =
            |reason: &str| Error::InvalidValue { what: "source URL".into(), value: text.into(), reason: reason.into() };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("expected https://, http:// or file://"))?;
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("URLs cannot contain spaces or control characters"));
        }
        match scheme {
            "https" | "http" => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                if host.is_empty() || host.starts_with(':') {
                    return Err(bad("the URL has no host"));
                }
            }
            "file" => {
                if !rest.starts_with('/') {
                    return Err(bad("file:// URLs need an absolute path (file:///srv/update)"));
                }
            }
            other => {
                return Err(bad(&format!("scheme '{other}' is not supported; use https://, http:// or file://")));
            }
        }
        Ok(Self(text.to_owned()))
    }

    /// The URL text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scheme (`https`, `http` or `file`).
    #[must_use]
    pub fn scheme(&self) -> &str {
        self.0.split_once("://").map_or("", |(s, _)| s)
    }

    /// For `file://` URLs, the local path.
    #[must_use]
    pub fn file_path(&self) -> Option<&Path> {
        self.0.strip_prefix("file://").map(Path::new)
    }
}

impl TryFrom<String> for SourceUrl {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}
impl From<SourceUrl> for String {
    fn from(s: SourceUrl) -> String {
        s.0
    }
}
impl fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The unit of a check schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleUnit {
    /// Every N minutes.
    Minute,
    /// Every N hours.
    Hourly,
    /// Every N days.
    Daily,
    /// Every N weeks.
    Weekly,
    /// Every N calendar months.
    Monthly,
}

impl ScheduleUnit {
    /// The CLI word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleUnit::Minute => "minute",
            ScheduleUnit::Hourly => "hourly",
            ScheduleUnit::Daily => "daily",
            ScheduleUnit::Weekly => "weekly",
            ScheduleUnit::Monthly => "monthly",
        }
    }
}

impl FromStr for ScheduleUnit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "minute" => ScheduleUnit::Minute,
            "hourly" => ScheduleUnit::Hourly,
            "daily" => ScheduleUnit::Daily,
            "weekly" => ScheduleUnit::Weekly,
            "monthly" => ScheduleUnit::Monthly,
            _ => {
                return Err(Error::InvalidValue {
                    what: "schedule unit".into(),
                    value: s.into(),
                    reason: "expected monthly, weekly, daily, hourly or minute".into(),
                });
            }
        })
    }
}

/// When the daemon checks the source: `off`, or every `count` `unit`s (`hourly 6` = every six
/// hours). In the file: `schedule = "off"` or `schedule = "hourly 6"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Schedule {
    /// No scheduled checks (push and manual `update` still work).
    #[default]
    Off,
    /// Check every `count` units.
    Every {
        /// The unit.
        unit: ScheduleUnit,
        /// How many units between checks (1 to 10000).
        count: u32,
    },
}

impl Schedule {
    /// Builds a schedule from the CLI words.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for an unknown unit or a count outside 1..=10000.
    pub fn every(unit: &str, count: &str) -> Result<Self> {
        let unit: ScheduleUnit = unit.parse()?;
        let count: u32 =
            count.parse().ok().filter(|c| (1..=10_000).contains(c)).ok_or_else(|| Error::InvalidValue {
                what: "schedule interval".into(),
                value: count.into(),
                reason: "expected a whole number from 1 to 10000".into(),
            })?;
        Ok(Schedule::Every { unit, count })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Off => f.write_str("off"),
            Schedule::Every { unit, count } => write!(f, "{} {count}", unit.as_str()),
        }
    }
}

impl TryFrom<String> for Schedule {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            ["off"] => Ok(Schedule::Off),
            [unit, count] => Schedule::every(unit, count),
            _ => Err(Error::InvalidValue {
                what: "schedule".into(),
                value: s.clone(),
                reason: "expected \"off\" or \"<monthly|weekly|daily|hourly|minute> <N>\"".into(),
            }),
        }
    }
}
impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.to_string()
    }
}

/// Where human-readable log lines go. In the file: `log = "syslog"` or `log = "/var/log/update.log"`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LogTarget {
    /// The system log over `/dev/log` (the default).
    #[default]
    Syslog,
    /// A file (absolute path, re-rooted with `--root`).
    File(PathBuf),
}

impl LogTarget {
    /// Parses `syslog` or an absolute path.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for a relative path.
    pub fn new(text: &str) -> Result<Self> {
        if text == "syslog" {
            return Ok(LogTarget::Syslog);
        }
        if !text.starts_with('/') || text.ends_with('/') {
            return Err(Error::InvalidValue {
                what: "log target".into(),
                value: text.into(),
                reason: "expected syslog or an absolute file path".into(),
            });
        }
        Ok(LogTarget::File(PathBuf::from(text)))
    }
}

impl TryFrom<String> for LogTarget {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}
impl From<LogTarget> for String {
    fn from(l: LogTarget) -> String {
        match l {
            LogTarget::Syslog => "syslog".into(),
            LogTarget::File(p) => p.display().to_string(),
        }
    }
}
impl fmt::Display for LogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from(self.clone()))
    }
}

/// TLS files (paths on the device, re-rooted with `--root`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsConfig {
    /// The device's client certificate (PEM), used when `secure = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// The device's private key (PEM), used when `secure = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// A CA certificate (PEM) for a private source; the system store is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca: Option<PathBuf>,
}

/// Which bootloader holds the boot state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootloaderKind {
    /// GRUB, with two grubenv-format copies read by the shipped `grub.cfg` fragment.
    Grub,
    /// U-Boot, with the redundant environment (`fw_printenv` layout) read by the shipped script.
    Uboot,
    /// A plain file (tests and simulated devices).
    File,
}

/// One copy of the boot environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnvLocation {
    /// File or device holding the copy.
    pub path: PathBuf,
    /// Byte offset inside it.
    #[serde(default)]
    pub offset: u64,
    /// Size in bytes (GRUB: 1024; U-Boot: the env size); 0 means the bootloader's default.
    #[serde(default)]
    pub size: u64,
}

/// The boot environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BootConfig {
    /// The bootloader.
    pub bootloader: BootloaderKind,
    /// The environment copies (two for power-cut safety).
    pub env: Vec<EnvLocation>,
}

/// A slot group's two slots (block devices, partitions or plain files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SlotPair {
    /// Slot A.
    pub a: PathBuf,
    /// Slot B.
    pub b: PathBuf,
}

/// The native driver's device description. Its presence enables the native driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NativeConfig {
    /// The board name bundles must declare as `compatible`.
    pub compatible: String,
    /// The boot environment.
    pub boot: BootConfig,
    /// Slot groups by name (`rootfs`, `kernel`, …).
    pub slots: BTreeMap<SlotGroupName, SlotPair>,
    /// Paths (or devices) that hold user data: never written by an update.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<PathBuf>,
    /// The command that reboots the device (default: `reboot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_command: Option<Vec<String>>,
}

/// A health check run after booting a new slot; all must pass before it is marked good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HealthCheck {
    /// A name for logs.
    pub name: String,
    /// The command and its arguments (run without a shell).
    pub command: Vec<String>,
    /// Seconds before the check counts as failed.
    #[serde(default = "default_health_timeout")]
    pub timeout_secs: u64,
}

fn default_health_timeout() -> u64 {
    60
}
fn default_retry_limit() -> u32 {
    3
}
fn default_threshold() -> u32 {
    1
}
fn is_default_retry(v: &u32) -> bool {
    *v == default_retry_limit()
}
fn is_default_threshold(v: &u32) -> bool {
    *v == default_threshold()
}

/// The highest `boot-retry-limit` the shipped bootloader scripts can count down from.
pub const MAX_BOOT_RETRY_LIMIT: u32 = 9;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// `auto` (probe in order) or a driver name (`native`, `rauc`, `swupdate`, `mender`, `ostree`, `swupd`).
    #[serde(default = "default_driver")]
    pub driver: String,
    /// Where updates come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceUrl>,
    /// When the daemon checks the source.
    #[serde(default)]
    pub schedule: Schedule,
    /// Where log lines go.
    #[serde(default)]
    pub log: LogTarget,
    /// Signature policy.
    #[serde(default)]
    pub verify: Verify,
    /// Transport policy.
    #[serde(default)]
    pub secure: Secure,
    /// Boot attempts of a new slot before the bootloader falls back (1 to 9).
    #[serde(default = "default_retry_limit", skip_serializing_if = "is_default_retry")]
    pub boot_retry_limit: u32,
    /// How many distinct trusted keys must sign an update (default 1).
    #[serde(default = "default_threshold", skip_serializing_if = "is_default_threshold")]
    pub signature_threshold: u32,
    /// TLS files.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tls: TlsConfig,
    /// The native driver's device description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeConfig>,
    /// Health checks run after a new slot boots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_check: Vec<HealthCheck>,
    /// The fleet server (`update-server`) the device checks in with, reports each update step
    /// to and listens to for pushed checks: its base URL, `https://` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<SourceUrl>,
}

fn default_driver() -> String {
    "auto".into()
}
fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            driver: default_driver(),
            source: None,
            schedule: Schedule::Off,
            log: LogTarget::Syslog,
            verify: Verify::Signatures,
            secure: Secure::ServerAuth,
            boot_retry_limit: default_retry_limit(),
            signature_threshold: default_threshold(),
            tls: TlsConfig::default(),
            native: None,
            health_check: Vec::new(),
            server: None,
        }
    }
}

/// Checks a `boot-retry-limit` value.
///
/// # Errors
/// [`Error::InvalidValue`] outside 1..=[`MAX_BOOT_RETRY_LIMIT`].
pub fn check_boot_retry_limit(v: u32) -> Result<u32> {
    if (1..=MAX_BOOT_RETRY_LIMIT).contains(&v) {
        Ok(v)
    } else {
        Err(Error::InvalidValue {
            what: "boot-retry-limit".into(),
            value: v.to_string(),
            reason: format!("expected a whole number from 1 to {MAX_BOOT_RETRY_LIMIT}"),
        })
    }
}

/// Checks a fleet server URL: `https://` with a host (device identity and reports need TLS).
///
/// # Errors
/// [`Error::InvalidValue`] for any other scheme.
pub fn check_server_url(url: &SourceUrl) -> Result<()> {
    if url.scheme() == "https" {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            what: "server".into(),
            value: url.as_str().into(),
            reason: "the fleet server must be an https:// URL (reports carry the device's identity)".into(),
        })
    }
}

/// Parses a `boot-retry-limit` from the command line.
///
/// # Errors
/// [`Error::InvalidValue`] unless it is a whole number in range.
pub fn parse_boot_retry_limit(text: &str) -> Result<u32> {
    let v: u32 = text.parse().map_err(|_| Error::InvalidValue {
        what: "boot-retry-limit".into(),
        value: text.into(),
        reason: format!("expected a whole number from 1 to {MAX_BOOT_RETRY_LIMIT}"),
    })?;
    check_boot_retry_limit(v)
}

/// Where in a TOML document a byte offset falls: the line number and the enclosing table.
fn locate(text: &str, offset: usize) -> (usize, String) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map_or_else(|| "top level".to_owned(), |l| format!("table {}", l.split('#').next().unwrap_or(l).trim()));
    (line, table)
}

impl Config {
    /// Parses and validates a config file's text. `path` is used in error messages only.
    ///
    /// # Errors
    /// [`Error::ConfigParse`] naming the line, table and key for syntax errors, unknown keys and
    /// invalid values.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_owned();
            let message = match e.span() {
                Some(span) => {
                    let (line, table) = locate(text, span.start);
                    let key = text.get(span.clone()).unwrap_or("").lines().next().unwrap_or("").trim();
                    if key.is_empty() || key.len() > 60 {
                        format!("line {line}, {table}: {msg}")
                    } else {
                        format!("line {line}, {table}, at `{key}`: {msg}")
                    }
                }
                None => msg,
            };
            Error::ConfigParse { path: path.to_owned(), message }
        })?;
        config.validate().map_err(|e| Error::ConfigParse { path: path.to_owned(), message: e.to_string() })?;
        Ok(config)
    }

    /// Checks the values serde cannot check alone.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming the key.
    pub fn validate(&self) -> Result<()> {
        check_boot_retry_limit(self.boot_retry_limit)?;
        if self.signature_threshold == 0 || self.signature_threshold > 16 {
            return Err(Error::InvalidValue {
                what: "signature-threshold".into(),
                value: self.signature_threshold.to_string(),
                reason: "expected a whole number from 1 to 16".into(),
            });
        }
        crate::names::KeyName::new(&self.driver).map_err(|_| Error::InvalidValue {
            what: "driver".into(),
            value: self.driver.clone(),
            reason: "expected auto or a driver name".into(),
        })?;
        if let Some(native) = &self.native {
            if native.slots.is_empty() {
                return Err(Error::InvalidValue {
                    what: "native.slots".into(),
                    value: String::new(),
                    reason: "at least one slot group is needed".into(),
                });
            }
            if native.boot.env.is_empty() || native.boot.env.len() > 2 {
                return Err(Error::InvalidValue {
                    what: "native.boot.env".into(),
                    value: native.boot.env.len().to_string(),
                    reason: "expected one or two environment copies".into(),
                });
            }
        }
        if let Some(server) = &self.server {
            check_server_url(server)?;
        }
        for hc in &self.health_check {
            if hc.command.is_empty() {
                return Err(Error::InvalidValue {
                    what: "health-check.command".into(),
                    value: hc.name.clone(),
                    reason: "the command is empty".into(),
                });
            }
        }
        Ok(())
    }

    /// The file's text.
    #[must_use]
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads the config. A missing file gives the defaults.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read; [`Error::ConfigParse`] when it is not valid.
    pub fn load(paths: &Paths) -> Result<Config> {
        let path = paths.config_file();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| Error::ConfigParse {
                    path: path.clone(),
                    message: "the file is not UTF-8 text".into(),
                })?;
                Config::parse(&text, &path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// Reads the config, falling back to the last good copy when the file is broken.
    /// The second value is the error that caused the fallback, for the caller to log.
    ///
    /// # Errors
    /// The original error when there is no usable last good copy either.
    pub fn load_or_last_good(paths: &Paths) -> Result<(Config, Option<Error>)> {
        match Config::load(paths) {
            Ok(c) => Ok((c, None)),
            Err(e) => {
                let last = paths.last_good_config();
                let fallback = std::fs::read_to_string(&last).ok().and_then(|t| Config::parse(&t, &last).ok());
                match fallback {
                    Some(c) => Ok((c, Some(e))),
                    None => Err(e),
                }
            }
        }
    }

    /// Writes the config atomically, then refreshes the last good copy.
    /// Callers hold the config lock.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when invalid (nothing is written), [`Error::Io`] when a write fails.
    pub fn store(&self, paths: &Paths) -> Result<()> {
        self.validate()?;
        let text = self.to_toml();
        write_atomic(&paths.config_file(), text.as_bytes(), 0o644)?;
        write_atomic(&paths.last_good_config(), text.as_bytes(), 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        let c = Config::default();
        let back = Config::parse(&c.to_toml(), Path::new("x")).unwrap();
        assert_eq!(c, back);
    }

    #[test]
    fn unknown_key_names_line_table_and_key() {
        let text = "source = \"https://a.example/\"\n[tls]\nclient-certt = \"/x\"\n";
        let e = Config::parse(text, Path::new("/etc/update/update.toml")).unwrap_err().to_string();
        assert!(e.contains("/etc/update/update.toml"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("[tls]"), "{e}");
        assert!(e.contains("client-certt"), "{e}");
    }

    #[test]
    fn source_urls() {
        for ok in ["https://u.example/repo", "http://10.0.2.2:8080/", "file:///srv/update"] {
            SourceUrl::new(ok).unwrap();
        }
        for bad in ["ftp://x/", "https://", "file://relative", "/srv", "https://a b/", "HTTPS//x"] {
            assert!(SourceUrl::new(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn schedules() {
        assert_eq!(
            Schedule::try_from("hourly 6".to_owned()).unwrap(),
            Schedule::Every { unit: ScheduleUnit::Hourly, count: 6 }
        );
        assert_eq!(Schedule::try_from("off".to_owned()).unwrap(), Schedule::Off);
        for bad in ["yearly 1", "hourly 0", "hourly -1", "hourly x", "hourly", "hourly 1 2"] {
            assert!(Schedule::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_in_file_are_refused() {
        for text in [
            "boot-retry-limit = 0",
            "boot-retry-limit = 10",
            "log = \"relative.log\"",
            "verify = \"yes\"",
            "source = \"gopher://x/\"",
            "server = \"http://fleet.example\"",
            "server = \"file:///srv\"",
        ] {
            assert!(Config::parse(text, Path::new("f")).is_err(), "{text}");
        }
    }

    #[test]
    fn server_url_round_trips() {
        let c = Config::parse("server = \"https://fleet.example:8443\"\n", Path::new("f")).unwrap();
        assert_eq!(c.server.as_ref().map(SourceUrl::as_str), Some("https://fleet.example:8443"));
        assert_eq!(Config::parse(&c.to_toml(), Path::new("f")).unwrap(), c);
    }
}
