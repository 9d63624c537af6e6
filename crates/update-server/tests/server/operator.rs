//! The operator API: a bearer token is required (401 without, 401 with a wrong one), and with
//! it the inventory, a device's events in order, and check-now.

use reqwest::StatusCode;
use serde_json::{Value, json};
use update_protocol::push::CHECK_NOW;

use crate::util::{ADMIN_TOKEN, Options, TestServer, Transport};

const ROUTES: [(&str, &str); 4] = [
    ("GET", "/api/v1/devices"),
    ("GET", "/api/v1/devices/device-0001"),
    ("GET", "/api/v1/devices/device-0001/events"),
    ("POST", "/api/v1/devices/device-0001/check-now"),
];

async fn call(
    client: &reqwest::Client,
    server: &TestServer,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> reqwest::Response {
    let mut r = client.request(method.parse().unwrap(), server.url(path));
    if let Some(value) = auth {
        r = r.header("authorization", value);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn the_admin_token_is_required() {
    let server = TestServer::start(Options::default()).await;
    let device = server.client(Some(&server.device_ca.device("device-0001")));
    device.post(server.url("/api/v1/device/checkin")).json(&json!({})).send().await.unwrap();
    let operator = server.operator();
    let wrong = format!("Bearer {ADMIN_TOKEN}x");
    let basic = format!("Basic {ADMIN_TOKEN}");
    let truncated = format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]);
    for (method, path) in ROUTES {
        for auth in [None, Some(wrong.as_str()), Some(basic.as_str()), Some(truncated.as_str()), Some("Bearer ")] {
            let r = call(&operator, &server, method, path, auth).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path} {auth:?}");
            assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"update-server\"");
            let body = r.text().await.unwrap();
            assert!(!body.contains(ADMIN_TOKEN), "the token is never echoed");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "unauthorized");
        }
        let right = format!("Bearer {ADMIN_TOKEN}");
        let r = call(&operator, &server, method, path, Some(&right)).await;
        assert!(r.status().is_success(), "{method} {path}: {}", r.status());
    }
    // A device certificate is not an operator credential.
    let r = call(&device, &server, "GET", "/api/v1/devices", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test]
async fn without_a_token_file_the_operator_api_is_disabled() {
    let server = TestServer::start(Options { admin_token: None, ..Options::default() }).await;
    for (method, path) in ROUTES {
        let r = call(&server.operator(), &server, method, path, Some(&format!("Bearer {ADMIN_TOKEN}"))).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "operator-api-disabled");
    }
    server.stop().await;
}

#[tokio::test]
async fn inventory_and_events_in_order() {
    let server = TestServer::start(Options::default()).await;
    let operator = server.operator();
    let get = |path: &str| operator.get(server.url(path)).bearer_auth(ADMIN_TOKEN).send();

    let r = get("/api/v1/devices").await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"devices": [], "next": null}));

    for (cn, version) in [("device-0002", "1.0.0"), ("device-0001", "1.1.0")] {
        let client = server.client(Some(&server.device_ca.device(cn)));
        let report = json!({"compatible": "demo-board", "version": version, "booted": "A", "primary": "A",
                            "slots": [{"name": "A", "state": "good", "version": version}]});
        client.post(server.url("/api/v1/device/checkin")).json(&report).send().await.unwrap();
        for (i, kind) in ["checking", "downloading", "installed"].iter().enumerate() {
            let event = json!({"kind": kind, "version": "1.2.0", "time": format!("2026-03-01T10:00:0{i}Z")});
            let r = client.post(server.url("/api/v1/device/events")).json(&event).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    }
    let failed =
        json!({"kind": "failed", "version": "1.2.0", "reason": "bad signature", "time": "2026-03-01T10:00:09Z"});
    let client = server.client(Some(&server.device_ca.device("device-0001")));
    client.post(server.url("/api/v1/device/events")).json(&failed).send().await.unwrap();

    let inventory: Value = get("/api/v1/devices").await.unwrap().json().await.unwrap();
    let devices = inventory["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0]["id"], "device-0001", "sorted by id");
    assert_eq!(devices[0]["version"], "1.1.0");
    assert_eq!(devices[0]["compatible"], "demo-board");
    assert_eq!(devices[0]["slots"][0]["state"], "good");
    assert!(devices[0]["last-checkin"].is_string());
    assert!(devices[0]["first-seen"].is_string());
    assert_eq!(devices[0]["last-event"]["kind"], "failed");
    assert_eq!(devices[0]["last-event"]["reason"], "bad signature");
    assert_eq!(devices[0]["check-now-pending"], false);
    assert_eq!(devices[0]["push-streams"], 0);
    assert_eq!(devices[1]["last-event"]["kind"], "installed");

    let mut one: Value = get("/api/v1/devices/device-0002").await.unwrap().json().await.unwrap();
    // One device also shows its attributes (none: it speaks no hawkBit); the rest as listed.
    assert_eq!(one.as_object_mut().unwrap().remove("attributes"), Some(json!({})));
    assert_eq!(one, devices[1]);

    let list: Value = get("/api/v1/devices/device-0001/events").await.unwrap().json().await.unwrap();
    assert_eq!(list["device-id"], "device-0001");
    let events = list["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["checking", "downloading", "installed", "failed"]);
    assert_eq!(events[0]["time"], "2026-03-01T10:00:00Z");
    assert!(events[0]["received"].is_string());
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // Paging: after the second one, two at a time.
    let page: Value = get(&format!("/api/v1/devices/device-0001/events?after={}&limit=2", seqs[1]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["installed", "failed"]);

    for (path, status) in [
        ("/api/v1/devices/device-9999", StatusCode::NOT_FOUND),
        ("/api/v1/devices/device-9999/events", StatusCode::NOT_FOUND),
        ("/api/v1/devices/not%20an%20id/events", StatusCode::NOT_FOUND),
        ("/api/v1/devices/device-0001/events?limit=0", StatusCode::BAD_REQUEST),
        ("/api/v1/devices/device-0001/events?limit=5000", StatusCode::BAD_REQUEST),
        ("/api/v1/devices/device-0001/events?after=x", StatusCode::BAD_REQUEST),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    }
    let r = operator
        .post(server.url("/api/v1/devices/device-9999/check-now"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn check_now_is_pending_until_the_next_check_in() {
    let server = TestServer::start(Options::default()).await;
    let device = server.client(Some(&server.device_ca.device("device-0001")));
    let check_in = || device.post(server.url("/api/v1/device/checkin")).json(&json!({})).send();
    check_in().await.unwrap();
    let operator = server.operator();
    let r = operator
        .post(server.url("/api/v1/devices/device-0001/check-now"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"device-id": "device-0001", "pushed": 0}));
    let view: Value = operator
        .get(server.url("/api/v1/devices/device-0001"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["check-now-pending"], true);
    assert_eq!(check_in().await.unwrap().json::<Value>().await.unwrap()[CHECK_NOW], true);
    assert_eq!(check_in().await.unwrap().json::<Value>().await.unwrap()[CHECK_NOW], false);
    server.stop().await;
}

#[tokio::test]
async fn health_needs_no_credentials() {
    let server = TestServer::start(Options { transport: Transport::Plain, ..Options::default() }).await;
    let r = server.client(None).get(server.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    server.stop().await;
}
