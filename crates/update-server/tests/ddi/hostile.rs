//! What the DDI API refuses, and that a refusal changes nothing: credentials of the wrong
//! device or none, unknown tenants and ids, another device's action and artifact, dotted and
//! control-character ids sent raw, oversized and malformed feedback; and what it serves: the
//! artifact's hashes as computed here, byte ranges, HEAD without a body, control characters in
//! feedback details stored escaped.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::Digest as _;

use crate::{GATEWAY_TOKEN, Server, Target, action_links, kinds, write_repo};

fn target(name: &str, seed: u8) -> Target {
    Target {
        name: name.to_owned(),
        version: "1.2.3".to_owned(),
        bytes: (0..100_000u32).map(|i| (i % 251) as u8 ^ seed).collect(),
    }
}

/// A request with `Authorization: SCHEME TOKEN`; the status and the body.
async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    auth: Option<String>,
    body: Option<Vec<u8>>,
) -> (StatusCode, String) {
    let mut r = server.client().request(method, server.url(path));
    if let Some(a) = auth {
        r = r.header("Authorization", a);
    }
    if let Some(b) = body {
        r = r.header("Content-Type", "application/json").body(b);
    }
    let r = r.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// One raw `GET path` over TLS, exactly as written: the status code.
async fn raw_status(server: &Server, path: &str, auth: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = crate::util::client_config(&[server.ca.der()], None);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"))
}

fn feedback(id: Value, execution: &str, finished: &str, details: &[&str]) -> Vec<u8> {
    json!({"id": id, "time": "20261206T120000",
           "status": {"execution": execution, "result": {"finished": finished, "progress": {"cnt": 0, "of": 1}},
                      "details": details}})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ddi_requests_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (target("a-1.2.3.swu", 0), target("b-1.2.3.swu", 0x5a));
    let repo = write_repo(dir.path(), &[Target { bytes: a.bytes.clone(), ..target("a-1.2.3.swu", 0) }, b]);
    let server = Server::start(dir.path(), &repo);
    let deployment_a = server.deploy(&a, "group-a", &["dev-a"], json!([{"percent": 100}])).await;
    let deployment_b =
        server.deploy(&target("b-1.2.3.swu", 0x5a), "group-b", &["dev-b"], json!([{"percent": 100}])).await;
    let token_a = format!("TargetToken {}", server.ddi_token("dev-a"));
    let token_b = format!("TargetToken {}", server.ddi_token("dev-b"));
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let root = "/DEFAULT/controller/v1/dev-a";

    // Credentials.
    for (auth, why) in [
        (None, "none"),
        (Some("TargetToken wrong-token-0123456789".to_owned()), "a wrong target token"),
        (Some(token_b.clone()), "another device's target token"),
        (Some(format!("GatewayToken {GATEWAY_TOKEN}x")), "a wrong gateway token"),
        (Some(format!("Bearer {}", crate::util::ADMIN_TOKEN)), "an operator token"),
        (Some("TargetToken".to_owned()), "an empty target token"),
    ] {
        let (status, body) = call(&server, get.clone(), root, auth, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
    }
    assert_eq!(call(&server, get.clone(), root, Some(format!("GatewayToken {GATEWAY_TOKEN}")), None).await.0, 200);
    // A new token replaces the old one at once.
    let old_b = token_b.clone();
    let token_b = format!("TargetToken {}", server.ddi_token("dev-b"));
    assert_eq!(call(&server, get.clone(), "/DEFAULT/controller/v1/dev-b", Some(old_b), None).await.0, 401);

    // Paths.
    assert_eq!(call(&server, get.clone(), "/OTHER/controller/v1/dev-a", Some(token_a.clone()), None).await.0, 404);
    assert_eq!(call(&server, get.clone(), "/default/controller/v1/dev-a", Some(token_a.clone()), None).await.0, 200);
    assert_eq!(raw_status(&server, "/DEFAULT/controller/v1/%2E%2E", &token_a).await, 400);
    assert_eq!(raw_status(&server, "/DEFAULT/controller/v1/dev%01a", &token_a).await, 400);
    assert_eq!(raw_status(&server, &format!("{root}/deploymentBase/..%2F1"), &token_a).await, 400);
    assert_eq!(raw_status(&server, &format!("{root}/deploymentBase/abc"), &token_a).await, 400);
    assert_eq!(raw_status(&server, &format!("{root}/deploymentBase/999"), &token_a).await, 404);
    assert_eq!(raw_status(&server, &format!("{root}/deploymentBase/{deployment_b}"), &token_a).await, 404);

    // What is offered: the deployment's action, with the artifact's hashes computed here.
    let (status, body) = call(&server, get.clone(), root, Some(token_a.clone()), None).await;
    assert_eq!(status, 200);
    let poll: Value = serde_json::from_str(&body).unwrap();
    let href = poll["_links"]["deploymentBase"]["href"].as_str().unwrap().to_owned();
    let base_path = href.split_once(&format!(":{}", server.addr.port())).unwrap().1.to_owned();
    assert!(base_path.starts_with(&format!("{root}/deploymentBase/{deployment_a}?c=")), "{href}");
    let (status, body) = call(&server, get.clone(), &base_path, Some(token_a.clone()), None).await;
    assert_eq!(status, 200, "{body}");
    let base: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(base["id"], deployment_a.to_string());
    let artifact = &base["deployment"]["chunks"][0]["artifacts"][0];
    assert_eq!(artifact["filename"], "a-1.2.3.swu");
    assert_eq!(artifact["size"], a.bytes.len());
    assert_eq!(artifact["hashes"]["sha1"], hex::encode(sha1::Sha1::digest(&a.bytes)));
    assert_eq!(artifact["hashes"]["md5"], hex::encode(md5::Md5::digest(&a.bytes)));
    assert_eq!(artifact["hashes"]["sha256"], hex::encode(sha2::Sha256::digest(&a.bytes)));
    let download = artifact["_links"]["download"]["href"].as_str().unwrap();
    let download = download.split_once(&format!(":{}", server.addr.port())).unwrap().1.to_owned();

    // The artifact: whole, a range, HEAD; never another device's or another name.
    let r = server.client().get(server.url(&download)).header("Authorization", &token_a).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), a.bytes);
    let r = server
        .client()
        .get(server.url(&download))
        .header("Authorization", &token_a)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), a.bytes[1000..2000]);
    let r = server.client().head(server.url(&download)).header("Authorization", &token_a).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], a.bytes.len().to_string().as_str());
    assert!(r.bytes().await.unwrap().is_empty(), "HEAD has no body");
    let module_a = download.split('/').nth(6).unwrap().to_owned();
    for path in [
        download.replace("a-1.2.3.swu", "b-1.2.3.swu"),
        download.replace(&format!("/softwaremodules/{module_a}/"), "/softwaremodules/999/"),
    ] {
        assert_eq!(call(&server, get.clone(), &path, Some(token_a.clone()), None).await.0, 404, "{path}");
    }
    let as_b = download.replace("/dev-a/", "/dev-b/");
    assert_eq!(
        call(&server, get.clone(), &as_b, Some(token_a.clone()), None).await.0,
        401,
        "dev-a's token is not dev-b's"
    );
    assert_eq!(raw_status(&server, &download.replace("a-1.2.3.swu", "..%2F..%2Fserver.db"), &token_a).await, 404);
    // dev-b, with its own token, cannot fetch dev-a's release either.
    assert_eq!(call(&server, get.clone(), &as_b, Some(token_b.clone()), None).await.0, 404);

    // Feedback that is refused changes nothing.
    let fb = format!("{root}/deploymentBase/{deployment_a}/feedback");
    let before = server.events("dev-a").await;
    let huge = feedback(json!(deployment_a), "proceeding", "none", &[&"x".repeat(70 * 1024)]);
    for (body, expected, why) in [
        (huge, 413, "over 64 KiB"),
        (b"{not json".to_vec(), 400, "not JSON"),
        (feedback(json!(deployment_a), "exploded", "none", &[]), 400, "an unknown execution"),
        (feedback(json!(deployment_a), "closed", "none", &[]), 400, "closed without a result"),
        (feedback(json!(deployment_a + 1), "proceeding", "none", &[]), 400, "another action's id"),
        (json!({"id": deployment_a}).to_string().into_bytes(), 422, "no status"),
    ] {
        let (status, text) = call(&server, post.clone(), &fb, Some(token_a.clone()), Some(body)).await;
        assert_eq!(status.as_u16(), expected, "{why}: {text}");
    }
    let fb_b = format!("{root}/deploymentBase/{deployment_b}/feedback");
    let body = feedback(json!(deployment_b), "closed", "failure", &[]);
    assert_eq!(call(&server, post.clone(), &fb_b, Some(token_a.clone()), Some(body)).await.0, 404);
    assert_eq!(server.events("dev-a").await, before, "refused feedback stores nothing");
    assert!(server.events("dev-b").await.is_empty(), "dev-a cannot report for dev-b");

    // Control characters in details are stored escaped.
    let body = feedback(json!(deployment_a.to_string()), "proceeding", "none", &["red \u{1b}[31m alert\u{0}"]);
    assert_eq!(call(&server, post.clone(), &fb, Some(token_a.clone()), Some(body)).await.0, 200);
    let events = server.events("dev-a").await;
    let (kind, reason) = kinds(&events).pop().unwrap();
    assert_eq!(kind, "downloading");
    assert!(reason.contains("red \\u{1b}[31m alert\\u{0}") && !reason.contains('\u{1b}'), "{reason:?}");

    // Closed is closed: no second result, no further offer.
    let body = feedback(json!(deployment_a), "closed", "failure", &["Installation failed"]);
    assert_eq!(call(&server, post.clone(), &fb, Some(token_a.clone()), Some(body)).await.0, 200);
    let body = feedback(json!(deployment_a), "closed", "success", &[]);
    assert_eq!(call(&server, post.clone(), &fb, Some(token_a.clone()), Some(body)).await.0, 409);
    let (_, body) = call(&server, get.clone(), root, Some(token_a.clone()), None).await;
    assert!(action_links(&serde_json::from_str::<Value>(&body).unwrap()).is_empty(), "{body}");
    let d = server.get(&format!("/api/v1/deployments/{deployment_a}")).await;
    assert_eq!(d["state"], "paused", "a failure pauses a 0% deployment: {d:#}");

    // configData: asked for until given, checked, stored; a refused body changes nothing.
    let config = format!("{root}/configData");
    let (_, body) = call(&server, get.clone(), root, Some(token_a.clone()), None).await;
    assert!(body.contains(&format!("{root}/configData")), "asked for: {body}");
    let good = json!({"id": "", "status": {"execution": "closed", "result": {"finished": "success"}},
                      "data": {"hwRevision": "1.0", "serialNo": "A-1"}});
    let put = reqwest::Method::PUT;
    let put_config = |body: Value, auth: String| {
        let (server, config, put) = (&server, config.clone(), put.clone());
        async move { call(server, put, &config, Some(auth), Some(body.to_string().into_bytes())).await }
    };
    let ok = put_config(good, token_a.clone()).await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    let stored = json!({"hwRevision": "1.0", "serialNo": "A-1"});
    assert_eq!(server.get("/api/v1/devices/dev-a").await["attributes"], stored);
    let (_, body) = call(&server, get.clone(), root, Some(token_a.clone()), None).await;
    assert!(!body.contains("configData"), "not asked again: {body}");
    let too_many: serde_json::Map<String, Value> = (0..101).map(|i| (format!("k{i}"), json!("v"))).collect();
    let fills: serde_json::Map<String, Value> = (0..99).map(|i| (format!("k{i}"), json!("v"))).collect();
    for (body, expected, why) in [
        (json!({"data": {"hwRevision": "1.0\u{7}"}}), 400, "a control character"),
        (json!({"data": {"": "x"}}), 400, "an empty name"),
        (json!({"data": {"n": "x".repeat(257)}}), 400, "a long value"),
        (json!({"mode": "obliterate", "data": {}}), 400, "an unknown mode"),
        (json!({"data": too_many}), 400, "101 in one body"),
        (json!({"data": fills}), 409, "over 100 with the two held"),
        (json!({"data": "not a map"}), 422, "data of the wrong shape"),
    ] {
        let (status, text) = put_config(body, token_a.clone()).await;
        assert_eq!(status.as_u16(), expected, "{why}: {text}");
    }
    assert_eq!(put_config(json!({"data": {"x": "1"}}), token_b.clone()).await.0, 401, "dev-b's token");
    assert_eq!(server.get("/api/v1/devices/dev-a").await["attributes"], stored, "refused bodies changed nothing");
    let ok = put_config(json!({"mode": "remove", "data": {"serialNo": ""}}), token_a.clone()).await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert_eq!(server.get("/api/v1/devices/dev-a").await["attributes"], json!({"hwRevision": "1.0"}));

    // Cancel: dev-b is told to install, then its deployment is aborted.
    let root_b = "/DEFAULT/controller/v1/dev-b";
    let (_, body) = call(&server, get.clone(), root_b, Some(token_b.clone()), None).await;
    assert!(serde_json::from_str::<Value>(&body).unwrap()["_links"]["deploymentBase"].is_object(), "{body}");
    for id in [deployment_a, deployment_b] {
        server.operator(post.clone(), &format!("/api/v1/deployments/{id}/abort"), None).await;
    }
    let (_, body) = call(&server, get.clone(), root, Some(token_a.clone()), None).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["_links"], json!({}), "dev-a's action had ended");
    let (_, body) = call(&server, get.clone(), root_b, Some(token_b.clone()), None).await;
    let links = serde_json::from_str::<Value>(&body).unwrap()["_links"].clone();
    let cancel_href = links["cancelAction"]["href"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    assert!(cancel_href.ends_with(&format!("{root_b}/cancelAction/{deployment_b}")), "{cancel_href}");
    assert!(links.get("deploymentBase").is_none(), "{links}");
    let cancel = format!("{root_b}/cancelAction/{deployment_b}");
    let (status, body) = call(&server, get.clone(), &cancel, Some(token_b.clone()), None).await;
    assert_eq!(status, 200, "{body}");
    let expected = json!({"id": deployment_b.to_string(), "cancelAction": {"stopId": deployment_b.to_string()}});
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), expected);
    assert_eq!(raw_status(&server, &format!("{root_b}/deploymentBase/{deployment_b}"), &token_b).await, 404);
    // Not another device's cancel, not another action, not a malformed id.
    assert_eq!(raw_status(&server, &format!("{root}/cancelAction/{deployment_b}"), &token_a).await, 404);
    assert_eq!(raw_status(&server, &cancel, &token_a).await, 401);
    assert_eq!(raw_status(&server, &format!("{root_b}/cancelAction/999"), &token_b).await, 404);
    assert_eq!(raw_status(&server, &format!("{root_b}/cancelAction/..%2F1"), &token_b).await, 400);

    // A cancel answer that is refused stores nothing and answers nothing.
    let cancel_fb = format!("{cancel}/feedback");
    let before = server.events("dev-b").await;
    let huge = feedback(json!(deployment_b), "closed", "success", &[&"x".repeat(70 * 1024)]);
    for (body, expected, why) in [
        (huge, 413, "over 64 KiB"),
        (b"{not json".to_vec(), 400, "not JSON"),
        (feedback(json!(deployment_b), "exploded", "none", &[]), 400, "an unknown execution"),
        (feedback(json!(deployment_b), "closed", "none", &[]), 400, "closed without a result"),
        (feedback(json!(deployment_b + 1), "closed", "success", &[]), 400, "another action's id"),
    ] {
        let (status, text) = call(&server, post.clone(), &cancel_fb, Some(token_b.clone()), Some(body)).await;
        assert_eq!(status.as_u16(), expected, "{why}: {text}");
    }
    let as_a = format!("{root}/cancelAction/{deployment_b}/feedback");
    let body = feedback(json!(deployment_b), "closed", "success", &[]);
    assert_eq!(call(&server, post.clone(), &as_a, Some(token_a.clone()), Some(body)).await.0, 404);
    assert_eq!(server.events("dev-b").await, before, "refused cancel answers store nothing");
    let (_, body) = call(&server, get.clone(), root_b, Some(token_b.clone()), None).await;
    assert!(serde_json::from_str::<Value>(&body).unwrap()["_links"]["cancelAction"].is_object(), "still asked");

    // A step, then the answer: the action is closed; nothing is offered or accepted after.
    let body = feedback(json!(deployment_b), "proceeding", "none", &["stopping"]);
    assert_eq!(call(&server, post.clone(), &cancel_fb, Some(token_b.clone()), Some(body)).await.0, 200);
    let body = feedback(json!(deployment_b), "closed", "success", &["cancellation acknowledged."]);
    assert_eq!(call(&server, post.clone(), &cancel_fb, Some(token_b.clone()), Some(body.clone())).await.0, 200);
    let events = server.events("dev-b").await;
    let after: Vec<_> = kinds(&events[before.len()..]).into_iter().map(|(k, _)| k).collect();
    assert_eq!(after, ["canceling", "canceled"]);
    assert_eq!(events.last().unwrap()["version"], "1.2.3");
    assert_eq!(call(&server, post.clone(), &cancel_fb, Some(token_b.clone()), Some(body)).await.0, 404, "once");
    let (_, body) = call(&server, get.clone(), root_b, Some(token_b.clone()), None).await;
    assert!(action_links(&serde_json::from_str::<Value>(&body).unwrap()).is_empty(), "nothing left to do: {body}");
    assert_eq!(raw_status(&server, &cancel, &token_b).await, 404);
    let fb_b = format!("{root_b}/deploymentBase/{deployment_b}/feedback");
    let body = feedback(json!(deployment_b), "closed", "success", &[]);
    assert_eq!(call(&server, post.clone(), &fb_b, Some(token_b.clone()), Some(body)).await.0, 409, "canceled");
}

