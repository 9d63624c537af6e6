//! The rollout decisions, as pure functions of a deployment's plan, its counts and `now`
//! (the store calls them inside its transactions; nothing here does I/O or reads a clock).
//!
//! - **Membership** ([`rank`], [`wave_sizes`]): when a deployment is created, the group's
//!   devices are ordered by SHA-256 of `deployment id ":" device id` and cut into waves by the
//!   plan. The order differs per deployment (the same devices are not always the canaries)
//!   and is reproducible (tests, audits).
//! - **Progress** ([`next_step`]): a running deployment pauses when the failure rate of a wave
//!   opened so far (and not accepted by the operator) crosses the threshold, and opens the next
//!   wave when the least interval has passed.
//! - **Maintenance windows** ([`in_window`]): whether `now` lies in a window of the
//!   deployment's cron expression, read in its time zone (the system's zoneinfo, through jiff).

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use update_protocol::rollout::{AssignmentAction, DeploymentState, Wave};
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
pub struct Progress<'a> {
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
    /// The operator resumed the deployment while this wave was open, accepting the failures of
    /// it and of every wave before it.
    pub waived_through: Option<u32>,
    /// The counts of the waves opened so far, by wave (`0..=wave`; more are ignored).
    pub counts: &'a [WaveCounts],
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
/// whose failures arrived before its interval ran out never lets the next one open; and it
/// covers every opened wave the operator has not accepted, not only the open one, so a canary
/// that fails after the next wave opened (a short or zero interval) still pauses the rollout.
/// The reason numbers waves from 1, as the dashboard does.
#[must_use]
pub fn next_step(p: &Progress<'_>, now: OffsetDateTime) -> Step {
    let opened = p.counts.iter().zip(0..=p.wave);
    for (counts, wave) in opened.filter(|(_, w)| p.waived_through.is_none_or(|t| *w > t)) {
        if over_threshold(*counts, p.max_failure_percent) {
            return Step::Pause(format!(
                "wave {} of {}: failure rate {}/{} is over {}%",
                wave + 1,
                p.waves,
                counts.failed,
                counts.attempted,
                p.max_failure_percent
            ));
        }
    }
    if p.wave + 1 < p.waves && now >= p.opened + p.min_interval {
        return Step::Open(p.wave + 1);
    }
    Step::Stay
}

/// Where `now` stands against a maintenance window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    /// Inside a window that closes at `closes`; the one after it opens at `next` (if within
    /// a year).
    Open {
        /// The end of the open window.
        closes: OffsetDateTime,
        /// The next opening after it.
        next: Option<OffsetDateTime>,
    },
    /// Outside; the next window opens at `next` (if within a year).
    Closed {
        /// The next opening.
        next: Option<OffsetDateTime>,
    },
}

