//! How each `update config` key maps onto a tool, and the refusal for keys a tool cannot honour.
//!
//! The facade owns `source`, `schedule`, `log`, `secure` and `tls.*` (it fetches the update file
//! and hands the driver a local path), so they work with every adapter. The keys that change what
//! the tool itself does — `verify`, `signature-threshold`, `boot-retry-limit` — are checked here
//! before a driver runs the tool: a value the tool cannot honour is refused with
//! "… is not supported by the `<driver>` driver" and a hint, never silently ignored.

use update_core::config::{Config, Verify};
use update_core::driver::Context;
use update_core::{Error, Result};

/// The `boot-retry-limit` the config holds when nobody set it (the key's documented default).
/// Adapters whose bootloader integration owns the count accept this value as "not set".
pub const DEFAULT_BOOT_RETRY_LIMIT: u32 = 3;

/// Whether a tool can install without signature checks (`verify false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsignedInstalls {
    /// The driver can tell the tool to skip signatures.
    Supported,
    /// The tool always verifies; the text says why and where its keys live.
    AlwaysVerifies(&'static str),
}

/// Who counts boot attempts of a new slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootRetry {
    /// The driver writes `boot-retry-limit` where the bootloader reads it.
    Mapped,
    /// The bootloader integration the tool drives owns the count; the text says where to set it.
    OwnedByTool(&'static str),
    /// There is no boot counting at all with this tool.
    None(&'static str),
}

/// What a driver can honour of the tool-facing keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSupport {
    /// `verify false`.
    pub unsigned: UnsignedInstalls,
    /// `boot-retry-limit`.
    pub boot_retry: BootRetry,
    /// Where the tool's trusted keys live (for the `signature-threshold` and keyring hints).
    pub keys: &'static str,
}

fn refuse(driver: &str, operation: String, hint: &str) -> Error {
    Error::NotSupported { driver: driver.into(), operation, hint: Some(hint.into()) }
}

impl SettingSupport {
    /// Checks the effective config and this run's signature policy before the tool runs.
    ///
    /// # Errors
    /// [`Error::NotSupported`] naming the key, the value and the driver.
    pub fn check(&self, driver: &str, config: &Config, verify: Verify) -> Result<()> {
        if verify == Verify::IntegrityOnly
            && let UnsignedInstalls::AlwaysVerifies(why) = self.unsigned
        {
            return Err(refuse(driver, "verify false".into(), why));
        }
        if config.signature_threshold > 1 {
            return Err(refuse(
                driver,
                format!("signature-threshold {}", config.signature_threshold),
                &format!(
                    "the tool accepts an update signed by one trusted key ({}); set signature-threshold 1",
                    self.keys
                ),
            ));
        }
        if config.boot_retry_limit != DEFAULT_BOOT_RETRY_LIMIT {
            match self.boot_retry {
                BootRetry::Mapped => {}
                BootRetry::OwnedByTool(hint) | BootRetry::None(hint) => {
                    return Err(refuse(
                        driver,
                        format!("boot-retry-limit {}", config.boot_retry_limit),
                        &format!("{hint}; set boot-retry-limit back to {DEFAULT_BOOT_RETRY_LIMIT} (unset)"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// [`SettingSupport::check`] with the context's config, warning once when the `update`
    /// keyring holds keys the tool does not use.
    ///
    /// # Errors
    /// As [`SettingSupport::check`].
    pub fn check_ctx(&self, driver: &str, ctx: &Context<'_>, verify: Verify) -> Result<()> {
        self.check(driver, ctx.config, verify)?;
        if !ctx.keyring.is_empty() {
            ctx.events.warn(&format!(
                "the {driver} driver verifies updates with the tool's own keys ({}); the keys in the update keyring are not used by it",
                self.keys
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: SettingSupport = SettingSupport {
        unsigned: UnsignedInstalls::AlwaysVerifies("x always verifies"),
        boot_retry: BootRetry::OwnedByTool("the bootloader script counts"),
        keys: "keyring in x.conf",
    };

    #[test]
    fn defaults_pass() {
        S.check("x", &Config::default(), Verify::Signatures).unwrap();
    }

    #[test]
    fn refusals_name_key_value_and_driver() {
        let e = S.check("x", &Config::default(), Verify::IntegrityOnly).unwrap_err().to_string();
        assert!(e.starts_with("verify false is not supported by the x driver"), "{e}");
        let c = Config { signature_threshold: 2, ..Config::default() };
        let e = S.check("x", &c, Verify::Signatures).unwrap_err().to_string();
        assert!(e.contains("signature-threshold 2 is not supported by the x driver"), "{e}");
        let c = Config { boot_retry_limit: 5, ..Config::default() };
        let e = S.check("x", &c, Verify::Signatures).unwrap_err().to_string();
        assert!(e.contains("boot-retry-limit 5 is not supported by the x driver"), "{e}");
        let mapped = SettingSupport { boot_retry: BootRetry::Mapped, ..S };
        mapped.check("x", &c, Verify::Signatures).unwrap();
    }
}
