//! The `firmware` handler against the simulated MCU on a real pty: every phase, rollback from
//! each phase, cuts, hostile answers and a lying bootloader.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use update_components::firmware::{Firmware, FirmwareSettings};
use update_core::component::{
    Component, ComponentName, ComponentState, DeviceComponent, Handler, HandlerContext, Kind, Settings,
};
use update_core::{Paths, Version};
use update_test::handler_suite::RecordingEvents as Log;
use update_test::mcu::{Fault, McuOptions, SimMcu};

const SLOT: usize = 128 << 10;

struct Rig {
    _dir: tempfile::TempDir,
    flash: PathBuf,
    link: PathBuf,
    paths: Paths,
    log: Log,
    device: DeviceComponent,
    state_dir: PathBuf,
    mcu: Option<SimMcu>,
}

impl Rig {
    fn new(extra: &[(&str, serde_json::Value)]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let flash = dir.path().join("mcu.flash");
        SimMcu::create_flash(&flash, SLOT, &SimMcu::image("1.0.0", 20_000)).unwrap();
        let link = root.join("dev/ttyACM0");
        let mut settings = Settings::new();
        settings.insert("port".into(), "/dev/ttyACM0".into());
        settings.insert("timeout-ms".into(), 400.into());
        settings.insert("reset-timeout-ms".into(), 5000.into());
        for (k, v) in extra {
            settings.insert((*k).into(), v.clone());
        }
        let state_dir = root.join("var/lib/update/components/mcu");
        std::fs::create_dir_all(&state_dir).unwrap();
        let mut rig = Rig {
            paths: Paths::new(&root),
            _dir: dir,
            flash,
            link,
            log: Log::default(),
            device: DeviceComponent { name: ComponentName::new("mcu").unwrap(), kind: Kind::Firmware, settings },
            state_dir,
            mcu: None,
        };
        rig.power_on();
        rig
    }

    fn power_on(&mut self) {
        let opts = McuOptions { slot_size: SLOT, boot_time: Duration::from_millis(100), mtu: 1024 };
        self.mcu = Some(SimMcu::start(&self.flash, &self.link, opts).unwrap());
    }

    /// Drops the simulator (RAM lost, flash kept) and starts it again.
    fn power_cycle(&mut self) {
        self.mcu.take().unwrap().power_cut();
        self.power_on();
    }

    fn mcu(&self) -> &SimMcu {
        self.mcu.as_ref().unwrap()
    }

    fn ctx(&self) -> HandlerContext<'_> {
        HandlerContext {
            paths: &self.paths,
            events: &self.log,
            transaction: "t-1",
            device: &self.device,
            state_dir: self.state_dir.clone(),
            timeout: Duration::from_secs(60),
        }
    }
}

fn component(version: &str, image: &[u8]) -> Component {
    Component {
        name: ComponentName::new("mcu").unwrap(),
        kind: Kind::Firmware,
        version: Version::parse(version).unwrap(),
        size: image.len() as u64,
        sha256: hex::encode(Sha256::digest(image)),
        requires: Vec::new(),
        options: Settings::new(),
    }
}

fn install(rig: &Rig, c: &Component, image: &[u8]) -> update_core::Result<()> {
    Firmware::new().install(&rig.ctx(), c, &mut &image[..])
}

fn active(rig: &Rig) -> (String, ComponentState) {
    let s = Firmware::new().status(&rig.ctx()).unwrap();
    (s.active.map(|v| v.to_string()).unwrap_or_default(), s.state)
}

