//! Control characters in stored text: every text field a device or an operator can store is
//! refused with 400 when it holds one (nothing is stored), except an event's free-text
//! `reason`, which is stored with them escaped (`\u{1b}`), line breaks and tabs kept.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{ADMIN_TOKEN, Options, TestServer};

#[tokio::test]
async fn control_characters_are_refused_or_escaped_in_every_stored_text_field() {
    let server = TestServer::start(Options {
        limits: update_server::limits::Limits { checkins_per_minute: 0, events_per_minute: 0, ..Default::default() },
        ..Options::default()
    })
    .await;
    let device = server.client(Some(&server.device_ca.device("device-0001")));
    let slot = |name: &str, version: &str| json!([{"name": name, "state": "good", "version": version}]);
    let bad_reports = [
        json!({"compatible": "demo\u{1b}[2J"}),
        json!({"version": "1.0\u{0}"}),
        json!({"booted": "A\r"}),
        json!({"primary": "B\u{7f}"}),
        json!({"slots": slot("A\u{9b}", "1.0")}),
        json!({"slots": slot("A", "1.0\u{7}")}),
    ];
    for report in bad_reports {
        let r = device.post(server.url("/api/v1/device/checkin")).json(&report).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{report}");
    }
    let bad_events = [
        json!({"kind": "failed\u{1b}", "time": "2026-03-01T10:00:00Z"}),
        json!({"kind": "failed", "version": "1\n", "time": "2026-03-01T10:00:00Z"}),
        json!({"kind": "failed", "time": "2026-03-01T10:00:00Z\u{0}"}),
    ];
    for event in bad_events {
        let r = device.post(server.url("/api/v1/device/events")).json(&event).send().await.unwrap();
        assert!(r.status().is_client_error(), "{event}: {}", r.status());
    }
    assert!(
        server.state.store.device(&update_protocol::DeviceId::parse("device-0001").unwrap()).await.unwrap().is_none(),
        "nothing stored"
    );
    let event = json!({"kind": "failed", "reason": "a\u{1b}[31mb\u{0}\n\tc", "time": "2026-03-01T10:00:00Z"});
    let r = device.post(server.url("/api/v1/device/events")).json(&event).send().await.unwrap();
    assert!(r.status().is_success());
    let events = server.operator_get("/api/v1/devices/device-0001/events").await;
    assert_eq!(events["events"][0]["reason"], "a\\u{1b}[31mb\\u{0}\n\tc");

    let operator = server.operator();
    let post = |path: String, body: Value| operator.post(server.url(&path)).bearer_auth(ADMIN_TOKEN).json(&body).send();
    let bad = [
        ("/api/v1/releases".to_owned(), json!({"target": "demo-1.1.0.bundle\u{1b}", "version": "1.1.0"})),
        ("/api/v1/releases".to_owned(), json!({"target": "demo-1.1.0.bundle", "version": "1.1.0\u{0}"})),
        ("/api/v1/tags/lab%1B/devices".to_owned(), json!({"devices": ["device-0001"]})),
        ("/api/v1/tags/lab/devices".to_owned(), json!({"devices": ["device\u{1b}0001"]})),
    ];
    for (path, body) in bad {
        let r = post(path.clone(), body.clone()).await.unwrap();
        assert!(r.status().is_client_error(), "{path} {body}: {}", r.status());
    }
    assert!(
        post("/api/v1/releases".into(), json!({"target": "demo-1.1.0.bundle", "version": "1.1.0"}))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    assert!(
        post("/api/v1/tags/lab/devices".into(), json!({"devices": ["device-0001"]}))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let window = json!({"cron": "0 2 * * *", "duration-secs": 3600, "time-zone": "UTC\u{1b}"});
    let plan = json!({"release": 1, "tag": "lab", "waves": [{"percent": 100}], "min-wave-interval-secs": 0,
                      "max-failure-percent": 0, "maintenance-window": window});
    assert_eq!(post("/api/v1/deployments".into(), plan).await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(server.operator_get("/api/v1/releases").await["releases"].as_array().unwrap().len(), 1);
    assert_eq!(server.operator_get("/api/v1/deployments").await["deployments"].as_array().unwrap().len(), 0);
    server.stop().await;
}
