//! Power-cut-safe storage of the [`BootState`]: the [`BootEnv`] trait and its three backends.
//!
//! Every backend keeps **two copies** and writes only the copy that is *not* current, then
//! flushes; a load takes the newest valid copy. A power cut at any write therefore leaves either
//! the old current copy (the new one is torn, invalid or older) or the new one: the loaded state
//! is the state before or after the interrupted store, never a mixture, never nothing
//! (`tests/power_cut_torture.rs` cuts at every write and flush and checks exactly that).
//!
//! | backend | copies | valid when | newest |
//! |---|---|---|---|
//! | [`GrubBootEnv`] | two grubenv files, variables `UPD1_*` / `UPD2_*` | signature, every variable well formed, `SEQ` = `END` | `SEQ` counts 0,1,2,0…: copy 2 is newer iff its `SEQ` is copy 1's plus one (mod 3) |
//! | [`UbootBootEnv`] | the redundant U-Boot env, variables `UPD_*` | CRC-32 | the flag byte (libubootenv's rule) |
//! | [`FileBootEnv`] | two text copies (two devices, or two halves of one) | CRC-32 line | the larger `seq` |
//!
//! The GRUB validity check is what GRUB script can evaluate (no arithmetic, no checksums):
//! each copy's variables are written between `SEQ` and `END`, which carry the same number, so
//! a write torn inside the variables leaves a copy whose `SEQ` and `END` differ. The shipped
//! fragment ([`crate::GRUB_FRAGMENT`]) and this module apply the same rules.

use std::path::Path;

use update_core::blockdev::{BlockDevice, FileDevice};
use update_core::config::{BootConfig, BootloaderKind};
use update_core::{Error, ErrorKind, Paths, Result};

use crate::grubenv::{self, GrubEnvBlock};
use crate::state::{BootState, Slot, SlotState};
use crate::ubootenv::{self, UbootEnv};

/// Where the boot state lives: load it once, change it with the pure [`BootState`]
/// transitions, store it once.
pub trait BootEnv {
    /// Loads the state from the newest valid copy.
    ///
    /// # Errors
    /// [`Error::Verification`] naming the devices when no copy is valid; I/O errors.
    fn load(&mut self) -> Result<BootState>;

    /// Stores `state` power-cut safely: writes the copy that is not current, then flushes.
    ///
    /// # Errors
    /// I/O errors naming the device; [`Error::Refused`] when the backend cannot write safely
    /// (a U-Boot environment with no valid copy and no default environment).
    fn store(&mut self, state: &BootState) -> Result<()>;

    /// The write the bootloader itself makes when it uses a try (used by
    /// [`crate::simulate_boot`]). The default is [`BootEnv::store`]. GRUB's `save_env` can only
    /// update a file that already holds an environment block, so the GRUB backend refuses
    /// ([`Error::Refused`]) where GRUB would fail.
    ///
    /// # Errors
    /// As [`BootEnv::store`].
    fn store_from_bootloader(&mut self, state: &BootState) -> Result<()> {
        self.store(state)
    }

    /// The condition of each copy (for `update status` and tests).
    ///
    /// # Errors
    /// I/O errors.
    fn inspect(&mut self) -> Result<Vec<CopyStatus>>;

    /// The bootloader this environment is for.
    fn kind(&self) -> BootloaderKind;

    /// The devices, for messages.
    fn describe(&self) -> String;
}

/// The condition of one stored copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStatus {
    /// The device (and offset) holding the copy.
    pub device: String,
    /// The copy's sequence number (GRUB: 0–2; U-Boot: the flag byte; file: the counter)
    /// when it is valid.
    pub sequence: Option<u64>,
    /// Whether this is the copy a load uses.
    pub current: bool,
    /// What is wrong with an invalid copy.
    pub problem: Option<String>,
}

/// The two copies: the devices, and per copy (device index, offset, size).
struct Copies {
    devs: Vec<Box<dyn BlockDevice>>,
    locs: [(usize, u64, usize); 2],
}

/// The largest copy read whole into memory (U-Boot environments are at most a few hundred KiB;
/// a whole disk given by mistake is refused, not read).
const MAX_COPY: u64 = 16 << 20;

