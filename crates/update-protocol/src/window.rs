//! Maintenance windows: when a device may install. A window opens at every time a cron
//! expression matches, in a named time zone, and stays open for a duration.
//!
//! This module is the shared, pure part: the wire form ([`MaintenanceWindow`]), the checks,
//! and whether a local wall-clock minute matches ([`Cron::matches`]). Turning an instant into
//! the zone's wall-clock time needs a time-zone database and is done by each side (the server
//! with the system's zoneinfo).

use serde::{Deserialize, Serialize};

use crate::limits::{Invalid, MAX_FIELD, check_text};

/// Longest window: a week.
pub const MAX_WINDOW_SECS: u64 = 7 * 24 * 3600;

/// A maintenance window on the wire:
/// `{"cron": "0 2 * * 1-5", "duration-secs": 7200, "time-zone": "Europe/Berlin"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MaintenanceWindow {
    /// Five fields, minute hour day-of-month month day-of-week (0 and 7 are Sunday); each `*`,
    /// a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma-separated list of those.
    pub cron: String,
    /// How long each window stays open, 60 s to a week.
    pub duration_secs: u64,
    /// An IANA time zone name (`UTC`, `Europe/Berlin`) the cron expression is read in.
    pub time_zone: String,
}

impl MaintenanceWindow {
    /// Checks the fields (the time zone only by its syntax; the server also looks it up).
    ///
    /// # Errors
    /// What is wrong, naming the field.
    pub fn validate(&self) -> Result<Cron, Invalid> {
        let cron = Cron::parse(&self.cron)?;
        if !(60..=MAX_WINDOW_SECS).contains(&self.duration_secs) {
            return Err(Invalid::new("duration-secs", format!("60 to {MAX_WINDOW_SECS}")));
        }
        check_text("time-zone", &self.time_zone, MAX_FIELD)?;
        let name_ok = !self.time_zone.is_empty()
            && !self.time_zone.starts_with('/')
            && !self.time_zone.split('/').any(|s| s.is_empty() || s == "." || s == "..")
            && self.time_zone.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
        if !name_ok {
            return Err(Invalid::new("time-zone", "an IANA time zone name such as Europe/Berlin or UTC"));
        }
        Ok(cron)
    }
}

/// A parsed cron expression: the allowed values of each field as bit sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Day-of-month and day-of-week were both restricted (not `*`): either may match.
    either_day: bool,
}

fn parse_field(field: &str, min: u32, max: u32) -> Result<(u64, bool), Invalid> {
    let bad =
        || Invalid::new("cron", format!("{field:?}: expected *, N, A-B, */N, A-B/N or a list, within {min}-{max}"));
    let mut bits = 0u64;
    let mut restricted = true;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(bad)?),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            if field == "*" {
                restricted = false;
            }
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)
        } else {
            let v: u32 = range.parse().map_err(|_| bad())?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(bad());
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, restricted))
}

