//! Rollouts end to end: 120 simulated devices, each with its own client certificate (mutual
//! TLS; the certificate's OU puts it in the tag `field`), check in concurrently and post real
//! events to the real server with a real SQLite file. A release that fails on its two canaries
//! pauses the deployment before its second wave, with the exact counts; resume and abort work;
//! a viewer token cannot act; the operator audit chain verifies and finds an edited row.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use update_server::clock::Clock;
use update_server::operator::Role;

use crate::util::{ADMIN_TOKEN, Options, TestServer};

const FLEET: usize = 120;
const OPERATOR_TOKEN: &str = "snakeoil-operator-token-0123456789";
const VIEWER_TOKEN: &str = "snakeoil-viewer-token-0123456789";

/// One simulated device: its mutual-TLS client and what it runs.
struct Device {
    id: String,
    client: reqwest::Client,
}

struct Fleet {
    server: TestServer,
    devices: Vec<Arc<Device>>,
    operator: reqwest::Client,
}

fn report(version: &str) -> Value {
    json!({"compatible": "demo-board", "version": version, "booted": "A", "primary": "A",
           "slots": [{"name": "A", "state": "good", "version": version}]})
}

impl Fleet {
    async fn start() -> Self {
        let clock = Clock::manual(time::OffsetDateTime::now_utc());
        let server = TestServer::start(Options {
            operator_tokens: vec![("ci", Role::Operator, OPERATOR_TOKEN), ("wall", Role::Viewer, VIEWER_TOKEN)],
            clock: Some(clock),
            ..Options::default()
        })
        .await;
        let devices = (0..FLEET)
            .map(|i| {
                let id = format!("device-{i:04}");
                let client = server.client(Some(&server.device_ca.device_in(&id, "field")));
                Arc::new(Device { id, client })
            })
            .collect();
        let operator = server.operator();
        Self { server, devices, operator }
    }