#[test]
fn full_update_reads_back_the_new_version_and_survives_a_power_cycle() {
    let mut rig = Rig::new(&[]);
    let img = SimMcu::image("2.0.0", 50_000);
    let c = component("2.0.0", &img);
    assert_eq!(active(&rig), ("1.0.0".into(), ComponentState::Committed));
    Firmware::new().check(&rig.ctx(), &c).unwrap();
    install(&rig, &c, &img).unwrap();
    assert_eq!(rig.mcu().secondary(), (Some("2.0.0".into()), false));
    assert_eq!(active(&rig), ("1.0.0".into(), ComponentState::Installed));
    Firmware::new().activate(&rig.ctx(), &c).unwrap();
    assert_eq!(active(&rig), ("2.0.0".into(), ComponentState::Trial));
    Firmware::new().health(&rig.ctx(), &c).unwrap();
    Firmware::new().commit(&rig.ctx(), &c).unwrap();
    assert_eq!(active(&rig), ("2.0.0".into(), ComponentState::Committed));
    rig.power_cycle();
    assert_eq!(rig.mcu().running(), ("2.0.0".into(), true));
    let s = Firmware::new().status(&rig.ctx()).unwrap();
    assert_eq!(s.inactive, Some(Version::new(1, 0, 0)), "the previous image stays in slot 1: {s:?}");
}

#[test]
fn every_phase_can_be_repeated() {
    let rig = Rig::new(&[]);
    let img = SimMcu::image("2.1.0", 30_000);
    let c = component("2.1.0", &img);
    for _ in 0..2 {
        Firmware::new().check(&rig.ctx(), &c).unwrap();
    }
    for _ in 0..2 {
        install(&rig, &c, &img).unwrap();
    }
    assert_eq!(rig.mcu().stats().upload_bytes, img.len() as u64, "the second install uploads nothing");
    for _ in 0..2 {
        Firmware::new().activate(&rig.ctx(), &c).unwrap();
    }
    assert_eq!(rig.mcu().stats().resets, 1, "the second activate finds the image running");
    for _ in 0..2 {
        Firmware::new().health(&rig.ctx(), &c).unwrap();
        Firmware::new().commit(&rig.ctx(), &c).unwrap();
    }
    install(&rig, &c, &img).unwrap();
    assert_eq!(rig.mcu().running(), ("2.1.0".into(), true));
}

#[test]
fn rollback_from_each_phase_returns_to_the_old_version() {
    // 0: before install, 1: installed, 2: marked pending (activate cut before its reset),
    // 3: activated, 4: healthy, 5: committed (another component failed after).
    for phase in 0..=5 {
        let mut rig = Rig::new(&[]);
        let img = SimMcu::image("3.0.0", 40_000);
        let c = component("3.0.0", &img);
        Firmware::new().check(&rig.ctx(), &c).unwrap();
        if phase >= 1 {
            install(&rig, &c, &img).unwrap();
        }
        if phase == 2 {
            // What activate does before its reset: the test mark, by hand.
            let port = SerialPortForTest::open(&rig);
            port.mark_pending(&img);
        }
        if phase >= 3 {
            Firmware::new().activate(&rig.ctx(), &c).unwrap();
        }
        if phase >= 4 {
            Firmware::new().health(&rig.ctx(), &c).unwrap();
        }
        if phase >= 5 {
            Firmware::new().commit(&rig.ctx(), &c).unwrap();
        }
        for _ in 0..2 {
            Firmware::new().rollback(&rig.ctx(), &c).unwrap_or_else(|e| panic!("phase {phase}: {e}"));
            assert_eq!(active(&rig), ("1.0.0".into(), ComponentState::Committed), "phase {phase}");
        }
        assert!(!rig.mcu().secondary().1, "phase {phase}: nothing stays pending");
        rig.power_cycle();
        assert_eq!(rig.mcu().running(), ("1.0.0".into(), true), "phase {phase}: after a power cycle");
    }
}

/// A second SMP client in the test, for steps the handler does inside a phase.
struct SerialPortForTest(
    std::cell::RefCell<update_components::firmware::smp::Client<update_components::firmware::serial::SerialPort>>,
);

