//! The `firmware` handler: an MCUboot microcontroller beside Linux, updated through MCUmgr's
//! Simple Management Protocol over a serial line (docs/components.md, "firmware").
//!
//! The MCU has two banks. `install` uploads the image into the secondary slot (resuming from the
//! offset the MCU reports after a cut); `activate` marks it for a test run, resets the MCU, waits
//! for it to answer again and reads back that the new image runs; `health` checks that it still
//! answers and runs the new version; `commit` confirms it; `rollback` resets an unconfirmed new
//! image (MCUboot reverts it), or tests and confirms the previous image from the secondary slot,
//! or clears a pending mark. Every phase decides from the MCU's own image list, so repeating a
//! phase after a power cut does the remaining work only.
//!
//! Device settings (`[components.<name>]` in update.toml): `port` (the tty, under `--root`),
//! `baud` (115200), `timeout-ms` (per request, 3000), `mtu` (largest SMP packet, 256),
//! `reset-timeout-ms` (how long the MCU may take to come back, 30000) and `slot-size` (used
//! when the MCU does not answer slot info).

pub mod cbor;
pub mod image;
pub mod serial;
pub mod smp;

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use update_core::component::{
    Activation, Component, ComponentState, ComponentStatus, Handler, HandlerContext, Kind, Settings as Json,
};
use update_core::{Error, Result, Version};

use image::{ImageVersion, McubootImage};
use serial::SerialPort;
use smp::{Client, ImageSlot, ProtocolError};

/// The largest image accepted when the MCU does not say its slot size.
pub const MAX_IMAGE: u64 = 64 << 20;

/// The handler's settings, from the device's component entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareSettings {
    /// The serial port as configured (a device path, resolved under the root).
    pub port: String,
    /// Line speed.
    pub baud: u32,
    /// Time limit per request.
    pub timeout: Duration,
    /// Largest SMP packet the MCU accepts (header included).
    pub mtu: usize,
    /// How long the MCU may take to answer again after a reset.
    pub reset_timeout: Duration,
    /// Slot size, when the MCU does not implement slot info.
    pub slot_size: Option<u64>,
}

impl FirmwareSettings {
    /// Reads and checks the settings; unknown keys are refused.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming the key.
    pub fn parse(settings: &Json) -> Result<FirmwareSettings> {
        let bad = |key: &str, value: &serde_json::Value, reason: &str| Error::InvalidValue {
            what: format!("firmware setting {key}"),
            value: value.to_string(),
            reason: reason.into(),
        };
        let uint = |key: &str, default: u64, min: u64, max: u64| -> Result<u64> {
            match settings.get(key) {
                None => Ok(default),
                Some(v) => v
                    .as_u64()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| bad(key, v, &format!("use a whole number from {min} to {max}"))),
            }
        };
        for key in settings.keys() {
            if !matches!(key.as_str(), "port" | "baud" | "timeout-ms" | "mtu" | "reset-timeout-ms" | "slot-size") {
                return Err(bad(
                    key,
                    &settings[key],
                    "unknown firmware setting (known: port, baud, timeout-ms, mtu, reset-timeout-ms, slot-size)",
                ));
            }
        }
        let port = match settings.get("port") {
            Some(serde_json::Value::String(p)) if p.starts_with('/') => p.clone(),
            Some(v) => return Err(bad("port", v, "use an absolute device path such as /dev/ttyACM0")),
            None => {
                return Err(Error::InvalidValue {
                    what: "firmware setting port".into(),
                    value: String::new(),
                    reason: "missing: name the MCU's serial port, e.g. port = \"/dev/ttyACM0\"".into(),
                });
            }
        };
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(FirmwareSettings {
            port,
            baud: u32::try_from(uint("baud", 115_200, 50, 4_000_000)?).unwrap_or(115_200),
            timeout: Duration::from_millis(uint("timeout-ms", 3000, 10, 600_000)?),
            mtu: n(uint("mtu", 256, 128, 8192)?),
            reset_timeout: Duration::from_millis(uint("reset-timeout-ms", 30_000, 10, 600_000)?),
            slot_size: settings.get("slot-size").map(|_| uint("slot-size", 0, 1024, 1 << 32)).transpose()?,
        })
    }
}

