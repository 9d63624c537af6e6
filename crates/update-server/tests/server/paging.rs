//! Paging: every operator list (devices, a device's events, releases, a tag's devices,
//! deployments, the audit log) is read in pages of `limit` with the `next` cursor, the pages
//! add up to the whole list in order, and a bad cursor or limit is a 400.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{ADMIN_TOKEN, Options, TestServer};

/// Every page of `path` (a list in `field`), `limit` at a time: the items, and how many pages.
async fn all_pages(server: &TestServer, path: &str, field: &str, limit: u32) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut after: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &after {
            Some(a) => format!("{path}{sep}limit={limit}&after={a}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let page = server.operator_get(&url).await;
        pages += 1;
        let got = page[field].as_array().unwrap().clone();
        assert!(got.len() <= limit as usize, "{url}: {} items", got.len());
        items.extend(got);
        match &page["next"] {
            Value::Null => return (items, pages),
            Value::String(n) => after = Some(n.clone()),
            other => panic!("{url}: next {other:?}"),
        }
        assert!(pages < 100, "{path}: no end");
    }
}

#[tokio::test]
async fn every_list_pages_with_a_cursor() {
    let server = TestServer::start(Options::default()).await;
    let operator = server.operator();
    let post = |path: &str, body: Value| operator.post(server.url(path)).bearer_auth(ADMIN_TOKEN).json(&body).send();
    let ids: Vec<String> = (1..=5).map(|i| format!("device-{i:04}")).collect();
    for id in ids.iter().rev() {
        let device = server.client(Some(&server.device_ca.device(id)));
        let r = device.post(server.url("/api/v1/device/checkin")).json(&json!({"version": "1.0.0"})).send().await;
        assert_eq!(r.unwrap().status(), StatusCode::OK);
        if id == "device-0001" {
            for i in 0..5 {
                let event = json!({"kind": "checking", "time": format!("2026-03-01T10:00:0{i}Z")});
                let r = device.post(server.url("/api/v1/device/events")).json(&event).send().await.unwrap();
                assert!(r.status().is_success());
            }
        }
    }
    assert!(post("/api/v1/tags/lab/devices", json!({"devices": ids})).await.unwrap().status().is_success());
    for (target, version) in [("demo-1.1.0.bundle", "1.1.0"), ("demo-2.0.0.bundle", "2.0.0")] {
        let r = post("/api/v1/releases", json!({"target": target, "version": version})).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    for release in [1, 2, 1] {
        let plan = json!({"release": release, "tag": "lab", "waves": [{"percent": 100}],
                          "min-wave-interval-secs": 0, "max-failure-percent": 50});
        assert_eq!(post("/api/v1/deployments", plan).await.unwrap().status(), StatusCode::CREATED);
    }

    let (devices, pages) = all_pages(&server, "/api/v1/devices", "devices", 2).await;
    let got: Vec<&str> = devices.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(pages, 3);
    let (events, _) = all_pages(&server, "/api/v1/devices/device-0001/events", "events", 2).await;
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs.len(), 5);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let (members, _) = all_pages(&server, "/api/v1/tags/lab/devices", "devices", 2).await;
    assert_eq!(members.len(), 5);
    assert_eq!(members[4]["id"], "device-0005");
    let (releases, pages) = all_pages(&server, "/api/v1/releases", "releases", 1).await;
    assert_eq!(releases.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(pages, 3, "two full pages, then an empty last one");
    let (deployments, _) = all_pages(&server, "/api/v1/deployments", "deployments", 2).await;
    assert_eq!(deployments.iter().map(|d| d["id"].as_i64().unwrap()).collect::<Vec<_>>(), [3, 2, 1]);
    let (audit, _) = all_pages(&server, "/api/v1/audit", "entries", 2).await;
    assert_eq!(audit.len(), 6, "tag, 2 releases, 3 deployments");
    // Without `limit`: one page of up to 1000.
    assert_eq!(server.operator_get("/api/v1/devices").await["devices"].as_array().unwrap().len(), 5);

    for bad in [
        "/api/v1/devices?limit=0",
        "/api/v1/devices?limit=1001",
        "/api/v1/devices?after=a%20b",
        "/api/v1/releases?after=x",
        "/api/v1/deployments?after=-1",
    ] {
        let r = operator.get(server.url(bad)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    server.stop().await;
}
