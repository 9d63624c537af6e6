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
    start_server_with(dir, ca, update_server::clock::Clock::system())
}

/// [`start_server`] with the server's clock.
pub(crate) fn start_server_with(
    dir: &Path,
    ca: &CertifiedIssuer<'static, KeyPair>,
    clock: update_server::clock::Clock,
) -> Server {
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
            clock,
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
    let once = RunOptions { once: true, ..RunOptions::default() };
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

// ---- Rollouts: the device follows its assignment (issue 14) -------------------------------

/// A device in a deployment: the real server (mutual TLS, its own clock) serving a signed
/// repository that holds 2.0 (`health_2`) and a newer 3.0, the device tagged `field`, and a
/// deployment of 2.0 to `field` in `waves`.
struct Rollout {
    fx: Fixture,
    server: Server,
    paths: Paths,
    id: DeviceId,
    deployment: i64,
}

fn actor() -> update_server::audit::Actor {
    update_server::audit::Actor { name: "test".into(), role: "operator" }
}

fn rollout(
    clock: update_server::clock::Clock,
    health_2: &str,
    release_version: &str,
    waves: Vec<update_protocol::rollout::Wave>,
    window: Option<update_protocol::window::MaintenanceWindow>,
    rollback_on_abort: bool,
) -> Rollout {
    use update_protocol::rollout::{NewDeployment, NewRelease};
    use update_repo::TargetName;
    use update_repo::publish::{Expiries, Repository, RoleKeySet};

    let fx = Fixture::new();
    let dir = fx.dir.path().join("server");
    std::fs::create_dir_all(&dir).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let now = clock.now();
    let server = start_server_with(&dir, &ca, clock);
    let signers = [fx.key.clone()];
    let keys = RoleKeySet::all(&[update_bundle::signing::public_key(&fx.key)]);
    let real_now = time::OffsetDateTime::now_utc();
    let mut repo = Repository::init(&dir.join("repo"), &keys, 1, &signers, &Expiries::default(), real_now).unwrap();
    for (version, health) in [("2.0", health_2), ("3.0", "ok")] {
        let bundle = fx.publish_version(version, health);
        let f = std::fs::File::open(&bundle).unwrap();
        let head = update_bundle::BundleReader::open(std::io::BufReader::new(f), "b").unwrap().head_sha256();
        let name = TargetName::new(bundle.file_name().unwrap().to_str().unwrap()).unwrap();
        let custom = serde_json::json!({ update_core::driver::BUNDLE_HEAD_SHA256: head });
        repo.add_target(&bundle, &name, Some(custom)).unwrap();
    }
    repo.sign(&signers, &Expiries::default(), real_now).unwrap();
    for e in std::fs::read_dir(fx.source()).unwrap().flatten() {
        std::fs::remove_file(e.path()).unwrap();
    }

    device_identity(&fx, &ca, "device-0042");
    let sim = std::path::Path::new(env!("CARGO_BIN_EXE_update-sim"));
    update_test::device::install_program(fx.root(), sim, update_test::device::SIM_PROGRAM).unwrap();
    let paths = Paths::new(fx.root());
    let mut c = Config::load(&paths).unwrap();
    let base = format!("https://localhost:{}", server.addr.port());
    c.server = Some(SourceUrl::new(&base).unwrap());
    c.source = Some(SourceUrl::new(&format!("{base}/repo/")).unwrap());
    c.secure = update_core::config::Secure::MutualTls;
    c.tls.server_ca = Some("/etc/update/ca.crt".into());
    c.tls.client_cert = Some("/etc/update/device.crt".into());
    c.tls.client_key = Some("/etc/update/device.key".into());
    // The reboot command runs inside the root and does nothing (the test reboots the device).
    update_test::device::install_program(fx.root(), Path::new("/bin/sh"), "/bin/sh").unwrap();
    c.native.as_mut().unwrap().reboot_command = Some(vec!["/bin/sh".into(), "-c".into(), "true".into()]);
    c.health_check = vec![update_core::config::HealthCheck {
        name: "rootfs health".into(),
        command: vec![update_test::device::SIM_PROGRAM.into(), "health".into()],
        timeout_secs: 10,
    }];
    c.store(&paths).unwrap();

    let id = DeviceId::parse("device-0042").unwrap();
    let store = &server.state.store;
    let deployment = server.runtime.block_on(async {
        let release = NewRelease { target: "release-2.0.0.bundle".into(), version: release_version.into() };
        let release = store.create_release(&release, &actor(), now).await.unwrap();
        let tag = update_protocol::Tag::parse("field").unwrap();
        store.tag_devices(&tag, std::slice::from_ref(&id), &actor(), now).await.unwrap();
        let plan = NewDeployment {
            release: release.id,
            tag,
            waves,
            min_wave_interval_secs: 3600,
            max_failure_percent: 0,
            maintenance_window: window,
            rollback_on_abort,
        };
        store.create_deployment(&plan, &actor(), now).await.unwrap().id
    });
    Rollout { fx, server, paths, id, deployment }
}

impl Rollout {
    /// `update daemon --once`: post-boot step, check-in, and the check it leads to.
    fn daemon_once(&self) -> update_core::Result<()> {
        daemon::run(
            &self.paths,
            &vec![&update_native::FACTORY as &dyn update_core::driver::DriverFactory].into(),
            RunOptions { once: true, ..RunOptions::default() },
            &AtomicBool::new(false),
            &mut |_| {},
        )
    }

    fn record(&self) -> update_server::store::DeploymentRecord {
        self.server.runtime.block_on(self.server.state.store.deployment(self.deployment)).unwrap().unwrap()
    }

    /// Wave 0's (devices, assigned, attempted, failed, succeeded).
    fn wave0(&self) -> (u32, u32, u32, u32, u32) {
        let w = &self.record().waves[0];
        (w.devices, w.assigned, w.attempted, w.failed, w.succeeded)
    }

    fn slot_versions(&self) -> Vec<Option<String>> {
        let status = self.fx.updater().status().unwrap();
        status.slots.iter().map(|s| s.version.as_ref().map(ToString::to_string)).collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.fx.root().join("var/log/update.log")).unwrap_or_default()
    }
}