/// What the handler remembers between phases (in the component's state directory): the
/// transaction, the image that ran before it and the one it installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    #[serde(default)]
    transaction: String,
    previous: Known,
    target: Known,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Known {
    version: String,
    hash: String,
}

/// What the last upload did (for logs, tests and measurements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadReport {
    /// Image size.
    pub size: u64,
    /// Where the upload started (above 0 when it resumed).
    pub resumed_at: u64,
    /// Data bytes sent.
    pub sent: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// The `firmware` handler.
#[derive(Debug, Default)]
pub struct Firmware {
    /// The last upload, if this handler uploaded.
    pub last_upload: Option<UploadReport>,
}

struct Session {
    client: Client<SerialPort>,
    path: PathBuf,
    settings: FirmwareSettings,
    name: String,
}

impl Session {
    fn open(ctx: &HandlerContext<'_>) -> Result<Session> {
        let settings = FirmwareSettings::parse(&ctx.device.settings)?;
        let path = ctx.paths.resolve(&settings.port);
        let port =
            SerialPort::open(&path, settings.baud).map_err(|e| Error::io("open the MCU's serial port", &path, e))?;
        Ok(Session { client: Client::new(port, settings.timeout), path, settings, name: ctx.device.name.to_string() })
    }

    fn fail(&self, what: &str, e: ProtocolError) -> Error {
        match e {
            ProtocolError::Io(source) => Error::Io { op: "talk SMP to the MCU on", path: self.path.clone(), source },
            e => Error::Other(format!("firmware {}: {what} on {}: {e}", self.name, self.path.display())),
        }
    }

    fn refuse(&self, why: impl std::fmt::Display) -> Error {
        Error::Refused(format!("firmware {}: {why}", self.name))
    }

    fn list(&mut self) -> Result<Banks> {
        let list = self.client.image_state().map_err(|e| self.fail("image state read", e))?;
        Ok(Banks::from(list))
    }

    /// Resets the MCU and waits until it answers an image list again; returns that list.
    fn reset_and_wait(&mut self, ctx: &HandlerContext<'_>) -> Result<Banks> {
        match self.client.reset() {
            // Some MCUs reset before their answer leaves the UART.
            Ok(()) | Err(ProtocolError::NoAnswer(_)) => {}
            Err(e) => return Err(self.fail("reset", e)),
        }
        ctx.events.info(&format!("firmware {}: MCU reset, waiting for it to answer", self.name));
        let deadline = Instant::now() + self.settings.reset_timeout;
        let probe = self.settings.timeout.min(Duration::from_secs(1));
        let mut last = String::from("no answer");
        std::thread::sleep(Duration::from_millis(20));
        while Instant::now() < deadline {
            // A USB serial MCU re-enumerates: reopen the port when it went away.
            let answer = match SerialPort::open(&self.path, self.settings.baud) {
                Ok(port) => {
                    let mut c = Client::new(port, probe);
                    match c.image_state() {
                        Ok(list) => {
                            self.client = Client::new(c.into_link(), self.settings.timeout);
                            return Ok(Banks::from(list));
                        }
                        Err(e) => e.to_string(),
                    }
                }
                Err(e) => {
                    std::thread::sleep(Duration::from_millis(100));
                    e.to_string()
                }
            };
            last = answer;
        }
        Err(Error::Other(format!(
            "firmware {}: the MCU on {} did not answer within {} ms after its reset ({last})",
            self.name,
            self.path.display(),
            self.settings.reset_timeout.as_millis()
        )))
    }
}

/// The two slots of image 0, as the MCU lists them.
#[derive(Debug, Clone, Default)]
struct Banks {
    primary: Option<ImageSlot>,
    secondary: Option<ImageSlot>,
}

