//! Two real `update-server` processes on one PostgreSQL database: a device holds its push
//! stream on server B, the operator asks server A, and the device hears `check-now` from B.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pg::Cluster;

const TOKEN: &str = "snakeoil-admin-token-0123456789";

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path, db: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_update-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--insecure-device-ids", "--db", db])
        .arg("--repo")
        .arg(dir.join("repo"))
        .arg("--admin-token-file")
        .arg(dir.join("token"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("update-server exited before it was ready").unwrap();
        if let Some(at) = line.find("listen=127.0.0.1:") {
            let rest = &line[at + "listen=127.0.0.1:".len()..];
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Server { child, port }
}

#[tokio::test]
async fn a_check_now_through_one_server_reaches_a_device_on_another() {
    let Some(cluster) = Cluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("repo/metadata")).unwrap();
    std::fs::create_dir_all(dir.path().join("repo/targets")).unwrap();
    std::fs::write(dir.path().join("repo/metadata/root.json"), "{\"signed\":{\"_type\":\"root\"},\"signatures\":[]}\n")
        .unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(dir.path().join("token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let db = cluster.url();
    let a = start(dir.path(), &db);
    let b = start(dir.path(), &db);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let url = |s: &Server, path: &str| format!("http://127.0.0.1:{}{path}", s.port);

    // The device checks in through B and holds its stream there.
    let r = client
        .post(url(&b, "/api/v1/device/checkin"))
        .json(&serde_json::json!({"device-id": "dev-1", "version": "1.0.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = client.get(url(&b, "/api/v1/device/push?device-id=dev-1")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    while !seen.contains("connected") {
        seen.push_str(std::str::from_utf8(&stream.chunk().await.unwrap().unwrap()).unwrap());
    }

    // The operator asks A, which holds no stream for the device.
    let asked = Instant::now();
    let r = client.post(url(&a, "/api/v1/devices/dev-1/check-now")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["pushed"], 0, "A has no stream of its own: {body}");
    loop {
        let left = Duration::from_secs(5).saturating_sub(asked.elapsed());
        let chunk = tokio::time::timeout(left, stream.chunk()).await.expect("no check-now on B within 5 s");
        seen.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
        if seen.contains("event: check-now") {
            break;
        }
    }
    eprintln!("check-now crossed servers in {:?}", asked.elapsed());
}