fn all_at_once() -> Vec<update_protocol::rollout::Wave> {
    vec![update_protocol::rollout::Wave::Percent(100)]
}

/// Assigned 2.0 while the repository also signs 3.0: the device installs exactly 2.0, reports
/// each step for the deployment, commits it, and the server counts one success in wave 0.
/// Then, already at 2.0, the next check-in installs nothing more (and 3.0 never comes).
#[test]
fn a_device_installs_its_assigned_release_not_the_newest() {
    let r = rollout(update_server::clock::Clock::system(), "ok", "2.0.0", all_at_once(), None, false);
    r.daemon_once().unwrap();
    assert_eq!(r.slot_versions(), [Some("1.0.0".to_owned()), Some("2.0.0".to_owned())], "2.0 in slot B, not 3.0");
    assert_eq!(r.fx.slot_version(Slot::B), "2.0");
    assert_eq!(r.server.kinds(&r.id), ["downloading", "installed"]);
    assert_eq!(r.wave0(), (1, 1, 1, 0, 0), "told, attempted, no outcome yet");
    assert_eq!(r.fx.dev.reboot().unwrap(), Slot::B);
    r.daemon_once().unwrap();
    assert_eq!(r.server.kinds(&r.id), ["downloading", "installed", "rebooted", "committed"]);
    assert_eq!(r.wave0(), (1, 1, 1, 0, 1), "one success counted against wave 0");
    let before = r.fx.fingerprint();
    r.daemon_once().unwrap();
    assert_eq!(r.fx.fingerprint(), before, "already at the assigned 2.0: nothing written");
    assert_eq!(r.server.kinds(&r.id).len(), 4);
    let status = r.fx.updater().status_report().unwrap();
    assert_eq!(status.assignment.unwrap().deployment, r.deployment);
}

