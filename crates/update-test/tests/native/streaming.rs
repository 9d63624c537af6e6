//! Streaming installs (issue 13, step 1): a signed repository on the real `update-server` over
//! mutual TLS, reached through a TCP relay on loopback that can cut connections. The device
//! installs the bundle while it reads it by HTTP Range: nothing is stored in the cache, a
//! check reads only the bundle's head, a network cut in the middle of the payload resumes where
//! it stopped, and a head that does not match the signed metadata is refused before a byte is
//! written.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use time::OffsetDateTime;
use update_boot::Slot;
use update_core::config::{Config, SourceUrl};
use update_core::driver::BUNDLE_HEAD_SHA256;
use update_core::{ErrorKind, Paths};
use update_repo::TargetName;
use update_repo::publish::{Expiries, Repository, RoleKeySet};

use crate::common::Fixture;
use crate::fleet::start_server;

/// A TCP relay to `to`: counts the bytes it passes from the server, and cuts the connections
/// listed in `cuts` (connection number from 0, bytes from the server after which it is cut).
pub(crate) struct Relay {
    port: u16,
    pub(crate) from_server: Arc<AtomicU64>,
    connections: Arc<AtomicUsize>,
    cuts: Arc<Mutex<Vec<(usize, u64)>>>,
    /// All traffic stops once `from_server` reaches this (the network is lost).
    budget: Arc<AtomicU64>,
}

fn relay(to: u16) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = Relay {
        port,
        from_server: Arc::new(AtomicU64::new(0)),
        connections: Arc::new(AtomicUsize::new(0)),
        cuts: Arc::new(Mutex::new(Vec::new())),
        budget: Arc::new(AtomicU64::new(u64::MAX)),
    };
    let (from_server, connections, cuts, budget) =
        (r.from_server.clone(), r.connections.clone(), r.cuts.clone(), r.budget.clone());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let n = connections.fetch_add(1, Ordering::SeqCst);
            let cut = cuts.lock().unwrap().iter().find(|(c, _)| *c == n).map(|(_, at)| *at);
            let server = TcpStream::connect(("127.0.0.1", to)).unwrap();
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
                let _ = s_out.shutdown(Shutdown::Write);
            });
            let (counted, budget) = (from_server.clone(), budget.clone());
            std::thread::spawn(move || {
                let (mut s_in, mut c_out) = (server, client);
                let mut buf = [0u8; 16 * 1024];
                let mut passed = 0u64;
                while let Ok(k) = s_in.read(&mut buf) {
                    let k = match cut {
                        Some(at) => k.min(usize::try_from(at.saturating_sub(passed)).unwrap()),
                        None => k,
                    };
                    let left = budget.load(Ordering::SeqCst).saturating_sub(counted.load(Ordering::SeqCst));
                    let k = k.min(usize::try_from(left).unwrap_or(usize::MAX));
                    if k == 0 || c_out.write_all(&buf[..k]).is_err() {
                        break;
                    }
                    passed += k as u64;
                    counted.fetch_add(k as u64, Ordering::SeqCst);
                }
                // A cut: both directions end at once, as when a link drops.
                let _ = c_out.shutdown(Shutdown::Both);
                let _ = s_in.shutdown(Shutdown::Both);
            });
        }
    });
    r
}

pub(crate) struct World {
    pub(crate) fx: Fixture,
    pub(crate) relay: Relay,
    repo_dir: std::path::PathBuf,
    _server: crate::fleet::Server,
}

/// The device (mutual TLS to the server through the relay), an empty repository and the server.
pub(crate) fn world() -> World {
    world_with(Fixture::new())
}

fn world_with(fx: Fixture) -> World {
    let dir = fx.dir.path().join("server");
    std::fs::create_dir_all(&dir).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let server = start_server(&dir, &ca);
    let relay = relay(server.addr.port());
    let repo_dir = dir.join("repo");
    let now = OffsetDateTime::now_utc();
    let signers = [fx.key.clone()];
    Repository::init(
        &repo_dir,
        &RoleKeySet::all(&[update_bundle::signing::public_key(&fx.key)]),
        1,
        &signers,
        &Expiries::default(),
        now,
    )
    .unwrap();
    crate::fleet::device_identity(&fx, &ca, "device-0007");
    let paths = Paths::new(fx.root());
    let mut c = Config::load(&paths).unwrap();
    c.source = Some(SourceUrl::new(&format!("https://localhost:{}/repo/", relay.port)).unwrap());
    c.tls.server_ca = Some("/etc/update/ca.crt".into());
    c.tls.client_cert = Some("/etc/update/device.crt".into());
    c.tls.client_key = Some("/etc/update/device.key".into());
    c.secure = update_core::config::Secure::MutualTls;
    c.store(&paths).unwrap();
    World { fx, relay, repo_dir, _server: server }
}

