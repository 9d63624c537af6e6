//! Mutual TLS: a client without a certificate, or with one from another CA, or a revoked one,
//! fails the handshake and never reaches a handler; a device with the right certificate is
//! served.

use reqwest::StatusCode;

use crate::util::{BUNDLE_PATH, Ca, Options, ROOT_JSON, TestServer, bundle_bytes};

#[tokio::test]
async fn no_client_certificate_fails_the_handshake() {
    let server = TestServer::start(Options::default()).await;
    let err = server.raw_tls_get(None, "/repo/metadata/root.json").await.unwrap_err();
    assert!(err.contains("CertificateRequired"), "{err}");
    let err = server.client(None).get(server.url("/repo/metadata/root.json")).send().await.unwrap_err();
    assert!(format!("{err:?}").contains("CertificateRequired"), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn certificate_from_another_ca_fails_the_handshake() {
    let server = TestServer::start(Options::default()).await;
    let stranger = Ca::new("snakeoil other CA").device("device-0001");
    let err = server.raw_tls_get(Some(&stranger), "/repo/metadata/root.json").await.unwrap_err();
    assert!(err.contains("UnknownCA"), "{err}");
    // The server's own CA issues server certificates, not device ones: also refused.
    let wrong_ca = server.ca.device("device-0001");
    let err = server.client(Some(&wrong_ca)).get(server.url("/repo/metadata/root.json")).send().await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownCA"), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn the_right_certificate_is_served() {
    let server = TestServer::start(Options::default()).await;
    let device = server.device_ca.device("device-0001");
    assert_eq!(server.raw_tls_get(Some(&device), "/repo/metadata/root.json").await.unwrap(), "HTTP/1.1 200 OK");
    let client = server.client(Some(&device));
    let r = client.get(server.url("/repo/metadata/root.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN offers h2");
    assert_eq!(r.text().await.unwrap(), ROOT_JSON);
    let r = client.get(server.url(&format!("/repo/{BUNDLE_PATH}"))).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), bundle_bytes().as_slice());
    server.stop().await;
}

#[tokio::test]
async fn a_revoked_certificate_fails_the_handshake() {
    let server = TestServer::start(Options { revoked: vec![66], ..Options::default() }).await;
    let revoked = server.device_ca.device_with_serial("device-0066", 66);
    let err = server.raw_tls_get(Some(&revoked), "/repo/metadata/root.json").await.unwrap_err();
    assert!(err.contains("CertificateRevoked"), "{err}");
    let good = server.device_ca.device_with_serial("device-0067", 67);
    assert_eq!(server.raw_tls_get(Some(&good), "/repo/metadata/root.json").await.unwrap(), "HTTP/1.1 200 OK");
    server.stop().await;
}
