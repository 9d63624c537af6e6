//! When the daemon checks: the next due time from the schedule, the last check and a jitter.
//!
//! Pure functions of their inputs (time is passed in), so tests drive them with any clock.
//! `schedule = "<unit> <N>"` means every N units after the last check: `minute 1` every minute,
//! `hourly 6` every six hours, `daily`/`weekly` likewise, `monthly 1` on the same day-of-month
//! one calendar month later (clamped to the month's last day). A device that was off when a
//! check was due checks at start-up ("catch-up"). Jitter spreads a fleet's checks: a device
//! waits an extra fraction of the interval, at most 10% of it and at most one hour, chosen from
//! a per-device seed so a device's jitter is stable across restarts.

use std::time::Duration;

use time::{Month, OffsetDateTime};
use update_core::config::{Schedule, ScheduleUnit};

/// The next time a check is due after `last` (ignoring jitter); `None` when the schedule is off.
#[must_use]
pub fn next_due(schedule: Schedule, last: OffsetDateTime) -> Option<OffsetDateTime> {
    let Schedule::Every { unit, count } = schedule else { return None };
    let n = i64::from(count);
    Some(match unit {
        ScheduleUnit::Minute => last + time::Duration::minutes(n),
        ScheduleUnit::Hourly => last + time::Duration::hours(n),
        ScheduleUnit::Daily => last + time::Duration::days(n),
        ScheduleUnit::Weekly => last + time::Duration::weeks(n),
        ScheduleUnit::Monthly => add_months(last, count),
    })
}

fn add_months(t: OffsetDateTime, months: u32) -> OffsetDateTime {
    let total = i64::from(t.year()) * 12 + i64::from(t.month() as u8 - 1) + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).unwrap_or(i32::MAX);
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1)).unwrap_or(Month::January);
    let day = t.day().min(month.length(year));
    let date = time::Date::from_calendar_date(year, month, day).unwrap_or(t.date());
    t.replace_date(date)
}

/// The nominal interval of a schedule (a calendar month counts as 30 days here).
#[must_use]
pub fn interval(schedule: Schedule) -> Option<Duration> {
    let Schedule::Every { unit, count } = schedule else { return None };
    let secs = match unit {
        ScheduleUnit::Minute => 60,
        ScheduleUnit::Hourly => 3600,
        ScheduleUnit::Daily => 86_400,
        ScheduleUnit::Weekly => 7 * 86_400,
        ScheduleUnit::Monthly => 30 * 86_400,
    };
    Some(Duration::from_secs(secs * u64::from(count)))
}

/// The largest jitter for a schedule: 10% of the interval, at most one hour.
#[must_use]
pub fn max_jitter(schedule: Schedule) -> Duration {
    interval(schedule).map_or(Duration::ZERO, |i| (i / 10).min(Duration::from_secs(3600)))
}

/// The jitter of a device: a stable fraction of [`max_jitter`] derived from `seed`.
#[must_use]
pub fn jitter(schedule: Schedule, seed: u64) -> Duration {
    let max = max_jitter(schedule).as_millis();
    if max == 0 {
        return Duration::ZERO;
    }
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    Duration::from_millis(u64::try_from(u128::from(x) % (max + 1)).unwrap_or(0))
}

/// When the daemon should check next: never checked → now (+ jitter); otherwise the next due
/// time after the last check plus jitter, but not earlier than now (a missed window is caught
/// up at once).
#[must_use]
pub fn next_check(
    schedule: Schedule,
    last: Option<OffsetDateTime>,
    now: OffsetDateTime,
    seed: u64,
) -> Option<OffsetDateTime> {
    let j = jitter(schedule, seed);
    let due = match last {
        None => now,
        Some(last) => next_due(schedule, last)? + j,
    };
    next_due(schedule, now)?; // off → None
    Some(due.max(now))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn s(t: &str) -> Schedule {
        Schedule::try_from(t.to_owned()).unwrap()
    }

    #[test]
    fn minute_hourly_monthly_fire_when_expected() {
        let last = datetime!(2026-01-31 10:00 UTC);
        assert_eq!(next_due(s("minute 1"), last), Some(datetime!(2026-01-31 10:01 UTC)));
        assert_eq!(next_due(s("hourly 6"), last), Some(datetime!(2026-01-31 16:00 UTC)));
        assert_eq!(next_due(s("daily 2"), last), Some(datetime!(2026-02-02 10:00 UTC)));
        assert_eq!(next_due(s("weekly 1"), last), Some(datetime!(2026-02-07 10:00 UTC)));
        // Calendar months, clamped to the month's end.
        assert_eq!(next_due(s("monthly 1"), last), Some(datetime!(2026-02-28 10:00 UTC)));
        assert_eq!(next_due(s("monthly 12"), last), Some(datetime!(2027-01-31 10:00 UTC)));
        assert_eq!(next_due(s("monthly 1"), datetime!(2026-12-15 00:00 UTC)), Some(datetime!(2027-01-15 00:00 UTC)));
        assert_eq!(next_due(s("off"), last), None);
    }

    #[test]
    fn jitter_stays_inside_its_bound_and_is_stable() {
        for (sched, bound) in [("minute 1", 6), ("hourly 6", 2160), ("daily 1", 3600), ("monthly 1", 3600)] {
            let sched = s(sched);
            assert_eq!(max_jitter(sched), Duration::from_secs(bound));
            let mut seen_nonzero = false;
            for seed in 0..2000u64 {
                let j = jitter(sched, seed);
                assert!(j <= max_jitter(sched), "{j:?}");
                seen_nonzero |= j > max_jitter(sched) / 2;
                assert_eq!(j, jitter(sched, seed));
            }
            assert!(seen_nonzero, "jitter never used the upper half of its range");
        }
    }

    #[test]
    fn missed_window_is_caught_up_at_once() {
        let sched = s("hourly 6");
        let last = datetime!(2026-01-01 00:00 UTC);
        let now = datetime!(2026-01-03 00:00 UTC);
        assert_eq!(next_check(sched, Some(last), now, 7), Some(now));
        let soon = datetime!(2026-01-01 01:00 UTC);
        let due = next_check(sched, Some(last), soon, 7).unwrap();
        assert!(due >= datetime!(2026-01-01 06:00 UTC) && due <= datetime!(2026-01-01 06:36 UTC), "{due}");
        assert_eq!(next_check(sched, None, soon, 7), Some(soon));
        assert_eq!(next_check(s("off"), Some(last), now, 7), None);
    }
}
