//! The cases: each takes any [`Store`] and asserts what a handler relies on.

use time::macros::datetime;
use update_protocol::rollout::{AssignmentAction, DeploymentState, NewDeployment, NewRelease, Wave};
use update_protocol::window::MaintenanceWindow;
use update_protocol::{CheckedEvent, DeviceId, EventKind, Report, SlotReport, SlotState, Tag};
use update_server::audit::Actor;
use update_server::store::Store;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn tag(s: &str) -> Tag {
    Tag::parse(s).unwrap()
}

fn admin() -> Actor {
    Actor { name: "admin".into(), role: "admin" }
}

fn event(kind: EventKind, minute: u8) -> CheckedEvent {
    CheckedEvent {
        kind,
        version: Some("1.1.0".to_owned()),
        reason: None,
        time: datetime!(2026-03-01 10:00 UTC) + time::Duration::minutes(minute.into()),
        deployment: None,
    }
}

pub async fn events_keep_their_order_and_the_newest_is_the_last_event(store: &dyn Store) {
    let now = datetime!(2026-03-01 12:00 UTC);
    // An event before any check-in creates the device.
    let kinds = [EventKind::Checking, EventKind::Downloading, EventKind::Installed, EventKind::Rebooted];
    let mut seqs = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        seqs.push(store.append_event(&id("d1"), &event(k.clone(), u8::try_from(i).unwrap()), now).await.unwrap());
        store.append_event(&id("d2"), &event(EventKind::Failed, 0), now).await.unwrap();
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let events = store.events(&id("d1"), 0, 100).await.unwrap().unwrap();
    assert_eq!(events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(), kinds);
    assert_eq!(events[2].time, datetime!(2026-03-01 10:02 UTC));
    assert_eq!(events[2].received, now);
    let after = store.events(&id("d1"), seqs[1], 1).await.unwrap().unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].kind, EventKind::Installed);
    assert_eq!(store.events(&id("nobody"), 0, 100).await.unwrap(), None);

    let devices = store.devices().await.unwrap();
    assert_eq!(devices.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d1", "d2"]);
    assert_eq!(devices[0].last_event.as_ref().unwrap().kind, EventKind::Rebooted);
    assert_eq!(devices[0].last_checkin, None);
    assert_eq!(devices[0].first_seen, now);
    assert_eq!(devices[1].last_event.as_ref().unwrap().kind, EventKind::Failed);
}

pub async fn a_kind_newer_than_this_server_is_stored_and_read_back(store: &dyn Store) {
    let now = datetime!(2026-03-01 12:00 UTC);
    let newer = EventKind::from_name("flashed-firmware");
    store.append_event(&id("d1"), &event(newer.clone(), 0), now).await.unwrap();
    store.append_event(&id("d1"), &event(EventKind::Installed, 1), now).await.unwrap();
    let events = store.events(&id("d1"), 0, 100).await.unwrap().unwrap();
    assert_eq!(events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(), [newer, EventKind::Installed]);
}

pub async fn certificate_tags_follow_the_certificate_and_operator_tags_stay(store: &dyn Store) {
    let now = datetime!(2026-03-01 12:00 UTC);
    store.tag_devices(&tag("lab"), &[id("d1")], &admin(), now).await.unwrap();
    store.check_in(&id("d1"), &Report::default(), &[tag("site:a"), tag("field")], now).await.unwrap();
    assert_eq!(store.tag_members(&tag("site:a")).await.unwrap(), [(id("d1"), "certificate".to_owned())]);
    // A new certificate without `site:a`: that tag goes, the operator's stays.
    store.check_in(&id("d1"), &Report::default(), &[tag("field")], now).await.unwrap();
    assert!(store.tag_members(&tag("site:a")).await.unwrap().is_empty());
    assert_eq!(store.tag_members(&tag("field")).await.unwrap().len(), 1);
    assert_eq!(store.tag_members(&tag("lab")).await.unwrap(), [(id("d1"), "operator".to_owned())]);
    // A certificate that names the operator's tag does not take it over.
    store.check_in(&id("d1"), &Report::default(), &[tag("lab")], now).await.unwrap();
    assert_eq!(store.tag_members(&tag("lab")).await.unwrap(), [(id("d1"), "operator".to_owned())]);
    assert!(store.untag_device(&tag("lab"), &id("d1"), &admin(), now).await.unwrap());
    assert!(!store.untag_device(&tag("lab"), &id("d1"), &admin(), now).await.unwrap());
}