fn head_sha256(bundle: &Path) -> String {
    let f = std::fs::File::open(bundle).unwrap();
    update_bundle::BundleReader::open(std::io::BufReader::new(f), "b").unwrap().head_sha256()
}

/// Publishes `bundle` in the repository with `head` as its signed head hash.
fn publish(w: &World, bundle: &Path, head: &str) {
    let signers = [w.fx.key.clone()];
    let mut repo = Repository::open(&w.repo_dir).unwrap();
    let name = TargetName::new(bundle.file_name().unwrap().to_str().unwrap()).unwrap();
    repo.add_target(bundle, &name, Some(serde_json::json!({ BUNDLE_HEAD_SHA256: head }))).unwrap();
    repo.sign(&signers, &Expiries::default(), OffsetDateTime::now_utc()).unwrap();
}

/// Publishes 2.0 with `len` bytes of incompressible rootfs (a xorshift stream from `seed`), so
/// the bundle is about as large as the image; returns the image and the bundle.
fn publish_random_rootfs(w: &World, len: usize, seed: u64) -> (Vec<u8>, std::path::PathBuf) {
    let rootfs = w.fx.images.join("random-rootfs.img");
    let bytes = random(len, seed);
    std::fs::write(&rootfs, &bytes).unwrap();
    let mut o = w.fx.options("2.0", "ok");
    o.images[0].1 = rootfs;
    let bundle = w.fx.publish(&o);
    publish(w, &bundle, &head_sha256(&bundle));
    (bytes, bundle)
}

/// Slot B's rootfs starts with exactly `image`.
fn assert_slot_b_holds(w: &World, image: &[u8]) {
    let slot = w.fx.dev.slot_device("rootfs", Slot::B);
    let mut written = vec![0u8; image.len()];
    std::io::Read::read_exact(&mut std::fs::File::open(slot).unwrap(), &mut written).unwrap();
    assert!(written == image, "slot B holds the image");
}

fn cache_is_empty(fx: &Fixture) -> bool {
    std::fs::read_dir(fx.root().join("var/cache/update")).map_or(true, |d| d.flatten().next().is_none())
}

#[test]
fn a_streamed_install_survives_network_cuts_and_stores_nothing() {
    let w = world();
    let bundle = w.fx.publish_version("2.0", "ok");
    let len = std::fs::metadata(&bundle).unwrap().len();
    publish(&w, &bundle, &head_sha256(&bundle));

    // A check reads the metadata and the bundle's head, not its payload.
    let r = w.fx.updater().check().unwrap();
    assert_eq!(r.available.unwrap().info.version.to_string(), "2.0.0");
    let checked = w.relay.from_server.load(Ordering::SeqCst);
    assert!(checked < len / 4, "a check read {checked} bytes of a {len}-byte bundle");
    assert!(cache_is_empty(&w.fx));

    // The install: every connection is cut after 150 kB from the server, so the bundle can
    // only arrive by resuming where each cut left it (starting over would never finish).
    let before = w.relay.connections.load(Ordering::SeqCst);
    w.relay.from_server.store(0, Ordering::SeqCst);
    *w.relay.cuts.lock().unwrap() = (before..before + 1000).map(|c| (c, 150_000)).collect();
    let r = w.fx.updater().install_now(true).unwrap();
    assert_eq!(r.installed.unwrap().version.to_string(), "2.0.0");
    let moved = w.relay.from_server.load(Ordering::SeqCst);
    let connections = w.relay.connections.load(Ordering::SeqCst) - before;
    eprintln!("streamed install: {moved} bytes from the server for a {len}-byte bundle, {connections} connections");
    assert!(connections as u64 > len / 150_000, "the cuts made it reconnect: {connections}");
    // Resumed, not restarted: about one bundle (plus TLS, headers and metadata), not several.
    assert!(moved < len + len / 4 + 400_000, "{moved} bytes moved for a {len}-byte bundle");
    assert!(cache_is_empty(&w.fx), "nothing was stored on the device");
    // What the plan checked before writing is in the log: space, memory, nothing staged.
    let log = std::fs::read_to_string(w.fx.root().join("var/log/update.log")).unwrap();
    let checked = log.lines().find(|l| l.contains("checked before writing")).unwrap_or_else(|| panic!("{log}"));
    assert!(
        checked.contains("free in") && checked.contains("MiB needed") && checked.contains("nothing staged"),
        "{checked}"
    );
    assert_eq!(w.fx.dev.reboot().unwrap(), Slot::B);
    assert_eq!(w.fx.slot_version(Slot::B), "2.0");
}

