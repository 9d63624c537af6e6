//! Resource control, one attack each (issue 14, item 4): many raw sockets, a slow body, an idle
//! HTTP/2 connection, an event flood, 2,000 push streams from one device. Each runs against a
//! real listener (rustls, mutual TLS, loopback sockets) and checks two things: the limit
//! triggered, and a well-behaved device's check-in still succeeds while the attack goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use update_protocol::DeviceId;
use update_server::limits::Limits;
use update_server::store::EventRetention;

use crate::util::{Identity, Options, TestServer, client_config};

async fn start(limits: Limits) -> TestServer {
    TestServer::start(Options { limits, ..Options::default() }).await
}

/// The well-behaved device: a fresh connection, one check-in, within 5 s.
async fn good_check_in(server: &TestServer, device: &Identity) {
    let client = server.client(Some(device));
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        client.post(server.url("/api/v1/device/checkin")).json(&json!({"version": "1.0.0"})).send(),
    )
    .await
    .expect("the well-behaved device's check-in took over 5 s")
    .expect("the well-behaved device's check-in failed");
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A TLS connection presenting `identity`, with the given ALPN protocols.
async fn tls_connect(
    server: &TestServer,
    identity: &Identity,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = client_config(&[server.ca.der()], Some(identity));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    connector.connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.unwrap()
}

#[tokio::test]
async fn many_raw_sockets_evict_each_other_not_the_devices() {
    let limits = Limits { max_connections: 64, ..Limits::default() };
    let server = start(limits).await;
    let device = server.device_ca.device("device-good");
    // 300 sockets that connect and never say a word (the TLS handshake never starts).
    let mut raw = Vec::new();
    for _ in 0..300 {
        raw.push(TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.connections.open() <= 64, "{} open", server.connections.open());
    assert!(server.connections.turned_away() >= 236, "turned away: {}", server.connections.turned_away());
    for _ in 0..3 {
        good_check_in(&server, &device).await;
    }
    // The evicted sockets were closed by the server: reading gives EOF (or a reset).
    let mut buf = [0u8; 1];
    let first = tokio::time::timeout(Duration::from_secs(2), raw[0].read(&mut buf)).await.unwrap();
    assert!(matches!(first, Ok(0) | Err(_)), "{first:?}");
    drop(raw);
    server.stop().await;
}

#[tokio::test]
async fn a_slow_body_is_cut_off_at_the_body_timeout() {
    let limits = Limits { body_timeout: Duration::from_secs(1), ..Limits::default() };
    let server = start(limits).await;
    let attacker = server.device_ca.device("device-slow");
    let device = server.device_ca.device("device-good");
    let mut tls = tls_connect(&server, &attacker, &[b"http/1.1"]).await;
    let head = "POST /api/v1/device/checkin HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    tls.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        // One byte every 200 ms: 1000 bytes would take 200 s.
        let mut answer = Vec::new();
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if tls.write_all(b" ").await.is_err() {
                break;
            }
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(1), tls.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if !answer.is_empty() {
                break;
            }
        }
        answer
    });
    good_check_in(&server, &device).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), trickle).await.expect("still trickling").unwrap();
    let elapsed = started.elapsed();
    let status = String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned();
    assert!(status.is_empty() || status.starts_with("HTTP/1.1 4"), "{status:?}");
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4), "{elapsed:?}");
    server.stop().await;
}

