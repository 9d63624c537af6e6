//! hawkBit DDI end to end: the real `update-server` binary (`serve --ddi`, HTTPS with rustls on
//! 127.0.0.1, a real SQLite file), releases and deployments made through the operator API, and
//!
//! - `suricatta`: the real SWUpdate suricatta client (Debian's `swupdate` package) installing
//!   a real CMS-signed `.swu` (openssl cms, cpio -H crc) into a file, confirming after its
//!   "reboot", and a second device failing on a hardware mismatch, which pauses its
//!   deployment. Fails when swupdate is missing, unless `UPDATE_SERVER_SKIP_SURICATTA=1`.
//! - `hostile`: reqwest and raw TLS requests that must be refused with a clear 4xx and change
//!   nothing.
//!
//! Everything is written under temp directories; every process started here is stopped here.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code, reason = "shared helpers; not every one is used here")]
#[path = "../server/util.rs"]
mod util;

mod hostile;
mod mtls;
mod suricatta;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::util::{ADMIN_TOKEN, Ca, Identity, client_for};

/// The gateway token of the test servers.
pub(crate) const GATEWAY_TOKEN: &str = "snakeoil-gateway-token-0123456789";

/// A target of the test repository: its name, version and bytes.
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) bytes: Vec<u8>,
}

/// Writes a repository whose targets metadata lists `targets` (unsigned: the server only reads
/// which targets it lists and their length and SHA-256; devices check signatures). The first
/// target's file is stored under its consistent-snapshot name `SHA256.NAME`, the others under
/// their plain names, so both lookups are used.
pub(crate) fn write_repo(dir: &Path, targets: &[Target]) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("metadata")).unwrap();
    std::fs::create_dir_all(repo.join("targets")).unwrap();
    std::fs::write(repo.join("metadata/root.json"), util::ROOT_JSON).unwrap();
    let mut listed = serde_json::Map::new();
    for (i, t) in targets.iter().enumerate() {
        let sha256 = hex::encode(Sha256::digest(&t.bytes));
        let file = if i == 0 { format!("{sha256}.{}", t.name) } else { t.name.clone() };
        std::fs::write(repo.join("targets").join(file), &t.bytes).unwrap();
        listed.insert(
            t.name.clone(),
            json!({"length": t.bytes.len(), "hashes": {"sha256": sha256}, "custom": {"version": t.version}}),
        );
    }
    let meta = json!({"signed": {"_type": "targets", "version": 1, "targets": listed}, "signatures": []});
    std::fs::write(repo.join("metadata/1.targets.json"), meta.to_string()).unwrap();
    repo
}

/// The real server binary, stopped on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) ca: Ca,
    pub(crate) ca_file: PathBuf,
    pub(crate) db: String,
    pub(crate) log: PathBuf,
    /// What the server's own clients present (mutual TLS only).
    identity: Option<Identity>,
}

impl Server {
    /// Starts `update-server serve --ddi --ddi-poll-secs 1` on 127.0.0.1 (a port of the
    /// kernel's choosing) with HTTPS, an admin token and a gateway token.
    pub(crate) fn start(dir: &Path, repo: &Path) -> Self {
        Self::start_with(dir, repo, None)
    }