#[test]
fn a_head_that_does_not_match_the_signed_metadata_is_refused_before_anything_is_written() {
    let w = world();
    let good = head_sha256(&w.fx.publish_version("2.0", "ok"));
    let other = w.fx.publish_version("3.0", "ok");
    // The repository signs 3.0 with 2.0's head hash: the file on the server is not the one signed.
    publish(&w, &other, &good);
    let before = w.fx.fingerprint();
    let e = w.fx.updater().install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Verification, "{e}");
    assert!(e.to_string().contains("signed repository metadata says"), "{e}");
    assert_eq!(w.fx.fingerprint(), before, "nothing changed");
    assert!(cache_is_empty(&w.fx));
}

#[test]
fn an_install_cut_off_from_the_network_resumes_from_what_it_wrote() {
    let w = world();
    // 4 MiB of incompressible rootfs, so the bundle is about as large as the image.
    let (bytes, bundle) = publish_random_rootfs(&w, 4 << 20, 0x9e37_79b9_7f4a_7c15);
    let len = std::fs::metadata(&bundle).unwrap().len();
    let _ = w.fx.updater().check().unwrap();
    let check = w.relay.from_server.load(Ordering::SeqCst);

    // The network goes away about 1.5 MB into the bundle: the install fails (after its retries).
    w.relay.from_server.store(0, Ordering::SeqCst);
    w.relay.budget.store(check + 1_500_000, Ordering::SeqCst);
    let before = w.fx.fingerprint();
    let e = w.fx.updater().install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Source, "{e}");
    assert_eq!(w.fx.fingerprint().get("rootfs-A"), before.get("rootfs-A"), "the running slot is untouched");
    let cursor: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.fx.root().join("var/lib/update/install-cursor.json")).unwrap())
            .unwrap();
    let kept = cursor["durable"]["rootfs"].as_u64().unwrap();
    assert!(kept >= 512 << 10, "the cursor records what was written and flushed: {cursor}");
    assert_eq!(cursor["target"], "B");

    // The network is back: the next attempt checks and keeps what is written, and fetches the rest.
    w.relay.budget.store(u64::MAX, Ordering::SeqCst);
    w.relay.from_server.store(0, Ordering::SeqCst);
    let r = w.fx.updater().install_now(true).unwrap();
    assert_eq!(r.installed.unwrap().version.to_string(), "2.0.0");
    let moved = w.relay.from_server.load(Ordering::SeqCst);
    eprintln!("resumed: {kept} bytes kept, {moved} bytes from the server for a {len}-byte bundle");
    // Only the rest came again (plus TLS, metadata and the head), never the whole bundle.
    assert!(moved < len - kept + 400_000 && moved < len, "{moved} bytes moved after {kept} were kept, bundle {len}");
    let log = std::fs::read_to_string(w.fx.root().join("var/log/update.log")).unwrap();
    assert!(log.contains("resumed an interrupted install"), "{log}");
    assert!(!w.fx.root().join("var/lib/update/install-cursor.json").exists(), "gone after the switch");
    assert_slot_b_holds(&w, &bytes);
}

