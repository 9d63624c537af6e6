//! The device description: TLS files, the native driver's slots and boot environment, health checks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::names::SlotGroupName;

/// TLS files (paths on the device, re-rooted with `--root`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsConfig {
    /// The device's client certificate (PEM), used when `secure = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// The device's private key (PEM), used when `secure = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// A CA certificate (PEM) for a private source; the system store is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca: Option<PathBuf>,
}

/// Which bootloader holds the boot state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootloaderKind {
    /// GRUB, with two grubenv-format copies read by the shipped `grub.cfg` fragment.
    Grub,
    /// U-Boot, with the redundant environment (`fw_printenv` layout) read by the shipped script.
    Uboot,
    /// A plain file (tests and simulated devices).
    File,
}

/// One copy of the boot environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnvLocation {
    /// File or device holding the copy.
    pub path: PathBuf,
    /// Byte offset inside it.
    #[serde(default)]
    pub offset: u64,
    /// Size in bytes (GRUB: 1024; U-Boot: the env size); 0 means the bootloader's default.
    #[serde(default)]
    pub size: u64,
}

/// The boot environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BootConfig {
    /// The bootloader.
    pub bootloader: BootloaderKind,
    /// The environment copies (two for power-cut safety).
    pub env: Vec<EnvLocation>,
}

/// A slot group's two slots (block devices, partitions or plain files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SlotPair {
    /// Slot A.
    pub a: PathBuf,
    /// Slot B.
    pub b: PathBuf,
}

/// The native driver's device description. Its presence enables the native driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NativeConfig {
    /// The board name bundles must declare as `compatible`.
    pub compatible: String,
    /// The boot environment.
    pub boot: BootConfig,
    /// Slot groups by name (`rootfs`, `kernel`, …).
    pub slots: BTreeMap<SlotGroupName, SlotPair>,
    /// Paths (or devices) that hold user data: never written by an update.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<PathBuf>,
    /// The command that reboots the device (default: `reboot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_command: Option<Vec<String>>,
}

/// A health check run after booting a new slot; all must pass before it is marked good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HealthCheck {
    /// A name for logs.
    pub name: String,
    /// The command and its arguments (run without a shell).
    pub command: Vec<String>,
    /// Seconds before the check counts as failed.
    #[serde(default = "default_health_timeout")]
    pub timeout_secs: u64,
}

pub(super) fn default_health_timeout() -> u64 {
    60
}