    /// Every device checks in at once, running `version` (or its own from `versions`); the
    /// answers' assignments by device id.
    async fn check_in_all(&self, versions: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
        let mut tasks = JoinSet::new();
        for d in &self.devices {
            let d = Arc::clone(d);
            let url = self.server.url("/api/v1/device/checkin");
            let version = versions.get(&d.id).cloned().unwrap_or_else(|| "1.0.0".to_owned());
            tasks.spawn(async move {
                let r = d.client.post(url).json(&report(&version)).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK, "{}", d.id);
                let answer: Value = r.json().await.unwrap();
                assert_eq!(answer["device-id"], d.id.as_str());
                (d.id.clone(), answer.get("assignment").cloned())
            });
        }
        let mut out = BTreeMap::new();
        while let Some(joined) = tasks.join_next().await {
            if let (id, Some(a)) = joined.unwrap() {
                out.insert(id, a);
            }
        }
        out
    }

    /// The devices install what they were told, at once: each posts downloading, installed,
    /// rebooted, then committed, or failed and rolled-back for those in `failing`.
    async fn install(&self, told: &[&String], failing: &BTreeSet<String>) {
        let mut tasks = JoinSet::new();
        for d in self.devices.iter().filter(|d| told.contains(&&d.id)) {
            let d = Arc::clone(d);
            let url = self.server.url("/api/v1/device/events");
            let fails = failing.contains(&d.id);
            tasks.spawn(async move {
                let mut steps = vec![("downloading", None), ("installed", None), ("rebooted", None)];
                if fails {
                    steps.push(("failed", Some("health check 'app answers' failed")));
                    steps.push(("rolled-back", Some("booted slot A after a failed trial")));
                } else {
                    steps.push(("committed", None));
                }
                for (i, (kind, reason)) in steps.into_iter().enumerate() {
                    let mut e = json!({"kind": kind, "version": "2.0.0", "time": format!("2026-03-01T10:00:0{i}Z")});
                    if let Some(r) = reason {
                        e["reason"] = json!(r);
                    }
                    let r = d.client.post(url.clone()).json(&e).send().await.unwrap();
                    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{} {kind}", d.id);
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.operator.request(method.parse().unwrap(), self.server.url(path)).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn deployment(&self, id: i64) -> Value {
        let (status, d) = self.call("GET", &format!("/api/v1/deployments/{id}"), VIEWER_TOKEN, None).await;
        assert_eq!(status, StatusCode::OK, "{d}");
        d
    }
}

/// `[devices, assigned, attempted, failed, succeeded]` of each wave.
fn wave_counts(d: &Value) -> Vec<[u64; 5]> {
    d["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| ["devices", "assigned", "attempted", "failed", "succeeded"].map(|k| w[k].as_u64().unwrap()))
        .collect()
}

fn install_told(assignments: &BTreeMap<String, Value>) -> Vec<&String> {
    assignments.iter().filter(|(_, a)| a["action"] == "install").map(|(id, _)| id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_failing_on_its_canaries_pauses_the_rollout_before_the_second_wave() {
    let fleet = Fleet::start().await;
    let none = BTreeMap::new();

    // First contact: no deployment yet, and the certificates' OU put every device in `field`.
    assert!(fleet.check_in_all(&none).await.is_empty());
    let (status, members) = fleet.call("GET", "/api/v1/tags/field/devices", VIEWER_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK);
    let members = members["devices"].as_array().unwrap();
    assert_eq!(members.len(), FLEET);
    assert!(members.iter().all(|m| m["source"] == "certificate"));

    // A viewer reads but cannot act.
    let release = json!({"target": "demo-2.0.0.bundle", "version": "2.0.0"});
    let (status, body) = fleet.call("POST", "/api/v1/releases", VIEWER_TOKEN, Some(release.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "role-required");
    // Only targets the repository lists, with the version it signs.
    for (bad, status) in [
        (json!({"target": "demo-9.bundle", "version": "9"}), StatusCode::CONFLICT),
        (json!({"target": "demo-1.1.0.bundle", "version": "2.0.0"}), StatusCode::CONFLICT),
        (json!({"target": "../etc/passwd", "version": "2.0.0"}), StatusCode::BAD_REQUEST),
    ] {
        let (got, body) = fleet.call("POST", "/api/v1/releases", OPERATOR_TOKEN, Some(bad.clone())).await;
        assert_eq!(got, status, "{bad}: {body}");
    }
    let (status, release) = fleet.call("POST", "/api/v1/releases", OPERATOR_TOKEN, Some(release)).await;
    assert_eq!(status, StatusCode::CREATED, "{release}");
    assert_eq!(release["created-by"], "ci");
    let (status, _) = fleet
        .call(
            "POST",
            "/api/v1/releases",
            OPERATOR_TOKEN,
            Some(json!({"target": "demo-2.0.0.bundle", "version": "2.0.0"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "registered twice");

    // Canary: 2 devices, then 10%, 50%, 100%; an hour apart; pause above 20% failures.
    let plan = json!({"release": release["id"], "tag": "field",
        "waves": [{"devices": 2}, {"percent": 10}, {"percent": 50}, {"percent": 100}],
        "min-wave-interval-secs": 3600, "max-failure-percent": 20});
    let (status, _) = fleet.call("POST", "/api/v1/deployments", VIEWER_TOKEN, Some(plan.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, d) = fleet.call("POST", "/api/v1/deployments", OPERATOR_TOKEN, Some(plan)).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let id = d["id"].as_i64().unwrap();
    assert_eq!(d["state"], "running");
    assert_eq!(d["rollback-on-abort"], false, "off unless asked for");
    assert_eq!(wave_counts(&d), [[2, 0, 0, 0, 0], [10, 0, 0, 0, 0], [48, 0, 0, 0, 0], [60, 0, 0, 0, 0]]);

    // Membership is the deployment's hash order of the device ids.
    let mut order: Vec<(String, String)> =
        fleet.devices.iter().map(|d| (update_server::rollout::rank(id, &d.id), d.id.clone())).collect();
    order.sort();
    let mut canaries: Vec<&String> = order[..2].iter().map(|(_, id)| id).collect();
    canaries.sort();
    let mut second_wave: Vec<&String> = order[2..12].iter().map(|(_, id)| id).collect();
    second_wave.sort();

    // Everyone checks in: exactly the canaries are told to install 2.0.0.
    let assignments = fleet.check_in_all(&none).await;
    assert_eq!(assignments.keys().collect::<Vec<_>>(), canaries);
    for a in assignments.values() {
        assert_eq!(
            (&a["deployment"], &a["target"], &a["version"], &a["wave"], &a["action"]),
            (&json!(id), &json!("demo-2.0.0.bundle"), &json!("2.0.0"), &json!(0), &json!("install"))
        );
        assert_eq!(a["allowed-from"], d["wave-opened"]);
    }
    // The release is bad: both canaries fail their health check and roll back, one after the
    // other. The first failure pauses the deployment (1 of 1 attempts failed); the second
    // canary, told before the pause, still counts.
    let all: BTreeSet<String> = fleet.devices.iter().map(|d| d.id.clone()).collect();
    for canary in install_told(&assignments) {
        fleet.install(&[canary], &all).await;
    }

    let d = fleet.deployment(id).await;
    assert_eq!(d["state"], "paused", "{d}");
    assert_eq!(d["pause-reason"], "wave 1 of 4: failure rate 1/1 is over 20%");
    assert_eq!(d["current-wave"], 0);
    assert_eq!(wave_counts(&d), [[2, 2, 2, 2, 0], [10, 0, 0, 0, 0], [48, 0, 0, 0, 0], [60, 0, 0, 0, 0]]);

    // Two hours later (twice the interval) the second wave still has not opened: the canaries
    // are told to hold, nobody else hears of the deployment.
    fleet.server.state.clock.advance(time::Duration::hours(2));
    let assignments = fleet.check_in_all(&none).await;
    assert_eq!(assignments.keys().collect::<Vec<_>>(), canaries);
    assert!(assignments.values().all(|a| a["action"] == "hold"), "{assignments:?}");
    let d = fleet.deployment(id).await;
    assert_eq!((d["state"].as_str(), d["current-wave"].as_u64()), (Some("paused"), Some(0)));
    assert_eq!(wave_counts(&d)[1], [10, 0, 0, 0, 0]);

    // A viewer cannot resume; an operator can: the canaries' failures are accepted, and the
    // interval starts again.
    let resume = format!("/api/v1/deployments/{id}/resume");
    let (status, _) = fleet.call("POST", &resume, VIEWER_TOKEN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, d) = fleet.call("POST", &resume, OPERATOR_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!((d["state"].as_str(), d["pause-reason"].is_null()), (Some("running"), true));
    let (status, _) = fleet.call("POST", &resume, OPERATOR_TOKEN, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "not paused");
    let assignments = fleet.check_in_all(&none).await;
    assert_eq!(assignments.len(), 2, "the interval restarted: still only the canaries");

    // An hour on, the second wave (10 devices) opens; one of them fails: 1/10 is not over 20%.
    fleet.server.state.clock.advance(time::Duration::minutes(61));
    let assignments = fleet.check_in_all(&none).await;
    let told: Vec<&String> = install_told(&assignments).into_iter().filter(|id| !canaries.contains(id)).collect();
    assert_eq!(told, second_wave);
    assert!(assignments.iter().filter(|(id, _)| second_wave.contains(id)).all(|(_, a)| a["wave"] == 1));
    // The nine succeed first (the rate is checked at every event: a failure among the first
    // reports would be 1 of 1).
    let failing: BTreeSet<String> = [second_wave[0].clone()].into();
    fleet.install(&told[1..], &failing).await;
    fleet.install(&told[..1], &failing).await;
    let d = fleet.deployment(id).await;
    assert_eq!((d["state"].as_str(), d["current-wave"].as_u64()), (Some("running"), Some(1)), "{d}");
    assert_eq!(wave_counts(&d), [[2, 2, 2, 2, 0], [10, 10, 10, 1, 9], [48, 0, 0, 0, 0], [60, 0, 0, 0, 0]]);

    // An operator pauses by hand: the wave's devices are told to hold.
    let (status, d) = fleet.call("POST", &format!("/api/v1/deployments/{id}/pause"), OPERATOR_TOKEN, None).await;
    assert_eq!(
        (status, d["state"].as_str(), d["pause-reason"].as_str()),
        (StatusCode::OK, Some("paused"), Some("paused by ci"))
    );
    let assignments = fleet.check_in_all(&none).await;
    assert_eq!(assignments.len(), 12);
    assert!(assignments.values().all(|a| a["action"] == "hold"));

    // Abort: nobody is told about the deployment any more.
    let (status, _) = fleet.call("POST", &format!("/api/v1/deployments/{id}/abort"), VIEWER_TOKEN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, d) = fleet.call("POST", &format!("/api/v1/deployments/{id}/abort"), OPERATOR_TOKEN, None).await;
    assert_eq!((status, d["state"].as_str()), (StatusCode::OK, Some("aborted")));
    fleet.server.state.clock.advance(time::Duration::hours(5));
    assert!(fleet.check_in_all(&none).await.is_empty());
    for control in ["pause", "resume", "abort"] {
        let (status, _) =
            fleet.call("POST", &format!("/api/v1/deployments/{id}/{control}"), OPERATOR_TOKEN, None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{control} after abort");
    }
    let d = fleet.deployment(id).await;
    assert_eq!(wave_counts(&d)[2], [48, 0, 0, 0, 0], "the third wave never opened");

    // The audit log: every operator action and every decision of the server, chained.
    let (status, _) = fleet.call("GET", "/api/v1/audit", OPERATOR_TOKEN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the audit log is for admins");
    let (status, log) = fleet.call("GET", "/api/v1/audit", ADMIN_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK);
    let entries = log["entries"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap(), e["subject"].as_str().unwrap()))
        .collect();
    let dep = format!("deployment/{id}");
    assert_eq!(
        summary,
        [
            ("ci", "create-release", "release/1"),
            ("ci", "create-deployment", dep.as_str()),
            ("update-server", "pause-deployment", dep.as_str()),
            ("ci", "resume-deployment", dep.as_str()),
            ("update-server", "open-wave", dep.as_str()),
            ("ci", "pause-deployment", dep.as_str()),
            ("ci", "abort-deployment", dep.as_str()),
        ]
    );
    let (_, verdict) = fleet.call("GET", "/api/v1/audit/verify", ADMIN_TOKEN, None).await;
    assert_eq!(verdict, json!({"ok": true, "entries": 7, "head": entries[6]["hash"]}));

    // The table refuses edits; someone with the file drops the trigger and edits a row anyway:
    // the chain finds it, over the API and from the command line.
    let db = format!("sqlite:{}", fleet.server.dir.path().join("server.db").display());
    let audit_cli = |expect: i32| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_update-server"))
            .args(["audit", "--db", &db])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(expect), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned()
    };
    assert!(audit_cli(0).contains("\"ok\":true"));
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let refused = sqlx::query("UPDATE operator_audit SET actor = 'mallory' WHERE seq = 2").execute(&pool).await;
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    let refused = sqlx::query("DELETE FROM operator_audit WHERE seq = 6").execute(&pool).await;
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    sqlx::query("DROP TRIGGER operator_audit_no_update").execute(&pool).await.unwrap();
    sqlx::query("UPDATE operator_audit SET actor = 'mallory' WHERE seq = 2").execute(&pool).await.unwrap();
    pool.close().await;
    let (_, verdict) = fleet.call("GET", "/api/v1/audit/verify", ADMIN_TOKEN, None).await;
    assert_eq!(verdict, json!({"ok": false, "seq": 2, "problem": "content does not match its hash (edited)"}));
    assert_eq!(audit_cli(10), r#"{"ok":false,"problem":"content does not match its hash (edited)","seq":2}"#);
    fleet.server.stop().await;
}

#[tokio::test]
async fn operators_tag_devices_and_tokens_have_roles() {
    let fleet_server = TestServer::start(Options {
        operator_tokens: vec![("ci", Role::Operator, OPERATOR_TOKEN), ("wall", Role::Viewer, VIEWER_TOKEN)],
        ..Options::default()
    })
    .await;
    let operator = fleet_server.operator();
    let call = |method: &str, path: &str, token: &str, body: Option<Value>| {
        let mut r = operator.request(method.parse().unwrap(), fleet_server.url(path)).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    let lab = json!({"devices": ["device-0001", "device-0002"]});
    let r = call("POST", "/api/v1/tags/lab/devices", VIEWER_TOKEN, Some(lab.clone())).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = call("POST", "/api/v1/tags/lab/devices", OPERATOR_TOKEN, Some(lab.clone())).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"tag": "lab", "added": 2}));
    let r = call("POST", "/api/v1/tags/lab/devices", OPERATOR_TOKEN, Some(lab)).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["added"], 0, "tagged already");
    let r = call("DELETE", "/api/v1/tags/lab/devices/device-0001", OPERATOR_TOKEN, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = call("DELETE", "/api/v1/tags/lab/devices/device-0001", OPERATOR_TOKEN, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = call("GET", "/api/v1/tags/lab/devices", VIEWER_TOKEN, None).await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"tag": "lab", "devices": [{"id": "device-0002", "source": "operator"}], "next": null})
    );
    for (path, body) in [
        ("/api/v1/tags/bad%20tag/devices", json!({"devices": ["d"]})),
        ("/api/v1/tags/lab/devices", json!({"devices": []})),
        ("/api/v1/tags/lab/devices", json!({"devices": ["a/b"]})),
    ] {
        let r = call("POST", path, OPERATOR_TOKEN, Some(body)).await.unwrap();
        assert!(r.status().is_client_error() && r.status() != StatusCode::FORBIDDEN, "{path}: {}", r.status());
    }
    // A deployment to a tag without devices, or of an unknown release, is refused.
    let plan = json!({"release": 99, "tag": "empty", "waves": [{"percent": 100}],
                      "min-wave-interval-secs": 0, "max-failure-percent": 0});
    let r = call("POST", "/api/v1/deployments", OPERATOR_TOKEN, Some(plan)).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let bad_plan = json!({"release": 1, "tag": "lab", "waves": [{"percent": 50}],
                          "min-wave-interval-secs": 0, "max-failure-percent": 0});
    let r = call("POST", "/api/v1/deployments", OPERATOR_TOKEN, Some(bad_plan)).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("the last wave must be"));
    // check-now is an operator action, audited; viewers cannot.
    let device = fleet_server.client(Some(&fleet_server.device_ca.device("device-0002")));
    device.post(fleet_server.url("/api/v1/device/checkin")).json(&json!({})).send().await.unwrap();
    let r = call("POST", "/api/v1/devices/device-0002/check-now", VIEWER_TOKEN, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = call("POST", "/api/v1/devices/device-0002/check-now", OPERATOR_TOKEN, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = call("GET", "/api/v1/audit", ADMIN_TOKEN, None).await.unwrap();
    let log: Value = r.json().await.unwrap();
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["tag-devices", "tag-devices", "untag-device", "untag-device", "check-now"]);
    fleet_server.stop().await;
}

#[tokio::test]
async fn a_maintenance_window_makes_devices_wait_until_it_opens() {
    let clock = Clock::manual(time::macros::datetime!(2026-03-01 10:00 UTC));
    let server = TestServer::start(Options { clock: Some(clock.clone()), ..Options::default() }).await;
    let operator = server.operator();
    let post = |path: &str, body: Value| operator.post(server.url(path)).bearer_auth(ADMIN_TOKEN).json(&body).send();
    post("/api/v1/tags/night/devices", json!({"devices": ["device-0042"]})).await.unwrap();
    post("/api/v1/releases", json!({"target": "demo-2.0.0.bundle", "version": "2.0.0"})).await.unwrap();
    let window = json!({"cron": "0 2 * * *", "duration-secs": 3600, "time-zone": "UTC"});
    let plan = |window: Value| {
        json!({"release": 1, "tag": "night", "waves": [{"percent": 100}], "min-wave-interval-secs": 0,
               "max-failure-percent": 0, "maintenance-window": window, "rollback-on-abort": true})
    };
    let r = post(
        "/api/v1/deployments",
        plan(json!({"cron": "0 2 * * *", "duration-secs": 3600, "time-zone": "Mars/Olympus"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Mars/Olympus"));
    let r = post("/api/v1/deployments", plan(window.clone())).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created = r.json::<Value>().await.unwrap();
    assert_eq!(created["maintenance-window"], window);
    assert_eq!(created["rollback-on-abort"], true);

    let device = server.client(Some(&server.device_ca.device("device-0042")));
    let check_in = || async {
        let r = device.post(server.url("/api/v1/device/checkin")).json(&report("1.0.0")).send().await.unwrap();
        r.json::<Value>().await.unwrap()["assignment"].clone()
    };
    let a = check_in().await;
    assert_eq!((a["action"].as_str(), &a["window"]), (Some("wait"), &window), "10:00 is outside 02:00-03:00");
    clock.advance(time::Duration::hours(16));
    assert_eq!(check_in().await["action"], "install", "02:00");
    clock.advance(time::Duration::minutes(59));
    assert_eq!(check_in().await["action"], "install", "02:59");
    clock.advance(time::Duration::minutes(1));
    assert_eq!(check_in().await["action"], "wait", "03:00: closed again");
    let d: Value = server.operator_get("/api/v1/deployments/1").await;
    assert_eq!(d["waves"][0]["assigned"], 1, "told to install once the window opened");
    server.stop().await;
}

/// With no interval between waves the second wave opens at the first check-in, before the
/// canary has reported; the canary's failure afterwards still pauses the deployment (the
/// failure check covers every opened wave, not only the open one), and the devices not yet
/// started are told to hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_after_the_next_wave_opened_still_pauses_the_rollout() {
    let fleet = Fleet::start().await;
    let none = BTreeMap::new();
    assert!(fleet.check_in_all(&none).await.is_empty());
    let release = json!({"target": "demo-2.0.0.bundle", "version": "2.0.0"});
    let (status, release) = fleet.call("POST", "/api/v1/releases", OPERATOR_TOKEN, Some(release)).await;
    assert_eq!(status, StatusCode::CREATED, "{release}");
    let plan = json!({"release": release["id"], "tag": "field", "waves": [{"devices": 1}, {"percent": 100}],
        "min-wave-interval-secs": 0, "max-failure-percent": 20});
    let (status, d) = fleet.call("POST", "/api/v1/deployments", OPERATOR_TOKEN, Some(plan)).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let id = d["id"].as_i64().unwrap();
    let canary = fleet.devices.iter().map(|d| (update_server::rollout::rank(id, &d.id), d.id.clone())).min().unwrap().1;

    // Everyone checks in: the first check-in opened the second wave at once, so all are told.
    let assignments = fleet.check_in_all(&none).await;
    assert_eq!(install_told(&assignments).len(), FLEET);
    let d = fleet.deployment(id).await;
    assert_eq!((d["state"].as_str(), d["current-wave"].as_u64()), (Some("running"), Some(1)), "{d}");

    // The canary fails: its wave is no longer the open one, and it still pauses everything.
    let all: BTreeSet<String> = fleet.devices.iter().map(|d| d.id.clone()).collect();
    fleet.install(&[&canary], &all).await;
    let d = fleet.deployment(id).await;
    assert_eq!(d["state"], "paused", "{d}");
    assert_eq!(d["pause-reason"], "wave 1 of 2: failure rate 1/1 is over 20%");
    let n = FLEET as u64 - 1;
    assert_eq!(wave_counts(&d), [[1, 1, 1, 1, 0], [n, n, 0, 0, 0]]);
    let assignments = fleet.check_in_all(&none).await;
    assert!(assignments.values().all(|a| a["action"] == "hold"), "{assignments:?}");

    // Resumed, the canary's failure is accepted: the rest install and the deployment runs on.
    let (status, d) = fleet.call("POST", &format!("/api/v1/deployments/{id}/resume"), OPERATOR_TOKEN, None).await;
    assert_eq!((status, d["state"].as_str()), (StatusCode::OK, Some("running")), "{d}");
    let assignments = fleet.check_in_all(&none).await;
    let rest: Vec<&String> = install_told(&assignments).into_iter().filter(|id| **id != canary).collect();
    assert_eq!(rest.len(), FLEET - 1);
    fleet.install(&rest, &BTreeSet::new()).await;
    let d = fleet.deployment(id).await;
    assert_eq!(d["state"], "running", "{d}");
    assert_eq!(wave_counts(&d), [[1, 1, 1, 1, 0], [n, n, n, 0, n]]);
    fleet.server.stop().await;
}