#[test]
fn a_killed_streaming_install_resumes_from_its_last_checkpoint() {
    use std::process::{Command, Stdio};
    let w = world();
    let (bytes, _) = publish_random_rootfs(&w, 8 << 20, 0x0123_4567_89ab_cdef);
    let sim = env!("CARGO_BIN_EXE_update-sim");
    // Slow the server to about 2 MB/s so the kill lands in the middle of the payload.
    let cursor = w.fx.root().join("var/lib/update/install-cursor.json");
    let mut child = Command::new(sim)
        .arg("--root")
        .arg(w.fx.root())
        .arg("install")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once the cursor records written bytes (a checkpoint passed), as a power cut would.
    let start = std::time::Instant::now();
    let kept = loop {
        let durable = update_native::install::InstallCursor::load(&cursor)
            .map_or(0, |c| c.durable.values().copied().sum::<u64>());
        if durable > 0 {
            child.kill().unwrap();
            break durable;
        }
        assert!(child.try_wait().unwrap().is_none(), "the install finished before a checkpoint");
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "no checkpoint within a minute");
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let _ = child.wait();
    let out = Command::new(sim).arg("--root").arg(w.fx.root()).arg("install").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(w.fx.root().join("var/log/update.log")).unwrap();
    assert!(log.contains("resumed an interrupted install"), "{kept} bytes were recorded; log:\n{log}");
    assert_slot_b_holds(&w, &bytes);
}

/// `len` bytes of a xorshift stream from `seed` (incompressible).
pub(crate) fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    let mut x = seed | 1;
    for b in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x.to_le_bytes()[0];
    }
    bytes
}

/// Publishes `version` with this rootfs (and the fixture's 2.0 kernel) as a delta bundle
/// (format 3) ordered against `base`; returns the bundle.
pub(crate) fn publish_delta(w: &World, version: &str, rootfs: &[u8], base: Option<&Path>) -> std::path::PathBuf {
    let path = w.fx.images.join(format!("rootfs-delta-{version}.img"));
    std::fs::write(&path, rootfs).unwrap();
    let mut o = w.fx.options("2.0", "ok");
    o.version = update_core::parse_version(version).unwrap();
    o.images[0].1 = path;
    o.delta = true;
    o.delta_base = base.into_iter().map(Path::to_path_buf).collect();
    let bundle = w.fx.publish(&o);
    publish(w, &bundle, &head_sha256(&bundle));
    bundle
}

/// 2.0 as a plain random image, installed, booted and committed; returns its image.
pub(crate) fn running_2_0(w: &World, len: usize) -> Vec<u8> {
    let old = random(len, 0x5eed_0001);
    let bundle = publish_delta(w, "2.0", &old, None);
    let _ = bundle;
    w.fx.updater().install_now(true).unwrap();
    assert_eq!(w.fx.dev.reboot().unwrap(), Slot::B);
    w.fx.updater().mark_good().unwrap();
    // Slot A runs 1.0, which shares nothing with 2.0: the index could not pay for itself.
    let log = std::fs::read_to_string(w.fx.root().join("var/log/update.log")).unwrap();
    assert!(log.contains("delta: it would not fetch less than the full stream"), "{log}");
    old
}

/// Slot A's rootfs starts with exactly `image`.
fn assert_slot_a_holds(w: &World, image: &[u8]) {
    let slot = w.fx.dev.slot_device("rootfs", Slot::A);
    let mut written = vec![0u8; image.len()];
    std::io::Read::read_exact(&mut std::fs::File::open(slot).unwrap(), &mut written).unwrap();
    assert!(written == image, "slot A holds the image");
}

#[test]
fn a_delta_install_fetches_only_the_blocks_the_device_lacks() {
    let w = world();
    let old = running_2_0(&w, 8 << 20);
    let old_path = w.fx.images.join("rootfs-2.0-base.img");
    std::fs::write(&old_path, &old).unwrap();
    // 3.0 the way a rebuilt filesystem differs: 24 blocks changed, 1 MiB moved by one block
    // (found by hash wherever it is), 256 KiB zeroed.
    let mut new = old.clone();
    for (i, b) in (0..24).map(|i| (i, 7 + i * 83)) {
        new[b * 4096..(b + 1) * 4096].copy_from_slice(&random(4096, 77 + i as u64));
    }
    new.copy_within(4 << 20..5 << 20, (4 << 20) + 4096);
    new[6 << 20..(6 << 20) + (256 << 10)].fill(0);
    let bundle = publish_delta(&w, "3.0", &new, Some(&old_path));
    let len = std::fs::metadata(&bundle).unwrap().len();
    let _ = w.fx.updater().check().unwrap();
    w.relay.from_server.store(0, Ordering::SeqCst);
    let r = w.fx.updater().install_now(true).unwrap();
    assert_eq!(r.installed.unwrap().slot, "A");
    let moved = w.relay.from_server.load(Ordering::SeqCst);
    let log = std::fs::read_to_string(w.fx.root().join("var/log/update.log")).unwrap();
    let line = log.lines().rev().find(|l| l.contains("delta: ")).unwrap();
    eprintln!("delta install: {moved} bytes from the server for a {len}-byte bundle; {line}");
    // 24 changed blocks (98 KiB), the index (2,048 entries), the metadata and the bundle's
    // head (read once: the install's opens share it): far below the 8 MiB stream.
    assert!(moved < 350_000, "{moved} bytes moved; {line}");
    assert!(line.contains("fetching") && line.contains("reused from slot B"), "{line}");
    assert_slot_a_holds(&w, &new);
    assert!(!w.fx.root().join("var/lib/update/install-cursor.json").exists());
    assert_eq!(w.fx.dev.reboot().unwrap(), Slot::A);
}

