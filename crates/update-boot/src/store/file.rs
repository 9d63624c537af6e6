//! The plain-file backend: two text copies with a CRC-32 line.

use update_core::blockdev::BlockDevice;
use update_core::config::BootloaderKind;
use update_core::{Error, Result};

use super::copies::{Copies, Decoded, Snapshot, bit, no_valid_copy, order_text, problems, state_from, status};
use super::{BootEnv, CopyStatus};
use crate::state::{BootState, Slot};

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
        text.push_str(&format!("crc32={:08x}\n", crate::crc32::hash(text.as_bytes())));
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
        if u32::from_str_radix(crc, 16).ok() != Some(crate::crc32::hash(&text.as_bytes()[..crc_at])) || crc.len() != 8 {
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