/// Whether `now` is inside `window`: some minute `m` matched by its cron expression, read as
/// wall-clock time in its zone, with `m <= now < m + duration` (the latest such `m` gives
/// when it closes). Minutes are walked back from `now` over one duration (at most a week:
/// 10,080 steps), so daylight-saving jumps are handled by the zone's own rules. The next
/// opening is searched forward for a year, skipping days and hours that cannot match.
///
/// # Errors
/// The window fails its checks, or the time zone is unknown.
pub fn window_state(window: &MaintenanceWindow, now: OffsetDateTime) -> Result<WindowState, String> {
    let cron = window.validate().map_err(|e| e.to_string())?;
    let tz = jiff::tz::TimeZone::get(&window.time_zone)
        .map_err(|e| format!("time-zone: {:?} is not a known time zone ({e})", window.time_zone))?;
    let duration = i64::try_from(window.duration_secs).map_err(|_| "duration-secs: too large".to_owned())?;
    let local = |second: i64| -> Result<jiff::civil::DateTime, String> {
        Ok(tz.to_datetime(jiff::Timestamp::from_second(second).map_err(|e| e.to_string())?))
    };
    let field = |v: i8| u8::try_from(v).unwrap_or(u8::MAX);
    let matches = |l: &jiff::civil::DateTime| {
        cron.matches(
            field(l.minute()),
            field(l.hour()),
            field(l.day()),
            field(l.month()),
            field(l.weekday().to_sunday_zero_offset()),
        )
    };
    let instant = |second: i64| OffsetDateTime::from_unix_timestamp(second).map_err(|e| e.to_string());
    // The first matching minute at or after `from` (a minute boundary), within a year.
    let next_opening = |from: i64| -> Result<Option<OffsetDateTime>, String> {
        let mut t = from;
        while t < from + 366 * 86_400 {
            let l = local(t)?;
            let (hour, minute) = (i64::from(l.hour()), i64::from(l.minute()));
            let step =
                if !cron.matches_date(field(l.day()), field(l.month()), field(l.weekday().to_sunday_zero_offset())) {
                    // On to 23:00, then hour by hour: a daylight-saving change on the way can
                    // never make the search jump past a midnight.
                    if hour < 23 { (23 - hour) * 60 - minute } else { 60 - minute }
                } else if !cron.matches_hour(field(l.hour())) {
                    60 - minute
                } else if !matches(&l) {
                    1
                } else {
                    return instant(t).map(Some);
                };
            t += step.max(1) * 60;
        }
        Ok(None)
    };
    let now = now.unix_timestamp();
    let mut minute = now.div_euclid(60) * 60;
    while minute + duration > now {
        if matches(&local(minute)?) {
            let closes = minute + duration;
            return Ok(WindowState::Open {
                closes: instant(closes)?,
                next: next_opening(closes.div_euclid(60) * 60 + 60)?,
            });
        }
        minute -= 60;
    }
    Ok(WindowState::Closed { next: next_opening(now.div_euclid(60) * 60 + 60)? })
}

/// Whether `now` is inside `window` ([`window_state`]).
///
/// # Errors
/// As [`window_state`].
pub fn in_window(window: &MaintenanceWindow, now: OffsetDateTime) -> Result<bool, String> {
    window_state(window, now).map(|s| matches!(s, WindowState::Open { .. }))
}

