//! The repository over HTTPS: whole files, byte ranges (206, 416), If-Range, validators,
//! conditional requests, and paths that must not be served.

use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    LAST_MODIFIED, RANGE,
};

use crate::util::{BUNDLE_PATH, Options, ROOT_JSON, TestServer, Transport, bundle_bytes, raw_get_status};

#[tokio::test]
async fn whole_file_with_length_and_validators() {
    let server = TestServer::start(Options { transport: Transport::Tls, ..Options::default() }).await;
    let client = server.client(None);
    let r = client.get(server.url(&format!("/repo/{BUNDLE_PATH}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h[CONTENT_LENGTH], bundle_bytes().len().to_string().as_str());
    assert_eq!(h[ACCEPT_RANGES], "bytes");
    assert_eq!(h[CONTENT_TYPE], "application/octet-stream");
    let etag = h[ETAG].to_str().unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "strong ETag: {etag}");
    assert!(h.contains_key(LAST_MODIFIED));
    assert_eq!(r.bytes().await.unwrap().as_ref(), bundle_bytes().as_slice());

    let r = client.get(server.url("/repo/metadata/root.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(r.text().await.unwrap(), ROOT_JSON);

    let r = client.head(server.url(&format!("/repo/{BUNDLE_PATH}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_LENGTH], bundle_bytes().len().to_string().as_str());
    assert!(r.bytes().await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn byte_ranges_are_exact() {
    let server = TestServer::start(Options { transport: Transport::Tls, ..Options::default() }).await;
    let client = server.client(None);
    let url = server.url(&format!("/repo/{BUNDLE_PATH}"));
    let all = bundle_bytes();
    let n = all.len();
    for (range, first, last) in [
        ("bytes=0-0".to_owned(), 0, 0),
        ("bytes=100-199".to_owned(), 100, 199),
        (format!("bytes={}-", n - 70_000), n - 70_000, n - 1),
        ("bytes=-4096".to_owned(), n - 4096, n - 1),
        (format!("bytes=5000-{}", n + 1000), 5000, n - 1),
    ] {
        let r = client.get(&url).header(RANGE, &range).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(r.headers()[CONTENT_RANGE], format!("bytes {first}-{last}/{n}").as_str(), "{range}");
        assert_eq!(r.headers()[CONTENT_LENGTH], (last - first + 1).to_string().as_str(), "{range}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &all[first..=last], "{range}");
    }
    // HEAD with a range: the same headers, no body.
    let r = client.head(&url).header(RANGE, "bytes=10-19").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()[CONTENT_LENGTH], "10");
    server.stop().await;
}

#[tokio::test]
async fn ranges_outside_the_file_are_416() {
    let server = TestServer::start(Options { transport: Transport::Tls, ..Options::default() }).await;
    let client = server.client(None);
    let url = server.url(&format!("/repo/{BUNDLE_PATH}"));
    let n = bundle_bytes().len();
    for range in [format!("bytes={n}-"), format!("bytes={}-{}", n + 10, n + 20), "bytes=-0".to_owned()] {
        let r = client.get(&url).header(RANGE, &range).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(r.headers()[CONTENT_RANGE], format!("bytes */{n}").as_str());
    }
    server.stop().await;
}

#[tokio::test]
async fn if_range_resumes_only_the_same_file() {
    let server = TestServer::start(Options { transport: Transport::Tls, ..Options::default() }).await;
    let client = server.client(None);
    let url = server.url(&format!("/repo/{BUNDLE_PATH}"));
    let first = client.get(&url).send().await.unwrap();
    let etag = first.headers()[ETAG].to_str().unwrap().to_owned();
    let last_modified = first.headers()[LAST_MODIFIED].to_str().unwrap().to_owned();
    let all = bundle_bytes();

    for validator in [&etag, &last_modified] {
        let r = client.get(&url).header(RANGE, "bytes=1000-").header(IF_RANGE, validator).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{validator}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &all[1000..]);
    }
    // A stale validator: the whole (new) file, 200.
    let r = client.get(&url).header(RANGE, "bytes=1000-").header(IF_RANGE, "\"stale\"").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), all.len());

    // The file is replaced the way `update-tool repo` does it (rename over): the old ETag no
    // longer resumes.
    let path = server.state.repo.root().join(BUNDLE_PATH);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, b"a different release").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let r = client.get(&url).header(RANGE, "bytes=2-").header(IF_RANGE, &etag).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"a different release");
    server.stop().await;
}

#[tokio::test]
async fn revalidation_is_304() {
    let server = TestServer::start(Options { transport: Transport::Tls, ..Options::default() }).await;
    let client = server.client(None);
    let url = server.url("/repo/metadata/root.json");
    let first = client.get(&url).send().await.unwrap();
    let etag = first.headers()[ETAG].to_str().unwrap().to_owned();
    let last_modified = first.headers()[LAST_MODIFIED].to_str().unwrap().to_owned();
    let r = client.get(&url).header(IF_NONE_MATCH, &etag).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()[ETAG], etag.as_str());
    let r = client.get(&url).header(IF_MODIFIED_SINCE, &last_modified).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    server.stop().await;
}

#[tokio::test]
async fn only_files_inside_the_repository_are_served() {
    let server = TestServer::start(Options { transport: Transport::Plain, ..Options::default() }).await;
    assert_eq!(raw_get_status(server.addr, "/repo/metadata/root.json").await, 200);
    for path in [
        "/repo/../outside.txt",
        "/repo/%2e%2e/outside.txt",
        "/repo/metadata/%2e%2e/%2E%2E/outside.txt",
        "/repo/metadata%2f..%2f..%2foutside.txt",
        "/repo/./metadata/root.json",
        "/repo/metadata%5c..%5c..%5coutside.txt",
        "/repo/.secret",
        "/repo/escape.txt",
        "/repo/metadata",
        "/repo/metadata/",
        "/repo/",
        "/repo/missing.json",
        "/repo//etc/passwd",
        "/repo/%00",
    ] {
        assert_eq!(raw_get_status(server.addr, path).await, 404, "{path}");
    }
    let client = server.client(None);
    let r = client.get(server.url("/repo/.secret")).send().await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not-found");
    let r = client.post(server.url("/repo/metadata/root.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    server.stop().await;
}
