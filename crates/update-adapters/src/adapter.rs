//! The skeleton every adapter shares: a small [`Adapter`] trait (what is particular to one tool)
//! and one generic [`Factory`] over it (what is the same for every tool).
//!
//! The factory finds the tool, then the tool's configuration, then lets the adapter open its
//! driver: the tool missing or its configuration missing → [`Probe::Declined`] (the system does
//! not use this tool); any other error → [`Probe::Broken`] (it does, but the tool cannot be
//! used). A new adapter is only its tool-specific code: an options type, its constants, a
//! config path and `open`.

use std::fmt;
use std::path::PathBuf;

use update_core::config::Config;
use update_core::driver::{Capabilities, Capability, Context, Driver, DriverFactory, Probe};
use update_core::{Error, Paths, Result};

use crate::settings::SettingSupport;
use crate::tool::{FailureWords, Tool, ToolSpec};

/// What is particular to one tool.
pub trait Adapter: 'static {
    /// The driver's name, as used in `driver = "…"`.
    const NAME: &'static str;
    /// What to install to make it available (`rauc (apt install rauc)`).
    const INSTALL_HINT: &'static str;
    /// The file extensions of the update files the tool takes (`raucb`); none by default.
    const UPDATE_EXTENSIONS: &'static [&'static str] = &[];
    /// The component kinds beside the OS image the tool's own format carries (see
    /// [`DriverFactory::component_kinds`]); none by default.
    const COMPONENT_KINDS: &'static [&'static str] = &[];
    /// What the driver can do.
    const CAPABILITIES: &'static [Capability];
    /// How the tool-facing config keys map onto the tool.
    const SETTINGS: SettingSupport;
    /// How the tool's failure messages are classified.
    const FAILURES: FailureWords;
    /// How to run the tool (programs, paths, reboot command); `Default` is the system's.
    type Options: Clone + Default + fmt::Debug + Send + Sync + 'static;

    /// What the driver can do, as the set libupdate checks.
    #[must_use]
    fn capabilities() -> Capabilities {
        Capabilities::of(Self::CAPABILITIES)
    }

    /// The tool whose absence makes the factory decline.
    fn tool(options: &Self::Options) -> &ToolSpec;

    /// Where the tool's configuration is (re-rooted by `paths`): its path when it exists, or
    /// why there is none (the tool is installed but not configured for this system).
    ///
    /// # Errors
    /// The reason the factory declines with.
    fn config_path(options: &Self::Options, paths: &Paths) -> std::result::Result<PathBuf, String>;

    /// Opens the driver for a located tool and an existing configuration.
    ///
    /// # Errors
    /// Why the tool cannot be used (the factory reports it as broken).
    fn open(options: Self::Options, tool: Tool, config: PathBuf, ctx: &Context<'_>) -> Result<Box<dyn Driver>>;
}

/// What an A/B image tool with boot counting can do (rauc, swupdate, mender).
pub const AB_IMAGE_TOOL: &[Capability] = &[
    Capability::AbImage,
    Capability::BootCounting,
    Capability::MarkGood,
    Capability::Rollback,
    Capability::Signatures,
    Capability::Inspect,
];

/// The [`DriverFactory`] of an adapter: the system's tools by default, or explicit options.
pub struct Factory<A: Adapter> {
    options: Option<A::Options>,
}

impl<A: Adapter> Factory<A> {
    /// The factory for driver tables: the tools in `PATH`, the system's configuration.
    pub const SYSTEM: Self = Self { options: None };

    /// A factory with explicit options (tests, embedders).
    #[must_use]
    pub fn new(options: A::Options) -> Self {
        Self { options: Some(options) }
    }
}

impl<A: Adapter> Default for Factory<A> {
    fn default() -> Self {
        Self::SYSTEM
    }
}

impl<A: Adapter> Clone for Factory<A> {
    fn clone(&self) -> Self {
        Self { options: self.options.clone() }
    }
}

impl<A: Adapter> fmt::Debug for Factory<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Factory").field("driver", &A::NAME).field("options", &self.options).finish()
    }
}

impl<A: Adapter> DriverFactory for Factory<A> {
    fn name(&self) -> &'static str {
        A::NAME
    }

    fn install_hint(&self) -> &'static str {
        A::INSTALL_HINT
    }

    fn update_extensions(&self) -> &'static [&'static str] {
        A::UPDATE_EXTENSIONS
    }

    fn capabilities(&self) -> Capabilities {
        A::capabilities()
    }

    fn component_kinds(&self) -> &'static [&'static str] {
        A::COMPONENT_KINDS
    }

    fn check_config(&self, config: &Config) -> Result<()> {
        A::SETTINGS.check(A::NAME, config, config.verify)
    }

    fn probe(&self, ctx: &Context<'_>) -> Probe {
        let options = self.options.clone().unwrap_or_default();
        let spec = A::tool(&options);
        let Some(tool) = spec.tool(A::NAME) else {
            return Probe::Declined(format!("{} not found in PATH", spec.program.display()));
        };
        // The tool is installed: a missing configuration is what "Not implemented" names.
        let config = match A::config_path(&options, ctx.paths) {
            Ok(c) => c,
            Err(reason) => return Probe::Unconfigured(reason),
        };
        match A::open(options, tool, config, ctx) {
            Ok(driver) => Probe::Available(driver),
            // A file error already names the operation and the path.
            Err(e @ (Error::Io { .. } | Error::DriverBroken { .. })) => Probe::Broken(e),
            Err(e) => Probe::Broken(Error::DriverBroken { driver: A::NAME.into(), reason: e.to_string() }),
        }
    }
}

/// Reads a tool's configuration file for `open`.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn read_config(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))
}

/// `Ok(path)` when `path` exists, else the reason "`<tool>` is installed but not configured: no `<path>`".
///
/// # Errors
/// The reason to decline.
pub fn existing(tool: &str, path: PathBuf) -> std::result::Result<PathBuf, String> {
    if path.exists() { Ok(path) } else { Err(format!("{tool} is installed but not configured: no {}", path.display())) }
}

/// The [`Driver`] methods that are the same for every adapter's driver: `name` and
/// `capabilities` from its [`Adapter`], and `reboot` with its `reboot_command` field.
macro_rules! adapter_driver_basics {
    ($adapter:ty) => {
        fn name(&self) -> &'static str {
            <$adapter as $crate::adapter::Adapter>::NAME
        }

        fn capabilities(&self) -> update_core::driver::Capabilities {
            <$adapter as $crate::adapter::Adapter>::capabilities()
        }

        fn reboot(&mut self, ctx: &update_core::driver::Context<'_>) -> update_core::Result<()> {
            update_core::process::reboot(&self.reboot_command, ctx.paths.root(), ctx.events)
        }
    };
}
pub(crate) use adapter_driver_basics;
