//! The U-Boot backend: the redundant environment read by the shipped U-Boot script.

use update_core::blockdev::BlockDevice;
use update_core::config::BootloaderKind;
use update_core::{Error, Result};

use super::copies::{Copies, Decoded, Snapshot, bit, no_valid_copy, order_text, problems, state_from, status};
use super::{BootEnv, CopyStatus};
use crate::state::{BootState, Slot};
use crate::ubootenv::{self, UbootEnv};

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
