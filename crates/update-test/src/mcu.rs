//! A simulated microcontroller with MCUboot and an MCUmgr SMP server on a pseudo-terminal: the
//! device the `firmware` handler updates in tests and the demo (docs/components.md, "firmware").
//!
//! A thread owns the pty's master side and speaks SMP over the serial console framing; the
//! handler opens the slave through a link (`<root>/dev/ttyACM0 → /dev/pts/N`). The MCU models
//! MCUboot's two banks ("swap" upgrade): uploads go into the secondary slot; a test mark makes
//! the next reset swap the banks and run the new image unconfirmed; a reset before the confirm
//! swaps back (revert); a confirm makes the image permanent. An upload's progress lives in RAM
//! (as in Zephyr): a dropped connection resumes from it, a reset or power cut restarts the
//! upload. The banks and their flags live in a flash file, so dropping the simulator and
//! starting it again on the same file is a power cut that keeps them.
//!
//! A [`SimMcu::crashing_image`] is firmware that faults at start: run as a test image it is
//! reset by the watchdog at once and MCUboot reverts it, as on a real board.
//!
//! [`Fault`]s make it misbehave: mute, lie (acknowledge the test mark but never swap), go silent
//! in the middle of an upload, damage an upload on its way into flash, run a new image that
//! hangs, or answer with a bad CRC, an oversize length or bad base64.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use update_components::firmware::cbor::Value;
use update_components::firmware::image::{ImageVersion, McubootImage, build_image};
use update_components::firmware::serial::{FrameDecoder, crc16, encode_lines, encode_packet, wait_readable};
use update_components::firmware::smp::{self, Header, ImageSlot, Op, Packet, rc};

const MAGIC: &[u8; 8] = b"SIMMCU01";
const FLAGS_AT: u64 = 16;
const SLOTS_AT: u64 = 32;
/// In the first bytes of an image's body: the firmware faults at start (see
/// [`SimMcu::crashing_image`]).
const CRASH_AT_START: &[u8] = b"SIM-MCU: CRASH AT START";

/// How the simulated MCU misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers nothing.
    Mute,
    /// Acknowledges a test mark, but its bootloader never swaps the banks.
    Lying,
    /// Goes silent once an upload reaches this offset, until the host closes the port or the
    /// test calls [`SimMcu::restore_link`].
    CutUploadAt(u64),
    /// Flips a bit of the upload's data at this offset on its way into flash (a transfer or
    /// flash error the MCU's whole-image SHA-256 catches).
    FlipBitAt(u64),
    /// The new image hangs: while a test image runs (unconfirmed) nothing answers; after the
    /// revert the old image answers again.
    HangingImage,
    /// The next answer has a wrong CRC.
    CorruptCrc,
    /// The next answer announces a 60000-byte packet.
    OversizeFrame,
    /// The next answer has a character outside base64.
    BadBase64,
}

/// The MCU's hardware.
#[derive(Debug, Clone)]
pub struct McuOptions {
    /// Bytes per slot.
    pub slot_size: usize,
    /// Time from reset until it answers again.
    pub boot_time: Duration,
    /// Largest SMP request it accepts.
    pub mtu: usize,
}

impl Default for McuOptions {
    fn default() -> Self {
        Self { slot_size: 512 << 10, boot_time: Duration::from_millis(150), mtu: 1024 }
    }
}

/// What the MCU has seen (for tests and measurements).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct McuStats {
    /// Upload data bytes received.
    pub upload_bytes: u64,
    /// Requests answered.
    pub requests: u64,
    /// Resets (requested).
    pub resets: u64,
    /// Bank swaps done by the bootloader (upgrades and reverts).
    pub swaps: u64,
}

/// The banks: flash contents mirrored in RAM, written through to the flash file.
struct Flash {
    file: File,
    slot: usize,
    banks: [Vec<u8>; 2],
    /// Primary: the image is confirmed (MCUboot's `image_ok`).
    image_ok: bool,
    /// Primary: runs after a test swap (a reset without confirm reverts).
    copy_done: bool,
    /// Secondary: 0 none, 1 test, 2 permanent.
    pending: u8,
}

