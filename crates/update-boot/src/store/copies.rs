//! The two stored copies every backend keeps, and the value encoding the backends share.

use update_core::blockdev::BlockDevice;
use update_core::{Error, Result};

use super::CopyStatus;
use crate::state::{BootState, Slot, SlotState};

/// The two copies: the devices, and per copy (device index, offset, size).
pub(super) struct Copies {
    devs: Vec<Box<dyn BlockDevice>>,
    locs: [(usize, u64, usize); 2],
}

/// The largest copy read whole into memory (U-Boot environments are at most a few hundred KiB;
/// a whole disk given by mistake is refused, not read).
const MAX_COPY: u64 = 16 << 20;

impl Copies {
    /// Two devices, one copy each; or one device split in two halves.
    pub(super) fn new(devs: Vec<Box<dyn BlockDevice>>, allow_halves: bool, what: &str) -> Result<Self> {
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

    pub(super) fn size(&self, i: usize) -> usize {
        self.locs[i].2
    }

    pub(super) fn describe(&self, i: usize) -> String {
        let (d, off, _) = self.locs[i];
        let dev = self.devs[d].describe();
        if off == 0 { dev } else { format!("{dev}+{off}") }
    }

    pub(super) fn describe_all(&self) -> String {
        format!("{} and {}", self.describe(0), self.describe(1))
    }

    pub(super) fn check_min(&self, min: usize, what: &str) -> Result<()> {
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

    pub(super) fn read(&mut self, i: usize) -> Result<Vec<u8>> {
        let (d, off, size) = self.locs[i];
        let mut buf = vec![0; size];
        self.devs[d].read_at(off, &mut buf)?;
        Ok(buf)
    }

    /// Writes a whole copy and makes it durable.
    pub(super) fn write(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        let (d, off, size) = self.locs[i];
        debug_assert_eq!(bytes.len(), size);
        self.devs[d].write_at(off, bytes)?;
        self.devs[d].flush()
    }
}

/// A copy as read: its sequence number and state, or why it is invalid.
pub(super) type Decoded<S> = std::result::Result<(S, BootState), String>;

/// Both copies as read: raw bytes (or the backend's parsed form), decoded, and which is current.
pub(super) struct Snapshot<R, S> {
    pub(super) raw: [R; 2],
    pub(super) decoded: [Decoded<S>; 2],
    pub(super) current: Option<usize>,
}

impl<R, S: Copy> Snapshot<R, S> {
    pub(super) fn current_seq_state(&self) -> Option<(usize, S, BootState)> {
        let i = self.current?;
        let (seq, state) = self.decoded[i].as_ref().ok()?;
        Some((i, *seq, *state))
    }
}

pub(super) fn no_valid_copy(env: &str, problems: &[String; 2]) -> Error {
    Error::verification(
        format!("boot environment {env}"),
        format!("no valid copy (copy 1: {}; copy 2: {})", problems[0], problems[1]),
    )
}

pub(super) fn status<S: Copy + Into<u64>>(
    copies: &Copies,
    decoded: &[Decoded<S>; 2],
    current: Option<usize>,
) -> Vec<CopyStatus> {
    (0..2)
        .map(|i| CopyStatus {
            device: copies.describe(i),
            sequence: decoded[i].as_ref().ok().map(|(s, _)| (*s).into()),
            current: current == Some(i),
            problem: decoded[i].as_ref().err().cloned(),
        })
        .collect()
}

pub(super) fn problems<S>(decoded: &[Decoded<S>; 2]) -> [String; 2] {
    [0, 1].map(|i| decoded[i].as_ref().err().cloned().unwrap_or_default())
}

pub(super) fn bit(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

pub(super) fn order_text(state: &BootState) -> &'static str {
    match state.primary() {
        Slot::A => "A B",
        Slot::B => "B A",
    }
}

pub(super) fn parse_order(v: &str) -> Option<Slot> {
    match v {
        "A B" => Some(Slot::A),
        "B A" => Some(Slot::B),
        _ => None,
    }
}

pub(super) fn parse_ok(v: &str) -> Option<bool> {
    match v {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

pub(super) fn parse_tries(v: &str) -> Option<u8> {
    match v.as_bytes() {
        [d @ b'0'..=b'9'] => Some(d - b'0'),
        _ => None,
    }
}

/// Builds a state from the five logical values, as the bootloader scripts validate them.
pub(super) fn state_from(
    get: &dyn Fn(&str) -> Option<String>,
    names: [&str; 5],
) -> std::result::Result<BootState, String> {
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
