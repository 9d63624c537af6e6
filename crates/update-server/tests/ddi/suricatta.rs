//! SWUpdate's suricatta (Debian's swupdate 2022.12) installs a release from update-server:
//! a real CMS-signed `.swu` with a raw image written into a file, reported `proceeding`,
//! then `closed`/`success` after the "reboot" (`-c 2`), counted as a success of the
//! deployment's wave. A second device gets a `.swu` for other hardware: SWUpdate refuses it,
//! reports `closed`/`failure`, and the deployment pauses on the failure. Facts about this
//! swupdate build: /work/shared/TEST-RIG-SERVICES.md §3 (signed images mandatory, `-H`,
//! the `none` bootloader keeps the update state in RAM, the server's sleep overrides `-p`).
//! A third device is told to install, its deployment is aborted, and suricatta acknowledges
//! the `cancelAction` the server then sends. A fourth presents a client certificate instead
//! of a token and installs what its certificate's tag is deployed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Server, Target, kinds, write_repo};

/// How long one suricatta run may take (measured: ~2.5 s for an install on the rig).
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Whether the test must run: swupdate, openssl and cpio present, or
/// `UPDATE_SERVER_SKIP_SURICATTA=1` (then it is skipped, loudly).
fn tools_present() -> bool {
    let missing: Vec<&str> = ["swupdate", "openssl", "cpio"]
        .into_iter()
        .filter(|t| !std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file())))
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("UPDATE_SERVER_SKIP_SURICATTA").as_deref() == Ok("1") {
        eprintln!("SKIPPED: {missing:?} not installed and UPDATE_SERVER_SKIP_SURICATTA=1");
        return false;
    }
    panic!("{missing:?} not installed (apt-get install swupdate openssl cpio), or set UPDATE_SERVER_SKIP_SURICATTA=1");
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A signing certificate for `.swu` files (emailProtection: swupdate's default purpose).
fn signer(dir: &Path) -> (PathBuf, PathBuf) {
    let (key, crt) = (dir.join("signing.key"), dir.join("signing.crt"));
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .args(["-subj", "/CN=snakeoil-swu-signer", "-addext", "keyUsage=digitalSignature"])
        .args(["-addext", "extendedKeyUsage=emailProtection"]));
    (crt, key)
}

/// A signed `.swu`: `sw-description` (a raw image written to `device`, for hardware
/// revision `hw`), its CMS signature, the image; cpio newc with CRC, in that order.
fn build_swu(dir: &Path, version: &str, hw: &str, image: &[u8], device: &Path, signer: &(PathBuf, PathBuf)) -> Vec<u8> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("rootfs.img"), image).unwrap();
    let description = format!(
        "software =\n{{\n\tversion = \"{version}\";\n\thardware-compatibility = [ \"{hw}\" ];\n\timages: (\n\t\t{{\n\
         \t\t\tfilename = \"rootfs.img\";\n\t\t\tdevice = \"{}\";\n\t\t\ttype = \"raw\";\n\t\t\tsha256 = \"{}\";\n\
         \t\t}}\n\t);\n}}\n",
        device.display(),
        hex::encode(Sha256::digest(image))
    );
    std::fs::write(dir.join("sw-description"), description).unwrap();
    run(Command::new("openssl")
        .current_dir(dir)
        .args(["cms", "-sign", "-in", "sw-description", "-out", "sw-description.sig", "-signer"])
        .arg(&signer.0)
        .arg("-inkey")
        .arg(&signer.1)
        .args(["-outform", "DER", "-nosmimecap", "-binary"]));
    let mut cpio = Command::new("cpio")
        .current_dir(dir)
        .args(["-o", "-H", "crc", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = cpio.stdin.take().unwrap();
        stdin.write_all(b"sw-description\nsw-description.sig\nrootfs.img\n").unwrap();
    }
    let out = cpio.wait_with_output().unwrap();
    assert!(out.status.success(), "cpio: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(&out.stdout[..6], b"070702", "cpio -H crc writes newc with checksums");
    out.stdout
}

/// `n` bytes, no two 4 KiB blocks alike, different per `seed`.
fn image(seed: u32, n: u32) -> Vec<u8> {
    (0..n)
        .map(|i| {
            let [_, mixed, ..] = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)).to_le_bytes();
            let [block, ..] = (i >> 12).to_le_bytes();
            mixed ^ block
        })
        .collect()
}

/// One swupdate process (its own process group and `TMPDIR`), stopped on drop.
struct Swupdate {
    child: Child,
    log: PathBuf,
}