impl SerialPortForTest {
    fn open(rig: &Rig) -> Self {
        let port = update_components::firmware::serial::SerialPort::open(&rig.link, 115_200).unwrap();
        Self(std::cell::RefCell::new(update_components::firmware::smp::Client::new(port, Duration::from_secs(2))))
    }
    fn mark_pending(&self, img: &[u8]) {
        let parsed = update_components::firmware::image::McubootImage::parse(img, false).unwrap();
        self.0.borrow_mut().image_set_state(Some(&parsed.hash), false).unwrap();
    }
}

#[test]
fn an_unconfirmed_image_is_reverted_by_a_power_cut_and_health_then_fails() {
    let mut rig = Rig::new(&[]);
    let img = SimMcu::image("2.0.0", 10_000);
    let c = component("2.0.0", &img);
    install(&rig, &c, &img).unwrap();
    Firmware::new().activate(&rig.ctx(), &c).unwrap();
    rig.power_cycle();
    assert_eq!(rig.mcu().running(), ("1.0.0".into(), true), "MCUboot reverts an unconfirmed test image");
    let e = Firmware::new().health(&rig.ctx(), &c).unwrap_err().to_string();
    assert!(e.contains("runs 1.0.0"), "{e}");
    let e = Firmware::new().commit(&rig.ctx(), &c).unwrap_err().to_string();
    assert!(e.contains("cannot commit"), "{e}");
    Firmware::new().rollback(&rig.ctx(), &c).unwrap();
    assert_eq!(active(&rig), ("1.0.0".into(), ComponentState::Committed));
}

#[test]
fn an_upload_cut_in_the_middle_resumes_from_the_mcus_offset() {
    let rig = Rig::new(&[]);
    let img = SimMcu::image("2.0.0", 100_000);
    let c = component("2.0.0", &img);
    rig.mcu().set_fault(Some(Fault::CutUploadAt(60_000)));
    let e = install(&rig, &c, &img).unwrap_err().to_string();
    assert!(e.contains("no answer"), "{e}");
    assert_eq!(rig.mcu().secondary(), (None, false), "a half image is not listed");
    assert_eq!(rig.mcu().running(), ("1.0.0".into(), true), "the primary slot is untouched");
    rig.mcu().restore_link();
    assert_eq!(active(&rig).0, "1.0.0");
    let mut fw = Firmware::new();
    fw.install(&rig.ctx(), &c, &mut &img[..]).unwrap();
    let report = fw.last_upload.unwrap();
    assert!(report.resumed_at >= 60_000, "{report:?}");
    assert!(report.sent < img.len() as u64 / 2, "{report:?}");
    let total = rig.mcu().stats().upload_bytes;
    assert!(total < img.len() as u64 + 2_000, "{total} bytes received for a {} byte image", img.len());
    Firmware::new().activate(&rig.ctx(), &c).unwrap();
    assert_eq!(rig.mcu().running(), ("2.0.0".into(), false));
}

#[test]
fn an_mcu_power_cut_during_the_upload_restarts_it_and_keeps_the_banks() {
    let mut rig = Rig::new(&[]);
    let img = SimMcu::image("2.0.0", 100_000);
    let c = component("2.0.0", &img);
    rig.mcu().set_fault(Some(Fault::CutUploadAt(50_000)));
    assert!(install(&rig, &c, &img).is_err());
    rig.power_cycle();
    assert_eq!(rig.mcu().running(), ("1.0.0".into(), true));
    let mut fw = Firmware::new();
    fw.install(&rig.ctx(), &c, &mut &img[..]).unwrap();
    assert_eq!(fw.last_upload.unwrap().resumed_at, 0, "RAM lost: the upload starts over");
    assert_eq!(rig.mcu().secondary(), (Some("2.0.0".into()), false));
}