pub async fn the_check_now_flag_is_taken_by_one_check_in(store: &dyn Store) {
    let now = datetime!(2026-03-01 12:00 UTC);
    assert!(!store.request_check(&id("d1"), &admin(), now).await.unwrap(), "unknown device");
    assert!(!store.check_in(&id("d1"), &Report::default(), &[], now).await.unwrap().check_now);
    assert!(store.request_check(&id("d1"), &admin(), now).await.unwrap());
    assert!(store.device(&id("d1")).await.unwrap().unwrap().check_now_pending);
    assert!(store.check_in(&id("d1"), &Report::default(), &[], now).await.unwrap().check_now);
    assert!(!store.check_in(&id("d1"), &Report::default(), &[], now).await.unwrap().check_now);
}

pub async fn a_check_in_report_reads_back_as_written(store: &dyn Store) {
    let report = Report {
        compatible: Some("demo".into()),
        version: Some("1.0.0".into()),
        booted: Some("A".into()),
        primary: Some("A".into()),
        slots: vec![
            SlotReport { name: "A".into(), state: SlotState::Good, version: Some("1.0.0".into()) },
            SlotReport { name: "B".into(), state: SlotState::Bad, version: None },
        ],
    };
    store.check_in(&id("d1"), &report, &[], datetime!(2026-03-01 09:00 UTC)).await.unwrap();
    store.check_in(&id("d1"), &report, &[], datetime!(2026-03-01 09:05 UTC)).await.unwrap();
    let d = store.device(&id("d1")).await.unwrap().unwrap();
    assert_eq!(d.report, report);
    assert_eq!(d.first_seen, datetime!(2026-03-01 09:00 UTC));
    assert_eq!(d.last_checkin, Some(datetime!(2026-03-01 09:05 UTC)));
    assert!(store.device(&id("d2")).await.unwrap().is_none());
}

/// Ten devices, a canary wave of 2 then everything: one canary fails, the deployment pauses
/// before the second wave; resume, abort; every step is in a chain that verifies.
pub async fn a_failing_canary_pauses_the_deployment_and_the_audit_chain_holds(store: &dyn Store) {
    let t0 = datetime!(2026-03-01 12:00 UTC);
    let devices: Vec<DeviceId> = (0..10).map(|i| id(&format!("dev-{i:02}"))).collect();
    for d in &devices {
        store.check_in(d, &Report::default(), &[], t0).await.unwrap();
    }
    store.tag_devices(&tag("fleet"), &devices, &admin(), t0).await.unwrap();
    let release = NewRelease { target: "demo-1.1.0.bundle".into(), version: "1.1.0".into() };
    let r = store.create_release(&release, &admin(), t0).await.unwrap();
    assert!(matches!(
        store.create_release(&release, &admin(), t0).await,
        Err(update_server::store::StoreError::Conflict(_))
    ));
    let plan = NewDeployment {
        release: r.id,
        tag: tag("fleet"),
        waves: vec![Wave::Devices(2), Wave::Percent(100)],
        min_wave_interval_secs: 60,
        max_failure_percent: 0,
        maintenance_window: None,
        rollback_on_abort: false,
    };
    let dep = store.create_deployment(&plan, &admin(), t0).await.unwrap();
    assert_eq!(dep.waves.iter().map(|w| w.devices).collect::<Vec<_>>(), [2, 8]);
    let t1 = t0 + time::Duration::seconds(10);
    let mut canaries = Vec::new();
    for d in &devices {
        let a = store.check_in(d, &Report::default(), &[], t1).await.unwrap().assignment;
        if let Some(a) = a {
            assert_eq!(a.action, AssignmentAction::Install);
            assert_eq!(a.allowed_from, "2026-03-01T12:00:00Z");
            canaries.push(d.clone());
        }
    }
    assert_eq!(canaries.len(), 2);
    store.append_event(&canaries[0], &event(EventKind::Downloading, 0), t1).await.unwrap();
    store.append_event(&canaries[0], &event(EventKind::Failed, 1), t1).await.unwrap();
    let d = store.deployment(dep.id).await.unwrap().unwrap();
    assert_eq!(d.state, DeploymentState::Paused);
    assert_eq!((d.waves[0].assigned, d.waves[0].attempted, d.waves[0].failed), (2, 1, 1));
    // Paused: the second wave stays closed however long it waits; the canaries hold.
    let later = t0 + time::Duration::hours(1);
    let a = store.check_in(&canaries[1], &Report::default(), &[], later).await.unwrap().assignment.unwrap();
    assert_eq!(a.action, AssignmentAction::Hold);
    let d = store.control_deployment(dep.id, update_server::store::Control::Resume, &admin(), later).await.unwrap();
    assert_eq!(d.state, DeploymentState::Running);
    assert!(store.control_deployment(dep.id, update_server::store::Control::Resume, &admin(), later).await.is_err());
    let d = store.control_deployment(dep.id, update_server::store::Control::Abort, &admin(), later).await.unwrap();
    assert_eq!(d.state, DeploymentState::Aborted);
    assert_eq!(store.deployments().await.unwrap().len(), 1);

    let log = store.audit_log(0, 1000).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "tag-devices",
            "create-release",
            "create-deployment",
            "pause-deployment",
            "resume-deployment",
            "abort-deployment"
        ]
    );
    let (entries, _) = update_server::audit::verify(&log).unwrap();
    assert_eq!(entries, 6);
}