fn io_at(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

impl Flash {
    fn create(path: &Path, slot: usize, factory: &[u8]) -> io::Result<()> {
        if factory.len() > slot {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "factory image larger than the slot"));
        }
        let mut bytes = Vec::with_capacity(32 + 2 * slot);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(slot as u64).to_le_bytes());
        bytes.extend_from_slice(&[1, 0, 0]); // image_ok, copy_done, pending
        bytes.resize(32, 0);
        bytes.extend_from_slice(factory);
        bytes.resize(32 + 2 * slot, 0xff);
        std::fs::write(path, bytes).map_err(|e| io_at("write", path, e))
    }

    fn open(path: &Path) -> io::Result<Flash> {
        let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| io_at("open", path, e))?;
        let mut all = Vec::new();
        file.read_to_end(&mut all).map_err(|e| io_at("read", path, e))?;
        let bad =
            || io::Error::new(io::ErrorKind::InvalidData, format!("{} is not a simulated MCU flash", path.display()));
        if all.len() < 32 || &all[..8] != MAGIC {
            return Err(bad());
        }
        let slot = usize::try_from(u64::from_le_bytes(all[8..16].try_into().map_err(|_| bad())?)).map_err(|_| bad())?;
        if all.len() != 32 + 2 * slot {
            return Err(bad());
        }
        Ok(Flash {
            slot,
            image_ok: all[16] == 1,
            copy_done: all[17] == 1,
            pending: all[18],
            banks: [all[32..32 + slot].to_vec(), all[32 + slot..].to_vec()],
            file,
        })
    }

    fn save_flags(&mut self) {
        let _ = self.file.write_all_at(&[u8::from(self.image_ok), u8::from(self.copy_done), self.pending], FLAGS_AT);
        let _ = self.file.sync_data();
    }

    fn write(&mut self, bank: usize, off: usize, data: &[u8]) {
        self.banks[bank][off..off + data.len()].copy_from_slice(data);
        let _ = self.file.write_all_at(data, SLOTS_AT + (bank * self.slot + off) as u64);
    }

    fn erase(&mut self, bank: usize) {
        self.banks[bank].fill(0xff);
        let erased = vec![0xff; self.slot];
        self.write(bank, 0, &erased);
        if bank == 1 {
            self.pending = 0;
            self.save_flags();
        }
    }

    fn image(&self, bank: usize) -> Option<McubootImage> {
        McubootImage::parse(&self.banks[bank], true).ok()
    }

    fn swap(&mut self) {
        let [a, b] = std::mem::take(&mut self.banks);
        self.banks = [b, a];
        let (p, s) = (self.banks[0].clone(), self.banks[1].clone());
        self.write(0, 0, &p);
        self.write(1, 0, &s);
    }

    /// The primary image is one that faults at start ([`SimMcu::crashing_image`]).
    fn crashes_at_start(&self) -> bool {
        let head = &self.banks[0][..self.banks[0].len().min(4096)];
        self.image(0).is_some() && head.windows(CRASH_AT_START.len()).any(|w| w == CRASH_AT_START)
    }

    /// The primary runs a test image that a reset reverts.
    fn on_trial(&self) -> bool {
        self.copy_done && !self.image_ok
    }
}

struct Upload {
    len: u64,
    sha: Option<Vec<u8>>,
    off: u64,
}

struct State {
    flash: Flash,
    opts: McuOptions,
    upload: Option<Upload>,
    booting_until: Option<Instant>,
    fault: Option<Fault>,
    silent_until_close: bool,
    stats: McuStats,
    console: Vec<u8>,
    /// What the bootloader did, for [`SimMcu::take_events`].
    events: Vec<String>,
}

impl State {
    /// MCUboot at power-on or reset: revert an unconfirmed test image, or swap in a pending one.
    fn boot(&mut self) {
        self.boot_once();
        // A test image that faults before it can confirm itself: the watchdog resets the MCU and
        // MCUboot reverts it at that boot.
        if self.flash.on_trial() && self.flash.crashes_at_start() {
            let version = self.flash.image(0).map(|i| i.version.text()).unwrap_or_default();
            let line = format!("{version} crashed at start: watchdog reset");
            self.console.extend_from_slice(format!("[sim-mcu] {line}\r\n").as_bytes());
            self.events.push(line);
            self.stats.resets += 1;
            self.boot_once();
        }
    }

