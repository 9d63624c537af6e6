//! The rollout decisions, as pure functions of a deployment's plan, its counts and `now`
//! (the store calls them inside its transactions; nothing here does I/O or reads a clock).
//!
//! - **Membership** ([`rank`], [`wave_sizes`]): when a deployment is created, the group's
//!   devices are ordered by SHA-256 of `deployment id ":" device id` and cut into waves by the
//!   plan. The order differs per deployment (the same devices are not always the canaries)
//!   and is reproducible (tests, audits).
//! - **Progress** ([`next_step`]): a running deployment pauses when its open wave's failure
//!   rate crosses the threshold, and opens the next wave when the least interval has passed.
//! - **Maintenance windows** ([`in_window`]): whether `now` lies in a window of the
//!   deployment's cron expression, read in its time zone (the system's zoneinfo, through jiff).

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use update_protocol::rollout::Wave;
use update_protocol::window::MaintenanceWindow;

/// A device's place in a deployment's order: lower ranks come first.
#[must_use]
pub fn rank(deployment: i64, device: &str) -> String {
    let digest = Sha256::digest(format!("{deployment}:{device}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// How many devices each wave adds, for a group of `total` devices. `{"devices": N}` adds N;
/// `{"percent": P}` brings the total reached so far up to `ceil(P × total / 100)`. A wave may
/// add none (a small group). The sizes add up to `total` when the last wave is 100%.
#[must_use]
pub fn wave_sizes(waves: &[Wave], total: u32) -> Vec<u32> {
    let mut reached: u32 = 0;
    waves
        .iter()
        .map(|w| {
            let target = match *w {
                Wave::Devices(n) => reached.saturating_add(n),
                Wave::Percent(p) => {
                    let wanted = (u64::from(total) * u64::from(p)).div_ceil(100);
                    u32::try_from(wanted).unwrap_or(u32::MAX).max(reached)
                }
            }
            .min(total);
            let added = target - reached;
            reached = target;
            added
        })
        .collect()
}

/// What the devices of one wave have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaveCounts {
    /// Devices in the wave.
    pub devices: u32,
    /// Devices told to install (their check-in answer carried the assignment).
    pub assigned: u32,
    /// Assigned devices that reported a step of an update afterwards.
    pub attempted: u32,
    /// Attempted devices that reported `failed` or `rolled-back`.
    pub failed: u32,
    /// Attempted devices that reported `committed` and never a failure.
    pub succeeded: u32,
}

/// Whether `counts` crosses the threshold: more than `max_failure_percent` of the attempted
/// devices failed (exact integer arithmetic; no attempts, no failure rate).
#[must_use]
pub fn over_threshold(counts: WaveCounts, max_failure_percent: u8) -> bool {
    counts.attempted > 0
        && u64::from(counts.failed) * 100 > u64::from(max_failure_percent) * u64::from(counts.attempted)
}

/// A running deployment as [`next_step`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// The open wave (0-based).
    pub wave: u32,
    /// How many waves the plan has.
    pub waves: u32,
    /// When the open wave opened.
    pub opened: OffsetDateTime,
    /// The least time between two waves.
    pub min_interval: time::Duration,
    /// The threshold.
    pub max_failure_percent: u8,
    /// The operator resumed this wave, accepting its failures so far.
    pub waived: bool,
    /// The open wave's counts.
    pub counts: WaveCounts,
}

/// What a running deployment does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing changes.
    Stay,
    /// Pause, for this reason.
    Pause(String),
    /// Open the next wave.
    Open(u32),
}

/// The next step of a running deployment at `now`. The failure check comes first, so a wave
/// whose failures arrived before its interval ran out never lets the next one open.
#[must_use]
pub fn next_step(p: &Progress, now: OffsetDateTime) -> Step {
    if !p.waived && over_threshold(p.counts, p.max_failure_percent) {
        return Step::Pause(format!(
            "wave {} failure rate {}/{} is over {}%",
            p.wave, p.counts.failed, p.counts.attempted, p.max_failure_percent
        ));
    }
    if p.wave + 1 < p.waves && now >= p.opened + p.min_interval {
        return Step::Open(p.wave + 1);
    }
    Step::Stay
}