/// A device in two deployments: its events count for the one they name, not the newest; a
/// maintenance window gives the device the instants it closes and next opens.
pub async fn events_count_for_the_deployment_they_name_and_windows_give_instants(store: &dyn Store) {
    let t0 = datetime!(2026-03-02 09:30 UTC); // a Monday
    let dev = id("dev-1");
    store.check_in(&dev, &Report::default(), &[], t0).await.unwrap();
    store.tag_devices(&tag("a"), std::slice::from_ref(&dev), &admin(), t0).await.unwrap();
    store.tag_devices(&tag("b"), std::slice::from_ref(&dev), &admin(), t0).await.unwrap();
    let mut ids = Vec::new();
    for (version, t, window) in [
        ("1.1.0", "a", None),
        (
            "1.2.0",
            "b",
            Some(MaintenanceWindow { cron: "0 10 * * *".into(), duration_secs: 3600, time_zone: "UTC".into() }),
        ),
    ] {
        let release = NewRelease { target: format!("demo-{version}.bundle"), version: version.into() };
        let r = store.create_release(&release, &admin(), t0).await.unwrap();
        let plan = NewDeployment {
            release: r.id,
            tag: tag(t),
            waves: vec![Wave::Percent(100)],
            min_wave_interval_secs: 60,
            max_failure_percent: 0,
            maintenance_window: window,
            rollback_on_abort: false,
        };
        ids.push(store.create_deployment(&plan, &admin(), t0).await.unwrap().id);
    }
    // The newest deployment answers; before its window: wait, with the next opening.
    let a = store.check_in(&dev, &Report::default(), &[], t0).await.unwrap().assignment.unwrap();
    assert_eq!((a.deployment, a.action), (ids[1], AssignmentAction::Wait));
    assert_eq!((a.window_closes.as_deref(), a.window_opens.as_deref()), (None, Some("2026-03-02T10:00:00Z")));
    // Inside it: install, with when it closes and when the next one opens.
    let t1 = datetime!(2026-03-02 10:15 UTC);
    let a = store.check_in(&dev, &Report::default(), &[], t1).await.unwrap().assignment.unwrap();
    assert_eq!(a.action, AssignmentAction::Install);
    assert_eq!(a.window_closes.as_deref(), Some("2026-03-02T11:00:00Z"));
    assert_eq!(a.window_opens.as_deref(), Some("2026-03-03T10:00:00Z"));
    // An event naming the older deployment (told to install through an earlier store, say)
    // is not counted for the newer one; one naming the newer one is, and pauses it.
    let mut e = event(EventKind::Failed, 0);
    e.deployment = Some(ids[0]);
    store.append_event(&dev, &e, t1).await.unwrap();
    let newer = store.deployment(ids[1]).await.unwrap().unwrap();
    assert_eq!((newer.state, newer.waves[0].attempted, newer.waves[0].failed), (DeploymentState::Running, 0, 0));
    e.deployment = Some(ids[1]);
    store.append_event(&dev, &e, t1).await.unwrap();
    let newer = store.deployment(ids[1]).await.unwrap().unwrap();
    assert_eq!((newer.state, newer.waves[0].attempted, newer.waves[0].failed), (DeploymentState::Paused, 1, 1));
}