impl Copies {
    /// Two devices, one copy each; or one device split in two halves.
    fn new(devs: Vec<Box<dyn BlockDevice>>, allow_halves: bool, what: &str) -> Result<Self> {
        let locs = match devs.len() {
            2 => [(0, 0, devs[0].size()), (1, 0, devs[1].size())],
            1 if allow_halves => {
                let half = devs[0].size() / 2;
                [(0, 0, half), (0, half, half)]
            }
            n => {
                return Err(Error::InvalidValue {
                    what: format!("{what} environment"),
                    value: format!("{n} device(s)"),
                    reason: format!(
                        "expected two copies{} (power-cut safety needs a second copy)",
                        if allow_halves { " (or one device split in two halves)" } else { "" }
                    ),
                });
            }
        };
        let mut out = [(0, 0, 0); 2];
        for (i, (d, off, size)) in locs.into_iter().enumerate() {
            if size > MAX_COPY {
                return Err(Error::InvalidValue {
                    what: format!("{what} environment copy"),
                    value: devs[d].describe(),
                    reason: format!("{size} bytes is larger than {MAX_COPY}; give the copy's size"),
                });
            }
            out[i] = (d, off, usize::try_from(size).expect("at most 16 MiB"));
        }
        Ok(Self { devs, locs: out })
    }

    fn size(&self, i: usize) -> usize {
        self.locs[i].2
    }

    fn describe(&self, i: usize) -> String {
        let (d, off, _) = self.locs[i];
        let dev = self.devs[d].describe();
        if off == 0 { dev } else { format!("{dev}+{off}") }
    }

    fn describe_all(&self) -> String {
        format!("{} and {}", self.describe(0), self.describe(1))
    }

    fn check_min(&self, min: usize, what: &str) -> Result<()> {
        for i in 0..2 {
            if self.size(i) < min {
                return Err(Error::InvalidValue {
                    what: format!("{what} environment copy"),
                    value: self.describe(i),
                    reason: format!("{} bytes is too small (at least {min})", self.size(i)),
                });
            }
        }
        Ok(())
    }

    fn read(&mut self, i: usize) -> Result<Vec<u8>> {
        let (d, off, size) = self.locs[i];
        let mut buf = vec![0; size];
        self.devs[d].read_at(off, &mut buf)?;
        Ok(buf)
    }

    /// Writes a whole copy and makes it durable.
    fn write(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        let (d, off, size) = self.locs[i];
        debug_assert_eq!(bytes.len(), size);
        self.devs[d].write_at(off, bytes)?;
        self.devs[d].flush()
    }
}

/// A copy as read: its sequence number and state, or why it is invalid.
type Decoded<S> = std::result::Result<(S, BootState), String>;

/// Both copies as read: raw bytes (or the backend's parsed form), decoded, and which is current.
struct Snapshot<R, S> {
    raw: [R; 2],
    decoded: [Decoded<S>; 2],
    current: Option<usize>,
}

impl<R, S: Copy> Snapshot<R, S> {
    fn current_seq_state(&self) -> Option<(usize, S, BootState)> {
        let i = self.current?;
        let (seq, state) = self.decoded[i].as_ref().ok()?;
        Some((i, *seq, *state))
    }
}

fn no_valid_copy(env: &str, problems: &[String; 2]) -> Error {
    Error::verification(
        format!("boot environment {env}"),
        format!("no valid copy (copy 1: {}; copy 2: {})", problems[0], problems[1]),
    )
}

fn status<S: Copy + Into<u64>>(copies: &Copies, decoded: &[Decoded<S>; 2], current: Option<usize>) -> Vec<CopyStatus> {
    (0..2)
        .map(|i| CopyStatus {
            device: copies.describe(i),
            sequence: decoded[i].as_ref().ok().map(|(s, _)| (*s).into()),
            current: current == Some(i),
            problem: decoded[i].as_ref().err().cloned(),
        })
        .collect()
}

fn problems<S>(decoded: &[Decoded<S>; 2]) -> [String; 2] {
    [0, 1].map(|i| decoded[i].as_ref().err().cloned().unwrap_or_default())
}

fn bit(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

fn order_text(state: &BootState) -> &'static str {
    match state.primary() {
        Slot::A => "A B",
        Slot::B => "B A",
    }
}

fn parse_order(v: &str) -> Option<Slot> {
    match v {
        "A B" => Some(Slot::A),
        "B A" => Some(Slot::B),
        _ => None,
    }
}