/// A device with a valid token flooding feedback or polls is held to its per-device rates
/// (`--events-per-minute` 120, `--checkins-per-minute` 60 by default): 429 with `Retry-After`,
/// nothing stored beyond them, and another device is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_ddi_device_is_rate_limited_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let a = target("a-1.2.3.swu", 0);
    let repo = write_repo(dir.path(), &[Target { bytes: a.bytes.clone(), ..target("a-1.2.3.swu", 0) }]);
    let server = Server::start(dir.path(), &repo);
    let deployment = server.deploy(&a, "group-a", &["dev-a", "dev-b"], json!([{"percent": 100}])).await;
    let token_a = format!("TargetToken {}", server.ddi_token("dev-a"));
    let token_b = format!("TargetToken {}", server.ddi_token("dev-b"));
    let root = "/DEFAULT/controller/v1/dev-a";
    assert_eq!(call(&server, reqwest::Method::GET, root, Some(token_a.clone()), None).await.0, 200, "told");

    let client = server.client();
    let fb = server.url(&format!("{root}/deploymentBase/{deployment}/feedback"));
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..150 {
        let body = feedback(json!(deployment), "proceeding", "none", &["flood"]);
        let r = client.post(&fb).header("Authorization", &token_a).header("Content-Type", "application/json");
        let r = r.body(body).send().await.unwrap();
        match r.status().as_u16() {
            200 => accepted += 1,
            429 => {
                refused += 1;
                let after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=60).contains(&after), "Retry-After {after}");
            }
            other => panic!("feedback: {other}"),
        }
    }
    // A burst of 120, plus the 2 a second that refill while the loop runs.
    assert!((120..135).contains(&accepted) && refused > 0, "accepted {accepted}, refused {refused}");
    let stored =
        server.events("dev-a").await.iter().filter(|e| e["reason"].as_str().unwrap().contains("flood")).count();
    assert_eq!(stored, accepted, "only the accepted feedback is stored");
    // Polls count as check-ins: 60 at once (one spent above), then 429.
    let mut polls = Vec::new();
    for _ in 0..80 {
        polls.push(call(&server, reqwest::Method::GET, root, Some(token_a.clone()), None).await.0.as_u16());
    }
    let polled = polls.iter().filter(|s| **s == 200).count();
    assert!((59..70).contains(&polled) && polls.contains(&429), "{polls:?}");
    // dev-b has buckets of its own.
    let root_b = "/DEFAULT/controller/v1/dev-b";
    assert_eq!(call(&server, reqwest::Method::GET, root_b, Some(token_b.clone()), None).await.0, 200);
    let fb_b = format!("{root_b}/deploymentBase/{deployment}/feedback");
    let body = feedback(json!(deployment), "proceeding", "none", &["fine"]);
    assert_eq!(call(&server, reqwest::Method::POST, &fb_b, Some(token_b), Some(body)).await.0, 200);
}