/// A device's free-text reason with NUL and escape sequences, as the API checks it, is stored
/// and read back (escaped) by every backend: PostgreSQL refuses a raw NUL in text.
pub async fn a_reason_with_control_characters_is_stored_escaped(store: &dyn Store) {
    let wire = update_protocol::Event {
        kind: EventKind::Failed,
        version: Some("1.1.0".into()),
        reason: Some("swupdate: \u{1b}[31mERROR\u{1b}[0m\0\nline 2".into()),
        time: "2026-03-01T10:00:00Z".into(),
        deployment: None,
    };
    let checked = wire.check().unwrap();
    store.append_event(&id("d1"), &checked, datetime!(2026-03-01 10:00 UTC)).await.unwrap();
    let events = store.events(&id("d1"), 0, 10).await.unwrap().unwrap();
    assert_eq!(events[0].reason.as_deref(), Some("swupdate: \\u{1b}[31mERROR\\u{1b}[0m\\u{0}\nline 2"));
}

/// Retention: by count, each device keeps its newest events; by age, events received before
/// the cut go; a prune since a `seq` only looks at devices with newer events.
pub async fn retention_keeps_the_newest_events_per_device_and_drops_old_ones(store: &dyn Store) {
    use update_server::store::EventRetention;
    let day = |d: u8| datetime!(2026-03-01 10:00 UTC) + time::Duration::days(d.into());
    for i in 0..8u8 {
        store.append_event(&id("d1"), &event(EventKind::Checking, i), day(i)).await.unwrap();
    }
    for i in 0..3u8 {
        store.append_event(&id("d2"), &event(EventKind::Checking, i), day(i)).await.unwrap();
    }
    let by_count = EventRetention { max_age: None, per_device: Some(5) };
    let p = store.prune_events(&by_count, 0, day(8)).await.unwrap();
    assert_eq!(p.deleted, 3);
    let d1 = store.events(&id("d1"), 0, 100).await.unwrap().unwrap();
    assert_eq!(d1.iter().map(|e| e.received).collect::<Vec<_>>(), (3..8).map(day).collect::<Vec<_>>());
    assert_eq!(store.events(&id("d2"), 0, 100).await.unwrap().unwrap().len(), 3);
    // Nothing new since: nothing to look at.
    assert_eq!(store.prune_events(&by_count, p.newest_seq, day(8)).await.unwrap().deleted, 0);
    let by_age = EventRetention { max_age: Some(time::Duration::days(4)), per_device: None };
    let p2 = store.prune_events(&by_age, p.newest_seq, day(8)).await.unwrap();
    assert_eq!(p2.deleted, 1 + 3, "d1's day 3, d2's days 0-2");
    assert_eq!(store.events(&id("d1"), 0, 100).await.unwrap().unwrap().len(), 4);
    assert_eq!(store.events(&id("d2"), 0, 100).await.unwrap().unwrap().len(), 0);
    assert_eq!(store.device(&id("d1")).await.unwrap().unwrap().last_event.unwrap().received, day(7));
}