fn parse_ok(v: &str) -> Option<bool> {
    match v {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

fn parse_tries(v: &str) -> Option<u8> {
    match v.as_bytes() {
        [d @ b'0'..=b'9'] => Some(d - b'0'),
        _ => None,
    }
}

/// Builds a state from the five logical values, as the bootloader scripts validate them.
fn state_from(get: &dyn Fn(&str) -> Option<String>, names: [&str; 5]) -> std::result::Result<BootState, String> {
    let value = |n: &str| get(n).ok_or_else(|| format!("{n} is missing"));
    let bad = |n: &str, v: &str, want: &str| format!("{n}={v:?} is not {want}");
    let order = value(names[0])?;
    let primary = parse_order(&order).ok_or_else(|| bad(names[0], &order, "\"A B\" or \"B A\""))?;
    let mut slots = [SlotState::UNBOOTABLE; 2];
    for (k, slot) in slots.iter_mut().enumerate() {
        let (ok_name, try_name) = (names[1 + 2 * k], names[2 + 2 * k]);
        let ok = value(ok_name)?;
        let tries = value(try_name)?;
        slot.ok = parse_ok(&ok).ok_or_else(|| bad(ok_name, &ok, "0 or 1"))?;
        slot.tries = parse_tries(&tries).ok_or_else(|| bad(try_name, &tries, "a digit 0-9"))?;
    }
    BootState::new(primary, slots[0], slots[1]).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// GRUB

/// The suffixes of the GRUB variables of one copy, in the order they are written
/// (`UPD1_SEQ` … `UPD1_END` in copy 1, `UPD2_…` in copy 2).
pub const GRUB_VARS: [&str; 7] = ["SEQ", "ORDER", "A_OK", "A_TRY", "B_OK", "B_TRY", "END"];

/// The name of a GRUB variable of copy 1 or 2: `grub_var(2, "SEQ")` is `UPD2_SEQ`.
#[must_use]
pub fn grub_var(copy: usize, suffix: &str) -> String {
    format!("UPD{copy}_{suffix}")
}

/// The boot state in two grubenv files, read by the shipped GRUB fragment.
pub struct GrubBootEnv {
    copies: Copies,
}

impl GrubBootEnv {
    /// The two grubenv files (1024 bytes each by convention; at least 512).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] unless there are exactly two devices of at least 512 bytes.
    pub fn new(devices: Vec<Box<dyn BlockDevice>>) -> Result<Self> {
        let copies = Copies::new(devices, false, "GRUB")?;
        copies.check_min(512, "GRUB")?;
        Ok(Self { copies })
    }

    fn decode(bytes: &[u8], copy: usize) -> Decoded<u8> {
        let block = GrubEnvBlock::parse(bytes).map_err(|_| "not a GRUB environment block".to_string())?;
        let get = |suffix: &str| block.get(&grub_var(copy, suffix)).map(str::to_owned);
        let name = |suffix: &str| grub_var(copy, suffix);
        let seq = get("SEQ").ok_or_else(|| format!("{} is missing", name("SEQ")))?;
        let end = get("END").ok_or_else(|| format!("{} is missing", name("END")))?;
        if seq != end {
            return Err(format!("{}={seq:?} and {}={end:?} differ (torn write)", name("SEQ"), name("END")));
        }
        let seq_n = match seq.as_str() {
            "0" => 0,
            "1" => 1,
            "2" => 2,
            _ => return Err(format!("{}={seq:?} is not 0, 1 or 2", name("SEQ"))),
        };
        let names = ["ORDER", "A_OK", "A_TRY", "B_OK", "B_TRY"].map(|s| grub_var(copy, s));
        let lookup = |n: &str| block.get(n).map(str::to_owned);
        let state = state_from(&lookup, [&names[0], &names[1], &names[2], &names[3], &names[4]])?;
        Ok((seq_n, state))
    }

    fn set_vars(block: &mut GrubEnvBlock, copy: usize, seq: u8, state: &BootState) -> Result<()> {
        let a = state.slot(Slot::A);
        let b = state.slot(Slot::B);
        let values = [
            seq.to_string(),
            order_text(state).to_owned(),
            bit(a.ok).to_owned(),
            a.tries.to_string(),
            bit(b.ok).to_owned(),
            b.tries.to_string(),
            seq.to_string(),
        ];
        for (suffix, value) in GRUB_VARS.iter().zip(values) {
            block.set(&grub_var(copy, suffix), &value)?;
        }
        Ok(())
    }

    fn read_all(&mut self) -> Result<Snapshot<Vec<u8>, u8>> {
        let raw = [self.copies.read(0)?, self.copies.read(1)?];
        let decoded = [Self::decode(&raw[0], 1), Self::decode(&raw[1], 2)];
        let current = match (&decoded[0], &decoded[1]) {
            (Ok((s1, _)), Ok((s2, _))) => Some(usize::from(*s2 == (s1 + 1) % 3)),
            (Ok(_), Err(_)) => Some(0),
            (Err(_), Ok(_)) => Some(1),
            (Err(_), Err(_)) => None,
        };
        Ok(Snapshot { raw, decoded, current })
    }

    fn write(&mut self, state: &BootState, bootloader: bool) -> Result<()> {
        let snap = self.read_all()?;
        let (target, seq) = match snap.current_seq_state() {
            Some((i, seq, _)) => (1 - i, (seq + 1) % 3),
            None if bootloader => {
                return Err(Error::Refused(format!("GRUB has no valid copy in {}", self.copies.describe_all())));
            }
            None => (0, 0),
        };
        let mut block = if bootloader {
            // save_env rewrites the variables it is given inside the existing block.
            GrubEnvBlock::parse(&snap.raw[target]).map_err(|_| {
                Error::Refused(format!(
                    "GRUB's save_env cannot write {}: it holds no environment block",
                    self.copies.describe(target)
                ))
            })?
        } else {
            GrubEnvBlock::new()
        };
        Self::set_vars(&mut block, target + 1, seq, state)?;
        let bytes = block.encode(self.copies.size(target))?;
        self.copies.write(target, &bytes)
    }
}

impl BootEnv for GrubBootEnv {
    fn load(&mut self) -> Result<BootState> {
        let snap = self.read_all()?;
        match snap.current_seq_state() {
            Some((_, _, state)) => Ok(state),
            None => Err(no_valid_copy(&self.copies.describe_all(), &problems(&snap.decoded))),
        }
    }
    fn store(&mut self, state: &BootState) -> Result<()> {
        self.write(state, false)
    }
    fn store_from_bootloader(&mut self, state: &BootState) -> Result<()> {
        self.write(state, true)
    }
    fn inspect(&mut self) -> Result<Vec<CopyStatus>> {
        let snap = self.read_all()?;
        Ok(status(&self.copies, &snap.decoded, snap.current))
    }
    fn kind(&self) -> BootloaderKind {
        BootloaderKind::Grub
    }
    fn describe(&self) -> String {
        format!("GRUB environment {}", self.copies.describe_all())
    }
}

// ---------------------------------------------------------------------------------------------
// U-Boot

/// The U-Boot variables holding the boot state: order, then A ok/tries, B ok/tries.
pub const UBOOT_VARS: [&str; 5] = ["UPD_ORDER", "UPD_A_OK", "UPD_A_TRY", "UPD_B_OK", "UPD_B_TRY"];

/// The boot state in U-Boot's redundant environment, read by the shipped U-Boot script. The
/// board's other variables (`bootcmd`, …) are kept.
pub struct UbootBootEnv {
    copies: Copies,
    default_env: Option<UbootEnv>,
}

impl UbootBootEnv {
    /// The two copies of the redundant environment (same size, `CONFIG_ENV_SIZE`).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] unless there are two devices of the same size (at least 64 bytes).
    pub fn new(devices: Vec<Box<dyn BlockDevice>>) -> Result<Self> {
        let copies = Copies::new(devices, false, "U-Boot")?;
        copies.check_min(64, "U-Boot")?;
        if copies.size(0) != copies.size(1) {
            return Err(Error::InvalidValue {
                what: "U-Boot environment copies".into(),
                value: copies.describe_all(),
                reason: format!("sizes differ ({} and {} bytes)", copies.size(0), copies.size(1)),
            });
        }
        Ok(Self { copies, default_env: None })
    }

    /// The environment to start from when neither copy is valid (U-Boot's built-in default
    /// environment, as `fw_printenv -f` takes it). Without it such a store is refused, because
    /// writing only our variables would drop the board's `bootcmd`.
    #[must_use]
    pub fn with_default_env(mut self, env: UbootEnv) -> Self {
        self.default_env = Some(env);
        self
    }

    fn decode(bytes: &[u8]) -> Decoded<u8> {
        let copy = ubootenv::decode_copy(bytes, true).map_err(|e| e.to_string())?;
        let state = uboot_state(&copy.env)?;
        Ok((copy.flag.expect("redundant"), state))
    }

    /// `raw` holds the CRC-valid copies' flag and environment; `current` follows the CRC and
    /// flags only (our variables being malformed does not make U-Boot use the other copy).
    fn read_all(&mut self) -> Result<Snapshot<Option<(u8, UbootEnv)>, u8>> {
        let bytes = [self.copies.read(0)?, self.copies.read(1)?];
        let raw =
            [0, 1].map(|i| ubootenv::decode_copy(&bytes[i], true).ok().map(|c| (c.flag.expect("redundant"), c.env)));
        let decoded = [Self::decode(&bytes[0]), Self::decode(&bytes[1])];
        let current = match (&raw[0], &raw[1]) {
            (Some((f0, _)), Some((f1, _))) => Some(ubootenv::newer_copy(*f0, *f1)),
            (Some(_), None) => Some(0),
            (None, Some(_)) => Some(1),
            (None, None) => None,
        };
        Ok(Snapshot { raw, decoded, current })
    }
}

/// Reads the state from a U-Boot environment: no `UPD_*` variable at all means a board that
/// never stored one (the scripts boot the initial state: A).
fn uboot_state(env: &UbootEnv) -> std::result::Result<BootState, String> {
    if UBOOT_VARS.iter().all(|n| env.get(n).is_none()) {
        return Ok(BootState::initial());
    }
    state_from(&|n| env.get(n).map(str::to_owned), UBOOT_VARS)
}

impl BootEnv for UbootBootEnv {
    fn load(&mut self) -> Result<BootState> {
        let snap = self.read_all()?;
        match snap.current {
            Some(i) => snap.decoded[i].clone().map(|(_, s)| s).map_err(|reason| {
                Error::verification(format!("boot state in U-Boot environment {}", self.copies.describe(i)), reason)
            }),
            None => match &self.default_env {
                Some(env) => uboot_state(env)
                    .map_err(|reason| Error::verification("boot state in the default U-Boot environment", reason)),
                None => Err(no_valid_copy(&self.copies.describe_all(), &problems(&snap.decoded))),
            },
        }
    }

    fn store(&mut self, state: &BootState) -> Result<()> {
        let snap = self.read_all()?;
        let (target, flag, mut env) = match snap.current {
            Some(i) => {
                let (f, env) = snap.raw[i].clone().expect("current is valid");
                (1 - i, f.wrapping_add(1), env)
            }
            None => match &self.default_env {
                Some(env) => (0, 1, env.clone()),
                None => {
                    return Err(Error::Refused(format!(
                        "the U-Boot environment in {} has no valid copy; writing only the boot state would \
                         drop the board's variables (bootcmd, …). Save U-Boot's default environment first \
                         (`env default -a; saveenv` at the U-Boot prompt, or fw_setenv -f DEFAULT-ENV-FILE)",
                        self.copies.describe_all()
                    )));
                }
            },
        };
        let a = state.slot(Slot::A);
        let b = state.slot(Slot::B);
        let values = [
            order_text(state).to_owned(),
            bit(a.ok).to_owned(),
            a.tries.to_string(),
            bit(b.ok).to_owned(),
            b.tries.to_string(),
        ];
        for (name, value) in UBOOT_VARS.iter().zip(values) {
            env.set(name, &value)?;
        }
        let bytes = env.encode_copy(self.copies.size(target), Some(flag))?;
        self.copies.write(target, &bytes)
    }

    fn inspect(&mut self) -> Result<Vec<CopyStatus>> {
        let snap = self.read_all()?;
        Ok(status(&self.copies, &snap.decoded, snap.current))
    }
    fn kind(&self) -> BootloaderKind {
        BootloaderKind::Uboot
    }
    fn describe(&self) -> String {
        format!("U-Boot environment {}", self.copies.describe_all())
    }
}

// ---------------------------------------------------------------------------------------------
// Plain file

const FILE_MAGIC: &str = "libupdate boot state 1\n";

/// The boot state in two plain-text copies (tests, simulated devices, bootloaders we do not
/// drive). Each copy is
///
/// ```text
/// libupdate boot state 1
/// seq=7
/// order=A B
/// a_ok=1
/// a_tries=0
/// b_ok=0
/// b_tries=0
/// crc32=1c291ca3
/// ```
///
/// followed by NUL padding; the CRC-32 covers every byte before the `crc32=` line and the
/// larger `seq` wins (equal: copy 1).
pub struct FileBootEnv {
    copies: Copies,
}

impl FileBootEnv {
    /// Two devices (one copy each) or one device (two halves).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for another number of devices or copies under 256 bytes.
    pub fn new(devices: Vec<Box<dyn BlockDevice>>) -> Result<Self> {
        let copies = Copies::new(devices, true, "file")?;
        copies.check_min(256, "file")?;
        Ok(Self { copies })
    }

    fn encode(seq: u64, state: &BootState, size: usize) -> Result<Vec<u8>> {
        let a = state.slot(Slot::A);
        let b = state.slot(Slot::B);
        let mut text = format!(
            "{FILE_MAGIC}seq={seq}\norder={}\na_ok={}\na_tries={}\nb_ok={}\nb_tries={}\n",
            order_text(state),
            bit(a.ok),
            a.tries,
            bit(b.ok),
            b.tries
        );
        text.push_str(&format!("crc32={:08x}\n", crc32fast::hash(text.as_bytes())));
        let mut bytes = text.into_bytes();
        if bytes.len() > size {
            return Err(Error::InvalidValue {
                what: "boot state file copy".into(),
                value: format!("{size} bytes"),
                reason: "too small".into(),
            });
        }
        bytes.resize(size, 0);
        Ok(bytes)
    }

    fn decode(bytes: &[u8]) -> Decoded<u64> {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = std::str::from_utf8(&bytes[..end]).map_err(|_| "not text".to_string())?;
        let body = text.strip_prefix(FILE_MAGIC).ok_or("not a libupdate boot state")?;
        let crc_at = text.rfind("crc32=").ok_or("no crc32 line")?;
        let crc = text[crc_at..].strip_prefix("crc32=").and_then(|c| c.strip_suffix('\n')).unwrap_or("");
        if u32::from_str_radix(crc, 16).ok() != Some(crc32fast::hash(&text.as_bytes()[..crc_at])) || crc.len() != 8 {
            return Err("CRC mismatch (torn write)".into());
        }
        let lines: Vec<(&str, &str)> =
            body[..crc_at - FILE_MAGIC.len()].lines().filter_map(|l| l.split_once('=')).collect();
        let get = |n: &str| lines.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned());
        let seq = get("seq").and_then(|s| s.parse::<u64>().ok()).ok_or("bad or missing seq")?;
        let state = state_from(&get, ["order", "a_ok", "a_tries", "b_ok", "b_tries"])?;
        Ok((seq, state))
    }

    fn read_all(&mut self) -> Result<Snapshot<(), u64>> {
        let decoded = [Self::decode(&self.copies.read(0)?), Self::decode(&self.copies.read(1)?)];
        let current = match (&decoded[0], &decoded[1]) {
            (Ok((s0, _)), Ok((s1, _))) => Some(usize::from(s1 > s0)),
            (Ok(_), Err(_)) => Some(0),
            (Err(_), Ok(_)) => Some(1),
            (Err(_), Err(_)) => None,
        };
        Ok(Snapshot { raw: [(), ()], decoded, current })
    }
}

impl BootEnv for FileBootEnv {
    fn load(&mut self) -> Result<BootState> {
        let snap = self.read_all()?;
        match snap.current_seq_state() {
            Some((_, _, state)) => Ok(state),
            None => Err(no_valid_copy(&self.copies.describe_all(), &problems(&snap.decoded))),
        }
    }
    fn store(&mut self, state: &BootState) -> Result<()> {
        let snap = self.read_all()?;
        let (target, seq) = match snap.current_seq_state() {
            Some((i, seq, _)) => (1 - i, seq + 1),
            None => (0, 0),
        };
        let bytes = Self::encode(seq, state, self.copies.size(target))?;
        self.copies.write(target, &bytes)
    }
    fn inspect(&mut self) -> Result<Vec<CopyStatus>> {
        let snap = self.read_all()?;
        Ok(status(&self.copies, &snap.decoded, snap.current))
    }
    fn kind(&self) -> BootloaderKind {
        BootloaderKind::File
    }
    fn describe(&self) -> String {
        format!("boot state file {}", self.copies.describe_all())
    }
}

// ---------------------------------------------------------------------------------------------
// Opening

/// Opens the boot environment of `kind` over its copies: GRUB and U-Boot take two devices (one
/// per copy); the file backend takes two, or one that it splits in halves. Nothing is written.
///
/// # Errors
/// [`Error::InvalidValue`] for the wrong number or size of devices.
pub fn open_env(kind: BootloaderKind, devices: Vec<Box<dyn BlockDevice>>) -> Result<Box<dyn BootEnv>> {
    Ok(match kind {
        BootloaderKind::Grub => Box::new(GrubBootEnv::new(devices)?),
        BootloaderKind::Uboot => Box::new(UbootBootEnv::new(devices)?),
        BootloaderKind::File => Box::new(FileBootEnv::new(devices)?),
    })
}

/// Writes `initial` into both copies (two ordinary stores, each power-cut safe) and returns the
/// environment. For U-Boot the board's variables are kept; a U-Boot environment with no valid
/// copy is refused (see [`UbootBootEnv::with_default_env`]).
///
/// # Errors
/// As [`open_env`] and [`BootEnv::store`].
pub fn create_env(
    kind: BootloaderKind,
    devices: Vec<Box<dyn BlockDevice>>,
    initial: &BootState,
) -> Result<Box<dyn BootEnv>> {
    let mut env = open_env(kind, devices)?;
    env.store(initial)?;
    env.store(initial)?;
    Ok(env)
}

/// The default size of a copy when the config says `size = 0` and the file is created here.
fn default_copy_size(kind: BootloaderKind) -> u64 {
    match kind {
        BootloaderKind::Grub => grubenv::BLOCK_SIZE as u64,
        BootloaderKind::Uboot | BootloaderKind::File => 4096,
    }
}

fn open_devices(boot: &BootConfig, paths: &Paths, create: bool) -> Result<Vec<Box<dyn BlockDevice>>> {
    let mut devices: Vec<Box<dyn BlockDevice>> = Vec::new();
    for loc in &boot.env {
        let path = paths.resolve(&loc.path);
        if create && boot.bootloader != BootloaderKind::Uboot && !path.exists() {
            create_copy_file(&path, boot.bootloader, if loc.size == 0 { None } else { Some(loc.size) }, loc.offset)?;
        }
        let size = match (loc.size, boot.bootloader) {
            (0, BootloaderKind::Uboot) => {
                return Err(Error::InvalidValue {
                    what: "U-Boot environment size".into(),
                    value: loc.path.display().to_string(),
                    reason: "give the env size (CONFIG_ENV_SIZE, the third column of fw_env.config)".into(),
                });
            }
            (0, _) => None,
            (n, _) => Some(n),
        };
        devices.push(Box::new(FileDevice::open_window(&path, loc.offset, size, true)?));
    }
    Ok(devices)
}

fn create_copy_file(path: &Path, kind: BootloaderKind, size: Option<u64>, offset: u64) -> Result<()> {
    let size = size.unwrap_or_else(|| default_copy_size(kind));
    let bytes = match kind {
        // An empty environment block, so GRUB and grub-editenv accept the file at once.
        BootloaderKind::Grub => GrubEnvBlock::new().encode(usize::try_from(size).unwrap_or(usize::MAX))?,
        _ => vec![0; usize::try_from(size).unwrap_or(usize::MAX)],
    };
    let mut all = vec![0; usize::try_from(offset).unwrap_or(0)];
    all.extend_from_slice(&bytes);
    // Created once, before any bootloader knows the file; later writes are in place.
    update_core::atomic::write_atomic(path, &all, 0o644)
}

/// Opens the boot environment a device config names (`[native.boot]`), with every path
/// re-rooted by `paths`. `size = 0` means the whole file from `offset` (GRUB, file); U-Boot
/// needs the size.
///
/// # Errors
/// [`Error::Io`] naming the path; as [`open_env`].
pub fn open_configured(boot: &BootConfig, paths: &Paths) -> Result<Box<dyn BootEnv>> {
    open_env(boot.bootloader, open_devices(boot, paths, false)?)
}

/// Provisions the boot environment a device config names: creates missing GRUB/file copies
/// (GRUB: an empty 1024-byte environment block; file: 4096 zero bytes, unless `size` is given),
/// then [`create_env`] with `initial`. U-Boot environments must already exist.
///
/// # Errors
/// As [`open_configured`] and [`create_env`].
pub fn create_configured(boot: &BootConfig, paths: &Paths, initial: &BootState) -> Result<Box<dyn BootEnv>> {
    create_env(boot.bootloader, open_devices(boot, paths, true)?, initial)
}

/// Whether an error from [`BootEnv::load`] means "no valid stored state" (the bootloader then
/// boots the initial state) rather than an I/O failure.
#[must_use]
pub fn is_invalid_env(err: &Error) -> bool {
    err.kind() == ErrorKind::Verification
}

#[cfg(test)]
mod tests {
    use update_core::blockdev::sim::SimDisk;

    use super::*;

    fn sim_env(kind: BootloaderKind, disk: &SimDisk, size: u64) -> Box<dyn BootEnv> {
        open_env(kind, vec![Box::new(disk.part(0, size)), Box::new(disk.part(size, size))]).unwrap()
    }

    #[test]
    fn every_backend_round_trips_and_alternates_copies() {
        for kind in [BootloaderKind::Grub, BootloaderKind::File] {
            let disk = SimDisk::new(2048);
            let mut env = sim_env(kind, &disk, 1024);
            assert!(is_invalid_env(&env.load().unwrap_err()));
            let s1 = BootState::initial();
            let s2 = s1.begin_install(Slot::B).unwrap().switch_to(Slot::B, 3).unwrap();
            env.store(&s1).unwrap();
            assert_eq!(env.load().unwrap(), s1);
            env.store(&s2).unwrap();
            assert_eq!(env.load().unwrap(), s2);
            let st = env.inspect().unwrap();
            assert_eq!(st.iter().map(|c| c.current).collect::<Vec<_>>(), [false, true], "{kind:?}");
            for round in 0..7 {
                let s = if round % 2 == 0 { s1 } else { s2 };
                env.store(&s).unwrap();
                assert_eq!(env.load().unwrap(), s, "{kind:?} round {round}");
            }
        }
    }

    #[test]
    fn grub_copies_use_their_own_names() {
        let disk = SimDisk::new(2048);
        let env = create_env(
            BootloaderKind::Grub,
            vec![Box::new(disk.part(0, 1024)), Box::new(disk.part(1024, 1024))],
            &BootState::initial(),
        )
        .unwrap();
        drop(env);
        let bytes = disk.contents();
        let c1 = GrubEnvBlock::parse(&bytes[..1024]).unwrap();
        let c2 = GrubEnvBlock::parse(&bytes[1024..]).unwrap();
        assert_eq!(
            c1.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>(),
            [
                "UPD1_SEQ=0",
                "UPD1_ORDER=A B",
                "UPD1_A_OK=1",
                "UPD1_A_TRY=0",
                "UPD1_B_OK=0",
                "UPD1_B_TRY=0",
                "UPD1_END=0"
            ]
        );
        assert_eq!(c2.get("UPD2_SEQ"), Some("1"));
    }

    #[test]
    fn uboot_refuses_to_write_without_a_valid_copy_and_keeps_board_variables() {
        let disk = SimDisk::new(1024);
        let mut env = UbootBootEnv::new(vec![Box::new(disk.part(0, 512)), Box::new(disk.part(512, 512))]).unwrap();
        let err = env.store(&BootState::initial()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Refused);
        let mut base = UbootEnv::new();
        base.set("bootcmd", "run update_boot").unwrap();
        let mut env = env.with_default_env(base);
        assert_eq!(env.load().unwrap(), BootState::initial());
        let s = BootState::initial().begin_install(Slot::B).unwrap();
        env.store(&s).unwrap();
        env.store(&s.switch_to(Slot::B, 2).unwrap()).unwrap();
        assert_eq!(env.load().unwrap(), s.switch_to(Slot::B, 2).unwrap());
        let copy = ubootenv::decode_copy(&disk.contents()[512..], true).unwrap();
        assert_eq!(copy.env.get("bootcmd"), Some("run update_boot"));
        assert_eq!(copy.env.get("UPD_ORDER"), Some("B A"));
        assert_eq!(copy.flag, Some(2));
    }

    #[test]
    fn wrong_device_counts_are_refused() {
        let disk = SimDisk::new(4096);
        assert!(open_env(BootloaderKind::Grub, vec![Box::new(disk.part(0, 1024))]).is_err());
        assert!(
            open_env(BootloaderKind::Grub, vec![Box::new(disk.part(0, 100)), Box::new(disk.part(100, 100))]).is_err()
        );
        assert!(
            open_env(BootloaderKind::Uboot, vec![Box::new(disk.part(0, 512)), Box::new(disk.part(512, 1024))]).is_err()
        );
        let mut one = open_env(BootloaderKind::File, vec![Box::new(disk.part(0, 1024))]).unwrap();
        one.store(&BootState::initial()).unwrap();
        assert_eq!(one.load().unwrap(), BootState::initial());
    }
}
