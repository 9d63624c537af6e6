//! The GRUB backend: two grubenv files read by the shipped GRUB fragment.

use update_core::blockdev::BlockDevice;
use update_core::config::BootloaderKind;
use update_core::{Error, Result};

use super::copies::{Copies, Decoded, Snapshot, bit, no_valid_copy, order_text, problems, state_from, status};
use super::{BootEnv, CopyStatus};
use crate::grubenv::GrubEnvBlock;
use crate::state::{BootState, Slot};

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