/// Pages: devices by id, releases by id, tag members by id, deployments newest first.
pub async fn lists_read_in_pages(store: &dyn Store) {
    let now = datetime!(2026-03-01 10:00 UTC);
    let ids: Vec<DeviceId> = (1..=5).map(|i| id(&format!("dev-{i}"))).collect();
    for d in ids.iter().rev() {
        store.check_in(d, &Report::default(), &[], now).await.unwrap();
    }
    let first = store.devices_page(None, 2).await.unwrap();
    assert_eq!(first.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["dev-1", "dev-2"]);
    let rest = store.devices_page(Some(&first[1].id), 10).await.unwrap();
    assert_eq!(rest.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["dev-3", "dev-4", "dev-5"]);
    store.tag_devices(&tag("lab"), &ids, &admin(), now).await.unwrap();
    let members = store.tag_members_page(&tag("lab"), Some(&ids[2]), 10).await.unwrap();
    assert_eq!(members.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(), ["dev-4", "dev-5"]);
    for v in ["1", "2", "3"] {
        let r = NewRelease { target: format!("demo-{v}.bundle"), version: v.into() };
        store.create_release(&r, &admin(), now).await.unwrap();
    }
    let releases = store.releases_page(1, 1).await.unwrap();
    assert_eq!(releases.iter().map(|r| r.id).collect::<Vec<_>>(), [2]);
    for release in [1, 2, 3] {
        let plan = NewDeployment {
            release,
            tag: tag("lab"),
            waves: vec![Wave::Percent(100)],
            min_wave_interval_secs: 0,
            max_failure_percent: 50,
            maintenance_window: None,
            rollback_on_abort: false,
        };
        store.create_deployment(&plan, &admin(), now).await.unwrap();
    }
    let newest = store.deployments_page(None, 2).await.unwrap();
    assert_eq!(newest.iter().map(|d| d.id).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(newest[0].waves[0].devices, 5);
    let older = store.deployments_page(Some(2), 2).await.unwrap();
    assert_eq!(older.iter().map(|d| d.id).collect::<Vec<_>>(), [1]);
}

pub async fn ddi_actions_follow_the_deployment_and_target_tokens_are_replaced(store: &dyn Store) {
    use update_server::store::{ActionOutcome, CancelAnswer, Control, DeviceAction, StoreError};
    let now = datetime!(2026-03-01 12:00 UTC);
    let device = id("ddi-01");

    // Target tokens: only digests, a new one replaces the old, a malformed one changes nothing.
    assert_eq!(store.target_token(&device).await.unwrap(), None);
    let (first, second) = ("ab".repeat(32), "0c".repeat(32));
    store.set_target_token(&device, &first, &admin(), now).await.unwrap();
    assert_eq!(store.target_token(&device).await.unwrap(), Some(first.clone()));
    store.set_target_token(&device, &second, &admin(), now).await.unwrap();
    for bad in ["AB".repeat(32), "ab".repeat(31), format!("{}zz", "ab".repeat(31)), String::new()] {
        assert!(matches!(store.set_target_token(&device, &bad, &admin(), now).await, Err(StoreError::Conflict(_))));
    }
    assert_eq!(store.target_token(&device).await.unwrap(), Some(second.clone()));
    assert_eq!(store.target_token(&id("ddi-02")).await.unwrap(), None);
    let audit = store.audit_log(0, 100).await.unwrap();
    let rows: Vec<_> = audit.iter().filter(|e| e.action == "set-target-token").collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|e| e.subject == "device/ddi-01"));
    assert!(!format!("{audit:?}").contains(&second) && !format!("{audit:?}").contains(&first), "no digest in the log");

    // The device's part in a deployment: told at its check-in, closed by a failure, and still
    // readable once the deployment is aborted.
    store.tag_devices(&tag("ddi"), std::slice::from_ref(&device), &admin(), now).await.unwrap();
    let release = NewRelease { target: "demo-1.0.1.swu".into(), version: "1.0.1".into() };
    let r = store.create_release(&release, &admin(), now).await.unwrap();
    let plan = NewDeployment {
        release: r.id,
        tag: tag("ddi"),
        waves: vec![Wave::Percent(100)],
        min_wave_interval_secs: 0,
        max_failure_percent: 50,
        maintenance_window: None,
        rollback_on_abort: false,
    };
    let dep = store.create_deployment(&plan, &admin(), now).await.unwrap();
    assert_eq!(store.device_action(dep.id, &id("ddi-02")).await.unwrap(), None, "not in the deployment");
    assert_eq!(store.device_action(dep.id + 100, &device).await.unwrap(), None, "no such deployment");
    let untold = DeviceAction { told: false, outcome: None, cancel_answer: None, state: DeploymentState::Running };
    assert_eq!(store.device_action(dep.id, &device).await.unwrap(), Some(untold));
    let answer = store.check_in(&device, &Report::default(), &[], now).await.unwrap();
    assert_eq!(answer.assignment.unwrap().action, AssignmentAction::Install);
    let told = DeviceAction { told: true, ..untold };
    assert_eq!(store.device_action(dep.id, &device).await.unwrap(), Some(told));
    let failed = CheckedEvent { deployment: Some(dep.id), ..event(EventKind::Failed, 1) };
    store.append_event(&device, &failed, now).await.unwrap();
    let closed = DeviceAction {
        told: true,
        outcome: Some(ActionOutcome::Failed),
        cancel_answer: None,
        state: DeploymentState::Paused,
    };
    assert_eq!(store.device_action(dep.id, &device).await.unwrap(), Some(closed), "1 of 1 failed is over 50%");
    // A later success does not reopen a failure.
    let committed = CheckedEvent { deployment: Some(dep.id), ..event(EventKind::Committed, 2) };
    store.append_event(&device, &committed, now).await.unwrap();
    assert_eq!(store.device_action(dep.id, &device).await.unwrap().unwrap().outcome, Some(ActionOutcome::Failed));
    store.control_deployment(dep.id, Control::Abort, &admin(), now).await.unwrap();
    let aborted = store.device_action(dep.id, &device).await.unwrap().unwrap();
    assert_eq!(aborted.state, DeploymentState::Aborted);
    assert_eq!(store.pending_cancel(&device).await.unwrap(), None, "an action that ended has nothing to cancel");

    // Cancel: devices told to install an aborted release answer its cancel once; one that was
    // never told has nothing to answer.
    let (stops, goes_on, untold) = (id("ddi-03"), id("ddi-04"), id("ddi-05"));
    let members = [stops.clone(), goes_on.clone(), untold.clone()];
    store.tag_devices(&tag("ddi-cancel"), &members, &admin(), now).await.unwrap();
    let release = NewRelease { target: "demo-1.0.2.swu".into(), version: "1.0.2".into() };
    let r = store.create_release(&release, &admin(), now).await.unwrap();
    let dep = store
        .create_deployment(&NewDeployment { release: r.id, tag: tag("ddi-cancel"), ..plan }, &admin(), now)
        .await
        .unwrap();
    for d in [&stops, &goes_on] {
        store.check_in(d, &Report::default(), &[], now).await.unwrap();
        assert_eq!(store.pending_cancel(d).await.unwrap(), None, "running: nothing to cancel");
    }
    store.control_deployment(dep.id, Control::Abort, &admin(), now).await.unwrap();
    assert_eq!(store.pending_cancel(&stops).await.unwrap(), Some(dep.id));
    assert_eq!(store.pending_cancel(&goes_on).await.unwrap(), Some(dep.id));
    assert_eq!(store.pending_cancel(&untold).await.unwrap(), None, "never told");
    let step = CheckedEvent { deployment: Some(dep.id), ..event(EventKind::from_name("canceling"), 3) };
    let canceled = CheckedEvent { deployment: Some(dep.id), ..event(EventKind::from_name("canceled"), 4) };
    let rejected = CheckedEvent { deployment: Some(dep.id), ..event(EventKind::from_name("cancel-rejected"), 5) };
    let events_before = store.events(&stops, 0, 100).await.unwrap().unwrap_or_default().len();
    let answer = |d: &DeviceId, dep: i64, a: Option<CancelAnswer>, e: &CheckedEvent| {
        let (d, e) = (d.clone(), e.clone());
        async move { store.answer_cancel(dep, &d, a, &e, now).await.unwrap() }
    };
    assert_eq!(answer(&stops, dep.id + 1, Some(CancelAnswer::Canceled), &canceled).await, None, "another deployment");
    assert_eq!(answer(&untold, dep.id, Some(CancelAnswer::Canceled), &canceled).await, None, "never told");
    assert!(answer(&stops, dep.id, None, &step).await.is_some(), "a step before the answer");
    assert_eq!(store.pending_cancel(&stops).await.unwrap(), Some(dep.id), "still to answer");
    assert!(answer(&stops, dep.id, Some(CancelAnswer::Canceled), &canceled).await.is_some());
    assert!(answer(&goes_on, dep.id, Some(CancelAnswer::Rejected), &rejected).await.is_some());
    for d in [&stops, &goes_on] {
        assert_eq!(store.pending_cancel(d).await.unwrap(), None, "answered");
        assert_eq!(answer(d, dep.id, Some(CancelAnswer::Canceled), &canceled).await, None, "once only");
    }
    let action = |d: DeviceId| async move { store.device_action(dep.id, &d).await.unwrap().unwrap() };
    assert_eq!(action(stops.clone()).await.cancel_answer, Some(CancelAnswer::Canceled));
    assert_eq!(action(goes_on.clone()).await.cancel_answer, Some(CancelAnswer::Rejected));
    assert_eq!(action(untold.clone()).await.cancel_answer, None);
    let kinds: Vec<String> = store.events(&stops, 0, 100).await.unwrap().unwrap()[events_before..]
        .iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect();
    assert_eq!(kinds, ["canceling", "canceled"], "the refused answers stored nothing");
}

