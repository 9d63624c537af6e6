//! The dashboard in a real browser: Debian's headless Chromium, driven over WebDriver
//! (`chromedriver`, spoken to with a small client over HTTP below), against the real server
//! on loopback with mutual TLS and `--dashboard`. An operator logs in with a token and starts
//! a deployment through the form; 20 devices with their own client certificates check in,
//! the two canaries fail, and the page shows the deployment paused; the operator presses
//! Resume and the store says running. Screenshots go to `target/test-artifacts/dashboard/`.
//!
//! Chromium and chromedriver are required: a machine without them fails this test, unless
//! `UPDATE_SERVER_SKIP_BROWSER=1` says to skip it (then it says so on stderr).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use update_protocol::rollout::DeploymentState;
use update_server::clock::Clock;
use update_server::operator::Role;

use crate::util::{Options, TestServer};

const OPERATOR_TOKEN: &str = "snakeoil-operator-token-0123456789";
const FLEET: usize = 20;
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `name` on the PATH, or `None`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

/// Where the screenshots go: `target/test-artifacts/dashboard/` of this workspace (or of
/// `CARGO_TARGET_DIR`).
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from);
    let dir = target.join("test-artifacts/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver, ended (by its own pid) when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session over chromedriver's HTTP API.
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session that trusts
    /// exactly the server certificate whose SubjectPublicKeyInfo hashes to `spki_sha256`.
    async fn start(chromedriver: &Path, chromium: &Path, spki_sha256: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        // chromedriver speaks plain HTTP on loopback; the TLS setting is only there because
        // reqwest is built without a default crypto provider.
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(crate::util::client_config(&[], None))
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_str().unwrap(),
                "args": [
                    // As root in a VM or container: no sandbox, and /dev/shm may be small.
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--window-size=1280,1400",
                    format!("--user-data-dir={}", profile.path().display()),
                    // The server's certificate comes from this test's own throwaway CA on
                    // loopback, which Chromium does not know. Rather than ignoring every
                    // certificate error, trust exactly that certificate's key (Chromium honours
                    // this switch only with --user-data-dir, given above).
                    format!("--ignore-certificate-errors-spki-list={spki_sha256}"),
                ],
            },
        }}});
        let deadline = Instant::now() + Duration::from_secs(20);
        let session = loop {
            match http.post(format!("{}/session", driver.url)).json(&capabilities).send().await {
                Ok(r) => {
                    let body: Value = r.json().await.unwrap();
                    let id = body["value"]["sessionId"].as_str();
                    break id.unwrap_or_else(|| panic!("no WebDriver session: {body}")).to_owned();
                }
                // chromedriver takes a moment to listen.
                Err(e) if Instant::now() < deadline && e.is_connect() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver does not answer: {e}"),
            }
        };
        Self { http, session, _driver: driver, _profile: profile }
    }

    /// One WebDriver command: its `value`, or the status and the error answer.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (StatusCode, Value)> {
        let url = format!("{}/session/{}{path}", self._driver.url, self.session);
        let mut rq = self.http.request(method, url);
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        let r = rq.send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        if status.is_success() { Ok(body["value"].clone()) } else { Err((status, body)) }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method.clone(), path, body).await {
            Ok(v) => v,
            Err((status, body)) => panic!("WebDriver {method} {path}: {status} {body}"),
        }
    }

    /// Clicks `css`, which submits a form or follows a link, and waits until the page it was
    /// on is gone (its root element is stale) and the next one has loaded.
    async fn click_and_wait(&self, css: &str) {
        let old_root = self.find("html").await;
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.try_call(reqwest::Method::GET, &format!("/element/{old_root}/name"), None).await.is_ok() {
            assert!(Instant::now() < deadline, "clicking {css} did not leave the page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Navigation commands wait for the load; the stale check above does not.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self
                .try_call(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(json!({"script": "return document.readyState", "args": []})),
                )
                .await;
            if matches!(&state, Ok(v) if v == "complete") {
                break;
            }
            assert!(Instant::now() < deadline, "the page after {css} did not load: {state:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn title(&self) -> String {
        self.call(reqwest::Method::GET, "/title", None).await.as_str().unwrap().to_owned()
    }

    async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap().to_owned()
    }

    /// The element for a CSS selector (fails the test when there is none).
    async fn find(&self, css: &str) -> String {
        let v =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_owned()
    }

    /// How many elements match a CSS selector.
    async fn count(&self, css: &str) -> usize {
        let v =
            self.call(reqwest::Method::POST, "/elements", Some(json!({"using": "css selector", "value": css}))).await;
        v.as_array().map_or(0, Vec::len)
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{e}/text"), None).await.as_str().unwrap().to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/click"), Some(json!({}))).await;
    }

    /// Replaces the value of the input `css` with `text`.
    async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/clear"), Some(json!({}))).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/value"), Some(json!({"text": text}))).await;
    }

    /// A PNG of the viewport, saved as `name` in the artefacts folder; its path.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        let path = artifacts().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    /// Ends the WebDriver session, so chromedriver quits the browser (also when the test
    /// failed), before chromedriver itself is ended. Plain blocking HTTP: this runs in `drop`.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        let Some(addr) = self._driver.url.strip_prefix("http://") else { return };
        let Ok(mut tcp) = std::net::TcpStream::connect(addr) else { return };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(20)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session
        );
        if tcp.write_all(request.as_bytes()).is_ok() {
            // chromedriver answers once the browser has quit (it may keep the connection open:
            // the first bytes are enough).
            let _ = tcp.read(&mut [0u8; 512]);
        }
    }
}