impl Swupdate {
    /// `swupdate -v -H sim:1.0 -k CERT -f CONFIG -u SURICATTA_ARGS`.
    fn start(dir: &Path, name: &str, config: &Path, signer: &Path, suricatta: &str) -> Self {
        use std::os::unix::process::CommandExt;
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::create_dir_all(&tmp).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new("swupdate")
            .args(["-v", "-H", "sim:1.0", "-k"])
            .arg(signer)
            .arg("-f")
            .arg(config)
            .args(["-u", suricatta])
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(std::fs::File::options().append(true).open(&log).unwrap()))
            .process_group(0)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the whole process group swupdate made (it forks its suricatta and progress
    /// processes): SIGTERM, then SIGKILL after 5 s.
    fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).stderr(Stdio::null()).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

impl Drop for Swupdate {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A suricatta configuration (libconfig; `globals` is mandatory) for `device` with its target
/// token, trusting the server's CA.
fn config(dir: &Path, server: &Server, device: &str, token: &str) -> PathBuf {
    config_with(dir, server, device, &format!("targettoken = \"{token}\";"))
}

/// [`config`] with other credentials: `credentials` is the settings' text.
fn config_with(dir: &Path, server: &Server, device: &str, credentials: &str) -> PathBuf {
    let path = dir.join(format!("{device}.cfg"));
    let text = format!(
        "globals : {{ verbose = true; loglevel = 6; }};\n\
         suricatta : {{ tenant = \"DEFAULT\"; id = \"{device}\"; url = \"https://127.0.0.1:{}\";\n\
         \tpolldelay = 1; retry = 2; retrywait = 1; cafile = \"{}\"; {credentials} }};\n\
         identify : ( {{ name = \"hwRevision\"; value = \"1.0\"; }}, {{ name = \"serialNo\"; value = \"{device}\"; }} );\n",
        server.addr.port(),
        server.ca_file.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn has(events: &[serde_json::Value], kind: &str, reason_part: &str) -> bool {
    kinds(events).iter().any(|(k, r)| k == kind && r.contains(reason_part))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suricatta_installs_a_release_and_a_failure_pauses_its_deployment() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let signer = signer(d);
    // The devices' "disks": files the raw handler writes (it does not create them).
    let (good_disk, bad_disk) = (d.join("good-disk.img"), d.join("bad-disk.img"));
    let old = vec![0x55u8; 192 * 1024];
    std::fs::write(&good_disk, &old).unwrap();
    std::fs::write(&bad_disk, &old).unwrap();
    let new_image = image(1, 160 * 1024);
    let good = Target {
        name: "demo-1.0.1.swu".into(),
        version: "1.0.1".into(),
        bytes: build_swu(&d.join("swu-good"), "1.0.1", "1.0", &new_image, &good_disk, &signer),
    };
    // Built for hardware revision 2.0: this device is sim:1.0.
    let other_hw = Target {
        name: "other-board-2.0.0.swu".into(),
        version: "2.0.0".into(),
        bytes: build_swu(&d.join("swu-bad"), "2.0.0", "2.0", &image(2, 64 * 1024), &bad_disk, &signer),
    };
    let repo = write_repo(d, &[good, other_hw]);
    let server = Server::start(d, &repo);
    let good = Target { name: "demo-1.0.1.swu".into(), version: "1.0.1".into(), bytes: Vec::new() };
    let other_hw = Target { name: "other-board-2.0.0.swu".into(), version: "2.0.0".into(), bytes: Vec::new() };

    let good_deployment = server.deploy(&good, "ddi-good", &["dev-good"], json!([{"percent": 100}])).await;
    // One canary wave, then the rest: a failure of the canary pauses before the next wave.
    let bad_deployment =
        server.deploy(&other_hw, "ddi-bad", &["dev-bad"], json!([{"devices": 1}, {"percent": 100}])).await;
    let good_token = server.ddi_token("dev-good");
    let bad_token = server.ddi_token("dev-bad");

    // Install run: download, install into the file, "All Chunks Installed." (still open).
    let started = Instant::now();
    let good_cfg = config(d, &server, "dev-good", &good_token);
    let mut run1 = Swupdate::start(d, "dev-good-run1", &good_cfg, &signer.0, "-p 1");
    let events = server.wait_for_events("dev-good", RUN_LIMIT, |e| has(e, "installed", "All Chunks Installed")).await;
    let install_secs = started.elapsed().as_secs_f64();
    run1.stop();
    let log1 = run1.log();
    let disk = std::fs::read(&good_disk).unwrap();
    assert_eq!(&disk[..new_image.len()], &new_image[..], "the raw image is in the device's file\n{log1}");
    assert_eq!(&disk[new_image.len()..], &old[new_image.len()..], "the rest of the file is untouched");
    assert!(has(&events, "downloading", "proceeding/none"), "{:#?}", kinds(&events));
    assert!(!has(&events, "committed", ""), "no success before the reboot: {:#?}", kinds(&events));
    for e in &events {
        assert_eq!(e["version"], "1.0.1");
    }

    // After the "reboot": swupdate in state TESTING (-c 2) confirms: closed/success.
    let started = Instant::now();
    let mut run2 = Swupdate::start(d, "dev-good-run2", &good_cfg, &signer.0, "-c 2");
    let events = server.wait_for_events("dev-good", RUN_LIMIT, |e| has(e, "committed", "closed/success")).await;
    let confirm_secs = started.elapsed().as_secs_f64();
    // The action is closed: the next polls offer nothing, so nothing more is reported.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    run2.stop();
    let after = server.events("dev-good").await;
    assert_eq!(after.len(), events.len(), "nothing after the success: {:#?}\n{}", kinds(&after), run2.log());
    let poll: serde_json::Value = server
        .client()
        .get(server.url("/DEFAULT/controller/v1/dev-good"))
        .header("Authorization", format!("TargetToken {good_token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(poll["_links"], json!({}), "a closed action is not offered again");
    assert_eq!(poll["config"]["polling"]["sleep"], "00:00:01");

    let deployment = server.get(&format!("/api/v1/deployments/{good_deployment}")).await;
    let wave = &deployment["waves"][0];
    assert_eq!(
        (wave["devices"].as_u64(), wave["assigned"].as_u64(), wave["attempted"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!((wave["succeeded"].as_u64(), wave["failed"].as_u64()), (Some(1), Some(0)), "{deployment:#}");
    assert_eq!(deployment["state"], "running");
    let device = server.get("/api/v1/devices/dev-good").await;
    assert_eq!(device["version"], "1.0.1", "the inventory shows the installed release");
    // Asked for by the poll's configData link, SWUpdate sent its `identify` settings.
    assert_eq!(device["attributes"], json!({"hwRevision": "1.0", "serialNo": "dev-good"}), "{device:#}");

    // The other device: SWUpdate refuses the .swu for other hardware and reports a failure;
    // its file is untouched and the deployment pauses before its next wave.
    let bad_cfg = config(d, &server, "dev-bad", &bad_token);
    let mut bad = Swupdate::start(d, "dev-bad-run1", &bad_cfg, &signer.0, "-p 1");
    let events = server.wait_for_events("dev-bad", RUN_LIMIT, |e| has(e, "failed", "closed/failure")).await;
    bad.stop();
    assert_eq!(std::fs::read(&bad_disk).unwrap(), old, "a refused .swu writes nothing");
    assert!(!has(&events, "committed", ""));
    let deployment = server.get(&format!("/api/v1/deployments/{bad_deployment}")).await;
    assert_eq!(deployment["state"], "paused", "{deployment:#}");
    assert!(deployment["pause-reason"].as_str().unwrap().contains("failure rate 1/1"), "{deployment:#}");
    assert_eq!(
        (deployment["waves"][0]["failed"].as_u64(), deployment["waves"][0]["attempted"].as_u64()),
        (Some(1), Some(1))
    );
    let audit = server.get("/api/v1/audit").await;
    let text = audit.to_string();
    assert!(text.contains("pause-deployment") && text.contains("set-target-token"), "{audit:#}");
    eprintln!(
        "suricatta: install run {install_secs:.1} s (start to \"All Chunks Installed.\"), confirm run {confirm_secs:.1} s"
    );
}

/// An operator aborts a deployment after the device was told to install it: suricatta's next
/// poll finds `cancelAction`, fetches it and answers `closed`/`success` ("cancellation
/// acknowledged."); the server closes the action and offers nothing more; the device's file
/// is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suricatta_acknowledges_the_cancel_of_an_aborted_deployment() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let signer = signer(d);
    let disk = d.join("disk.img");
    let old = vec![0x55u8; 64 * 1024];
    std::fs::write(&disk, &old).unwrap();
    let release = Target {
        name: "demo-1.0.1.swu".into(),
        version: "1.0.1".into(),
        bytes: build_swu(&d.join("swu"), "1.0.1", "1.0", &image(3, 48 * 1024), &disk, &signer),
    };
    let repo = write_repo(d, std::slice::from_ref(&release));
    let server = Server::start(d, &repo);
    let deployment = server.deploy(&release, "ddi-cancel", &["dev-cancel"], json!([{"percent": 100}])).await;
    let token = server.ddi_token("dev-cancel");
    let poll = |token: String| {
        let client = server.client();
        let url = server.url("/DEFAULT/controller/v1/dev-cancel");
        async move {
            let r = client.get(url).header("Authorization", format!("TargetToken {token}")).send().await.unwrap();
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    // The device is told (its poll sees the action), then the operator aborts.
    assert!(poll(token.clone()).await["_links"]["deploymentBase"].is_object());
    server.operator(reqwest::Method::POST, &format!("/api/v1/deployments/{deployment}/abort"), None).await;
    assert!(poll(token.clone()).await["_links"]["cancelAction"].is_object());

    let cfg = config(d, &server, "dev-cancel", &token);
    let mut run = Swupdate::start(d, "dev-cancel", &cfg, &signer.0, "-p 1");
    let events =
        server.wait_for_events("dev-cancel", RUN_LIMIT, |e| has(e, "canceled", "cancellation acknowledged")).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    run.stop();
    let log = run.log();
    let after = server.events("dev-cancel").await;
    assert_eq!(after.len(), events.len(), "nothing after the cancel: {:#?}\n{log}", kinds(&after));
    let (kind, reason) = kinds(&events).pop().unwrap();
    assert_eq!(kind, "canceled");
    assert!(reason.starts_with("hawkBit feedback closed/success"), "{reason}");
    assert!(!has(&events, "downloading", ""), "nothing was downloaded: {:#?}", kinds(&events));
    assert_eq!(events.last().unwrap()["version"], "1.0.1");
    assert_eq!(poll(token.clone()).await["_links"], json!({}), "the action is closed");
    assert_eq!(std::fs::read(&disk).unwrap(), old, "nothing was written\n{log}");
}

/// Mutual TLS instead of a token: suricatta presents its client certificate (`sslcert`,
/// `sslkey`; CN = the controller id, OU = its tag), is offered its certificate tag's deployment
/// and downloads and installs the `.swu` over the same mutual-TLS connection rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suricatta_with_a_client_certificate_installs_a_release() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let signer = signer(d);
    let disk = d.join("disk.img");
    let old = vec![0x55u8; 96 * 1024];
    std::fs::write(&disk, &old).unwrap();
    let new_image = image(4, 80 * 1024);
    let release = Target {
        name: "demo-1.0.2.swu".into(),
        version: "1.0.2".into(),
        bytes: build_swu(&d.join("swu"), "1.0.2", "1.0", &new_image, &disk, &signer),
    };
    let repo = write_repo(d, std::slice::from_ref(&release));
    let device_ca = crate::util::Ca::new("snakeoil DDI device CA");
    let server = Server::start_with(d, &repo, Some(&device_ca));
    let (cert, key) = device_ca.device_in("dev-mtls", "ddi-mtls").write(d, "dev-mtls");
    // Only the certificate's tag places the device: its first poll (here by a Rust client with
    // its certificate) puts it in the tag, and the deployment names no device.
    let identity = device_ca.device_in("dev-mtls", "ddi-mtls");
    let first = crate::util::client_for(server.addr, &[server.ca.der()], Some(&identity));
    let r = first.get(server.url("/DEFAULT/controller/v1/dev-mtls")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let deployment = server.deploy(&release, "ddi-mtls", &[], json!([{"percent": 100}])).await;

    let credentials = format!("sslcert = \"{}\"; sslkey = \"{}\";", cert.display(), key.display());
    let cfg = config_with(d, &server, "dev-mtls", &credentials);
    let mut run = Swupdate::start(d, "dev-mtls", &cfg, &signer.0, "-p 1");
    let events = server.wait_for_events("dev-mtls", RUN_LIMIT, |e| has(e, "installed", "All Chunks Installed")).await;
    run.stop();
    let log = run.log();
    let written = std::fs::read(&disk).unwrap();
    assert_eq!(&written[..new_image.len()], &new_image[..], "the image is in the device's file\n{log}");
    assert!(has(&events, "downloading", "proceeding/none"), "{:#?}", kinds(&events));
    for e in &events {
        assert_eq!(e["version"], "1.0.2");
    }
    let d = server.get(&format!("/api/v1/deployments/{deployment}")).await;
    assert_eq!((d["waves"][0]["assigned"].as_u64(), d["waves"][0]["attempted"].as_u64()), (Some(1), Some(1)), "{d:#}");
    assert_eq!(d["waves"][0]["devices"].as_u64(), Some(1), "the certificate's tag put it in the deployment");
}