/// The dashboard's counts, made by the database: devices by version (unreported first), those
/// checked in since a time (the boundary counts), those whose last event is a failure.
pub async fn the_fleet_is_counted_by_version(store: &dyn Store) {
    use update_server::store::VersionSummary;
    let at = |minute: i64| datetime!(2026-03-01 10:00 UTC) + time::Duration::minutes(minute);
    let report = |v: &str| Report { version: Some(v.into()), ..Report::default() };
    store.check_in(&id("a1"), &report("1.0.0"), &[], at(0)).await.unwrap();
    store.check_in(&id("a2"), &report("1.0.0"), &[], at(30)).await.unwrap();
    store.check_in(&id("b1"), &report("2.0.0"), &[], at(20)).await.unwrap();
    store.check_in(&id("b2"), &report("2.0.0"), &[], at(25)).await.unwrap();
    store.append_event(&id("b1"), &event(EventKind::Failed, 0), at(21)).await.unwrap();
    store.append_event(&id("b2"), &event(EventKind::RolledBack, 0), at(26)).await.unwrap();
    store.append_event(&id("b2"), &event(EventKind::Committed, 1), at(27)).await.unwrap();
    // An event before any check-in: a device with no version.
    store.append_event(&id("c1"), &event(EventKind::RolledBack, 0), at(28)).await.unwrap();
    let summary = |version: Option<&str>, devices, online, failing| VersionSummary {
        version: version.map(str::to_owned),
        devices,
        online,
        failing,
    };
    assert_eq!(
        store.version_summary(at(20)).await.unwrap(),
        [summary(None, 1, 0, 1), summary(Some("1.0.0"), 2, 1, 0), summary(Some("2.0.0"), 2, 2, 1)]
    );
    assert_eq!(store.version_summary(at(31)).await.unwrap()[1], summary(Some("1.0.0"), 2, 0, 0));
}

