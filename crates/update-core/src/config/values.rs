//! The scalar values of the config: policies, schedule, log target.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
