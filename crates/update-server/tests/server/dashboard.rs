//! The dashboard over the real listener (mutual TLS with `--dashboard`), driven by reqwest as a
//! browser would (no client certificate, cookies by hand): a browser reaches `/dashboard` and
//! nothing else, a device certificate is still checked, login gives a session cookie, every
//! form needs its CSRF token, a viewer cannot act, and untrusted text is shown escaped.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use update_protocol::rollout::DeploymentState;
use update_server::operator::Role;

use crate::util::{ADMIN_TOKEN, Ca, Options, TestServer, client_config};

const VIEWER_TOKEN: &str = "snakeoil-viewer-token-0123456789";

async fn start() -> TestServer {
    TestServer::start(Options {
        dashboard: true,
        operator_tokens: vec![("wall", Role::Viewer, VIEWER_TOKEN)],
        ..Options::default()
    })
    .await
}

/// A browser: trusts the server's CA, has no client certificate, follows no redirects.
fn browser(server: &TestServer) -> reqwest::Client {
    let mut config = client_config(&[server.ca.der()], None);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .resolve("localhost", server.addr)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The `name=value` of the `Set-Cookie` for `name`, and the whole header.
fn set_cookie(r: &reqwest::Response, name: &str) -> (String, String) {
    let header = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie {name}: {:?}", r.headers()));
    (header.split(';').next().unwrap().to_owned(), header)
}

/// The value of the first `name="csrf" value="…"` field in `html`.
fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// Logs in with `token`: the session cookie (`name=value`) and the CSRF token of its pages.
async fn log_in(server: &TestServer, b: &reqwest::Client, token: &str) -> (String, String) {
    let r = b.get(server.url("/dashboard/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (login_cookie, _) = set_cookie(&r, "__Host-update-login");
    let nonce = csrf_in(&r.text().await.unwrap());
    let r = b
        .post(server.url("/dashboard/login"))
        .header("cookie", &login_cookie)
        .form(&[("token", token), ("csrf", &nonce)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (session, header) = set_cookie(&r, "__Host-update-session");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(attribute), "{header}");
    }
    let page = b.get(server.url("/dashboard")).header("cookie", &session).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_in(&page.text().await.unwrap());
    (session, csrf)
}

#[tokio::test]
async fn a_browser_reaches_the_dashboard_and_nothing_else() {
    let server = start().await;
    let b = browser(&server);
    // The handshake lets the browser in; the dashboard answers, with its security headers.
    let r = b.get(server.url("/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/dashboard/login");
    let r = b.get(server.url("/dashboard/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    // Every other route refuses a client without a certificate before any handler.
    for path in ["/repo/metadata/root.json", "/api/v1/health", "/api/v1/devices", "/api/v1/device/push", "/nowhere"] {
        let r = b.get(server.url(path)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "device-identity-required", "{path}");
    }
    let r = b.post(server.url("/api/v1/device/checkin")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(server.state.store.devices().await.unwrap().is_empty(), "no device was recorded");
    // A device certificate is still verified at the handshake: another CA's fails it.
    let stranger = Ca::new("snakeoil other CA").device("device-0001");
    let err = server.raw_tls_get(Some(&stranger), "/dashboard/login").await.unwrap_err();
    assert!(err.contains("UnknownCA"), "{err}");
    // And the right one is served as before.
    let device = server.client(Some(&server.device_ca.device("device-0001")));
    let r = device.get(server.url("/repo/metadata/root.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn without_the_dashboard_the_handshake_still_demands_a_certificate() {
    let server = TestServer::start(Options::default()).await;
    let err = server.raw_tls_get(None, "/dashboard/login").await.unwrap_err();
    assert!(err.contains("CertificateRequired"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn login_needs_a_known_token_and_the_forms_nonce() {
    let server = start().await;
    let b = browser(&server);
    let r = b.get(server.url("/dashboard/login")).send().await.unwrap();
    let (login_cookie, header) = set_cookie(&r, "__Host-update-login");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Strict"), "{header}");
    let nonce = csrf_in(&r.text().await.unwrap());
    let post = |cookie: Option<&str>, form: Vec<(&'static str, String)>| {
        let mut rq = b.post(server.url("/dashboard/login")).form(&form);
        if let Some(c) = cookie {
            rq = rq.header("cookie", c.to_owned());
        }
        rq.send()
    };
    let token = || ("token", ADMIN_TOKEN.to_owned());
    // No nonce, a wrong nonce, or no login cookie (a form posted from another site): 403.
    for (cookie, form) in [
        (Some(login_cookie.as_str()), vec![token()]),
        (Some(login_cookie.as_str()), vec![token(), ("csrf", "0".repeat(64))]),
        (None, vec![token(), ("csrf", nonce.clone())]),
    ] {
        let r = post(cookie, form).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get(SET_COOKIE).is_none(), "no session");
    }
    let r = post(Some(&login_cookie), vec![("token", "not-a-token-at-all-0000".into()), ("csrf", nonce.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.dashboard.as_ref().unwrap().open_sessions(), 0);

    let (session, csrf) = log_in(&server, &b, ADMIN_TOKEN).await;
    assert_eq!(server.dashboard.as_ref().unwrap().open_sessions(), 1);
    let page = b.get(server.url("/dashboard")).header("cookie", &session).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("admin (admin)"), "{page}");
    // A made-up session is no session.
    let r = b.get(server.url("/dashboard")).header("cookie", format!("__Host-update-session={}", "a".repeat(64)));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::SEE_OTHER);
    // Logout needs the CSRF token too, then ends the session.
    let r = b.post(server.url("/dashboard/logout")).header("cookie", &session).form(&[("csrf", "x")]);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let r = b.post(server.url("/dashboard/logout")).header("cookie", &session).form(&[("csrf", &csrf)]);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::SEE_OTHER);
    let r = b.get(server.url("/dashboard")).header("cookie", &session).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "logged out");
    server.stop().await;
}

/// A device reporting hostile text, a release and a deployment, through the real APIs.
async fn seed(server: &TestServer) -> i64 {
    let device = server.client(Some(&server.device_ca.device_in("device-0001", "field")));
    let report = json!({"compatible": "demo-board", "version": "<script>alert(1)</script>", "booted": "A",
        "primary": "A", "slots": [{"name": "A", "state": "good", "version": "<b>bold</b>"}]});
    let r = device.post(server.url("/api/v1/device/checkin")).json(&report).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let event = json!({"kind": "failed", "version": "2.0.0", "time": "2026-03-01T10:00:00Z",
        "reason": "<img src=x onerror=alert(2)>"});
    let r = device.post(server.url("/api/v1/device/events")).json(&event).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let op = server.operator();
    let r = op
        .post(server.url("/api/v1/releases"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"target": "demo-2.0.0.bundle", "version": "2.0.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let release: Value = r.json().await.unwrap();
    let plan = json!({"release": release["id"], "tag": "field", "waves": [{"devices": 1}, {"percent": 100}],
        "min-wave-interval-secs": 3600, "max-failure-percent": 20});
    let r = op.post(server.url("/api/v1/deployments")).bearer_auth(ADMIN_TOKEN).json(&plan).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn untrusted_text_is_shown_escaped() {
    let server = start().await;
    seed(&server).await;
    // Attributes as a hawkBit client reports them (configData; markup is allowed there).
    let attributes = [("<u>name</u>".to_owned(), "<i>value</i>".to_owned())];
    let device_id = update_protocol::DeviceId::parse("device-0001").unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mode = update_server::store::AttributeMode::Merge;
    server.state.store.set_attributes(&device_id, mode, &attributes, now).await.unwrap();
    let b = browser(&server);
    let (session, _) = log_in(&server, &b, VIEWER_TOKEN).await;
    let get = |path: &'static str| {
        let rq = b.get(server.url(path)).header("cookie", session.clone());
        async move { rq.send().await.unwrap().text().await.unwrap() }
    };
    let fleet = get("/dashboard").await;
    assert!(fleet.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{fleet}");
    assert!(fleet.contains("&lt;img src=x onerror=alert(2)&gt;"), "{fleet}");
    let device = get("/dashboard/devices/device-0001").await;
    assert!(device.contains("&lt;b&gt;bold&lt;/b&gt;") && device.contains("&lt;img src=x"), "{device}");
    assert!(device.contains("<td>&lt;u&gt;name&lt;/u&gt;</td><td>&lt;i&gt;value&lt;/i&gt;</td>"), "{device}");
    for page in [&fleet, &device] {
        assert!(!page.contains("<script") && !page.contains("<img") && !page.contains("<b>"), "{page}");
        assert!(!page.contains("<u>") && !page.contains("<i>"), "{page}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_changes_nothing() {
    let server = start().await;
    let id = seed(&server).await;
    let b = browser(&server);
    let (session, csrf) = log_in(&server, &b, ADMIN_TOKEN).await;
    let (other_session, other_csrf) = log_in(&server, &b, ADMIN_TOKEN).await;
    assert_ne!(csrf, other_csrf, "each session has its own token");
    let pause = server.url(&format!("/dashboard/deployments/{id}/pause"));
    let state = || async { server.state.store.deployment(id).await.unwrap().unwrap().state };
    assert_eq!(state().await, DeploymentState::Running);
    for form in [vec![], vec![("csrf", String::new())], vec![("csrf", "0".repeat(64))], vec![("csrf", other_csrf)]] {
        let r = b.post(&pause).header("cookie", &session).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{form:?}");
        assert!(r.text().await.unwrap().contains("CSRF"));
        assert_eq!(state().await, DeploymentState::Running, "{form:?}");
    }
    // The right token without the session cookie: the login page, nothing changed.
    let r = b.post(&pause).form(&[("csrf", &csrf)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(state().await, DeploymentState::Running);
    // A new deployment through the form needs it as well.
    let before = server.state.store.deployments().await.unwrap().len();
    let new = [
        ("release", "1"),
        ("tag", "field"),
        ("waves", "100%"),
        ("min_wave_interval_secs", "0"),
        ("max_failure_percent", "5"),
    ];
    let r = b.post(server.url("/dashboard/deployments")).header("cookie", &session).form(&new).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(server.state.store.deployments().await.unwrap().len(), before);
    // With it, the pause happens.
    let r = b.post(&pause).header("cookie", &session).form(&[("csrf", &csrf)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(state().await, DeploymentState::Paused);
    drop(other_session);
    server.stop().await;
}

#[tokio::test]
async fn a_viewer_sees_but_cannot_act() {
    let server = start().await;
    let id = seed(&server).await;
    let b = browser(&server);
    let (session, csrf) = log_in(&server, &b, VIEWER_TOKEN).await;
    let page = b
        .get(server.url(&format!("/dashboard/deployments/{id}")))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"state\">running<") && !page.contains("id=\"pause\""), "{page}");
    let r = b
        .post(server.url(&format!("/dashboard/deployments/{id}/abort")))
        .header("cookie", &session)
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("needs operator"));
    assert_eq!(server.state.store.deployment(id).await.unwrap().unwrap().state, DeploymentState::Running);
    server.stop().await;
}

/// The fleet page counts every device in the database but lists them a page at a time (100),
/// with a link to the next page, so it stays small for a large fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_page_counts_everything_and_lists_a_page_at_a_time() {
    const DEVICES: usize = 230;
    let server = start().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..DEVICES {
        let device = server.client(Some(&server.device_ca.device(&format!("device-{i:04}"))));
        let (checkin, events) = (server.url("/api/v1/device/checkin"), server.url("/api/v1/device/events"));
        tasks.spawn(async move {
            let version = if i < 130 { "1.0.0" } else { "2.0.0" };
            let report = json!({"compatible": "demo-board", "version": version, "booted": "A", "primary": "A",
                "slots": [{"name": "A", "state": "good", "version": version}]});
            let r = device.post(checkin).json(&report).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            // Ten devices of 2.0.0 failed their last install; one more failed, then committed.
            let kinds: &[&str] = match i {
                130..140 => &["failed"],
                140 => &["failed", "committed"],
                _ => &[],
            };
            for (n, kind) in kinds.iter().enumerate() {
                let e = json!({"kind": kind, "version": "2.0.0", "time": format!("2026-03-01T10:00:0{n}Z")});
                let r = device.post(events.clone()).json(&e).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::NO_CONTENT);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let b = browser(&server);
    let (session, _) = log_in(&server, &b, VIEWER_TOKEN).await;
    let get = |path: String| {
        let rq = b.get(server.url(&path)).header("cookie", session.clone());
        async move {
            let r = rq.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let rows = |page: &str| page.matches("<a href=\"/dashboard/devices/").count();

    let (status, first) = get("/dashboard".to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(first.contains("<span id=\"total\">230</span>"), "{first}");
    assert!(first.contains("<span id=\"online\" class=\"ok\">230</span>"), "{first}");
    assert!(first.contains("<span id=\"failing\" class=\"failing\">10</span>"), "{first}");
    assert!(first.contains("<tr><td>1.0.0</td><td>130</td><td>130</td><td>0</td></tr>"), "{first}");
    assert!(first.contains("<tr><td>2.0.0</td><td>100</td><td>100</td><td>10</td></tr>"), "{first}");
    assert_eq!(rows(&first), 100);
    assert!(first.contains("<a id=\"next\" href=\"/dashboard?after=device-0099\">"), "{first}");

    let (_, second) = get("/dashboard?after=device-0099".to_owned()).await;
    assert_eq!(rows(&second), 100);
    assert!(second.contains("/dashboard/devices/device-0100\"") && second.contains("<span id=\"total\">230</span>"));
    let (_, last) = get("/dashboard?after=device-0199".to_owned()).await;
    assert_eq!(rows(&last), 30);
    assert!(!last.contains("id=\"next\""), "the last page links to no next one");

    let (status, _) = get("/dashboard?after=..%2Fetc".to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not a device id");
    server.stop().await;
}