    fn boot_once(&mut self) {
        let f = &mut self.flash;
        if f.on_trial() {
            f.swap();
            f.image_ok = true;
            f.copy_done = false;
            f.pending = 0;
            self.stats.swaps += 1;
        } else if f.pending != 0 {
            let lying = self.fault == Some(Fault::Lying);
            if f.image(1).is_some() && !lying {
                let permanent = f.pending == 2;
                f.swap();
                f.image_ok = permanent;
                f.copy_done = !permanent;
                self.stats.swaps += 1;
            } else if !lying {
                f.erase(1); // MCUboot erases a secondary image that does not validate
            }
            f.pending = 0;
        }
        f.save_flags();
        self.upload = None;
        let running = f.image(0).map_or_else(|| "no valid image".to_owned(), |i| i.version.text());
        self.events.push(format!("MCUboot: {running} boots{}", if f.on_trial() { " on trial" } else { "" }));
        self.console
            .extend_from_slice(format!("*** Booting MCUboot ***\r\n[sim-mcu] running {running}\r\n").as_bytes());
    }

    fn list(&self) -> Vec<ImageSlot> {
        let f = &self.flash;
        let mut out = Vec::new();
        if let Some(p) = f.image(0) {
            out.push(ImageSlot {
                slot: 0,
                version: p.version.text(),
                hash: p.hash.to_vec(),
                bootable: true,
                confirmed: f.image_ok,
                active: true,
                ..ImageSlot::default()
            });
        }
        if let Some(s) = f.image(1) {
            out.push(ImageSlot {
                slot: 1,
                version: s.version.text(),
                hash: s.hash.to_vec(),
                bootable: true,
                pending: f.pending != 0,
                permanent: f.pending == 2,
                // After a test swap the old image is the one a reset makes confirmed again.
                confirmed: f.on_trial(),
                ..ImageSlot::default()
            });
        }
        out
    }

    fn list_body(&self) -> Value {
        smp::image_list_body(&self.list())
    }

    /// Answers one request; `Err(rc)` is an error answer; the bool asks for a reset afterwards.
    fn handle(&mut self, h: &Header, body: &Value) -> Result<(Value, bool), (u64, &'static str)> {
        let empty = || Value::Map(Vec::new());
        match (h.group, h.id, h.op) {
            (smp::GROUP_OS, smp::OS_ECHO, _) => {
                let d = body.get("d").and_then(Value::as_text).ok_or((rc::EINVAL, "echo without d"))?;
                Ok((Value::map([("r", Value::Text(d.to_owned()))]), false))
            }
            (smp::GROUP_OS, smp::OS_RESET, Op::Write) => Ok((empty(), true)),
            (smp::GROUP_OS, smp::OS_PARAMS, Op::Read) => Ok((
                Value::map([("buf_size", Value::Uint(self.opts.mtu as u64)), ("buf_count", Value::Uint(4))]),
                false,
            )),
            (smp::GROUP_IMAGE, smp::IMAGE_STATE, Op::Read) => Ok((self.list_body(), false)),
            (smp::GROUP_IMAGE, smp::IMAGE_STATE, Op::Write) => self.set_state(body).map(|()| (self.list_body(), false)),
            (smp::GROUP_IMAGE, smp::IMAGE_UPLOAD, Op::Write) => self.upload(body).map(|v| (v, false)),
            (smp::GROUP_IMAGE, smp::IMAGE_ERASE, Op::Write) => {
                if body.get("slot").and_then(Value::as_u64).unwrap_or(1) != 1 {
                    return Err((rc::EINVAL, "only slot 1 can be erased"));
                }
                if self.flash.on_trial() {
                    return Err((rc::EBADSTATE, "slot 1 holds the image a reset reverts to"));
                }
                self.flash.erase(1);
                self.upload = None;
                Ok((empty(), false))
            }
            (smp::GROUP_IMAGE, smp::IMAGE_SLOT_INFO, Op::Read) => {
                let size = Value::Uint(self.flash.slot as u64);
                let slot = |n| Value::map([("slot", Value::Uint(n)), ("size", size.clone())]);
                Ok((
                    Value::map([(
                        "images",
                        Value::Array(vec![Value::map([
                            ("image", Value::Uint(0)),
                            ("slots", Value::Array(vec![slot(0), slot(1)])),
                            ("max_image_size", size.clone()),
                        ])]),
                    )]),
                    false,
                ))
            }
            _ => Err((rc::ENOTSUP, "unknown command")),
        }
    }