impl Cron {
    /// Parses five space-separated fields.
    ///
    /// # Errors
    /// What is wrong (field `cron`).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        check_text("cron", text, MAX_FIELD)?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(Invalid::new("cron", "five fields: minute hour day-of-month month day-of-week"));
        };
        let (minutes, _) = parse_field(minute, 0, 59)?;
        let (hours, _) = parse_field(hour, 0, 23)?;
        let (days, days_restricted) = parse_field(day, 1, 31)?;
        let (months, _) = parse_field(month, 1, 12)?;
        let (weekdays, weekdays_restricted) = parse_field(weekday, 0, 7)?;
        // 7 is Sunday too.
        let weekdays = (weekdays | (weekdays >> 7)) & 0x7f;
        let narrow = |v: u64| -> Result<u32, Invalid> {
            u32::try_from(v).map_err(|_| Invalid::new("cron", "field out of range"))
        };
        Ok(Self {
            minutes,
            hours: narrow(hours)?,
            days: narrow(days)?,
            months: u16::try_from(months).map_err(|_| Invalid::new("cron", "month out of range"))?,
            weekdays: u8::try_from(weekdays).map_err(|_| Invalid::new("cron", "weekday out of range"))?,
            either_day: days_restricted && weekdays_restricted,
        })
    }

    /// Whether the wall-clock minute matches: `minute` 0-59, `hour` 0-23, `day` 1-31, `month`
    /// 1-12, `weekday` 0-6 with 0 Sunday. As in cron, when both day fields are restricted
    /// either may match.
    #[must_use]
    pub fn matches(&self, minute: u8, hour: u8, day: u8, month: u8, weekday: u8) -> bool {
        has(self.minutes, minute) && self.matches_hour(hour) && self.matches_date(day, month, weekday)
    }

    /// Whether some minute of the date matches (day 1-31, month 1-12, weekday 0-6): lets a
    /// search for the next window skip whole days.
    #[must_use]
    pub fn matches_date(&self, day: u8, month: u8, weekday: u8) -> bool {
        let day_ok = has(u64::from(self.days), day);
        let weekday_ok = has(u64::from(self.weekdays), weekday);
        let date_ok = if self.either_day { day_ok || weekday_ok } else { day_ok && weekday_ok };
        date_ok && has(u64::from(self.months), month)
    }

    /// Whether some minute of the hour (0-23) matches, on a matching date.
    #[must_use]
    pub fn matches_hour(&self, hour: u8) -> bool {
        has(u64::from(self.hours), hour)
    }
}

fn has(bits: u64, v: u8) -> bool {
    v < 64 && bits & (1 << v) != 0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cron_fields() {
        let c = Cron::parse("0 2 * * *").unwrap();
        assert!(c.matches(0, 2, 15, 6, 3));
        assert!(!c.matches(1, 2, 15, 6, 3));
        assert!(!c.matches(0, 3, 15, 6, 3));
        let weekdays = Cron::parse("30 1-3 * * 1-5").unwrap();
        assert!(weekdays.matches(30, 2, 1, 1, 1));
        assert!(!weekdays.matches(30, 2, 1, 1, 0), "Sunday");
        let steps = Cron::parse("*/15 */6 * 1,7 *").unwrap();
        assert!(steps.matches(45, 18, 9, 7, 4));
        assert!(!steps.matches(50, 18, 9, 7, 4));
        assert!(!steps.matches(45, 18, 9, 8, 4));
        let sunday7 = Cron::parse("0 0 * * 7").unwrap();
        assert!(sunday7.matches(0, 0, 3, 3, 0));
        // Both day fields restricted: either matches (the 1st, or any Monday).
        let either = Cron::parse("0 0 1 * 1").unwrap();
        assert!(either.matches(0, 0, 1, 5, 4) && either.matches(0, 0, 12, 5, 1) && !either.matches(0, 0, 12, 5, 2));
        for bad in [
            "",
            "0 2 * *",
            "0 2 * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "0 2 * * *\n",
        ] {
            assert_eq!(Cron::parse(bad).unwrap_err().field, "cron", "{bad:?}");
        }
    }

    #[test]
    fn windows_on_the_wire() {
        let w: MaintenanceWindow =
            serde_json::from_value(json!({"cron": "0 2 * * *", "duration-secs": 7200, "time-zone": "Europe/Berlin"}))
                .unwrap();
        w.validate().unwrap();
        for (field, bad) in [
            ("duration-secs", MaintenanceWindow { duration_secs: 59, ..w.clone() }),
            ("duration-secs", MaintenanceWindow { duration_secs: MAX_WINDOW_SECS + 1, ..w.clone() }),
            ("time-zone", MaintenanceWindow { time_zone: "../../etc/passwd".into(), ..w.clone() }),
            ("time-zone", MaintenanceWindow { time_zone: "Europe Berlin".into(), ..w.clone() }),
            ("cron", MaintenanceWindow { cron: "daily".into(), ..w.clone() }),
        ] {
            assert_eq!(bad.validate().unwrap_err().field, field, "{bad:?}");
        }
    }
}