#[test]
fn a_cut_delta_install_keeps_the_blocks_it_fetched_and_a_bad_block_is_refused() {
    let w = world();
    let old = running_2_0(&w, 8 << 20);
    let old_path = w.fx.images.join("rootfs-2.0-base.img");
    std::fs::write(&old_path, &old).unwrap();
    // 3.0 changes 3 MiB in scattered 64 KiB runs.
    let mut new = old.clone();
    for k in 0..48 {
        let at = (k * 160) << 10;
        new[at..at + (64 << 10)].copy_from_slice(&random(64 << 10, 1000 + k as u64));
    }
    publish_delta(&w, "3.0", &new, Some(&old_path));
    w.relay.from_server.store(0, Ordering::SeqCst);
    let _ = w.fx.updater().check().unwrap();
    let check = w.relay.from_server.load(Ordering::SeqCst);

    // The network goes away 1.2 MB into the install: the fetch stops, the running slot is as it was.
    w.relay.from_server.store(0, Ordering::SeqCst);
    w.relay.budget.store(check + 1_200_000, Ordering::SeqCst);
    let before = w.fx.fingerprint();
    let e = w.fx.updater().install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Source, "{e}");
    assert_eq!(w.fx.fingerprint().get("rootfs-B"), before.get("rootfs-B"), "the running slot is untouched");
    let first = w.relay.from_server.load(Ordering::SeqCst);

    // Back: the blocks the cut attempt wrote are found in place, only the rest is fetched.
    w.relay.budget.store(u64::MAX, Ordering::SeqCst);
    w.relay.from_server.store(0, Ordering::SeqCst);
    w.fx.updater().install_now(true).unwrap();
    let second = w.relay.from_server.load(Ordering::SeqCst);
    let log = std::fs::read_to_string(w.fx.root().join("var/log/update.log")).unwrap();
    let line = log.lines().rev().find(|l| l.contains("delta: ")).unwrap();
    eprintln!("cut after {first} bytes, then {second} bytes; {line}");
    assert!(second + 600_000 < 3 << 20, "the second attempt fetched {second} bytes of about 3 MiB changed");
    assert!(!line.contains(" 0.0 MiB already in slot A"), "{line}");
    assert_slot_a_holds(&w, &new);

    // A block changed on the server (the head still matches: only the store differs) is
    // refused by its index hash before it is written, and the running slot stays as it was.
    assert_eq!(w.fx.dev.reboot().unwrap(), Slot::A);
    w.fx.updater().mark_good().unwrap();
    let mut newer = new.clone();
    newer[100 << 10..(100 << 10) + 4096].copy_from_slice(&random(4096, 4242));
    let new_path = w.fx.images.join("rootfs-3.0-base.img");
    std::fs::write(&new_path, &new).unwrap();
    let bundle = publish_delta(&w, "4.0", &newer, Some(&new_path));
    let info = update_bundle::BundleReader::open(std::fs::File::open(&bundle).unwrap(), "b").unwrap();
    let delta = info.manifest().delta.clone().unwrap();
    let store_at = std::fs::metadata(&bundle).unwrap().len() - delta.store_size;
    // The file the server serves (the repository keeps its own copy under targets/).
    let served = std::fs::read_dir(w.repo_dir.join("targets"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("release-4.0.0.bundle"))
        .unwrap();
    let mut bytes = std::fs::read(&served).unwrap();
    assert_eq!(bytes.len() as u64, std::fs::metadata(&bundle).unwrap().len());
    bytes[usize::try_from(store_at).unwrap() + 5] ^= 0x01;
    std::fs::write(&served, &bytes).unwrap();
    let before = w.fx.fingerprint();
    let e = w.fx.updater().install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Verification, "{e}");
    assert!(e.to_string().contains("does not match the signed index"), "{e}");
    assert_eq!(w.fx.fingerprint().get("rootfs-A"), before.get("rootfs-A"), "the running slot is untouched");
}