#[test]
fn an_mcu_that_does_not_answer_is_a_clear_error_and_nothing_changes() {
    let rig = Rig::new(&[]);
    let img = SimMcu::image("2.0.0", 10_000);
    let c = component("2.0.0", &img);
    rig.mcu().set_fault(Some(Fault::Mute));
    let t = Instant::now();
    for e in [
        Firmware::new().status(&rig.ctx()).unwrap_err(),
        Firmware::new().check(&rig.ctx(), &c).unwrap_err(),
        install(&rig, &c, &img).unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(e.contains("no answer within 400 ms") && e.contains("ttyACM0"), "{e}");
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    rig.mcu().set_fault(None);
    assert_eq!(rig.mcu().stats().upload_bytes, 0);
    assert_eq!(active(&rig), ("1.0.0".into(), ComponentState::Committed));

    // No MCU at all: the port is missing.
    let mut gone = Rig::new(&[]);
    gone.mcu.take().unwrap().power_cut();
    std::fs::remove_file(&gone.link).unwrap();
    let e = Firmware::new().check(&gone.ctx(), &c).unwrap_err().to_string();
    assert!(e.contains("open the MCU's serial port") && e.contains("dev/ttyACM0"), "{e}");
}

#[test]
fn damaged_answers_are_refused_and_change_nothing() {
    let rig = Rig::new(&[]);
    let img = SimMcu::image("2.0.0", 10_000);
    let c = component("2.0.0", &img);
    for (fault, words) in
        [(Fault::CorruptCrc, "CRC16"), (Fault::OversizeFrame, "length 60000"), (Fault::BadBase64, "base64")]
    {
        rig.mcu().set_fault(Some(fault));
        let e = Firmware::new().check(&rig.ctx(), &c).unwrap_err().to_string();
        assert!(e.contains("damaged frame") && e.contains(words), "{fault:?}: {e}");
        rig.mcu().set_fault(Some(fault));
        let e = install(&rig, &c, &img).unwrap_err().to_string();
        assert!(e.contains("damaged frame"), "{fault:?}: {e}");
        assert_eq!(rig.mcu().secondary(), (None, false), "{fault:?}");
        assert_eq!(rig.mcu().stats().upload_bytes, 0, "{fault:?}");
    }
    Firmware::new().check(&rig.ctx(), &c).unwrap();
}

#[test]
fn wrong_images_are_refused_before_any_byte_is_sent() {
    let rig = Rig::new(&[]);
    let good = SimMcu::image("2.0.0", 10_000);
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xff;
    let mut tampered = good.clone();
    tampered[100] ^= 1;
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    let cases: Vec<(&str, Component, Vec<u8>, &str)> = vec![
        ("bad magic", component("2.0.0", &bad_magic), bad_magic.clone(), "not an MCUboot image"),
        ("tampered body", component("2.0.0", &tampered), tampered.clone(), "SHA-256 TLV does not match"),
        ("trailing bytes", component("2.0.0", &trailing), trailing.clone(), "after the TLV area"),
        ("version mismatch", component("2.0.1", &good), good.clone(), "header says version 2.0.0"),
        (
            "older version in header",
            component("3.0.0", &SimMcu::image("1.9.0", 100)),
            SimMcu::image("1.9.0", 100),
            "header says version 1.9.0",
        ),
        (
            "short payload",
            Component { size: good.len() as u64 + 10, ..component("2.0.0", &good) },
            good.clone(),
            "the manifest says",
        ),
    ];
    for (what, c, bytes, words) in cases {
        let e = install(&rig, &c, &bytes).unwrap_err();
        assert_eq!(e.kind(), update_core::ErrorKind::Refused, "{what}: {e}");
        assert!(e.to_string().contains(words), "{what}: {e}");
    }
    let huge = component("2.0.0", &vec![0; SLOT + 1]);
    let e = Firmware::new().check(&rig.ctx(), &huge).unwrap_err().to_string();
    assert!(e.contains("slot holds 131072"), "{e}");
    let odd = component("256.0.0", &good);
    assert!(Firmware::new().check(&rig.ctx(), &odd).is_err());
    let mut with_option = component("2.0.0", &good);
    with_option.options.insert("erase".into(), true.into());
    assert!(Firmware::new().check(&rig.ctx(), &with_option).unwrap_err().to_string().contains("unknown option erase"));
    assert_eq!(rig.mcu().stats().upload_bytes, 0);
    assert_eq!(rig.mcu().secondary(), (None, false));
}

#[test]
fn a_lying_bootloader_is_caught_by_activate_and_health() {
    let rig = Rig::new(&[]);
    let img = SimMcu::image("2.0.0", 10_000);
    let c = component("2.0.0", &img);
    install(&rig, &c, &img).unwrap();
    rig.mcu().set_fault(Some(Fault::Lying));
    let e = Firmware::new().activate(&rig.ctx(), &c).unwrap_err().to_string();
    assert!(e.contains("runs 1.0.0") && e.contains("did not swap"), "{e}");
    assert!(Firmware::new().health(&rig.ctx(), &c).is_err());
    Firmware::new().rollback(&rig.ctx(), &c).unwrap();
    assert_eq!(active(&rig), ("1.0.0".into(), ComponentState::Committed));
}

#[test]
fn settings_are_checked() {
    let mut s = Settings::new();
    assert!(FirmwareSettings::parse(&s).unwrap_err().to_string().contains("port"));
    s.insert("port".into(), "ttyACM0".into());
    assert!(FirmwareSettings::parse(&s).is_err(), "relative port");
    s.insert("port".into(), "/dev/ttyACM0".into());
    assert_eq!(FirmwareSettings::parse(&s).unwrap().baud, 115_200);
    for (k, v) in
        [("speed", serde_json::json!(9600)), ("mtu", serde_json::json!(10)), ("baud", serde_json::json!("fast"))]
    {
        let mut bad = s.clone();
        bad.insert(k.into(), v);
        assert!(FirmwareSettings::parse(&bad).is_err(), "{k}");
    }
}

#[test]
fn a_256_kib_image_over_the_pty() {
    let dir = tempfile::tempdir().unwrap();
    let flash = dir.path().join("flash");
    SimMcu::create_flash(&flash, 512 << 10, &SimMcu::image("1.0.0", 1000)).unwrap();
    let link = dir.path().join("root/dev/ttyACM0");
    let mcu = SimMcu::start(&flash, &link, McuOptions { slot_size: 512 << 10, ..McuOptions::default() }).unwrap();
    let img = SimMcu::image("2.0.0", 256 << 10);
    let mut settings = Settings::new();
    settings.insert("port".into(), "/dev/ttyACM0".into());
    settings.insert("mtu".into(), 1024.into());
    let device = DeviceComponent { name: ComponentName::new("mcu").unwrap(), kind: Kind::Firmware, settings };
    let (paths, log) = (Paths::new(dir.path().join("root")), Log::default());
    let ctx = HandlerContext {
        paths: &paths,
        events: &log,
        transaction: "t",
        device: &device,
        state_dir: dir.path().join("state"),
        timeout: Duration::from_secs(60),
    };
    let mut fw = Firmware::new();
    fw.install(&ctx, &component("2.0.0", &img), &mut &img[..]).unwrap();
    let r = fw.last_upload.unwrap();
    eprintln!(
        "256 KiB image, mtu 1024: {} bytes sent in {} requests, {} ms",
        r.sent,
        mcu.stats().requests,
        r.elapsed.as_millis()
    );
    assert_eq!(r.sent, img.len() as u64);
    assert_eq!(mcu.secondary().0.as_deref(), Some("2.0.0"));
}

#[test]
fn an_upload_damaged_on_its_way_into_flash_is_refused_by_the_mcus_hash() {
    for at in [0u64, 17_000, 39_999] {
        let rig = Rig::new(&[]);
        let img = SimMcu::image("2.0.0", 40_000);
        let c = component("2.0.0", &img);
        rig.mcu().set_fault(Some(Fault::FlipBitAt(at)));
        let e = install(&rig, &c, &img).unwrap_err().to_string();
        assert!(e.contains("SHA-256 of the upload differs"), "bit {at}: {e}");
        assert_eq!(rig.mcu().secondary(), (None, false), "bit {at}: a damaged image is not listed");
        assert_eq!(rig.mcu().running(), ("1.0.0".into(), true), "bit {at}");
        assert!(Firmware::new().activate(&rig.ctx(), &c).is_err(), "bit {at}: nothing to activate");
        Firmware::new().rollback(&rig.ctx(), &c).unwrap();
        assert_eq!(active(&rig), ("1.0.0".into(), ComponentState::Committed), "bit {at}");
        // The next try uploads a good copy.
        install(&rig, &c, &img).unwrap();
        assert_eq!(rig.mcu().secondary(), (Some("2.0.0".into()), false), "bit {at}");
    }
}

#[test]
fn a_new_image_that_hangs_times_out_and_a_watchdog_reset_reverts_it() {
    let mut rig = Rig::new(&[("reset-timeout-ms", 1500.into())]);
    let img = SimMcu::image("2.0.0", 10_000);
    let c = component("2.0.0", &img);
    install(&rig, &c, &img).unwrap();
    rig.mcu().set_fault(Some(Fault::HangingImage));
    let t = Instant::now();
    let e = Firmware::new().activate(&rig.ctx(), &c).unwrap_err().to_string();
    assert!(e.contains("did not answer within 1500 ms after its reset") && e.contains("ttyACM0"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_eq!(rig.mcu().running(), ("2.0.0".into(), false), "the hanging image runs on trial");
    // Without a reset line the handler cannot reach it: rollback says so and changes nothing.
    let e = Firmware::new().rollback(&rig.ctx(), &c).unwrap_err().to_string();
    assert!(e.contains("no answer within 400 ms"), "{e}");
    // The MCU's watchdog (or a reset line) resets it: MCUboot reverts the unconfirmed image.
    rig.power_cycle();
    rig.mcu().set_fault(Some(Fault::HangingImage));
    assert_eq!(rig.mcu().running(), ("1.0.0".into(), true));
    Firmware::new().rollback(&rig.ctx(), &c).unwrap();
    assert_eq!(active(&rig), ("1.0.0".into(), ComponentState::Committed));
}

#[test]
fn a_new_image_that_crashes_at_start_is_reverted_by_mcuboot_and_activate_says_so() {
    let rig = Rig::new(&[]);
    let img = SimMcu::crashing_image("2.0.0", 10_000);
    let c = component("2.0.0", &img);
    // The image is well formed and hashed: check and install take it like any other.
    install(&rig, &c, &img).unwrap();
    assert_eq!(rig.mcu().secondary(), (Some("2.0.0".into()), false));
    let before = rig.mcu().stats();
    let e = Firmware::new().activate(&rig.ctx(), &c).unwrap_err().to_string();
    assert!(e.contains("runs 1.0.0") && e.contains("not the new image 2.0.0") && e.contains("reverted"), "{e}");
    let after = rig.mcu().stats();
    assert_eq!(after.resets - before.resets, 2, "the handler's reset, then the watchdog's");
    assert_eq!(after.swaps - before.swaps, 2, "swapped in on trial, then reverted");
    assert_eq!(rig.mcu().running(), ("1.0.0".into(), true), "the old image runs, confirmed");
    let events = rig.mcu().take_events();
    assert!(events.iter().any(|e| e == "MCUboot: 2.0.0 boots on trial"), "{events:?}");
    assert!(events.iter().any(|e| e == "2.0.0 crashed at start: watchdog reset"), "{events:?}");
    // Rollback finds the previous image running and leaves it so; a second one changes nothing.
    Firmware::new().rollback(&rig.ctx(), &c).unwrap();
    Firmware::new().rollback(&rig.ctx(), &c).unwrap();
    assert_eq!(active(&rig), ("1.0.0".into(), ComponentState::Committed));
    assert_eq!(rig.mcu().stats().resets, after.resets, "no reset needed to roll back");
}