    fn set_state(&mut self, body: &Value) -> Result<(), (u64, &'static str)> {
        let confirm = body.get("confirm").and_then(Value::as_bool).unwrap_or(false);
        let hash = body.get("hash").and_then(Value::as_bytes);
        let f = &mut self.flash;
        let primary = f.image(0).map(|i| i.hash);
        let secondary = f.image(1).map(|i| i.hash);
        let is = |h: Option<[u8; 32]>| matches!((hash, h), (Some(a), Some(b)) if a == b);
        if confirm && (hash.is_none() || is(primary)) {
            f.image_ok = true;
        } else if is(primary) {
            return Err((rc::EBADSTATE, "the image is running already"));
        } else if is(secondary) {
            if f.on_trial() {
                return Err((rc::EBADSTATE, "confirm or revert the running test image first"));
            }
            f.pending = if confirm { 2 } else { 1 };
        } else {
            return Err((rc::EINVAL, "no image with that hash"));
        }
        f.save_flags();
        Ok(())
    }

    fn upload(&mut self, body: &Value) -> Result<Value, (u64, &'static str)> {
        let off = body.get("off").and_then(Value::as_u64).ok_or((rc::EINVAL, "upload without off"))?;
        let data = body.get("data").and_then(Value::as_bytes).ok_or((rc::EINVAL, "upload without data"))?;
        let reply = |off: u64| Value::map([("rc", Value::Uint(0)), ("off", Value::Uint(off))]);
        if off == 0 {
            let len = body.get("len").and_then(Value::as_u64).ok_or((rc::EINVAL, "first chunk without len"))?;
            let sha = body.get("sha").and_then(Value::as_bytes).map(<[u8]>::to_vec);
            if body.get("image").and_then(Value::as_u64).unwrap_or(0) != 0 {
                return Err((rc::EINVAL, "only image 0"));
            }
            if let Some(u) = &self.upload
                && u.len == len
                && u.sha.is_some()
                && u.sha == sha
                && u.off > 0
            {
                return Ok(reply(u.off)); // the same upload again: continue where it stopped
            }
            if self.flash.on_trial() {
                return Err((rc::EBADSTATE, "slot 1 holds the image a reset reverts to"));
            }
            if len > self.flash.slot as u64 || len == 0 {
                return Err((rc::EINVAL, "image does not fit the slot"));
            }
            self.flash.erase(1);
            self.upload = Some(Upload { len, sha, off: 0 });
        }
        let u = self.upload.as_mut().ok_or((rc::EINVAL, "no upload in progress"))?;
        if off != u.off {
            return Ok(reply(u.off));
        }
        let end = off + data.len() as u64;
        if end > u.len {
            return Err((rc::EINVAL, "data beyond the announced length"));
        }
        let at = usize::try_from(off).map_err(|_| (rc::EINVAL, "offset"))?;
        self.flash.write(1, at, data);
        if let Some(Fault::FlipBitAt(bad)) = self.fault
            && (off..end).contains(&bad)
        {
            self.fault = None;
            let i = usize::try_from(bad).map_err(|_| (rc::EINVAL, "offset"))?;
            let flipped = [self.flash.banks[1][i] ^ 0x10];
            self.flash.write(1, i, &flipped);
        }
        self.stats.upload_bytes += data.len() as u64;
        let u = self.upload.as_mut().ok_or((rc::EINVAL, "no upload in progress"))?;
        u.off = end;
        if let Some(Fault::CutUploadAt(cut)) = self.fault
            && end >= cut
        {
            self.fault = None;
            self.silent_until_close = true;
        }
        if end < u.len {
            return Ok(reply(end));
        }
        let matched = u.sha.as_ref().map(|sha| {
            let len = usize::try_from(u.len).unwrap_or(0);
            Sha256::digest(&self.flash.banks[1][..len]).as_slice() == sha.as_slice()
        });
        self.upload = None;
        let mut v = vec![(Value::Text("rc".into()), Value::Uint(0)), (Value::Text("off".into()), Value::Uint(end))];
        if let Some(m) = matched {
            v.push((Value::Text("match".into()), Value::Bool(m)));
        }
        Ok(Value::Map(v))
    }

