//! Push: a device holding `/api/v1/device/push` receives `check-now` within 2 s of the
//! operator's request; keep-alive comments flow; a request made while it was away arrives
//! when it connects and at its next check-in; shutdown ends the streams.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use update_protocol::DeviceId;
use update_protocol::push::CHECK_NOW;

use crate::util::{ADMIN_TOKEN, Options, PUSH_KEEP_ALIVE, TestServer, Transport};

/// Reads a server-sent-events response as text.
pub struct SseReader {
    response: reqwest::Response,
    seen: String,
}

impl SseReader {
    pub async fn open(client: &reqwest::Client, url: String) -> Self {
        let response = client.get(url).header("accept", "text/event-stream").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, seen: String::new() }
    }

    /// Waits until the text after what earlier calls consumed contains `needle`; returns that
    /// text and consumes it.
    pub async fn until(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(at) = self.seen.find(needle) {
                let rest = self.seen.split_off(at + needle.len());
                return std::mem::replace(&mut self.seen, rest);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.seen.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(Ok(None)) => panic!("stream ended before {needle:?}; got {:?}", self.seen),
                Ok(Err(e)) => panic!("stream failed before {needle:?}: {e}"),
                Err(_) => panic!("no {needle:?} within {within:?}; got {:?}", self.seen),
            }
        }
    }

    /// Whether the stream ends (cleanly or not) within `within`.
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.seen.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(Ok(None) | Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// The operator asks: `POST /api/v1/devices/{id}/check-now`. Returns the answer.
async fn ask_check_now(server: &TestServer, device: &str) -> Value {
    let r = server
        .operator()
        .post(server.url(&format!("/api/v1/devices/{device}/check-now")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    r.json().await.unwrap()
}

async fn check_in(client: &reqwest::Client, server: &TestServer) -> Value {
    let r = client.post(server.url("/api/v1/device/checkin")).json(&json!({"version": "1.0.0"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_connected_device_gets_check_now_within_two_seconds() {
    let server = TestServer::start(Options::default()).await;
    let device = server.client(Some(&server.device_ca.device("device-0001")));
    let bystander = server.client(Some(&server.device_ca.device("device-0002")));
    check_in(&device, &server).await;
    check_in(&bystander, &server).await;
    let mut stream = SseReader::open(&device, server.url("/api/v1/device/push")).await;
    let mut other = SseReader::open(&bystander, server.url("/api/v1/device/push")).await;
    stream.until(": connected\n\n", Duration::from_secs(2)).await;
    other.until(": connected\n\n", Duration::from_secs(2)).await;

    let asked = Instant::now();
    let answer = ask_check_now(&server, "device-0001").await;
    assert_eq!(answer, json!({"device-id": "device-0001", "pushed": 1}));
    stream.until("event: check-now\ndata: {}\n\n", Duration::from_secs(2)).await;
    assert!(asked.elapsed() < Duration::from_secs(2));
    // Only that device: the other stream sees keep-alives and nothing else.
    let text = other.until(": keep-alive\n\n", PUSH_KEEP_ALIVE * 4).await;
    assert!(!text.contains(CHECK_NOW), "{text:?}");
    // The flag is returned by the device's next check-in, once.
    assert_eq!(check_in(&device, &server).await[CHECK_NOW], true);
    assert_eq!(check_in(&device, &server).await[CHECK_NOW], false);
    server.stop().await;
}

#[tokio::test]
async fn keep_alive_comments_flow() {
    let server = TestServer::start(Options::default()).await;
    let device = server.client(Some(&server.device_ca.device("device-0001")));
    let mut stream = SseReader::open(&device, server.url("/api/v1/device/push")).await;
    for _ in 0..3 {
        stream.until(": keep-alive\n\n", PUSH_KEEP_ALIVE * 4).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_request_made_while_away_arrives_on_connect() {
    let server = TestServer::start(Options::default()).await;
    let device = server.client(Some(&server.device_ca.device("device-0001")));
    check_in(&device, &server).await;
    assert_eq!(ask_check_now(&server, "device-0001").await["pushed"], 0, "not connected");
    let mut stream = SseReader::open(&device, server.url("/api/v1/device/push")).await;
    let text = stream.until("event: check-now\n", Duration::from_secs(2)).await;
    assert!(text.starts_with(": connected\n\n"), "{text:?}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_the_streams() {
    let server = TestServer::start(Options::default()).await;
    let device = server.client(Some(&server.device_ca.device("device-0001")));
    let mut stream = SseReader::open(&device, server.url("/api/v1/device/push")).await;
    stream.until(": connected\n\n", Duration::from_secs(2)).await;
    let push = server.state.push.clone();
    let started = Instant::now();
    push.close();
    assert!(stream.ends_within(Duration::from_secs(2)).await);
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5), "graceful shutdown took {:?}", started.elapsed());
}

#[tokio::test]
async fn push_needs_a_device_identity() {
    let server = TestServer::start(Options { transport: Transport::Tls, ..Options::default() }).await;
    let r = server.client(None).get(server.url("/api/v1/device/push")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;

    let options = Options { transport: Transport::Plain, insecure_device_ids: true, ..Options::default() };
    let server = TestServer::start(options).await;
    let client = server.client(None);
    let mut stream = SseReader::open(&client, server.url("/api/v1/device/push?device-id=bench-7")).await;
    stream.until(": connected\n\n", Duration::from_secs(2)).await;
    assert_eq!(server.state.push.connected(&DeviceId::parse("bench-7").unwrap()), 1);
    server.stop().await;
}