#[tokio::test]
async fn an_idle_http2_connection_gets_goaway_and_is_closed() {
    let limits = Limits { idle_timeout: Duration::from_secs(1), ..Limits::default() };
    let server = start(limits).await;
    let attacker = server.device_ca.device("device-idle");
    let device = server.device_ca.device("device-good");
    let mut tls = tls_connect(&server, &attacker, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // The client preface and an empty SETTINGS frame, then nothing.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    });
    good_check_in(&server, &device).await;
    let seen =
        tokio::time::timeout(Duration::from_secs(5), reader).await.expect("the idle connection stayed open").unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    // Walk the frames: one of them is a GOAWAY (type 7).
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 9 <= seen.len() {
        let len = usize::from(seen[at]) << 16 | usize::from(seen[at + 1]) << 8 | usize::from(seen[at + 2]);
        frames.push(seen[at + 3]);
        at += 9 + len;
    }
    assert!(frames.contains(&7), "frame types {frames:?}");
    server.stop().await;
}

#[tokio::test]
async fn an_event_flood_is_refused_with_429_beyond_the_rate() {
    let limits = Limits { events_per_minute: 30, ..Limits::default() };
    let server = start(limits).await;
    let attacker = server.client(Some(&server.device_ca.device("device-flood")));
    let device = server.device_ca.device("device-good");
    let mut stored = 0;
    let mut refused = 0;
    let mut retry_after = None;
    for i in 0..200 {
        let event = json!({"kind": "failed", "reason": format!("flood {i}"), "time": "2026-03-01T10:00:00Z"});
        let r = attacker.post(server.url("/api/v1/device/events")).json(&event).send().await.unwrap();
        match r.status() {
            StatusCode::NO_CONTENT => stored += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["error"], "rate-limited");
            }
            other => panic!("event {i}: {other}"),
        }
        if i == 100 {
            good_check_in(&server, &device).await;
        }
    }
    assert!((30..=32).contains(&stored), "stored {stored}");
    assert_eq!(stored + refused, 200);
    assert!(retry_after.is_some_and(|s| (1..=2).contains(&s)), "{retry_after:?}");
    let events = server.state.store.events(&DeviceId::parse("device-flood").unwrap(), 0, 1000).await.unwrap().unwrap();
    assert_eq!(events.len(), stored);
    // The good device's own events are not counted against the flooder's.
    let good = server.client(Some(&device));
    let event = json!({"kind": "checking", "time": "2026-03-01T10:00:00Z"});
    let r = good.post(server.url("/api/v1/device/events")).json(&event).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // Retention by count (what `serve --events-per-device 10` runs every minute): the flooder
    // keeps its 10 newest events, the good device its one.
    let retention = EventRetention { max_age: None, per_device: Some(10) };
    let pruned = server.state.store.prune_events(&retention, 0, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(pruned.deleted, stored as u64 - 10);
    let flooder = DeviceId::parse("device-flood").unwrap();
    let left = server.state.store.events(&flooder, 0, 1000).await.unwrap().unwrap();
    assert_eq!(left.len(), 10);
    assert_eq!(left.last().unwrap().seq, events.last().unwrap().seq, "the newest are kept");
    let good_events = server.state.store.events(&DeviceId::parse("device-good").unwrap(), 0, 10).await.unwrap();
    assert_eq!(good_events.unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn two_thousand_streams_from_one_device_hold_one() {
    // No limit on opens here: the one-stream rule alone is under test.
    let limits = Limits { push_opens_per_minute: 0, ..Limits::default() };
    let server = start(limits).await;
    let attacker_id = server.device_ca.device("device-streams");
    let attacker = server.client(Some(&attacker_id));
    let good_id = server.device_ca.device("device-good");
    let good = server.client(Some(&good_id));
    let good_stream = good.get(server.url("/api/v1/device/push")).send().await.unwrap();
    assert_eq!(good_stream.status(), StatusCode::OK);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..2000 {
        let (c, url) = (attacker.clone(), server.url("/api/v1/device/push"));
        tasks.spawn(async move {
            let r = c.get(url).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            // A replaced stream ends; keep reading until it does, or give up after 20 s.
            let mut r = r;
            tokio::time::timeout(Duration::from_secs(20), async { while let Ok(Some(_)) = r.chunk().await {} })
                .await
                .is_ok()
        });
    }
    // While they pile up, the good device checks in.
    good_check_in(&server, &good_id).await;
    let attacker_dev = DeviceId::parse("device-streams").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ended = 0;
    while let Some(done) = tokio::time::timeout(deadline - Instant::now(), tasks.join_next()).await.unwrap() {
        if done.unwrap() {
            ended += 1;
        }
        if ended == 1999 {
            break;
        }
    }
    assert_eq!(ended, 1999, "every stream but the newest was ended");
    assert_eq!(server.state.push.connected(&attacker_dev), 1);
    tasks.abort_all();
    // The good device's stream is untouched and still gets pushes.
    assert_eq!(server.state.push.connected(&DeviceId::parse("device-good").unwrap()), 1);
    drop(good_stream);
    server.stop().await;
}

#[tokio::test]
async fn push_opens_beyond_the_rate_get_429() {
    let limits = Limits { push_opens_per_minute: 5, ..Limits::default() };
    let server = start(limits).await;
    let device = server.device_ca.device("device-reopen");
    let client = server.client(Some(&device));
    let mut statuses = Vec::new();
    let mut held = Vec::new();
    for _ in 0..8 {
        let r = client.get(server.url("/api/v1/device/push")).send().await.unwrap();
        statuses.push(r.status().as_u16());
        held.push(r);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    drop(held);
    good_check_in(&server, &device).await;
    server.stop().await;
}
