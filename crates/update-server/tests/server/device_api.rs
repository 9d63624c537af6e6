//! The device API: check-in and events, with the device identified by its certificate (or, in
//! test mode, by the id it claims); bad requests get the JSON error shape.

use reqwest::StatusCode;
use serde_json::{Value, json};
use update_protocol::push::CHECK_NOW;
use update_protocol::{DeviceId, EventKind};

use crate::util::{Options, TestServer, Transport};

fn check_in_body() -> Value {
    json!({
        "compatible": "demo-board",
        "version": "1.0.0",
        "booted": "A",
        "primary": "A",
        "slots": [
            {"name": "A", "state": "good", "version": "1.0.0"},
            {"name": "B", "state": "unknown", "version": null}
        ]
    })
}

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

#[tokio::test]
async fn check_in_identifies_the_device_by_its_certificate() {
    let server = TestServer::start(Options::default()).await;
    let client = server.client(Some(&server.device_ca.device("device-0001")));
    let r = client.post(server.url("/api/v1/device/checkin")).json(&check_in_body()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"device-id": "device-0001", (CHECK_NOW): false}));

    let stored = server.state.store.device(&id("device-0001")).await.unwrap().unwrap();
    assert_eq!(stored.report.compatible.as_deref(), Some("demo-board"));
    assert_eq!(stored.report.slots.len(), 2);
    assert!(stored.last_checkin.is_some());

    // The same id in the body is fine; another one is refused.
    let mut body = check_in_body();
    body["device-id"] = json!("device-0001");
    let r = client.post(server.url("/api/v1/device/checkin")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    body["device-id"] = json!("device-0002");
    let r = client.post(server.url("/api/v1/device/checkin")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "forbidden");
    assert!(server.state.store.device(&id("device-0002")).await.unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_certificate_whose_cn_is_not_a_device_id_is_refused() {
    let server = TestServer::start(Options::default()).await;
    let client = server.client(Some(&server.device_ca.device("device 0001/../x")));
    let r = client.post(server.url("/api/v1/device/checkin")).json(&check_in_body()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test]
async fn events_are_stored_in_order() {
    let server = TestServer::start(Options::default()).await;
    let client = server.client(Some(&server.device_ca.device("device-0001")));
    let other = server.client(Some(&server.device_ca.device("device-0002")));
    let kinds = ["checking", "downloading", "installed", "rebooted", "rolled-back", "failed"];
    for (i, kind) in kinds.iter().enumerate() {
        let event = json!({
            "kind": kind,
            "version": "1.1.0",
            "reason": (*kind == "failed").then_some("health check 'app answers' failed"),
            "time": format!("2026-03-01T10:00:0{i}Z"),
        });
        let r = client.post(server.url("/api/v1/device/events")).json(&event).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{kind}");
        assert!(r.bytes().await.unwrap().is_empty());
        let r = other
            .post(server.url("/api/v1/device/events"))
            .json(&json!({"kind": "checking", "time": "2026-03-01T10:00:00+02:00"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let events = server.state.store.events(&id("device-0001"), 0, 100).await.unwrap().unwrap();
    assert_eq!(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), kinds);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(events[5].kind, EventKind::Failed);
    assert_eq!(events[5].reason.as_deref(), Some("health check 'app answers' failed"));
    let other_events = server.state.store.events(&id("device-0002"), 0, 100).await.unwrap().unwrap();
    assert_eq!(other_events.len(), kinds.len());
    assert_eq!(other_events[0].time.unix_timestamp(), 1_772_352_000);
    server.stop().await;
}

/// A newer device's event kind reaches an older server: stored, and listed back by the
/// operator API exactly as sent (it used to be refused with 422, and the device then dropped it).
#[tokio::test]
async fn a_kind_newer_than_this_server_is_stored_and_listed_back() {
    let server = TestServer::start(Options::default()).await;
    let client = server.client(Some(&server.device_ca.device("device-0001")));
    let newer = ["flashed-firmware", "rollout-paused-v2"];
    for (i, kind) in newer.iter().chain(&["installed"]).enumerate() {
        let event = json!({"kind": kind, "version": "2.0.0", "time": format!("2026-03-01T10:00:0{i}Z"), "wave": 3});
        let r = client.post(server.url("/api/v1/device/events")).json(&event).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{kind}");
    }
    let listed = server.operator_get("/api/v1/devices/device-0001/events").await;
    let kinds: Vec<&str> = listed["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["flashed-firmware", "rollout-paused-v2", "installed"]);
    let stored = server.state.store.events(&id("device-0001"), 0, 100).await.unwrap().unwrap();
    assert_eq!(stored[0].kind, EventKind::Unknown("flashed-firmware".to_owned()));
    assert_eq!(stored[2].kind, EventKind::Installed);
    server.stop().await;
}

#[tokio::test]
async fn without_mutual_tls_devices_are_refused() {
    let server = TestServer::start(Options { transport: Transport::Tls, ..Options::default() }).await;
    let client = server.client(None);
    let mut body = check_in_body();
    body["device-id"] = json!("device-0001");
    let r = client.post(server.url("/api/v1/device/checkin")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "device-identity-required");
    server.stop().await;
}

#[tokio::test]
async fn insecure_device_ids_come_from_the_request() {
    let options = Options { transport: Transport::Plain, insecure_device_ids: true, ..Options::default() };
    let server = TestServer::start(options).await;
    let client = server.client(None);
    let r = client.post(server.url("/api/v1/device/checkin")).json(&check_in_body()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "no device-id");
    let mut body = check_in_body();
    body["device-id"] = json!("bench-7");
    let r = client.post(server.url("/api/v1/device/checkin")).json(&body).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"device-id": "bench-7", (CHECK_NOW): false}));
    let event =
        json!({"device-id": "bench-7", "kind": "committed", "version": "1.0.0", "time": "2026-03-01T10:00:00Z"});
    let r = client.post(server.url("/api/v1/device/events")).json(&event).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    body["device-id"] = json!("no spaces");
    let r = client.post(server.url("/api/v1/device/checkin")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_json_error() {
    let server = TestServer::start(Options::default()).await;
    let client = server.client(Some(&server.device_ca.device("device-0001")));
    let events = server.url("/api/v1/device/events");
    let checkin = server.url("/api/v1/device/checkin");
    let cases: Vec<(&str, &str, StatusCode)> = vec![
        (&checkin, "{not json", StatusCode::BAD_REQUEST),
        (&checkin, r#"{"slots": "A"}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (&checkin, r#"{"version": "1.0\u0007"}"#, StatusCode::BAD_REQUEST),
        (&events, r#"{"kind": "Exploded!", "time": "2026-03-01T10:00:00Z"}"#, StatusCode::BAD_REQUEST),
        (&events, r#"{"kind": "", "time": "2026-03-01T10:00:00Z"}"#, StatusCode::BAD_REQUEST),
        (&events, r#"{"kind": 7, "time": "2026-03-01T10:00:00Z"}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (&events, r#"{"kind": "failed"}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (&events, r#"{"kind": "failed", "time": "tuesday"}"#, StatusCode::BAD_REQUEST),
    ];
    for (url, body, status) in cases {
        let r = client.post(url).header("content-type", "application/json").body(body.to_owned()).send().await.unwrap();
        assert_eq!(r.status(), status, "{body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid-request", "{body}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    let r = client.post(&checkin).body("{}").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "no content type");
    let big = format!(r#"{{"compatible": "{}"}}"#, "x".repeat(100 * 1024));
    let r = client.post(&checkin).header("content-type", "application/json").body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = client.get(&checkin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    server.stop().await;
}
