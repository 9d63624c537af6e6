//! The device's side of the fleet protocol (`libupdate::fleet`, `update daemon`'s push
//! listener) against this server, over mutual TLS: events arrive in order and survive the
//! server being away, a check-in reports the device and returns the operator's check-now flag,
//! a push reaches a listening device within a bound, and a device without a certificate is
//! refused while its events stay queued.

use std::path::Path;
use std::time::{Duration, Instant};

use libupdate::fleet::{EventKind, Fleet, event};
use libupdate::{Logger, daemon};
use serde_json::Value;
use update_core::Paths;
use update_core::config::{Config, LogTarget, SourceUrl};
use update_core::driver::{SlotState, SlotStatus, Status};

use crate::util::{ADMIN_TOKEN, Options, TestServer};

/// A device root whose config points at `server`, with a certificate for `cn` when given.
fn device(srv: &TestServer, root: &Path, server: &str, cn: Option<&str>) -> (Paths, Config) {
    let etc = root.join("etc/update");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("server-ca.pem"), srv.ca.pem()).unwrap();
    let mut config = Config { server: Some(SourceUrl::new(server).unwrap()), ..Config::default() };
    config.tls.server_ca = Some("/etc/update/server-ca.pem".into());
    if let Some(cn) = cn {
        srv.device_ca.device(cn).write(&etc, "device");
        config.tls.client_cert = Some("/etc/update/device.crt".into());
        config.tls.client_key = Some("/etc/update/device.key".into());
    }
    config.log = LogTarget::new(&root.join("update.log").display().to_string()).unwrap();
    let paths = Paths::new(root);
    std::fs::create_dir_all(paths.state_dir()).unwrap();
    (paths, config)
}

fn status(version: &str, booted: &str) -> Status {
    let slot = |name: &str, state, version: Option<&str>| SlotStatus {
        name: name.into(),
        state,
        version: version.map(|v| libupdate::version(v).unwrap()),
        booted: name == booted,
        primary: name == booted,
        tries_left: None,
        devices: Vec::new(),
    };
    Status {
        driver: "native".into(),
        compatible: Some("demo-board".into()),
        version: Some(libupdate::version(version).unwrap()),
        booted: Some(booted.into()),
        primary: Some(booted.into()),
        slots: vec![slot("A", SlotState::Good, Some(version)), slot("B", SlotState::Unknown, None)],
        fallback: None,
        components: Vec::new(),
    }
}

async fn operator_get(srv: &TestServer, path: &str) -> Value {
    srv.operator_get(path).await
}

