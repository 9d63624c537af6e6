//! The device's own transport (`update-fetch`: ureq, rustls, mutual TLS) against the server:
//! metadata reads, a download resumed with `Range`/`If-Range`, a restart when the file changed,
//! and a refusal without the device certificate.

use std::path::{Path, PathBuf};

use sha2::Digest;
use update_core::config::Secure;
use update_core::driver::NoProgress;
use update_fetch::{FetchOptions, Fetcher, PartialMarker, TlsSettings};

use crate::util::{BUNDLE_PATH, Options, ROOT_JSON, TestServer, bundle_bytes};

fn fetcher(server: &TestServer, secure: Secure) -> Fetcher {
    let dir = server.dir.path();
    std::fs::write(dir.join("server-ca.crt"), server.ca.pem()).unwrap();
    let (cert, key) = server.device_ca.device("device-0001").write(dir, "device");
    Fetcher::new(FetchOptions {
        tls: TlsSettings { server_ca: Some(dir.join("server-ca.crt")), client_cert: Some(cert), client_key: Some(key) },
        secure,
        attempts: 1,
        ..FetchOptions::default()
    })
    .unwrap()
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Leaves `dest` as an interrupted download: `prefix` on disk and the marker the fetcher wrote.
fn interrupted(url: &str, dest: &Path, prefix: &[u8], validator: &str) {
    std::fs::write(with_suffix(dest, ".partial"), prefix).unwrap();
    let marker = PartialMarker {
        url: url.to_owned(),
        validator: Some(validator.to_owned()),
        bytes: prefix.len() as u64,
        total: None,
        state: "partial".to_owned(),
    };
    std::fs::write(with_suffix(dest, ".partial.json"), serde_json::to_vec(&marker).unwrap()).unwrap();
}

async fn etag(server: &TestServer, path: &str) -> String {
    let client = server.client(Some(&server.device_ca.device("device-0001")));
    let r = client.head(server.url(path)).send().await.unwrap();
    r.headers()["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_device_transport_resumes_from_the_server() {
    let server = TestServer::start(Options::default()).await;
    let url = server.url(&format!("/repo/{BUNDLE_PATH}"));
    let all = bundle_bytes();
    let etag = etag(&server, &format!("/repo/{BUNDLE_PATH}")).await;
    let f = fetcher(&server, Secure::MutualTls);

    let root = {
        let (f, url) = (f.clone(), server.url("/repo/metadata/root.json"));
        tokio::task::spawn_blocking(move || f.get_bytes(&url, 1 << 20)).await.unwrap().unwrap()
    };
    assert_eq!(root.as_deref(), Some(ROOT_JSON.as_bytes()));

    // A cut after 100 000 bytes, with the current ETag: only the rest is asked for and
    // appended. The prefix on disk is deliberately not the file's, which proves the server
    // answered 206 with exactly the missing bytes rather than the whole file.
    let dest = server.dir.path().join("resumed.bundle");
    interrupted(&url, &dest, &vec![0u8; 100_000], &etag);
    let (f2, url2, dest2, n) = (f.clone(), url.clone(), dest.clone(), all.len() as u64);
    tokio::task::spawn_blocking(move || f2.download(&url2, &dest2, n, None, &NoProgress)).await.unwrap().unwrap();
    let got = std::fs::read(&dest).unwrap();
    assert_eq!(got.len(), all.len());
    assert!(got[..100_000].iter().all(|b| *b == 0));
    assert_eq!(&got[100_000..], &all[100_000..]);

    // The same cut, checked against the signed length and hash: a whole, verified file.
    let dest = server.dir.path().join("verified.bundle");
    interrupted(&url, &dest, &all[..123_457], &etag);
    let sha = hex::encode(sha2::Sha256::digest(&all));
    let (f2, url2, dest2) = (f.clone(), url.clone(), dest.clone());
    tokio::task::spawn_blocking(move || f2.download(&url2, &dest2, n, Some((n, &sha)), &NoProgress))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), all);

    // The file changed since the cut (another ETag): the server sends it whole and the
    // fetcher starts over.
    let dest = server.dir.path().join("restarted.bundle");
    interrupted(&url, &dest, &vec![0u8; 100_000], "\"an-older-file\"");
    let (f2, url2, dest2) = (f.clone(), url.clone(), dest.clone());
    tokio::task::spawn_blocking(move || f2.download(&url2, &dest2, n, None, &NoProgress)).await.unwrap().unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), all);
    server.stop().await;
}

#[tokio::test]
async fn the_device_transport_without_its_certificate_is_refused() {
    let server = TestServer::start(Options::default()).await;
    let f = fetcher(&server, Secure::ServerAuth);
    let url = server.url("/repo/metadata/root.json");
    let e = tokio::task::spawn_blocking(move || f.get_bytes(&url, 1 << 20)).await.unwrap().unwrap_err();
    assert_eq!(e.kind(), update_core::ErrorKind::Source, "{e}");
    server.stop().await;
}