/// The delta benchmark of the real engine (bench/delta-engine.sh): the device runs the image
/// `UPDATE_BENCH_OLD` in slot A (1 GiB slots) and installs `UPDATE_BENCH_NEW`, published as a
/// delta bundle (zstd level `UPDATE_BENCH_LEVEL`, 1 MiB chunks, ordered against the old
/// image), from the real update-server over mutual TLS through the counting relay. Prints one
/// JSON line with what crossed the network.
#[test]
#[ignore = "a benchmark: bench/delta-engine.sh runs it on real root filesystem images"]
fn bench_delta_install() {
    use update_test::device::SimOptions;
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} is not set"));
    let (old, new) =
        (std::path::PathBuf::from(var("UPDATE_BENCH_OLD")), std::path::PathBuf::from(var("UPDATE_BENCH_NEW")));
    let level: i32 = std::env::var("UPDATE_BENCH_LEVEL").ok().and_then(|l| l.parse().ok()).unwrap_or(19);
    let mib = std::fs::metadata(&new).unwrap().len().div_ceil(1 << 20);
    let w = world_with(Fixture::with(SimOptions {
        loop_devices: false,
        rootfs_mib: mib,
        boot_mib: 2,
        data_mib: 8,
        ..SimOptions::default()
    }));
    // Slot A runs the old release: its rootfs and the kernel the new bundle carries.
    let mut o = w.fx.options("2.0", "ok");
    std::io::copy(
        &mut std::fs::File::open(&old).unwrap(),
        &mut std::fs::OpenOptions::new().write(true).open(w.fx.dev.slot_device("rootfs", Slot::A)).unwrap(),
    )
    .unwrap();
    std::fs::copy(&o.images[1].1, w.fx.dev.slot_device("kernel", Slot::A)).unwrap();
    o.images[0].1 = new.clone();
    o.zstd_level = level;
    o.chunk_size = 1 << 20;
    o.delta = true;
    o.delta_base = vec![old];
    let t = std::time::Instant::now();
    let bundle = w.fx.publish(&o);
    let made = t.elapsed().as_secs_f64();
    publish(&w, &bundle, &head_sha256(&bundle));
    let (full_payload, store) = {
        let r = update_bundle::BundleReader::open(std::fs::File::open(&bundle).unwrap(), "b").unwrap();
        let m = r.manifest();
        (m.images[0].chunks.iter().map(|c| c.zsize).sum::<u64>(), m.delta.as_ref().unwrap().store_size)
    };
    w.relay.from_server.store(0, Ordering::SeqCst);
    let c0 = w.relay.connections.load(Ordering::SeqCst);
    let t = std::time::Instant::now();
    let r = w.fx.updater().install_now(true).unwrap();
    let took = t.elapsed().as_secs_f64();
    assert_eq!(r.installed.unwrap().slot, "B");
    let moved = w.relay.from_server.load(Ordering::SeqCst);
    let log = std::fs::read_to_string(w.fx.root().join("var/log/update.log")).unwrap();
    let line = log.lines().rev().find(|l| l.contains("delta: ")).unwrap().to_owned();
    let number = |after: &str| -> u64 {
        let rest = &line[line.find(after).map_or(line.len(), |i| i + after.len())..];
        rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0)
    };
    let (fetch, index) = (number("MiB ("), number("after a "));
    let requests = number(" bytes) in ");
    assert_eq!(
        update_test::device::hash_prefix(
            &w.fx.dev.slot_device("rootfs", Slot::B),
            std::fs::metadata(&new).unwrap().len()
        )
        .unwrap(),
        update_test::device::hash_prefix(&new, 1 << 40).unwrap(),
        "slot B holds the new image"
    );
    println!(
        "{}",
        serde_json::json!({
            "network-bytes": moved, "connections": w.relay.connections.load(Ordering::SeqCst) - c0,
            "fetch-bytes": fetch, "index-bytes": index, "range-requests": requests,
            "bundle-bytes": std::fs::metadata(&bundle).unwrap().len(), "full-payload-bytes": full_payload,
            "store-bytes": store, "install-seconds": took, "create-seconds": made, "log": line,
        })
    );
}