async fn kinds(srv: &TestServer, id: &str) -> Vec<String> {
    let events = operator_get(srv, &format!("/api/v1/devices/{id}/events")).await;
    events["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_with_the_device_id_from_the_certificate() {
    let srv = TestServer::start(Options::default()).await;
    let root = tempfile::tempdir().unwrap();
    let (paths, config) = device(&srv, root.path(), &srv.url(""), Some("device-0007"));
    let fleet = Fleet::from_config(&paths, &config).unwrap();
    let f = fleet.clone();
    blocking(move || {
        f.report(event(EventKind::Downloading, None, Some("downloading release-2.0.0.bundle".into()))).unwrap();
        f.report(event(EventKind::Installed, Some("2.0.0".into()), None)).unwrap();
        f.report(event(EventKind::Rebooted, Some("2.0.0".into()), None)).unwrap();
        f.report(event(EventKind::Committed, Some("2.0.0".into()), None)).unwrap();
    })
    .await;
    assert_eq!(kinds(&srv, "device-0007").await, ["downloading", "installed", "rebooted", "committed"]);
    let events = operator_get(&srv, "/api/v1/devices/device-0007/events").await;
    assert_eq!(events["events"][1]["version"], "2.0.0");
    assert_eq!(events["events"][0]["reason"], "downloading release-2.0.0.bundle");
    assert!(blocking(move || fleet.queued().unwrap()).await.is_empty(), "the outbox is empty once delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_in_the_outbox_while_the_server_is_away() {
    let srv = TestServer::start(Options::default()).await;
    let root = tempfile::tempdir().unwrap();
    // A port nobody listens on: the reports cannot be sent, and are not lost.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (paths, config) = device(&srv, root.path(), &format!("https://localhost:{closed}"), Some("device-0008"));
    let away = Fleet::from_config(&paths, &config).unwrap();
    let queued = blocking(move || {
        away.report(event(EventKind::Installed, Some("2.0.0".into()), None)).unwrap();
        away.report(event(EventKind::Failed, Some("2.0.0".into()), Some("health check 'app' failed".into()))).unwrap();
        assert!(away.flush().is_err(), "nobody listens");
        away.queued().unwrap()
    })
    .await;
    assert_eq!(queued.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(), [EventKind::Installed, EventKind::Failed]);
    // The server is back (here: the config names the running one): the outbox goes out in order.
    let back = Config { server: Some(SourceUrl::new(&srv.url("")).unwrap()), ..config };
    let fleet = Fleet::from_config(&paths, &back).unwrap();
    let sent = blocking(move || (fleet.flush().unwrap(), fleet.queued().unwrap())).await;
    assert_eq!(sent.0, 2);
    assert!(sent.1.is_empty());
    assert_eq!(kinds(&srv, "device-0008").await, ["installed", "failed"]);
}

/// The software that queued an event may be newer than the software sending it (a rollback
/// after the new version reported something): its kind is unknown here, yet it is kept in the
/// outbox, sent in order, stored by the server, and only then leaves the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_of_a_newer_kind_is_not_dropped_by_the_device() {
    let srv = TestServer::start(Options::default()).await;
    let root = tempfile::tempdir().unwrap();
    let (paths, config) = device(&srv, root.path(), &srv.url(""), Some("device-0011"));
    let outbox = paths.state_dir().join("outbox.jsonl");
    let newer =
        r#"{"kind":"flashed-firmware","version":"3.0.0","reason":"modem 7.2","time":"2026-03-01T10:00:00Z","wave":2}"#;
    std::fs::write(&outbox, format!("{newer}\n")).unwrap();
    let fleet = Fleet::from_config(&paths, &config).unwrap();
    let f = fleet.clone();
    let queued = blocking(move || f.queued().unwrap()).await;
    assert_eq!(queued.len(), 1, "kept");
    assert_eq!(queued[0].kind, EventKind::Unknown("flashed-firmware".into()));
    let f = fleet.clone();
    blocking(move || f.report(event(EventKind::RolledBack, Some("2.0.0".into()), Some("fell back".into()))).unwrap())
        .await;
    assert_eq!(kinds(&srv, "device-0011").await, ["flashed-firmware", "rolled-back"]);
    let events = operator_get(&srv, "/api/v1/devices/device-0011/events").await;
    assert_eq!(events["events"][0]["reason"], "modem 7.2");
    assert!(blocking(move || fleet.queued().unwrap()).await.is_empty(), "delivered, then removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkin_reports_the_device_and_returns_the_check_now_flag_once() {
    let srv = TestServer::start(Options::default()).await;
    let root = tempfile::tempdir().unwrap();
    let (paths, config) = device(&srv, root.path(), &srv.url(""), Some("device-0009"));
    let fleet = Fleet::from_config(&paths, &config).unwrap();
    let f = fleet.clone();
    let first = blocking(move || f.checkin(&status("1.0.0", "A")).unwrap()).await;
    assert_eq!(first.device_id.as_str(), "device-0009");
    assert!(!first.check_now);
    let d = operator_get(&srv, "/api/v1/devices/device-0009").await;
    assert_eq!(d["version"], "1.0.0");
    assert_eq!(d["booted"], "A");
    assert_eq!(d["slots"][0]["state"], "good");
    assert_eq!(d["slots"][1]["state"], "unknown");
    let r = srv
        .operator()
        .post(srv.url("/api/v1/devices/device-0009/check-now"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let (second, third) = blocking(move || {
        (fleet.checkin(&status("1.0.0", "A")).unwrap(), fleet.checkin(&status("1.0.0", "A")).unwrap())
    })
    .await;
    assert!(second.check_now, "the operator's request is returned");
    assert!(!third.check_now, "and cleared by the check-in that returned it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_reaches_a_listening_device_within_two_seconds() {
    let srv = TestServer::start(Options::default()).await;
    let root = tempfile::tempdir().unwrap();
    let (paths, config) = device(&srv, root.path(), &srv.url(""), Some("device-0010"));
    let fleet = Fleet::from_config(&paths, &config).unwrap();
    // As the daemon does: check in first, then listen.
    let f = fleet.clone();
    blocking(move || f.checkin(&status("1.0.0", "A")).unwrap()).await;
    let rx = daemon::listen_for_pushes(fleet.clone(), Logger::new(&paths, &config.log));
    // Wait until the stream is registered (the server counts it).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = srv.operator().get(srv.url("/api/v1/devices/device-0010")).bearer_auth(ADMIN_TOKEN).send().await;
        if let Ok(r) = r
            && r.status().is_success()
            && r.json::<Value>().await.unwrap()["push-streams"] == 1
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the device never opened its push stream; its log: {}",
            std::fs::read_to_string(root.path().join("update.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked = Instant::now();
    let r = srv
        .operator()
        .post(srv.url("/api/v1/devices/device-0010/check-now"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["pushed"], 1);
    let got = blocking(move || rx.recv_timeout(Duration::from_secs(2)).map(|()| rx)).await;
    let latency = asked.elapsed();
    assert!(got.is_ok(), "no check-now within 2 s");
    // The device reacts as the daemon does: it checks in, learns the flag, reports back.
    let answer = blocking(move || {
        let a = fleet.checkin(&status("1.0.0", "A")).unwrap();
        fleet.report(event(EventKind::Checking, None, Some("asked by the fleet server".into()))).unwrap();
        a
    })
    .await;
    assert!(answer.check_now);
    assert_eq!(kinds(&srv, "device-0010").await, ["checking"]);
    assert!(asked.elapsed() < Duration::from_secs(5), "reported back in {:?}", asked.elapsed());
    eprintln!("push latency {latency:?}, reported back after {:?}", asked.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_without_a_certificate_is_refused_and_keeps_its_events() {
    let srv = TestServer::start(Options::default()).await;
    let root = tempfile::tempdir().unwrap();
    let (paths, config) = device(&srv, root.path(), &srv.url(""), None);
    let fleet = Fleet::from_config(&paths, &config).unwrap();
    let (flushed, queued, checkin) = blocking(move || {
        fleet.report(event(EventKind::Installed, Some("2.0.0".into()), None)).unwrap();
        (fleet.flush(), fleet.queued().unwrap(), fleet.checkin(&status("1.0.0", "A")))
    })
    .await;
    assert!(flushed.is_err(), "the handshake is refused without a client certificate");
    assert_eq!(queued.len(), 1, "the event stays queued");
    let e = checkin.unwrap_err().to_string();
    assert!(e.contains("localhost"), "{e}");
    let inventory = operator_get(&srv, "/api/v1/devices").await;
    assert_eq!(inventory["devices"].as_array().unwrap().len(), 0, "nothing reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_reads_its_rollout_assignment_from_the_check_in_answer() {
    let srv = TestServer::start(Options::default()).await;
    let root = tempfile::tempdir().unwrap();
    let (paths, config) = device(&srv, root.path(), &srv.url(""), Some("device-0011"));
    let fleet = Fleet::from_config(&paths, &config).unwrap();
    let f = fleet.clone();
    let first = blocking(move || f.checkin(&status("1.0.0", "A")).unwrap()).await;
    assert_eq!(first.assignment, None);

    let operator = srv.operator();
    let post = |path: &str, body: Value| operator.post(srv.url(path)).bearer_auth(ADMIN_TOKEN).json(&body).send();
    let r = post("/api/v1/tags/lab/devices", serde_json::json!({"devices": ["device-0011"]})).await.unwrap();
    assert!(r.status().is_success());
    let r =
        post("/api/v1/releases", serde_json::json!({"target": "demo-2.0.0.bundle", "version": "2.0.0"})).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let plan = serde_json::json!({"release": 1, "tag": "lab", "waves": [{"percent": 100}],
                                  "min-wave-interval-secs": 0, "max-failure-percent": 0});
    let d: Value = post("/api/v1/deployments", plan).await.unwrap().json().await.unwrap();

    let f = fleet.clone();
    let answer = blocking(move || f.checkin(&status("1.0.0", "A")).unwrap()).await;
    let a = answer.assignment.expect("an assignment");
    assert_eq!((a.deployment, a.target.as_str(), a.version.as_str(), a.wave), (1, "demo-2.0.0.bundle", "2.0.0", 0));
    assert_eq!(a.action, libupdate::fleet::AssignmentAction::Install);
    assert_eq!(Some(a.allowed_from.as_str()), d["wave-opened"].as_str());
    a.validate().unwrap();
    srv.stop().await;
}