/// The server (its clock at 02:30) says install inside the 02:00-03:00 window; the device's
/// clock is past 03:00, so it starts nothing and says when the window closed. The same
/// assignment with the device's clock inside the window (the daemon's injected `now`)
/// installs. After the window the server says wait, and the device logs the next opening.
#[test]
fn outside_its_maintenance_window_the_device_installs_nothing() {
    use time::macros::datetime;
    let window = update_protocol::window::MaintenanceWindow {
        cron: "0 2 * * *".into(),
        duration_secs: 3600,
        time_zone: "UTC".into(),
    };
    let clock = update_server::clock::Clock::manual(datetime!(2026-03-01 02:30 UTC));
    let r = rollout(clock.clone(), "ok", "2.0.0", all_at_once(), Some(window), false);
    let before = r.fx.fingerprint();
    r.daemon_once().unwrap();
    assert_eq!(r.fx.fingerprint(), before, "outside the window by the device's clock: nothing written");
    let a = r.fx.updater().status_report().unwrap().assignment.unwrap();
    assert_eq!(a.action, update_protocol::AssignmentAction::Install);
    assert_eq!(a.window_closes.as_deref(), Some("2026-03-01T03:00:00Z"));
    assert!(r.log().contains("its maintenance window closed at 2026-03-01T03:00:00Z"), "{}", r.log());
    assert!(r.server.kinds(&r.id).is_empty(), "{:?}", r.server.kinds(&r.id));
    assert_eq!(r.wave0(), (1, 1, 0, 0, 0), "told, but not attempted");

    // The device's own clock inside the window: the stored assignment is followed.
    let up = r.fx.updater();
    let installed = daemon::check_now(&up, datetime!(2026-03-01 02:40 UTC), true, true).unwrap();
    assert_eq!(installed.as_deref(), Some("2.0.0"));
    assert_eq!(r.slot_versions()[1].as_deref(), Some("2.0.0"));

    // After the window, the server says wait and gives the next opening.
    clock.advance(time::Duration::minutes(90));
    r.daemon_once().unwrap();
    let a = r.fx.updater().status_report().unwrap().assignment.unwrap();
    assert_eq!(a.action, update_protocol::AssignmentAction::Wait);
    assert_eq!(a.window_opens.as_deref(), Some("2026-03-02T02:00:00Z"));
    assert!(r.log().contains("outside its maintenance window; the next window opens at 2026-03-02T02:00:00Z"));
}

/// A release whose health check fails on the device: the `failed` event carries the
/// deployment, the server counts it against wave 0 and pauses the rollout (0% allowed), and
/// the paused deployment tells the device to hold: it installs nothing, not even the newer
/// 3.0 the repository signs.
#[test]
fn a_failed_install_is_counted_against_the_wave_and_the_paused_rollout_holds_the_device() {
    use update_protocol::rollout::Wave;
    let r = rollout(
        update_server::clock::Clock::system(),
        "broken",
        "2.0.0",
        vec![Wave::Devices(1), Wave::Percent(100)],
        None,
        false,
    );
    r.daemon_once().unwrap();
    assert_eq!(r.slot_versions()[1].as_deref(), Some("2.0.0"));
    assert_eq!(r.fx.dev.reboot().unwrap(), Slot::B);
    r.daemon_once().unwrap(); // the health check fails; the daemon asks for a reboot
    assert_eq!(r.server.kinds(&r.id), ["downloading", "installed", "rebooted", "failed"]);
    assert_eq!(r.wave0(), (1, 1, 1, 1, 0), "one failure counted against wave 0");
    let d = r.record();
    assert_eq!(d.state, update_protocol::rollout::DeploymentState::Paused);
    assert_eq!(d.pause_reason.as_deref(), Some("wave 1 of 2: failure rate 1/1 is over 0%"));

    // The bootloader falls back to 1.0 after its tries; the device then checks in: hold.
    let mut slot = Slot::B;
    for _ in 0..10 {
        slot = r.fx.dev.reboot().unwrap();
        if slot == Slot::A {
            break;
        }
        r.daemon_once().unwrap();
    }
    assert_eq!(slot, Slot::A, "fell back");
    r.daemon_once().unwrap();
    let a = r.fx.updater().status_report().unwrap().assignment.unwrap();
    assert_eq!(a.action, update_protocol::AssignmentAction::Hold);
    let before = r.fx.fingerprint();
    let up = r.fx.updater();
    assert_eq!(daemon::check_now(&up, time::OffsetDateTime::now_utc(), true, true).unwrap(), None);
    assert_eq!(r.fx.fingerprint(), before, "held: neither 2.0 again nor 3.0");
    assert!(r.log().contains(&format!("deployment {} is paused: installing nothing", r.deployment)));
    assert!(r.server.kinds(&r.id).contains(&"rolled-back".to_owned()), "{:?}", r.server.kinds(&r.id));
    assert_eq!(r.wave0(), (1, 1, 1, 1, 0), "the rollback does not count twice");
}

/// The server assigns a version the repository does not sign under that target: the device
/// refuses with a clear error and one `failed` event (counted), installs nothing, and does not
/// try again at every check-in.
#[test]
fn an_assigned_version_the_repository_does_not_have_is_refused() {
    let r = rollout(update_server::clock::Clock::system(), "ok", "2.5.0", all_at_once(), None, false);
    let before = r.fx.fingerprint();
    let e = r.daemon_once().unwrap_err();
    assert_eq!(e.kind(), update_core::ErrorKind::Refused);
    let msg = e.to_string();
    assert!(
        msg.contains("release-2.0.0.bundle of version 2.5.0")
            && msg.contains("version 2.0.0 is not the assigned 2.5.0"),
        "{msg}"
    );
    assert_eq!(r.fx.fingerprint(), before);
    assert_eq!(r.server.kinds(&r.id), ["failed"]);
    assert_eq!(r.wave0(), (1, 1, 1, 1, 0));
    r.daemon_once().unwrap();
    assert_eq!(r.server.kinds(&r.id), ["failed"], "not tried again at the next check-in");
    assert_eq!(r.fx.fingerprint(), before);
}