/// Whether `now` is inside `window`: some minute `m` matched by its cron expression, read as
/// wall-clock time in its zone, with `m <= now < m + duration`. Minutes are walked back from
/// `now` over one duration (at most a week: 10,080 steps), so daylight-saving jumps are handled
/// by the zone's own rules.
///
/// # Errors
/// The window fails its checks, or the time zone is unknown.
pub fn in_window(window: &MaintenanceWindow, now: OffsetDateTime) -> Result<bool, String> {
    let cron = window.validate().map_err(|e| e.to_string())?;
    let tz = jiff::tz::TimeZone::get(&window.time_zone)
        .map_err(|e| format!("time-zone: {:?} is not a known time zone ({e})", window.time_zone))?;
    let duration = i64::try_from(window.duration_secs).map_err(|_| "duration-secs: too large".to_owned())?;
    let now = now.unix_timestamp();
    let mut minute = now.div_euclid(60) * 60;
    while minute + duration > now {
        let at = jiff::Timestamp::from_second(minute).map_err(|e| e.to_string())?;
        let local = tz.to_datetime(at);
        let field = |v: i8| u8::try_from(v).unwrap_or(u8::MAX);
        if cron.matches(
            field(local.minute()),
            field(local.hour()),
            field(local.day()),
            field(local.month()),
            field(local.weekday().to_sunday_zero_offset()),
        ) {
            return Ok(true);
        }
        minute -= 60;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    fn any_plan() -> impl Strategy<Value = Vec<Wave>> {
        (proptest::collection::vec(1u32..50, 0..3), proptest::collection::btree_set(1u8..100, 0..5)).prop_map(
            |(canaries, percents)| {
                let mut plan: Vec<Wave> = canaries.into_iter().map(Wave::Devices).collect();
                plan.extend(percents.into_iter().map(Wave::Percent));
                plan.push(Wave::Percent(100));
                plan
            },
        )
    }

    proptest! {
        /// Every device is in exactly one wave, the canary cohorts come first at their size,
        /// and a percentage wave never leaves the reached share below its percentage.
        #[test]
        fn waves_cover_the_group_once(plan in any_plan(), total in 0u32..5000) {
            let sizes = wave_sizes(&plan, total);
            prop_assert_eq!(sizes.len(), plan.len());
            prop_assert_eq!(sizes.iter().sum::<u32>(), total);
            let mut reached = 0u64;
            for (w, size) in plan.iter().zip(&sizes) {
                reached += u64::from(*size);
                match *w {
                    Wave::Devices(n) => prop_assert!(*size <= n),
                    Wave::Percent(p) => prop_assert!(reached * 100 >= u64::from(p) * u64::from(total)),
                }
            }
        }

        /// A wave over its threshold never opens the next one, whatever the time.
        #[test]
        fn over_the_threshold_never_opens_a_wave(
            attempted in 1u32..500, failed_share in 0u32..=100, threshold in 0u8..=100, hours in 0i64..1000,
        ) {
            let failed = attempted * failed_share / 100;
            let counts = WaveCounts { devices: attempted, assigned: attempted, attempted, failed, succeeded: attempted - failed };
            let opened = datetime!(2026-03-01 10:00 UTC);
            let p = Progress {
                wave: 0, waves: 2, opened, min_interval: time::Duration::hours(1),
                max_failure_percent: threshold, waived: false, counts,
            };
            let step = next_step(&p, opened + time::Duration::hours(hours));
            if over_threshold(counts, threshold) {
                prop_assert!(matches!(step, Step::Pause(_)));
            } else {
                prop_assert!(!matches!(step, Step::Pause(_)));
            }
        }
    }

    #[test]
    fn maintenance_windows_in_their_time_zone() {
        let w = |cron: &str, secs, tz: &str| MaintenanceWindow {
            cron: cron.into(),
            duration_secs: secs,
            time_zone: tz.into(),
        };
        let nightly = w("0 2 * * *", 7200, "UTC");
        assert!(!in_window(&nightly, datetime!(2026-03-01 01:59:59 UTC)).unwrap());
        assert!(in_window(&nightly, datetime!(2026-03-01 02:00 UTC)).unwrap());
        assert!(in_window(&nightly, datetime!(2026-03-01 03:59:59 UTC)).unwrap());
        assert!(!in_window(&nightly, datetime!(2026-03-01 04:00 UTC)).unwrap());
        // 02:00 in Berlin is 01:00 UTC in winter (CET) and 00:00 UTC in summer (CEST).
        let berlin = w("0 2 * * *", 3600, "Europe/Berlin");
        assert!(in_window(&berlin, datetime!(2026-01-15 01:30 UTC)).unwrap());
        assert!(!in_window(&berlin, datetime!(2026-01-15 02:30 UTC)).unwrap());
        assert!(in_window(&berlin, datetime!(2026-07-15 00:30 UTC)).unwrap());
        assert!(!in_window(&berlin, datetime!(2026-07-15 01:30 UTC)).unwrap());
        // Weekends only: Saturday 2026-03-07.
        let weekend = w("0 0 * * 6", 2 * 24 * 3600, "UTC");
        assert!(in_window(&weekend, datetime!(2026-03-08 23:59 UTC)).unwrap());
        assert!(!in_window(&weekend, datetime!(2026-03-09 00:00 UTC)).unwrap());
        assert!(in_window(&w("0 0 * * *", 60, "Mars/Olympus"), datetime!(2026-03-08 00:00 UTC)).is_err());
    }

    #[test]
    fn wave_sizes_follow_the_plan() {
        let plan = [Wave::Devices(2), Wave::Percent(10), Wave::Percent(50), Wave::Percent(100)];
        assert_eq!(wave_sizes(&plan, 120), [2, 10, 48, 60]);
        assert_eq!(wave_sizes(&plan, 10), [2, 0, 3, 5]);
        assert_eq!(wave_sizes(&plan, 1), [1, 0, 0, 0]);
        assert_eq!(wave_sizes(&plan, 0), [0, 0, 0, 0]);
        assert_eq!(wave_sizes(&[Wave::Percent(1), Wave::Percent(100)], 101), [2, 99]);
        for total in 0..300 {
            assert_eq!(wave_sizes(&plan, total).iter().sum::<u32>(), total);
        }
    }

    #[test]
    fn ranks_are_stable_and_differ_per_deployment() {
        assert_eq!(rank(1, "device-0001"), rank(1, "device-0001"));
        assert_ne!(rank(1, "device-0001"), rank(2, "device-0001"));
        assert_eq!(rank(1, "d").len(), 64);
    }

    #[test]
    fn the_threshold_is_exact() {
        let c = |attempted, failed| WaveCounts { attempted, failed, ..WaveCounts::default() };
        assert!(!over_threshold(c(0, 0), 0));
        assert!(over_threshold(c(1, 1), 0));
        assert!(!over_threshold(c(50, 1), 2), "2% exactly is not over 2%");
        assert!(over_threshold(c(49, 1), 2));
        assert!(!over_threshold(c(10, 10), 100));
    }

    #[test]
    fn failures_pause_before_the_next_wave_opens() {
        let opened = datetime!(2026-03-01 10:00 UTC);
        let mut p = Progress {
            wave: 0,
            waves: 3,
            opened,
            min_interval: time::Duration::hours(1),
            max_failure_percent: 20,
            waived: false,
            counts: WaveCounts { devices: 2, assigned: 2, attempted: 2, failed: 0, succeeded: 2 },
        };
        assert_eq!(next_step(&p, opened + time::Duration::minutes(59)), Step::Stay);
        assert_eq!(next_step(&p, opened + time::Duration::hours(1)), Step::Open(1));
        p.counts.failed = 1;
        let late = opened + time::Duration::hours(5);
        assert_eq!(next_step(&p, late), Step::Pause("wave 0 failure rate 1/2 is over 20%".to_owned()));
        p.waived = true;
        assert_eq!(next_step(&p, late), Step::Open(1));
        p.wave = 2;
        assert_eq!(next_step(&p, late), Step::Stay, "the last wave stays open");
    }
}