impl From<Vec<ImageSlot>> for Banks {
    fn from(list: Vec<ImageSlot>) -> Banks {
        let mut b = Banks::default();
        for s in list.into_iter().filter(|s| s.image == 0) {
            match s.slot {
                0 => b.primary = Some(s),
                1 => b.secondary = Some(s),
                _ => {}
            }
        }
        b
    }
}

impl Banks {
    fn primary_is(&self, hash: &[u8]) -> bool {
        self.primary.as_ref().is_some_and(|p| p.hash == hash)
    }
    fn secondary_is(&self, hash: &[u8]) -> bool {
        self.secondary.as_ref().is_some_and(|s| s.hash == hash)
    }
    fn running(&self) -> String {
        self.primary.as_ref().map_or_else(|| "no image".into(), |p| format!("{} ({})", p.version, short(&p.hash)))
    }
}

fn short(hash: &[u8]) -> String {
    hex::encode(&hash[..hash.len().min(4)])
}

fn record_path(ctx: &HandlerContext<'_>) -> PathBuf {
    ctx.state_dir.join("firmware.json")
}

fn load_record(ctx: &HandlerContext<'_>) -> Result<Option<Record>> {
    let path = record_path(ctx);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::ConfigParse { path, message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

fn save_record(ctx: &HandlerContext<'_>, r: &Record) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(r).map_err(|e| Error::Other(format!("encode the firmware record: {e}")))?;
    update_core::atomic::write_atomic(&record_path(ctx), &bytes, 0o644)
}

/// The target image of `component`, as recorded by `install`.
fn target_of(ctx: &HandlerContext<'_>, component: &Component, s: &Session) -> Result<(Record, Vec<u8>)> {
    let r = load_record(ctx)?
        .ok_or_else(|| s.refuse(format!("version {} was not installed (no upload recorded)", component.version)))?;
    if r.target.version != ImageVersion::from_semver(&component.version).map(|v| v.text()).unwrap_or_default() {
        return Err(s.refuse(format!(
            "the installed image is version {}, not the component's {}",
            r.target.version, component.version
        )));
    }
    let hash = hex::decode(&r.target.hash)
        .map_err(|e| Error::ConfigParse { path: record_path(ctx), message: e.to_string() })?;
    Ok((r, hash))
}

/// Drops the record once a rollback is complete: the image left in the secondary slot is no
/// longer one this transaction installs, so `status` shows the previous version committed.
fn forget(ctx: &HandlerContext<'_>) -> Result<()> {
    let path = record_path(ctx);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

fn refuse_options(component: &Component) -> Result<()> {
    match component.options.keys().next() {
        Some(k) => Err(Error::Refused(format!(
            "firmware {}: unknown option {k} (the firmware handler has none)",
            component.name
        ))),
        None => Ok(()),
    }
}

impl Firmware {
    /// A handler.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn upload(&mut self, ctx: &HandlerContext<'_>, s: &mut Session, img: &[u8]) -> Result<()> {
        let start = Instant::now();
        let sha: [u8; 32] = Sha256::digest(img).into();
        let len = img.len() as u64;
        let mut off = 0u64;
        let mut resumed_at = None;
        let mut stalls = 0;
        s.client.uploaded_bytes = 0;
        loop {
            let first = (off == 0).then_some((len, &sha[..]));
            let n = smp::chunk_capacity(s.settings.mtu, off, first);
            let from = usize::try_from(off).unwrap_or(usize::MAX).min(img.len());
            let data = &img[from..(from + n).min(img.len())];
            let answer =
                s.client.upload_chunk(off, data, first).map_err(|e| s.fail(&format!("upload at offset {off}"), e))?;
            if answer.off > len {
                return Err(
                    s.fail("upload", ProtocolError::Malformed(format!("MCU asks for offset {} of {len}", answer.off)))
                );
            }
            if resumed_at.is_none() {
                resumed_at = Some(answer.off.saturating_sub(data.len() as u64));
                if off == 0 && answer.off > data.len() as u64 {
                    resumed_at = Some(answer.off);
                    ctx.events
                        .info(&format!("firmware {}: resuming the upload at byte {} of {len}", s.name, answer.off));
                }
            }
            if answer.off == len {
                if answer.matched == Some(false) {
                    return Err(
                        s.fail("upload", ProtocolError::Malformed("the MCU's SHA-256 of the upload differs".into()))
                    );
                }
                break;
            }
            stalls = if answer.off <= off { stalls + 1 } else { 0 };
            if stalls > 3 {
                return Err(s.fail("upload", ProtocolError::Malformed(format!("no progress at offset {off}"))));
            }
            off = answer.off;
        }
        self.last_upload = Some(UploadReport {
            size: len,
            resumed_at: resumed_at.unwrap_or(0),
            sent: s.client.uploaded_bytes,
            elapsed: start.elapsed(),
        });
        Ok(())
    }
}

impl Handler for Firmware {
    fn kind(&self) -> Kind {
        Kind::Firmware
    }

    fn status(&mut self, ctx: &HandlerContext<'_>) -> Result<ComponentStatus> {
        let mut s = Session::open(ctx)?;
        let banks = s.list()?;
        let record = load_record(ctx)?;
        let Some(p) = &banks.primary else {
            return Ok(ComponentStatus { active: None, inactive: None, state: ComponentState::Absent, detail: None });
        };
        let target_hash = record.as_ref().and_then(|r| hex::decode(&r.target.hash).ok());
        let state = if !p.confirmed {
            ComponentState::Trial
        } else if banks.secondary.as_ref().is_some_and(|s| s.pending)
            || target_hash.as_ref().is_some_and(|h| banks.secondary_is(h) && !banks.primary_is(h))
        {
            ComponentState::Installed
        } else {
            ComponentState::Committed
        };
        let describe = |s: &ImageSlot| {
            let mut flags = Vec::new();
            for (on, name) in
                [(s.active, "active"), (s.confirmed, "confirmed"), (s.pending, "pending"), (s.permanent, "permanent")]
            {
                if on {
                    flags.push(name);
                }
            }
            format!("slot {} {} {}", s.slot, s.version, flags.join(" "))
        };
        let detail = [banks.primary.as_ref(), banks.secondary.as_ref()]
            .into_iter()
            .flatten()
            .map(describe)
            .collect::<Vec<_>>()
            .join("; ");
        Ok(ComponentStatus {
            active: ImageVersion::semver_of_text(&p.version),
            inactive: banks.secondary.as_ref().and_then(|s| ImageVersion::semver_of_text(&s.version)),
            state,
            detail: Some(detail.trim().to_owned()),
        })
    }

    fn check(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        refuse_options(component)?;
        let mut s = Session::open(ctx)?;
        if ImageVersion::from_semver(&component.version).is_none() {
            return Err(s.refuse(format!(
                "version {} does not fit MCUboot's image version (major and minor up to 255, patch up to 65535, no pre-release or build)",
                component.version
            )));
        }
        s.client.echo("libupdate check").map_err(|e| s.fail("echo", e))?;
        let banks = s.list()?;
        if banks.primary.is_none() {
            return Err(s.refuse("the MCU lists no running image"));
        }
        let slot = s.client.slot_size().map_err(|e| s.fail("slot info", e))?.or(s.settings.slot_size);
        if let Some(slot) = slot
            && component.size > slot
        {
            return Err(s.refuse(format!("the image is {} bytes, the MCU's slot holds {slot}", component.size)));
        }
        if component.size > MAX_IMAGE {
            return Err(s.refuse(format!(
                "the image is {} bytes, more than the {MAX_IMAGE} this handler accepts",
                component.size
            )));
        }
        Ok(())
    }

    fn install(&mut self, ctx: &HandlerContext<'_>, component: &Component, payload: &mut dyn Read) -> Result<()> {
        refuse_options(component)?;
        let mut s = Session::open(ctx)?;
        let mut img = Vec::new();
        payload
            .take(component.size.min(MAX_IMAGE) + 1)
            .read_to_end(&mut img)
            .map_err(|e| Error::Other(format!("firmware {}: read the payload: {e}", s.name)))?;
        if img.len() as u64 != component.size {
            return Err(s.refuse(format!("the payload is {} bytes, the manifest says {}", img.len(), component.size)));
        }
        let parsed = McubootImage::parse(&img, false).map_err(|e| s.refuse(format!("payload: {e}")))?;
        let want = ImageVersion::from_semver(&component.version)
            .ok_or_else(|| s.refuse(format!("version {} does not fit an MCUboot image", component.version)))?;
        if (parsed.version.major, parsed.version.minor, parsed.version.revision)
            != (want.major, want.minor, want.revision)
        {
            return Err(s.refuse(format!(
                "the image header says version {}, the component is version {}",
                parsed.version.text(),
                component.version
            )));
        }
        let banks = s.list()?;
        let Some(primary) = banks.primary.clone() else {
            return Err(s.refuse("the MCU lists no running image"));
        };
        let target = Known { version: want.text(), hash: hex::encode(parsed.hash) };
        if banks.primary_is(&parsed.hash) {
            // Already running (install repeated after activate).
            return Ok(());
        }
        if !primary.confirmed {
            return Err(
                s.refuse(format!("the MCU runs {} unconfirmed; commit or roll back that test first", banks.running()))
            );
        }
        match load_record(ctx)? {
            Some(r) if r.target == target && r.transaction == ctx.transaction => {}
            _ => save_record(
                ctx,
                &Record {
                    transaction: ctx.transaction.to_owned(),
                    previous: Known { version: primary.version.clone(), hash: hex::encode(&primary.hash) },
                    target,
                },
            )?,
        }
        if banks.secondary.as_ref().is_some_and(|x| x.hash == parsed.hash && x.bootable) {
            return Ok(()); // already uploaded
        }
        self.upload(ctx, &mut s, &img)?;
        let banks = s.list()?;
        if !banks.secondary_is(&parsed.hash) {
            return Err(s.fail(
                "upload",
                ProtocolError::Malformed(
                    "after the upload the MCU does not list the image in its secondary slot".into(),
                ),
            ));
        }
        if let Some(r) = &self.last_upload {
            ctx.events.info(&format!(
                "firmware {}: uploaded {} bytes ({} sent, from byte {}) in {} ms",
                s.name,
                r.size,
                r.sent,
                r.resumed_at,
                r.elapsed.as_millis()
            ));
        }
        Ok(())
    }

    fn activate(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<Activation> {
        let mut s = Session::open(ctx)?;
        let (_, hash) = target_of(ctx, component, &s)?;
        let banks = s.list()?;
        if banks.primary_is(&hash) {
            return Ok(Activation::Now);
        }
        let Some(sec) = banks.secondary.as_ref().filter(|x| x.hash == hash) else {
            return Err(s.refuse(format!(
                "version {} is not in the MCU's secondary slot; install it first",
                component.version
            )));
        };
        if !sec.pending {
            s.client.image_set_state(Some(&hash), false).map_err(|e| s.fail("mark the new image for a test run", e))?;
        }
        let after = s.reset_and_wait(ctx)?;
        if !after.primary_is(&hash) {
            return Err(Error::Other(format!(
                "firmware {}: after the reset the MCU runs {}, not the new image {}: the bootloader did not swap it in, or it did not start and was reverted",
                s.name,
                after.running(),
                component.version
            )));
        }
        Ok(Activation::Now)
    }

    fn health(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let mut s = Session::open(ctx)?;
        let (_, hash) = target_of(ctx, component, &s)?;
        s.client.echo("libupdate health").map_err(|e| s.fail("echo", e))?;
        let banks = s.list()?;
        let want = ImageVersion::from_semver(&component.version).map(|v| v.text());
        match &banks.primary {
            Some(p) if p.hash == hash && p.active && Some(&p.version) == want.as_ref() => Ok(()),
            _ => Err(Error::Other(format!(
                "firmware {}: health check: the MCU runs {}, not version {}",
                s.name,
                banks.running(),
                component.version
            ))),
        }
    }

    fn commit(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let mut s = Session::open(ctx)?;
        let (_, hash) = target_of(ctx, component, &s)?;
        let banks = s.list()?;
        let Some(p) = banks.primary.as_ref().filter(|p| p.hash == hash) else {
            return Err(Error::Other(format!(
                "firmware {}: cannot commit version {}: the MCU runs {}",
                s.name,
                component.version,
                banks.running()
            )));
        };
        if p.confirmed {
            return Ok(());
        }
        let list = Banks::from(s.client.image_set_state(Some(&hash), true).map_err(|e| s.fail("confirm", e))?);
        if list.primary.as_ref().is_some_and(|p| p.hash == hash && p.confirmed) {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "firmware {}: the MCU acknowledged the confirm but does not list the image as confirmed",
                s.name
            )))
        }
    }

    fn rollback(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        // Only this transaction's record says what to undo: an install that failed before it
        // recorded anything left the running image alone (the record of an earlier, committed
        // transaction must not roll that one back).
        let want = ImageVersion::from_semver(&component.version).map(|v| v.text());
        let Some(record) =
            load_record(ctx)?.filter(|r| r.transaction == ctx.transaction && Some(&r.target.version) == want.as_ref())
        else {
            return Ok(());
        };
        let mut s = Session::open(ctx)?;
        let target = hex::decode(&record.target.hash).unwrap_or_default();
        let previous = hex::decode(&record.previous.hash).unwrap_or_default();
        let banks = s.list()?;
        if banks.primary_is(&previous) {
            // A rollback cut after its reset finds the previous image running unconfirmed.
            if banks.primary.as_ref().is_some_and(|p| !p.confirmed) {
                s.client.image_set_state(Some(&previous), true).map_err(|e| s.fail("confirm the previous image", e))?;
            }
            if banks.secondary.as_ref().is_some_and(|x| x.pending) {
                s.client.image_erase().map_err(|e| s.fail("erase the pending image", e))?;
            }
            ctx.events
                .info(&format!("firmware {}: the MCU runs the previous version {}", s.name, record.previous.version));
            return forget(ctx);
        }
        if !banks.primary_is(&target) {
            return Err(Error::Other(format!(
                "firmware {}: cannot roll back version {}: the MCU runs {}, neither it nor the previous {}",
                s.name,
                component.version,
                banks.running(),
                record.previous.version
            )));
        }
        let unconfirmed = banks.primary.as_ref().is_some_and(|p| !p.confirmed);
        if !unconfirmed {
            // Confirmed already: run the previous image from the secondary slot as a test, then
            // confirm it below.
            if !banks.secondary_is(&previous) {
                return Err(Error::Other(format!(
                    "firmware {}: cannot roll back: version {} is confirmed and the previous image is no longer in the secondary slot",
                    s.name, component.version
                )));
            }
            s.client
                .image_set_state(Some(&previous), false)
                .map_err(|e| s.fail("mark the previous image for a test run", e))?;
        }
        let after = s.reset_and_wait(ctx)?;
        if !after.primary_is(&previous) {
            return Err(Error::Other(format!(
                "firmware {}: after the reset the MCU runs {}, not the previous version {}",
                s.name,
                after.running(),
                record.previous.version
            )));
        }
        if after.primary.as_ref().is_some_and(|p| !p.confirmed) {
            s.client.image_set_state(Some(&previous), true).map_err(|e| s.fail("confirm the previous image", e))?;
        }
        ctx.events.info(&format!("firmware {}: rolled back to version {}", s.name, record.previous.version));
        forget(ctx)
    }
}

/// The component version an image list entry shows, for tests and status displays.
#[must_use]
pub fn version_of(slot: &ImageSlot) -> Option<Version> {
    ImageVersion::semver_of_text(&slot.version)
}
