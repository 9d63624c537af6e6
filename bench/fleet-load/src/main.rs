//! `fleet-load`: a load generator for `update-server` (docs/benchmarks.md, "Fleet server").
//!
//! It makes a throwaway PKI (a server CA and certificate, a device CA, and one client
//! certificate per simulated device), starts the server binary it is given on 127.0.0.1 with
//! mutual TLS and a fresh SQLite database, runs the scenarios, and prints one table row each:
//! requests per second, latency p50/p99, the server's CPU time per request (utime + stime from
//! `/proc/PID/stat`) and its resident memory (`VmRSS` from `/proc/PID/status`).
//!
//! Usage: `fleet-load SERVER-BINARY [SCENARIO…]`, scenarios `keepalive`, `events`, `handshakes`,
//! `resumed`, `fleet`, `idle`, `push` (all without any). Sizes from the environment:
//! `CONCURRENCY` (256), `SECONDS` (10), `FLEET` devices for `fleet` (20000), `IDLE` connections
//! (5000), `PUSH` streams (5000).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The server process and how to read its counters.
struct Server {
    child: tokio::process::Child,
    pid: u32,
    port: u16,
    ca: CertificateDer<'static>,
}

impl Server {
    /// utime + stime in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // After the command name: state is field 3, utime 14 and stime 15 (1-based, whole line).
        let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
        #[allow(clippy::cast_precision_loss, reason = "a few days of ticks fit")]
        let seconds = ticks as f64 / rustix::param::clock_ticks_per_second() as f64;
        seconds
    }

    /// VmRSS in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

/// The PKI of one run.
struct Pki {
    device_ca: CertifiedIssuer<'static, KeyPair>,
}

/// A simulated device: its client configuration (certificate, key, session cache).
#[derive(Clone)]
struct Device {
    config: Arc<rustls::ClientConfig>,
}

impl Pki {
    fn device(&self, n: usize, roots: &rustls::RootCertStore) -> Result<Device, Error> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(rcgen::DnType::CommonName, format!("sim-{n:06}"));
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &self.device_ca)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots.clone())
                .with_client_auth_cert(vec![cert.der().clone()], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Device { config: Arc::new(config) })
    }
}