/// A device's attributes (hawkBit configData): merged, replaced, removed; never more than the
/// limit, and a change that would pass it changes nothing.
pub async fn attributes_merge_replace_and_remove_within_the_limit(store: &dyn Store) {
    use update_server::store::{AttributeMode, MAX_ATTRIBUTES, StoreError};
    let now = datetime!(2026-03-01 10:00 UTC);
    let device = id("attr-01");
    let pairs = |p: &[(&str, &str)]| p.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
    assert!(store.attributes(&device).await.unwrap().is_empty());
    let held = store
        .set_attributes(&device, AttributeMode::Merge, &pairs(&[("serialNo", "1"), ("hwRevision", "1.0")]), now)
        .await
        .unwrap();
    assert_eq!(held, 2);
    assert!(store.device(&device).await.unwrap().is_some(), "first contact creates the device");
    store
        .set_attributes(&device, AttributeMode::Merge, &pairs(&[("hwRevision", "1.1"), ("site", "B")]), now)
        .await
        .unwrap();
    assert_eq!(
        store.attributes(&device).await.unwrap(),
        pairs(&[("hwRevision", "1.1"), ("serialNo", "1"), ("site", "B")])
    );
    store.set_attributes(&device, AttributeMode::Remove, &pairs(&[("site", ""), ("absent", "")]), now).await.unwrap();
    assert_eq!(store.attributes(&device).await.unwrap(), pairs(&[("hwRevision", "1.1"), ("serialNo", "1")]));
    store.set_attributes(&device, AttributeMode::Replace, &pairs(&[("mac", "02:00:00:00:00:01")]), now).await.unwrap();
    assert_eq!(store.attributes(&device).await.unwrap(), pairs(&[("mac", "02:00:00:00:00:01")]));
    assert!(store.attributes(&id("attr-02")).await.unwrap().is_empty(), "another device's are its own");

    // The limit: a full set, then one more merged in is refused and nothing changes.
    let full: Vec<(String, String)> = (0..MAX_ATTRIBUTES).map(|i| (format!("a{i:03}"), i.to_string())).collect();
    assert_eq!(store.set_attributes(&device, AttributeMode::Replace, &full, now).await.unwrap(), MAX_ATTRIBUTES);
    let more = pairs(&[("a000", "changed"), ("one-too-many", "x")]);
    assert!(matches!(
        store.set_attributes(&device, AttributeMode::Merge, &more, now).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.attributes(&device).await.unwrap(), full, "the refused merge changed nothing");
}

/// `rollback-on-abort`: once aborted, the devices the deployment told to install are told to
/// roll back (those it never told, nothing); a deployment without it tells nobody; a newer
/// deployment that speaks to the device comes first.
pub async fn an_aborted_deployment_with_rollback_tells_the_devices_it_told(store: &dyn Store) {
    use update_server::store::Control;
    let t0 = datetime!(2026-03-01 12:00 UTC);
    let devices: Vec<DeviceId> = (1..=4).map(|i| id(&format!("rb-{i}"))).collect();
    store.tag_devices(&tag("rb"), &devices, &admin(), t0).await.unwrap();
    let deploy = |target: &str, rollback_on_abort: bool| {
        let target = target.to_owned();
        async move {
            let release = NewRelease { version: target.trim_start_matches("demo-").to_owned(), target };
            let r = store.create_release(&release, &admin(), t0).await.unwrap();
            let plan = NewDeployment {
                release: r.id,
                tag: tag("rb"),
                waves: vec![Wave::Devices(2), Wave::Percent(100)],
                min_wave_interval_secs: 3600,
                max_failure_percent: 50,
                maintenance_window: None,
                rollback_on_abort,
            };
            store.create_deployment(&plan, &admin(), t0).await.unwrap()
        }
    };
    let assignment =
        |d: DeviceId| async move { store.check_in(&d, &Report::default(), &[], t0).await.unwrap().assignment };
    let dep = deploy("demo-2.0.0", true).await;
    assert!(dep.rollback_on_abort);
    let mut told = Vec::new();
    for d in &devices {
        if assignment(d.clone()).await.is_some_and(|a| a.action == AssignmentAction::Install) {
            told.push(d.clone());
        }
    }
    assert_eq!(told.len(), 2, "the first wave");
    store.control_deployment(dep.id, Control::Abort, &admin(), t0).await.unwrap();
    for d in &devices {
        let a = assignment(d.clone()).await;
        if told.contains(d) {
            let a = a.unwrap();
            assert_eq!((a.action, a.deployment, a.version.as_str()), (AssignmentAction::Rollback, dep.id, "2.0.0"));
        } else {
            assert_eq!(a, None, "{d} was never told to install");
        }
    }
    // A newer deployment that opens for the device comes first; one without the option, once
    // aborted, tells nobody anything.
    let newer = deploy("demo-2.0.1", false).await;
    let first = newer.waves[0].devices;
    assert_eq!(first, 2);
    let mut installing = 0;
    for d in &devices {
        match assignment(d.clone()).await {
            Some(a) if a.deployment == newer.id => {
                assert_eq!(a.action, AssignmentAction::Install);
                installing += 1;
            }
            // Not in the newer one's open wave: the aborted release still goes.
            Some(a) => assert!(a.deployment == dep.id && a.action == AssignmentAction::Rollback && told.contains(d)),
            None => assert!(!told.contains(d), "{d}"),
        }
    }
    assert_eq!(installing, 2, "the newer deployment's first wave; the others wait for its next wave");
    store.control_deployment(newer.id, Control::Abort, &admin(), t0).await.unwrap();
    for d in &devices {
        let a = assignment(d.clone()).await;
        assert!(a.as_ref().is_none_or(|a| a.deployment == dep.id), "{d}: {a:?}");
    }
}