    /// The bytes that answer `packet`, with any one-shot fault applied.
    fn respond(&mut self, packet: &Packet) -> (Vec<u8>, bool) {
        let h = packet.header;
        let (body, reset) = match self.handle(&h, &packet.body) {
            Ok(r) => r,
            Err((code, why)) if h.version == 0 => {
                (Value::map([("rc", Value::Uint(code)), ("rsn", Value::Text(why.into()))]), false)
            }
            Err((code, _)) => (
                Value::map([(
                    "err",
                    Value::map([("group", Value::Uint(u64::from(h.group))), ("rc", Value::Uint(code))]),
                )]),
                false,
            ),
        };
        self.stats.requests += 1;
        let answer = Packet { header: Header { op: h.op.response(), ..h }, body };
        let Ok(bytes) = answer.encode() else {
            return (Vec::new(), reset);
        };
        let framed = match self.fault {
            Some(Fault::CorruptCrc) => {
                self.fault = None;
                let mut raw = u16::try_from(bytes.len() + 2).unwrap_or(u16::MAX).to_be_bytes().to_vec();
                raw.extend_from_slice(&bytes);
                raw.extend_from_slice(&(crc16(&bytes) ^ 0x0101).to_be_bytes());
                encode_lines(&raw)
            }
            Some(Fault::OversizeFrame) => {
                self.fault = None;
                let mut raw = 60_000u16.to_be_bytes().to_vec();
                raw.extend_from_slice(&bytes);
                encode_lines(&raw)
            }
            Some(Fault::BadBase64) => {
                self.fault = None;
                let mut f = encode_packet(&bytes);
                f[4] = b'*';
                f
            }
            _ => encode_packet(&bytes),
        };
        (framed, reset)
    }
}