/// Makes `count` devices on every core.
async fn devices(pki: &Arc<Pki>, roots: &rustls::RootCertStore, first: usize, count: usize) -> Vec<Device> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let per = count.div_ceil(threads);
    let mut handles = Vec::new();
    for t in 0..threads {
        let (pki, roots) = (Arc::clone(pki), roots.clone());
        handles.push(tokio::task::spawn_blocking(move || {
            (t * per..((t + 1) * per).min(count))
                .map(|i| pki.device(first + i, &roots).unwrap_or_else(|e| panic!("device {i}: {e}")))
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::with_capacity(count);
    for h in handles {
        out.extend(h.await.unwrap_or_default());
    }
    out
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A TLS connection as `device` and an HTTP/1.1 client on it.
async fn connect(port: u16, config: Arc<rustls::ClientConfig>) -> Result<Sender, Error> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let tls = TlsConnector::from(config).connect(ServerName::try_from("localhost")?, tcp).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

const CHECKIN: &str = r#"{"compatible":"demo-board","version":"1.0.0","booted":"A","primary":"A","slots":[{"name":"A","state":"good","version":"1.0.0"},{"name":"B","state":"inactive","version":null}]}"#;
const EVENT: &str = r#"{"kind":"downloading","version":"1.1.0","time":"2026-03-01T10:00:00Z"}"#;

/// One request; the status must be 2xx.
async fn send(sender: &mut Sender, method: &str, path: &str, body: &'static str) -> Result<(), Error> {
    sender.ready().await?;
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let _ = response.into_body().collect().await?;
    if !status.is_success() {
        return Err(format!("{method} {path}: {status}").into());
    }
    Ok(())
}

/// What a scenario measured.
struct Row {
    name: String,
    requests: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
    cpu_seconds: f64,
    rss_kib: u64,
    note: String,
}

impl Row {
    fn print(&mut self) {
        self.latencies_us.sort_unstable();
        let ms = |v: Option<&u64>| v.map_or("-".to_owned(), |v| format!("{:.2}", *v as f64 / 1000.0));
        let per_mille = |p: usize| {
            self.latencies_us.get((self.latencies_us.len() * p / 1000).min(self.latencies_us.len().saturating_sub(1)))
        };
        // The tail in detail (stderr, so the table stays a table).
        if !self.latencies_us.is_empty() {
            eprintln!(
                "{}: p90 {} ms, p95 {} ms, p99 {} ms, p99.9 {} ms, max {} ms",
                self.name,
                ms(per_mille(900)),
                ms(per_mille(950)),
                ms(per_mille(990)),
                ms(per_mille(999)),
                ms(self.latencies_us.last())
            );
        }
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let (rate, cpu_us) = (
            self.requests as f64 / self.seconds,
            if self.requests > 0 { self.cpu_seconds * 1e6 / self.requests as f64 } else { 0.0 },
        );
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.0} | {:.1} | {} |",
            self.name,
            self.requests,
            rate,
            ms(per_mille(500)),
            ms(per_mille(990)),
            cpu_us,
            self.rss_kib as f64 / 1024.0,
            self.note
        );
    }
}

/// `concurrency` keep-alive connections, each sending `path` in a loop for `seconds`.
async fn keepalive(server: &Server, devices: &[Device], path: &'static str, body: &'static str, secs: u64) -> Row {
    let mut senders = Vec::new();
    for d in devices {
        senders.push(connect(server.port, Arc::clone(&d.config)).await.expect("connect"));
    }
    // One request each first: the device rows exist, the connections are warm.
    for s in &mut senders {
        send(s, "POST", path, body).await.expect("warm-up");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0 = server.cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut s in senders {
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if let Err(e) = send(&mut s, "POST", path, body).await {
                    eprintln!("{path}: {e}");
                    break;
                }
                lat.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds() - cpu0;
    Row {
        name: format!("{path} keep-alive"),
        requests: latencies.len(),
        seconds,
        latencies_us: latencies,
        cpu_seconds: cpu,
        rss_kib: server.rss_kib(),
        note: format!("{} connections", devices.len()),
    }
}

/// New TLS connections, one check-in each, `concurrency` at a time for `seconds` (or until
/// `limit` connections): `resume` keeps each device's session cache.
async fn handshakes(
    server: &Server,
    devices: &[Device],
    concurrency: usize,
    secs: u64,
    limit: usize,
    resume: bool,
    name: &str,
) -> Row {
    let devices = Arc::new(devices.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu0 = server.cpu_seconds();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (devices, next) = (Arc::clone(&devices), Arc::clone(&next));
        let port = server.port;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit || Instant::now() >= deadline {
                    return lat;
                }
                let device = &devices[i % devices.len()];
                let config = if resume {
                    Arc::clone(&device.config)
                } else {
                    let mut c = (*device.config).clone();
                    c.resumption = rustls::client::Resumption::disabled();
                    Arc::new(c)
                };
                let t = Instant::now();
                match connect(port, config).await {
                    Ok(mut s) => {
                        if let Err(e) = send(&mut s, "POST", "/api/v1/device/checkin", CHECKIN).await {
                            eprintln!("check-in: {e}");
                            continue;
                        }
                    }
                    Err(e) => {
                        eprintln!("connect: {e}");
                        continue;
                    }
                }
                lat.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    let seconds = started.elapsed().as_secs_f64();
    Row {
        name: name.to_owned(),
        requests: latencies.len(),
        seconds,
        latencies_us: latencies,
        cpu_seconds: server.cpu_seconds() - cpu0,
        rss_kib: server.rss_kib(),
        note: format!("{} devices, {concurrency} at a time", devices.len()),
    }
}

/// `devices` connections held open: idle after one check-in, or holding a push stream.
async fn held(server: &Server, devices: &[Device], push: bool) -> Row {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss0 = server.rss_kib();
    let cpu0 = server.cpu_seconds();
    let started = Instant::now();
    let mut holders = Vec::new();
    for chunk in devices.chunks(256) {
        let mut batch = Vec::new();
        for d in chunk {
            let (config, port) = (Arc::clone(&d.config), server.port);
            batch.push(tokio::spawn(async move {
                let mut s = connect(port, config).await?;
                if push {
                    s.ready().await?;
                    let request = Request::builder()
                        .uri("/api/v1/device/push")
                        .header("host", "localhost")
                        .body(Full::new(Bytes::new()))?;
                    let response = s.send_request(request).await?;
                    let mut body = response.into_body();
                    // The opening comment: the stream is registered.
                    let _ = body.frame().await;
                    Ok::<_, Error>((s, Some(body)))
                } else {
                    send(&mut s, "POST", "/api/v1/device/checkin", CHECKIN).await?;
                    Ok((s, None))
                }
            }));
        }
        for b in batch {
            match b.await {
                Ok(Ok(h)) => holders.push(h),
                Ok(Err(e)) => eprintln!("hold: {e}"),
                Err(e) => eprintln!("hold: {e}"),
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss1 = server.rss_kib();
    let n = holders.len();
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let per = (rss1.saturating_sub(rss0)) as f64 * 1024.0 / n.max(1) as f64;
    let row = Row {
        name: if push { "push streams held".into() } else { "idle connections held".into() },
        requests: n,
        seconds,
        latencies_us: Vec::new(),
        cpu_seconds: server.cpu_seconds() - cpu0,
        rss_kib: rss1,
        note: format!(
            "{:.1} KB per connection (RSS {:.1} -> {:.1} MiB)",
            per / 1000.0,
            rss0 as f64 / 1024.0,
            rss1 as f64 / 1024.0
        ),
    };
    drop(holders);
    row
}

fn raise_nofile() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    l.current = l.maximum;
    let _ = setrlimit(Resource::Nofile, l);
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let binary = args.next().ok_or("usage: fleet-load SERVER-BINARY [SCENARIO…]")?;
    let mut scenarios: Vec<String> = args.collect();
    if scenarios.is_empty() {
        scenarios =
            ["keepalive", "events", "handshakes", "resumed", "fleet", "idle", "push"].map(String::from).to_vec();
    }
    raise_nofile();
    let concurrency = env_usize("CONCURRENCY", 256);
    let secs = u64::try_from(env_usize("SECONDS", 10)).unwrap_or(10);

    let dir = std::env::temp_dir().join(format!("fleet-load-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("repo/metadata"))?;
    std::fs::create_dir_all(dir.join("repo/targets"))?;
    std::fs::write(dir.join("repo/metadata/root.json"), "{\"signed\":{\"_type\":\"root\"},\"signatures\":[]}\n")?;
    std::fs::write(
        dir.join("repo/metadata/1.targets.json"),
        "{\"signed\":{\"_type\":\"targets\",\"version\":1,\"targets\":{}},\"signatures\":[]}\n",
    )?;
    let ca_params = |name: &str| -> Result<CertificateParams, Error> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        Ok(p)
    };
    let server_ca = CertifiedIssuer::self_signed(ca_params("bench server CA")?, KeyPair::generate()?)?;
    let device_ca = CertifiedIssuer::self_signed(ca_params("bench device CA")?, KeyPair::generate()?)?;
    let server_key = KeyPair::generate()?;
    let mut sp = CertificateParams::new(vec!["localhost".to_owned()])?;
    sp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = sp.signed_by(&server_key, &server_ca)?;
    std::fs::write(dir.join("server.crt"), server_cert.pem())?;
    std::fs::write(dir.join("server.key"), server_key.serialize_pem())?;
    std::fs::write(dir.join("device-ca.crt"), device_ca.pem())?;

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let d = |f: &str| dir.join(f).display().to_string();
    let child = tokio::process::Command::new(&binary)
        .args(["serve", "--repo", &d("repo"), "--listen", &format!("127.0.0.1:{port}")])
        .args(["--tls-cert", &d("server.crt"), "--tls-key", &d("server.key"), "--client-ca", &d("device-ca.crt")])
        .args(["--db", &format!("sqlite:{}", d("server.db"))])
        .args(["--checkins-per-minute", "0", "--events-per-minute", "0", "--push-opens-per-minute", "0"])
        .env("RUST_LOG", std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("no server pid")?;
    let server = Server { child, pid, port, ca: server_ca.der().clone() };
    let ready = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if ready.elapsed() > Duration::from_secs(20) {
            return Err("the server did not start listening".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca.clone())?;
    let pki = Arc::new(Pki { device_ca });
    let mut first = 0;
    let mut more = |n: usize| {
        let start = first;
        first += n;
        start
    };
    println!("| scenario | requests | per second | p50 ms | p99 ms | server CPU µs/request | server RSS MiB | notes |");
    println!("|---|---|---|---|---|---|---|---|");
    for s in &scenarios {
        let mut row = match s.as_str() {
            "keepalive" => {
                let devs = devices(&pki, &roots, more(concurrency), concurrency).await;
                keepalive(&server, &devs, "/api/v1/device/checkin", CHECKIN, secs).await
            }
            "events" => {
                let devs = devices(&pki, &roots, more(concurrency), concurrency).await;
                keepalive(&server, &devs, "/api/v1/device/events", EVENT, secs).await
            }
            "handshakes" => {
                let devs = devices(&pki, &roots, more(1024), 1024).await;
                handshakes(&server, &devs, 64, secs, usize::MAX, false, "new mTLS connections, no resumption").await
            }
            "resumed" => {
                let devs = devices(&pki, &roots, more(1024), 1024).await;
                // Each device's first connection fills its session cache.
                handshakes(&server, &devs, 64, 60, devs.len(), true, "(first connections)").await.print();
                handshakes(&server, &devs, 64, secs, usize::MAX, true, "new mTLS connections, resumed").await
            }
            "fleet" => {
                let n = env_usize("FLEET", 20_000);
                let t = Instant::now();
                let devs = devices(&pki, &roots, more(n), n).await;
                eprintln!("{n} device certificates in {:.1} s", t.elapsed().as_secs_f64());
                handshakes(&server, &devs, concurrency, 3600, n, false, "fleet: each device's first check-in").await
            }
            "idle" => {
                let n = env_usize("IDLE", 5000);
                let devs = devices(&pki, &roots, more(n), n).await;
                held(&server, &devs, false).await
            }
            "push" => {
                let n = env_usize("PUSH", 5000);
                let devs = devices(&pki, &roots, more(n), n).await;
                held(&server, &devs, true).await
            }
            other => return Err(format!("unknown scenario {other:?}").into()),
        };
        row.print();
    }
    let Server { mut child, .. } = server;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