/// What a device in an opened wave of a deployment in `state` is told at `now`: the action,
/// and for a maintenance window the instants it closes and next opens. `None` for a deployment
/// that no longer assigns anything (aborted, or a state this server does not know). Shared by
/// every store, so SQLite and PostgreSQL answer alike.
pub fn assignment_action(
    deployment: i64,
    state: DeploymentState,
    window: Option<&MaintenanceWindow>,
    now: OffsetDateTime,
) -> Option<(AssignmentAction, Option<OffsetDateTime>, Option<OffsetDateTime>)> {
    Some(match state {
        DeploymentState::Running => match window.map(|w| window_state(w, now)) {
            None => (AssignmentAction::Install, None, None),
            Some(Ok(WindowState::Open { closes, next })) => (AssignmentAction::Install, Some(closes), next),
            Some(Ok(WindowState::Closed { next })) => (AssignmentAction::Wait, None, next),
            // Checked at creation; a zone the system no longer knows must not break check-ins:
            // wait (the safe side) and say why.
            Some(Err(e)) => {
                tracing::error!(deployment, error = %e, "maintenance window unusable; devices are told to wait");
                (AssignmentAction::Wait, None, None)
            }
        },
        DeploymentState::Paused => (AssignmentAction::Hold, None, None),
        DeploymentState::Aborted | DeploymentState::Unknown => return None,
    })
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
                max_failure_percent: threshold, waived_through: None, counts: &[counts],
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
    fn window_openings_and_closings() {
        let w = |cron: &str, secs, tz: &str| MaintenanceWindow {
            cron: cron.into(),
            duration_secs: secs,
            time_zone: tz.into(),
        };
        let nightly = w("0 2 * * *", 7200, "UTC");
        assert_eq!(
            window_state(&nightly, datetime!(2026-03-01 02:30 UTC)).unwrap(),
            WindowState::Open { closes: datetime!(2026-03-01 04:00 UTC), next: Some(datetime!(2026-03-02 02:00 UTC)) }
        );
        assert_eq!(
            window_state(&nightly, datetime!(2026-03-01 04:00 UTC)).unwrap(),
            WindowState::Closed { next: Some(datetime!(2026-03-02 02:00 UTC)) }
        );
        // Berlin's 02:00 is 01:00 UTC in winter; the clocks go forward on 2026-03-29 (02:00
        // does not exist that night) and back on 2026-10-25.
        let berlin = w("30 1 * * *", 3600, "Europe/Berlin");
        let next = |now| match window_state(&berlin, now).unwrap() {
            WindowState::Closed { next } => next.unwrap(),
            open => panic!("{open:?}"),
        };
        assert_eq!(next(datetime!(2026-03-28 12:00 UTC)), datetime!(2026-03-29 00:30 UTC));
        assert_eq!(next(datetime!(2026-03-29 12:00 UTC)), datetime!(2026-03-29 23:30 UTC));
        assert_eq!(next(datetime!(2026-10-24 12:00 UTC)), datetime!(2026-10-24 23:30 UTC));
        // Once a year; and a date that never comes.
        let yearly = w("0 0 1 6 *", 3600, "UTC");
        assert_eq!(next_of(&yearly, datetime!(2026-06-01 01:00 UTC)), Some(datetime!(2027-06-01 00:00 UTC)));
        assert_eq!(next_of(&w("0 0 31 2 *", 3600, "UTC"), datetime!(2026-06-01 01:00 UTC)), None, "never");
        // Every window is found the same way the check finds it.
        for hours in 0..200 {
            let now = datetime!(2026-03-27 00:00 UTC) + time::Duration::minutes(hours * 37);
            if let Some(n) = next_of(&berlin, now) {
                assert!(in_window(&berlin, n).unwrap() && !in_window(&berlin, n - time::Duration::minutes(1)).unwrap());
            }
        }
    }

    fn next_of(w: &MaintenanceWindow, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match window_state(w, now).unwrap() {
            WindowState::Open { next, .. } | WindowState::Closed { next } => next,
        }
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
        let mut counts = [WaveCounts { devices: 2, assigned: 2, attempted: 2, failed: 0, succeeded: 2 }];
        fn p(counts: &[WaveCounts], wave: u32, waived_through: Option<u32>) -> Progress<'_> {
            Progress {
                wave,
                waves: 3,
                opened: datetime!(2026-03-01 10:00 UTC),
                min_interval: time::Duration::hours(1),
                max_failure_percent: 20,
                waived_through,
                counts,
            }
        }
        assert_eq!(next_step(&p(&counts, 0, None), opened + time::Duration::minutes(59)), Step::Stay);
        assert_eq!(next_step(&p(&counts, 0, None), opened + time::Duration::hours(1)), Step::Open(1));
        counts[0].failed = 1;
        let late = opened + time::Duration::hours(5);
        assert_eq!(
            next_step(&p(&counts, 0, None), late),
            Step::Pause("wave 1 of 3: failure rate 1/2 is over 20%".to_owned())
        );
        assert_eq!(next_step(&p(&counts, 0, Some(0)), late), Step::Open(1), "the operator accepted wave 1");
        assert_eq!(next_step(&p(&counts, 2, Some(2)), late), Step::Stay, "the last wave stays open");
    }

    /// With no interval the next wave opens at once; a canary failing afterwards still pauses
    /// the deployment, unless the operator accepted it by resuming.
    #[test]
    fn an_earlier_waves_late_failure_pauses() {
        let opened = datetime!(2026-03-01 10:00 UTC);
        let canary_failed = WaveCounts { devices: 1, assigned: 1, attempted: 1, failed: 1, succeeded: 0 };
        let second = WaveCounts { devices: 9, assigned: 9, attempted: 3, failed: 0, succeeded: 3 };
        let counts = [canary_failed, second, WaveCounts::default()];
        let p = |waived_through| Progress {
            wave: 1,
            waves: 3,
            opened,
            min_interval: time::Duration::ZERO,
            max_failure_percent: 10,
            waived_through,
            counts: &counts[..2],
        };
        assert_eq!(next_step(&p(None), opened), Step::Pause("wave 1 of 3: failure rate 1/1 is over 10%".to_owned()));
        assert_eq!(next_step(&p(Some(0)), opened), Step::Open(2), "wave 1 accepted when the deployment resumed at it");
        assert_eq!(next_step(&p(Some(1)), opened), Step::Open(2));
        // Counts past the open wave are not looked at.
        let p2 = Progress { wave: 0, counts: &[WaveCounts::default(), canary_failed], ..p(None) };
        assert_eq!(next_step(&p2, opened), Step::Open(1));
    }
}