/// A running simulated MCU.
pub struct SimMcu {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    link: PathBuf,
    pts: PathBuf,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SimMcu {
    /// Writes a fresh flash file: `factory` confirmed in the primary slot, the secondary erased.
    ///
    /// # Errors
    /// The file cannot be written, or the image is larger than a slot.
    pub fn create_flash(flash: &Path, slot_size: usize, factory: &[u8]) -> io::Result<()> {
        Flash::create(flash, slot_size, factory)
    }

    /// A factory image of `version` with a body of `size` pseudo-random bytes.
    #[must_use]
    pub fn image(version: &str, size: usize) -> Vec<u8> {
        Self::image_with(version, size, b"")
    }

    /// A well-formed, correctly hashed image of `version` whose firmware faults at start: run as
    /// a test image, it never answers, the MCU's watchdog resets it and MCUboot reverts to the
    /// previous image (a broken release as a real board sees one).
    #[must_use]
    pub fn crashing_image(version: &str, size: usize) -> Vec<u8> {
        Self::image_with(version, size, CRASH_AT_START)
    }

    fn image_with(version: &str, size: usize, prefix: &[u8]) -> Vec<u8> {
        let v =
            update_core::Version::parse(version).ok().and_then(|v| ImageVersion::from_semver(&v)).unwrap_or_default();
        let mut body = Vec::with_capacity(size);
        body.extend_from_slice(prefix);
        let mut x: u32 = 0x1234_5678 ^ u32::from(v.major) << 16 ^ u32::from(v.minor) << 8 ^ u32::from(v.revision);
        while body.len() < size {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            body.extend_from_slice(&x.to_le_bytes());
        }
        body.truncate(size);
        build_image(v, &body)
    }

    /// Powers the MCU on from `flash` (the bootloader runs first) and serves SMP on a new pty,
    /// reachable through the symbolic link `link` (replaced if present).
    ///
    /// # Errors
    /// The flash file is unreadable, or the pty or link cannot be made.
    pub fn start(flash: &Path, link: &Path, opts: McuOptions) -> io::Result<SimMcu> {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let flash = Flash::open(flash)?;
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let pts = PathBuf::from(std::ffi::OsStr::from_bytes(ptsname(&master, Vec::new())?.as_bytes()));
        {
            // Raw mode from the start, so nothing is echoed before the host sets its own.
            let slave = rustix::fs::open(
                &pts,
                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY,
                rustix::fs::Mode::empty(),
            )?;
            let mut t = rustix::termios::tcgetattr(&slave)?;
            t.make_raw();
            rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &t)?;
        }
        if let Some(dir) = link.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_at("create", dir, e))?;
        }
        match std::fs::remove_file(link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at("remove", link, e)),
        }
        std::os::unix::fs::symlink(&pts, link).map_err(|e| io_at("link", link, e))?;
        let mut state = State {
            flash,
            opts,
            upload: None,
            booting_until: None,
            fault: None,
            silent_until_close: false,
            stats: McuStats::default(),
            console: Vec::new(),
            events: Vec::new(),
        };
        state.boot();
        let state = Arc::new(Mutex::new(state));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::Builder::new().name("sim-mcu".into()).spawn(move || serve(master, &state, &stop))?
        };
        Ok(SimMcu { state, stop, thread: Some(thread), link: link.to_owned(), pts })
    }

    /// Sets (or clears) the fault.
    pub fn set_fault(&self, fault: Option<Fault>) {
        lock(&self.state).fault = fault;
    }

    /// The line comes back after a [`Fault::CutUploadAt`] (as when the host closes the port):
    /// the MCU answers again and still holds the upload's progress.
    pub fn restore_link(&self) {
        lock(&self.state).silent_until_close = false;
    }

    /// What the bootloader did since the last call (`MCUboot: 2.0.0 boots on trial`, `3.0.0
    /// crashed at start: watchdog reset`), oldest first.
    #[must_use]
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.state).events)
    }

    /// What it has seen so far.
    #[must_use]
    pub fn stats(&self) -> McuStats {
        lock(&self.state).stats
    }

    /// The version the primary slot runs, and whether it is confirmed.
    #[must_use]
    pub fn running(&self) -> (String, bool) {
        let s = lock(&self.state);
        (s.flash.image(0).map_or_else(String::new, |i| i.version.text()), s.flash.image_ok)
    }

    /// The version in the secondary slot, and whether it is pending.
    #[must_use]
    pub fn secondary(&self) -> (Option<String>, bool) {
        let s = lock(&self.state);
        (s.flash.image(1).map(|i| i.version.text()), s.flash.pending != 0)
    }

    /// The link the handler opens.
    #[must_use]
    pub fn link(&self) -> &Path {
        &self.link
    }

    /// The pty's slave path.
    #[must_use]
    pub fn pts(&self) -> &Path {
        &self.pts
    }

    /// Cuts the power: the thread stops at once, RAM (an upload's progress) is lost, the flash
    /// file keeps what was written.
    pub fn power_cut(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SimMcu {
    fn drop(&mut self) {
        self.halt();
    }
}

fn serve(master: OwnedFd, state: &Mutex<State>, stop: &AtomicBool) {
    let mut decoder = FrameDecoder::new(64 << 10);
    let mut port = File::from(master);
    let mut buf = [0u8; 4096];
    let mut packets = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        {
            let mut s = lock(state);
            if s.booting_until.is_some_and(|t| Instant::now() >= t) {
                s.booting_until = None;
                s.boot();
            }
            if !s.console.is_empty() {
                let text = std::mem::take(&mut s.console);
                let _ = port.write_all(&text);
            }
        }
        match wait_readable(&port, Instant::now() + Duration::from_millis(10)) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        let n = match port.read(&mut buf) {
            Ok(n) if n > 0 => n,
            _ => {
                // No slave open (EIO): the host closed the port.
                decoder.reset();
                lock(state).silent_until_close = false;
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let mut s = lock(state);
        let hung = s.fault == Some(Fault::HangingImage) && s.flash.on_trial();
        if s.booting_until.is_some() || s.silent_until_close || s.fault == Some(Fault::Mute) || hung {
            decoder.reset();
            continue;
        }
        packets.clear();
        decoder.feed(&buf[..n], &mut packets);
        for p in packets.drain(..) {
            // A real SMP server drops what does not decode.
            let Ok(bytes) = p else { continue };
            let Ok(packet) = Packet::decode(&bytes) else { continue };
            if bytes.len() > s.opts.mtu || matches!(packet.header.op, Op::ReadRsp | Op::WriteRsp) {
                continue;
            }
            if s.silent_until_close {
                break;
            }
            let (answer, reset) = s.respond(&packet);
            let _ = port.write_all(&answer);
            if reset {
                s.stats.resets += 1;
                s.upload = None;
                s.booting_until = Some(Instant::now() + s.opts.boot_time);
                decoder.reset();
                break;
            }
        }
    }
}