/// A deployment created with `rollback-on-abort`: the device installs and commits 2.0, the
/// operator aborts, and at its next check-in the device is told to roll back: it goes back to
/// 1.0 (reported `rolled-back`), remembers 2.0 as failed, and then installs neither 2.0 nor
/// the 3.0 the repository signs while the rollback stands.
#[test]
fn an_aborted_deployment_with_rollback_takes_its_devices_back() {
    let r = rollout(update_server::clock::Clock::system(), "ok", "2.0.0", all_at_once(), None, true);
    r.daemon_once().unwrap();
    assert_eq!(r.fx.dev.reboot().unwrap(), Slot::B);
    r.daemon_once().unwrap();
    assert_eq!(r.server.kinds(&r.id), ["downloading", "installed", "rebooted", "committed"]);
    assert_eq!(r.slot_versions(), [Some("1.0.0".to_owned()), Some("2.0.0".to_owned())]);

    let store = &r.server.state.store;
    let now = time::OffsetDateTime::now_utc();
    r.server
        .runtime
        .block_on(store.control_deployment(r.deployment, update_server::store::Control::Abort, &actor(), now))
        .unwrap();
    r.daemon_once().unwrap();
    let a = r.fx.updater().status_report().unwrap().assignment.unwrap();
    assert_eq!((a.action, a.deployment), (update_protocol::AssignmentAction::Rollback, r.deployment));
    assert!(r.log().contains(&format!("deployment {} was aborted with a rollback", r.deployment)), "{}", r.log());
    assert_eq!(r.fx.dev.reboot().unwrap(), Slot::A, "the rollback made slot A boot next");
    r.daemon_once().unwrap();
    assert_eq!(r.server.kinds(&r.id), ["downloading", "installed", "rebooted", "committed", "rolled-back"]);
    let report = r.fx.updater().status_report().unwrap();
    assert!(report.failed_releases.iter().any(|v| v.starts_with("2.0.0")), "{:?}", report.failed_releases);

    // Running 1.0 under the standing rollback: nothing to roll back, nothing installed.
    let before = r.fx.fingerprint();
    let up = r.fx.updater();
    assert_eq!(daemon::check_now(&up, time::OffsetDateTime::now_utc(), true, true).unwrap(), None);
    assert_eq!(r.fx.fingerprint(), before, "neither 2.0 again nor 3.0");
    assert!(r.log().contains("runs 1.0.0, not 2.0.0: nothing to roll back"), "{}", r.log());
    assert_eq!(r.server.kinds(&r.id).len(), 5, "nothing more reported");
}

/// The same abort while 2.0 is installed but not yet booted: the daemon drops the pending
/// update (`update cancel`), so the next boot is 1.0 again, and records 2.0 as failed.
#[test]
fn an_aborted_deployment_with_rollback_drops_a_pending_install() {
    let r = rollout(update_server::clock::Clock::system(), "ok", "2.0.0", all_at_once(), None, true);
    // Installed; the "reboot" command does nothing, so slot B holds 2.0 and boots next.
    r.daemon_once().unwrap();
    assert_eq!(r.slot_versions()[1].as_deref(), Some("2.0.0"));
    let now = time::OffsetDateTime::now_utc();
    r.server
        .runtime
        .block_on(r.server.state.store.control_deployment(
            r.deployment,
            update_server::store::Control::Abort,
            &actor(),
            now,
        ))
        .unwrap();
    r.daemon_once().unwrap();
    assert!(r.log().contains("cancelled the pending update 2.0.0 in slot B"), "{}", r.log());
    assert_eq!(r.fx.dev.reboot().unwrap(), Slot::A, "1.0 boots, not the aborted 2.0");
    let report = r.fx.updater().status_report().unwrap();
    assert!(report.failed_releases.iter().any(|v| v.starts_with("2.0.0")), "{:?}", report.failed_releases);
    let before = r.fx.fingerprint();
    r.daemon_once().unwrap();
    assert_eq!(r.fx.fingerprint(), before, "nothing installed under the standing rollback");
}
