//! The real daemon loop (`libupdate::daemon::run`, what `update daemon` runs) on a simulated
//! device, against the real `update-server` over mutual TLS: the daemon checks in, holds the
//! push channel, and when the operator asks for a check it installs the waiting 2.0 at once and
//! the server has the device's events within a bound. After the reboot, the daemon's post-boot
//! step commits 2.0 and the server hears `rebooted`, `committed` and the new slot states.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libupdate::daemon::{self, RunOptions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use update_boot::Slot;
use update_core::Paths;
use update_core::config::{Config, SourceUrl};
use update_protocol::DeviceId;
use update_protocol::push::PushEvent;
use update_server::device::DeviceIdSource;
use update_server::operator::OperatorAccess;
use update_server::push::PushHub;
use update_server::repo::ServedRepository;
use update_server::store::SqliteStore;
use update_server::{AppState, app, serve, tls};

use crate::common::Fixture;

pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    state: AppState,
    runtime: tokio::runtime::Runtime,
}

/// The real server, mutual TLS with `ca` for both sides, on 127.0.0.1.
pub(crate) fn start_server(dir: &Path, ca: &CertifiedIssuer<'static, KeyPair>) -> Server {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, ca).unwrap();
    std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::create_dir_all(dir.join("repo")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (addr, state) = runtime.block_on(async {
        let client_auth = tls::ClientAuth::Required { ca: dir.join("ca.crt"), crls: Vec::new() };
        let tls = tls::server_config(&dir.join("server.crt"), &dir.join("server.key"), &client_auth).unwrap();
        let db = format!("sqlite:{}", dir.join("server.db").display());
        let state = AppState {
            repo: Arc::new(ServedRepository::open(&dir.join("repo")).unwrap()),
            store: Arc::new(SqliteStore::open(&db).await.unwrap()),
            device_ids: DeviceIdSource::ClientCertificate,
            push: Arc::new(PushHub::new(Duration::from_secs(1))),
            operator: OperatorAccess::Disabled,
            clock: update_server::clock::Clock::system(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve::serve(listener, Some(tls), app(state.clone()), std::future::pending()));
        (addr, state)
    });
    Server { addr, state, runtime }
}

/// Gives the device a certificate for `id` signed by `ca`, and the CA, in /etc/update
/// (`device.crt`, `device.key`, `ca.crt`).
pub(crate) fn device_identity(fx: &Fixture, ca: &CertifiedIssuer<'static, KeyPair>, id: &str) {
    let dkey = KeyPair::generate().unwrap();
    let mut dp = CertificateParams::new(Vec::<String>::new()).unwrap();
    dp.distinguished_name.push(DnType::CommonName, id);
    let dcert = dp.signed_by(&dkey, ca).unwrap();
    let etc = fx.root().join("etc/update");
    std::fs::write(etc.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(etc.join("device.crt"), dcert.pem()).unwrap();
    std::fs::write(etc.join("device.key"), dkey.serialize_pem()).unwrap();
}

impl Server {
    fn kinds(&self, id: &DeviceId) -> Vec<String> {
        let events = self.runtime.block_on(self.state.store.events(id, 0, 1000)).unwrap().unwrap_or_default();
        events.iter().map(|e| e.kind.as_str().to_owned()).collect()
    }

    /// Waits until `f` holds, or fails after `within`.
    fn wait_for(&self, within: Duration, what: &str, mut f: impl FnMut(&Self) -> bool) -> Duration {
        let start = Instant::now();
        while !f(self) {
            assert!(start.elapsed() < within, "{what}: not within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        start.elapsed()
    }
}

#[test]
fn the_daemon_installs_when_pushed_and_the_server_sees_every_step() {
    let fx = Fixture::new();
    let dir = fx.dir.path().join("server");
    std::fs::create_dir_all(&dir).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let server = start_server(&dir, &ca);

    // The device: its certificate (CN = its id), the CA, the server; schedule off, so only the
    // push can make it check. Its reboot command does nothing (the test reboots it).
    device_identity(&fx, &ca, "device-0042");
    let paths = Paths::new(fx.root());
    let mut c = Config::load(&paths).unwrap();
    c.server = Some(SourceUrl::new(&format!("https://localhost:{}", server.addr.port())).unwrap());
    c.tls.server_ca = Some("/etc/update/ca.crt".into());
    c.tls.client_cert = Some("/etc/update/device.crt".into());
    c.tls.client_key = Some("/etc/update/device.key".into());
    c.native.as_mut().unwrap().reboot_command = Some(vec!["true".into()]);
    c.store(&paths).unwrap();
    fx.publish_version("2.0", "ok");
    let id = DeviceId::parse("device-0042").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (p2, s2) = (paths.clone(), stop.clone());
    let daemon = std::thread::spawn(move || {
        daemon::run(
            &p2,
            &vec![&update_native::FACTORY as &dyn update_core::driver::DriverFactory].into(),
            RunOptions::default(),
            &s2,
            &mut |_| {},
        )
        .unwrap();
    });
    // It checks in at start and opens its push stream; with the schedule off it installs nothing.
    server.wait_for(Duration::from_secs(20), "check-in and push stream", |s| {
        s.state.push.connected(&id) == 1
            && s.runtime.block_on(s.state.store.device(&id)).unwrap().is_some_and(|d| d.report.version.is_some())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.kinds(&id).is_empty(), "nothing happened yet: {:?}", server.kinds(&id));
    assert_eq!(fx.updater().status().unwrap().version.unwrap().to_string(), "1.0.0");

    // The operator asks (what POST /api/v1/devices/{id}/check-now does): flag, then push.
    let asked = Instant::now();
    assert!(
        server
            .runtime
            .block_on(server.state.store.request_check(
                &id,
                &update_server::audit::Actor { name: "test".into(), role: "operator" },
                time::OffsetDateTime::now_utc(),
            ))
            .unwrap()
    );
    assert_eq!(server.state.push.send(&id, PushEvent::CheckNow), 1);
    let took = server.wait_for(Duration::from_secs(30), "installed event after the push", |s| {
        s.kinds(&id).iter().any(|k| k == "installed")
    });
    eprintln!("push to installed event: {took:?} (asked {:?} ago)", asked.elapsed());
    stop.store(true, Ordering::Relaxed);
    daemon.join().unwrap();
    assert_eq!(server.kinds(&id), ["installed"], "a file:// source downloads nothing");
    let d = server.runtime.block_on(server.state.store.device(&id)).unwrap().unwrap();
    assert!(!d.check_now_pending, "the check-in that returned the flag cleared it");
    assert_eq!(d.report.primary.as_deref(), Some("B"), "checked in after the install: {d:?}");

    // The reboot, and the daemon's post-boot step (`update daemon --once`).
    assert_eq!(fx.dev.reboot().unwrap(), Slot::B);
    let once = RunOptions { once: true, check_only: false };
    daemon::run(
        &paths,
        &vec![&update_native::FACTORY as &dyn update_core::driver::DriverFactory].into(),
        once,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(server.kinds(&id), ["installed", "rebooted", "committed"]);
    let d = server.runtime.block_on(server.state.store.device(&id)).unwrap().unwrap();
    assert_eq!(d.report.version.as_deref(), Some("2.0.0"));
    assert_eq!(d.report.booted.as_deref(), Some("B"));
    assert!(std::fs::read_to_string(paths.state_dir().join("outbox.jsonl")).unwrap_or_default().is_empty());
}