/// Base64 of the SHA-256 of the server certificate's SubjectPublicKeyInfo (Chromium's pin).
fn spki_pin(cert_pem: &Path) -> String {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_file(cert_pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(cert.tbs_certificate.subject_pki.raw))
}

fn report(version: &str) -> Value {
    json!({"compatible": "demo-board", "version": version, "booted": "A", "primary": "A",
           "slots": [{"name": "A", "state": "good", "version": version}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_the_canaries_pause_a_rollout_and_resumes_it_in_chromium() {
    let (chromium, chromedriver) = (on_path("chromium"), on_path("chromedriver"));
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        let missing = "chromium and chromedriver are needed (Debian packages chromium chromium-driver)";
        if std::env::var("UPDATE_SERVER_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("SKIPPED the dashboard browser test: {missing}; UPDATE_SERVER_SKIP_BROWSER=1 is set");
            return;
        }
        panic!("{missing}; install them, or set UPDATE_SERVER_SKIP_BROWSER=1 to skip this test");
    };

    let clock = Clock::manual(time::OffsetDateTime::now_utc());
    let server = TestServer::start(Options {
        dashboard: true,
        operator_tokens: vec![("ci", Role::Operator, OPERATOR_TOKEN)],
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let devices: Vec<(String, reqwest::Client)> = (0..FLEET)
        .map(|i| {
            let id = format!("device-{i:04}");
            let client = server.client(Some(&server.device_ca.device_in(&id, "field")));
            (id, client)
        })
        .collect();
    let check_in_all = || async {
        let mut told = BTreeSet::new();
        for (id, client) in &devices {
            let r = client.post(server.url("/api/v1/device/checkin")).json(&report("1.0.0")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{id}");
            let answer: Value = r.json().await.unwrap();
            if answer["assignment"]["action"] == "install" {
                told.insert(id.clone());
            }
        }
        told
    };
    assert!(check_in_all().await.is_empty(), "no deployment yet");
    // The release is registered through the operator API (a signed repository target).
    let r = server
        .operator()
        .post(server.url("/api/v1/releases"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({"target": "demo-2.0.0.bundle", "version": "2.0.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let browser = Browser::start(&chromedriver, &chromium, &spki_pin(&server.dir.path().join("server.crt"))).await;
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let result = async {
        // Log in with the operator token.
        browser.goto(&format!("{base}/dashboard")).await;
        assert_eq!(browser.title().await, "Log in · update-server", "redirected to the login page");
        browser.screenshot("01-login.png").await;
        browser.fill("#token", OPERATOR_TOKEN).await;
        browser.click_and_wait("#login-button").await;
        assert_eq!(browser.title().await, "Fleet · update-server");
        assert_eq!(browser.text("#total").await, FLEET.to_string());
        assert_eq!(browser.text("#online").await, FLEET.to_string());
        assert!(browser.text("header").await.contains("ci (operator)"));
        browser.screenshot("02-fleet.png").await;

        // Start a deployment through the form: two canaries, then 50%, then everyone; pause
        // above 20% failures.
        browser.click_and_wait("a[href='/dashboard/deployments']").await;
        assert_eq!(browser.title().await, "Deployments · update-server");
        browser.fill("#tag", "field").await;
        browser.fill("#waves", "2, 50%, 100%").await;
        browser.fill("#threshold", "20").await;
        browser.click_and_wait("#start-deployment").await;
        assert!(browser.title().await.starts_with("Deployment "), "{}", browser.title().await);
        let id: i64 = browser.current_url().await.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(browser.text("#state").await, "running");
        let stored = server.state.store.deployment(id).await.unwrap().unwrap();
        assert_eq!(
            (stored.state, stored.tag.as_str(), stored.max_failure_percent),
            (DeploymentState::Running, "field", 20)
        );
        assert_eq!(stored.created_by, "ci");

        // The devices check in: exactly two canaries are told to install; both fail.
        let canaries = check_in_all().await;
        assert_eq!(canaries.len(), 2, "{canaries:?}");
        for (id, client) in devices.iter().filter(|(id, _)| canaries.contains(id)) {
            let steps = [
                ("downloading", None),
                ("installed", None),
                ("rebooted", None),
                ("failed", Some("health check 'app answers' failed")),
                ("rolled-back", Some("booted slot A after a failed trial")),
            ];
            for (i, (kind, reason)) in steps.into_iter().enumerate() {
                clock.advance(time::Duration::seconds(7));
                let mut e = json!({"kind": kind, "version": "2.0.0", "time": format!("2026-03-01T10:00:0{i}Z")});
                if let Some(r) = reason {
                    e["reason"] = json!(r);
                }
                let r = client.post(server.url("/api/v1/device/events")).json(&e).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::NO_CONTENT, "{id} {kind}");
            }
        }

        // The page shows the automatic pause and why.
        browser.goto(&format!("{base}/dashboard/deployments/{id}")).await;
        assert_eq!(browser.text("#state").await, "paused");
        assert_eq!(browser.text("#pause-reason").await, "Paused: wave 1 of 3: failure rate 1/1 is over 20%");
        assert_eq!(browser.count("#failure-chart polyline.rate").await, 1, "the failure-rate chart has a line");
        assert!(browser.text("#failure-chart").await.contains("100.0%"));
        assert_eq!(browser.count("#resume").await, 1);
        assert_eq!(browser.count("#pause").await, 0);
        let paused_png = browser.screenshot("03-deployment-paused.png").await;
        let fleet_failing = async {
            browser.goto(&format!("{base}/dashboard")).await;
            browser.text("#failing").await
        };
        assert_eq!(fleet_failing.await, "2");
        browser.screenshot("04-fleet-failing.png").await;

        // Resume: the store says running, and so does the page.
        browser.goto(&format!("{base}/dashboard/deployments/{id}")).await;
        browser.click_and_wait("#resume").await;
        assert_eq!(browser.text("#state").await, "running");
        let stored = server.state.store.deployment(id).await.unwrap().unwrap();
        assert_eq!(stored.state, DeploymentState::Running);
        assert_eq!(stored.pause_reason, None);
        browser.screenshot("05-deployment-resumed.png").await;
        // The audit log names the dashboard's operator.
        let log = server.operator_get("/api/v1/audit").await;
        let actions: Vec<(String, String)> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["actor"].as_str().unwrap_or_default().to_owned(),
                    e["action"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        for action in ["create-deployment", "resume-deployment"] {
            assert!(actions.contains(&("ci".to_owned(), action.to_owned())), "{action}: {actions:?}");
        }
        paused_png
    }
    .await;
    drop(browser);
    server.stop().await;
    eprintln!("dashboard screenshots in {} (the paused deployment: {})", artifacts().display(), result.display());
}
