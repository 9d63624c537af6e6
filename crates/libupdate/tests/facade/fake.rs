//! A driver that exists only in this test: slots and versions in memory, update files are
//! small text files (`version=…`, `compatible=…`) with the extension `fake`.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use libupdate::Updater;
use update_core::driver::{
    BundleInfo, Capabilities, Capability, Context, Driver, DriverFactory, InstallOutcome, InstallRequest, Probe,
    SlotChange, SlotState, SlotStatus, Status,
};
use update_core::{Error, Paths, Result, Version};

/// What the fake device holds, shared by the factory and every driver it makes.
#[derive(Debug, Default)]
pub struct Device {
    /// The running version.
    pub version: Option<Version>,
    /// The version installed and waiting for a reboot.
    pub pending: Option<Version>,
    /// Every file `install` was given.
    pub installed: Vec<String>,
}

impl Device {
    /// A reboot into the pending update (the fake has no boot counting: it always boots).
    pub fn reboot(&mut self) {
        if let Some(v) = self.pending.take() {
            self.version = Some(v);
        }
    }
}

/// How the factory answers its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Available,
    Declined,
    Unconfigured,
}

/// The factory: counts its probes and its drivers' calls.
pub struct FakeFactory {
    pub name: &'static str,
    pub answer: Answer,
    pub caps: &'static [Capability],
    pub device: Arc<Mutex<Device>>,
    pub probes: AtomicUsize,
    pub status_calls: Arc<AtomicUsize>,
}

impl FakeFactory {
    /// A factory that lives for the rest of the test process, as driver tables need.
    pub fn leak(name: &'static str, answer: Answer, caps: &'static [Capability]) -> &'static FakeFactory {
        Box::leak(Box::new(FakeFactory {
            name,
            answer,
            caps,
            device: Arc::new(Mutex::new(Device { version: Some(version("1.0.0")), ..Device::default() })),
            probes: AtomicUsize::new(0),
            status_calls: Arc::new(AtomicUsize::new(0)),
        }))
    }

    pub fn probes(&self) -> usize {
        self.probes.load(Ordering::SeqCst)
    }
}

pub const ALL: &[Capability] = &[Capability::AbImage, Capability::MarkGood, Capability::Inspect];

pub fn version(v: &str) -> Version {
    update_core::parse_version(v).unwrap()
}

impl DriverFactory for FakeFactory {
    fn name(&self) -> &'static str {
        self.name
    }
    fn install_hint(&self) -> &'static str {
        "fakepkg (apt install fakepkg)"
    }
    fn update_extensions(&self) -> &'static [&'static str] {
        &["fake"]
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::of(self.caps)
    }
    fn probe(&self, _ctx: &Context<'_>) -> Probe {
        self.probes.fetch_add(1, Ordering::SeqCst);
        match self.answer {
            Answer::Available => Probe::Available(Box::new(FakeDriver {
                name: self.name,
                caps: self.caps,
                device: self.device.clone(),
                status_calls: self.status_calls.clone(),
            })),
            Answer::Declined => Probe::Declined("fakepkg is not installed".into()),
            Answer::Unconfigured => Probe::Unconfigured("no /etc/fake.conf".into()),
        }
    }
}

struct FakeDriver {
    name: &'static str,
    caps: &'static [Capability],
    device: Arc<Mutex<Device>>,
    status_calls: Arc<AtomicUsize>,
}

fn read_info(path: &Path) -> Result<BundleInfo> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read fake update", path, e))?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .ok_or_else(|| Error::verification(path.display().to_string(), format!("no {key}")))
    };
    Ok(BundleInfo {
        version: update_core::parse_version(field("version")?)?,
        compatible: field("compatible")?.to_owned(),
        size: text.len() as u64,
        images: vec!["rootfs".into()],
    })
}

impl Driver for FakeDriver {
    fn name(&self) -> &'static str {
        self.name
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::of(self.caps)
    }
    fn status(&mut self, _ctx: &Context<'_>) -> Result<Status> {
        self.status_calls.fetch_add(1, Ordering::SeqCst);
        let d = self.device.lock().unwrap();
        let slot = |name: &str, booted: bool, version: Option<Version>, state| SlotStatus {
            name: name.into(),
            state,
            version,
            booted,
            primary: booted == d.pending.is_none(),
            tries_left: None,
            devices: Vec::new(),
        };
        Ok(Status {
            driver: self.name.into(),
            compatible: Some("board".into()),
            version: d.version.clone(),
            booted: Some("A".into()),
            primary: Some(if d.pending.is_some() { "B" } else { "A" }.into()),
            slots: vec![
                slot("A", true, d.version.clone(), SlotState::Good),
                slot(
                    "B",
                    false,
                    d.pending.clone(),
                    if d.pending.is_some() { SlotState::Trying } else { SlotState::Unknown },
                ),
            ],
            fallback: None,
            components: Vec::new(),
        })
    }
    fn inspect(&mut self, _ctx: &Context<'_>, request: &InstallRequest) -> Result<BundleInfo> {
        read_info(&request.bundle)
    }
    fn install(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<InstallOutcome> {
        let info = read_info(&request.bundle)?;
        let text = std::fs::read_to_string(&request.bundle).unwrap();
        if text.contains("install=fails") {
            return Err(Error::Other("the tool said: installation failed".into()));
        }
        if text.contains("boot=falls-back") {
            // As a driver's status does after the bootloader gave up on the new slot.
            ctx.events.audit(
                ctx.events
                    .record(update_core::audit::AuditAction::Fallback, update_core::audit::Outcome::Ok)
                    .driver(self.name)
                    .change(Some(info.version.to_string().into()), None)
                    .message("slot B ran out of boot attempts"),
            );
            return Ok(InstallOutcome { version: info.version, slot: "B".into(), reboot_required: true });
        }
        let mut d = self.device.lock().unwrap();
        d.installed.push(request.bundle.file_name().unwrap().to_string_lossy().into_owned());
        d.pending = Some(info.version.clone());
        Ok(InstallOutcome { version: info.version, slot: "B".into(), reboot_required: true })
    }
    fn mark_good(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        Ok(SlotChange { slot: "A".into(), message: "slot A marked good".into() })
    }
}

/// A device root with a config naming `driver` and a directory source holding `files`
/// (name, content).
pub struct Root {
    pub dir: tempfile::TempDir,
}

impl Root {
    pub fn new(driver: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("srv/update");
        std::fs::create_dir_all(&src).unwrap();
        for (name, content) in files {
            std::fs::write(src.join(name), content).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("etc/update")).unwrap();
        std::fs::write(
            dir.path().join("etc/update/update.toml"),
            format!("driver = \"{driver}\"\nsource = \"file:///srv/update\"\nlog = \"/var/log/update.log\"\n"),
        )
        .unwrap();
        Self { dir }
    }

    pub fn paths(&self) -> Paths {
        Paths::new(self.dir.path())
    }

    pub fn open(&self, table: Vec<&'static dyn DriverFactory>) -> Updater {
        Updater::open(self.paths(), table).unwrap()
    }

    /// The audit log's records as (action, outcome) pairs.
    pub fn audit(&self) -> Vec<(String, String)> {
        update_core::audit::read_all(&self.paths().audit_log())
            .unwrap()
            .into_iter()
            .map(|r| {
                let v = serde_json::to_value(&r).unwrap();
                (v["action"].as_str().unwrap().to_owned(), v["outcome"].as_str().unwrap().to_owned())
            })
            .collect()
    }
}

/// An update file's content.
pub fn update(version: &str, compatible: &str) -> String {
    format!("version={version}\ncompatible={compatible}\n")
}