    /// [`Server::start`], with mutual TLS when `device_ca` is given (`--client-ca`): the
    /// server's own clients then present an `operator-console` certificate from it.
    pub(crate) fn start_with(dir: &Path, repo: &Path, device_ca: Option<&Ca>) -> Self {
        let ca = Ca::new("snakeoil DDI server CA");
        let (cert, key) = ca.server().write(dir, "server");
        let ca_file = dir.join("server-ca.crt");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let secret = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            p
        };
        let admin = secret("admin.token", ADMIN_TOKEN);
        let gateway = secret("gateway.token", GATEWAY_TOKEN);
        let db = format!("sqlite:{}", dir.join("server.db").display());
        let log = dir.join("server.log");
        let client_ca = device_ca.map(|c| {
            let p = dir.join("device-ca.crt");
            std::fs::write(&p, c.pem()).unwrap();
            p
        });
        let identity = device_ca.map(|c| c.device("operator-console"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_update-server"))
            .arg("serve")
            .arg("--repo")
            .arg(repo)
            .args(["--listen", "127.0.0.1:0", "--db", &db, "--ddi", "--ddi-poll-secs", "1"])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .arg("--admin-token-file")
            .arg(&admin)
            .arg("--ddi-gateway-token-file")
            .arg(&gateway)
            .args(client_ca.iter().flat_map(|p| [std::ffi::OsStr::new("--client-ca"), p.as_os_str()]))
            .env("RUST_LOG", "info,update_server=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The log goes to a file (kept for a failing test's message); the ready line names the
        // address.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log_path = log.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&log_path).unwrap();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                if line.contains("update-server ready")
                    && let Some(addr) = line.split_whitespace().find_map(|w| w.strip_prefix("listen="))
                {
                    let _ = tx.send(addr.parse::<std::net::SocketAddr>().unwrap());
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("update-server did not start: {}", std::fs::read_to_string(&log).unwrap_or_default());
        };
        Self { child, addr, ca, ca_file, db, log, identity }
    }

    /// `https://localhost:PORT/path` (reqwest resolves localhost to the server's address).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// A client trusting the server (with mutual TLS: presenting `operator-console`).
    pub(crate) fn client(&self) -> reqwest::Client {
        client_for(self.addr, &[self.ca.der()], self.identity.as_ref())
    }

    /// `update-server ddi-token DEVICE`: the new token it prints.
    pub(crate) fn ddi_token(&self, device: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_update-server"))
            .args(["ddi-token", device, "--db", &self.db])
            .output()
            .unwrap();
        assert!(out.status.success(), "ddi-token: {}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert_eq!(token.len(), 64, "{token:?}");
        token
    }

    /// An operator API call with the admin token: the JSON answer (other statuses panic).
    pub(crate) async fn operator(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self.client().request(method.clone(), self.url(path)).bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        self.operator(reqwest::Method::GET, path, None).await
    }

    /// Registers `target` as a release, tags `devices` with `tag` (none: the tag has its
    /// members already, from their certificates) and deploys the release to
    /// the tag in `waves` an hour apart that pause on the first failure. Returns the
    /// deployment id.
    pub(crate) async fn deploy(&self, target: &Target, tag: &str, devices: &[&str], waves: Value) -> i64 {
        let release = self
            .operator(
                reqwest::Method::POST,
                "/api/v1/releases",
                Some(json!({"target": target.name, "version": target.version})),
            )
            .await;
        if !devices.is_empty() {
            let path = format!("/api/v1/tags/{tag}/devices");
            self.operator(reqwest::Method::POST, &path, Some(json!({"devices": devices}))).await;
        }
        let d = self
            .operator(
                reqwest::Method::POST,
                "/api/v1/deployments",
                Some(json!({"release": release["id"], "tag": tag, "waves": waves,
                            "min-wave-interval-secs": 3600, "max-failure-percent": 0})),
            )
            .await;
        d["id"].as_i64().unwrap()
    }

    /// The device's events, oldest first (`[]` before it is known).
    pub(crate) async fn events(&self, device: &str) -> Vec<Value> {
        let r = self.client().get(self.url(&format!("/api/v1/devices/{device}/events"))).bearer_auth(ADMIN_TOKEN);
        let r = r.send().await.unwrap();
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Vec::new();
        }
        let v: Value = r.json().await.unwrap();
        v["events"].as_array().cloned().or_else(|| v.as_array().cloned()).unwrap_or_default()
    }

    /// Waits up to `limit` for `done(events)`; the events then.
    pub(crate) async fn wait_for_events(
        &self,
        device: &str,
        limit: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let events = self.events(device).await;
            if done(&events) {
                return events;
            }
            assert!(
                start.elapsed() < limit,
                "{device}: timed out; events: {events:#?}\nserver log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `(kind, reason)` of each event.
pub(crate) fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (e["kind"].as_str().unwrap_or_default().to_owned(), e["reason"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// The names of a poll's links to an action (`deploymentBase`, `cancelAction`), without
/// `configData` (asked for until the device has sent its attributes).
pub(crate) fn action_links(poll: &Value) -> Vec<String> {
    poll["_links"].as_object().map_or_else(Vec::new, |l| l.keys().filter(|k| *k != "configData").cloned().collect())
}
