//! The swupd driver (Clear Linux): `swupd update` from a mixer content directory.
//!
//! **Not tested against the real tool**: swupd is not packaged in Debian, so on Debian the
//! factory declines ("swupd not found in PATH"). The argument construction and the parsing of
//! swupd's output and exit codes are unit-tested on what swupd's own documentation states
//! (the swupd(1) manual in swupd-client's `docs/swupd.1.rst`, and the Clear Linux swupd guide);
//! each test cites its source.
//!
//! swupd updates the running system file by file (verified against signed manifests, with
//! binary deltas); it has no A/B slots, no trial boots and no rollback. The update file the
//! driver takes is a *directory* holding mixer's published content (`www/` with
//! `version/format<N>/latest` and `<version>/Manifest.MoM`), used as a `file://` content and
//! version URL. The running version is `VERSION_ID` of `/usr/lib/os-release`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use update_core::config::Verify;
use update_core::driver::{
    BundleInfo, Capability, Context, Driver, InstallOutcome, InstallRequest, SlotState, SlotStatus, Status,
};
use update_core::{Error, Paths, Result};

use crate::adapter::{Adapter, Factory, adapter_driver_basics};
use crate::settings::{BootRetry, SettingSupport, UnsignedInstalls};
use crate::tool::{FailureWords, Tool, ToolSpec};

/// The driver's name.
pub const NAME: &str = "swupd";
/// swupd's defaults directory (its presence marks a swupd-managed system).
pub const DEFAULTS: &str = "/usr/share/defaults/swupd";
/// The os-release file swupd reads the running version from.
pub const OS_RELEASE: &str = "/usr/lib/os-release";

/// How to run swupd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwupdOptions {
    /// The `swupd` program.
    pub tool: ToolSpec,
    /// The command that reboots the device.
    pub reboot_command: Vec<String>,
}

impl Default for SwupdOptions {
    fn default() -> Self {
        Self { tool: ToolSpec::new("swupd"), reboot_command: vec!["reboot".into()] }
    }
}

/// The swupd adapter: what is particular to swupd behind the generic [`Factory`].
#[derive(Debug, Clone, Copy)]
pub struct Swupd;

/// The factory registered with libupdate.
pub type SwupdFactory = Factory<Swupd>;

/// The static instance for driver tables.
pub static FACTORY: SwupdFactory = Factory::SYSTEM;

impl Adapter for Swupd {
    const NAME: &'static str = NAME;
    const INSTALL_HINT: &'static str = "swupd (Clear Linux; not packaged in Debian)";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::FileTree, Capability::Delta, Capability::Signatures, Capability::Inspect];
    const SETTINGS: SettingSupport = SettingSupport {
        unsigned: UnsignedInstalls::Supported,
        boot_retry: BootRetry::None("swupd updates the running system in place; there is no boot counting"),
        keys: "swupd's certificate store (-C, default /usr/share/clear/update-ca/Swupd_Root.pem)",
    };
    // swupd's failures are told by its exit status ([`exit_error`]), not by its words.
    const FAILURES: FailureWords = FailureWords { other: &[], verification: &[], refused: &[] };
    type Options = SwupdOptions;

    fn tool(options: &SwupdOptions) -> &ToolSpec {
        &options.tool
    }
    fn config_path(_options: &SwupdOptions, paths: &Paths) -> std::result::Result<PathBuf, String> {
        let defaults = paths.resolve(DEFAULTS);
        if defaults.exists() {
            Ok(defaults)
        } else {
            Err(format!("swupd is installed but this is not a swupd-managed system: no {DEFAULTS}"))
        }
    }
    fn open(options: SwupdOptions, tool: Tool, _defaults: PathBuf, ctx: &Context<'_>) -> Result<Box<dyn Driver>> {
        Ok(Box::new(SwupdDriver { tool, paths: ctx.paths.clone(), reboot_command: options.reboot_command }))
    }
}

/// What a swupd exit status means, from the EXIT STATUS table of swupd(1)
/// (<https://github.com/clearlinux/swupd-client/blob/master/docs/swupd.1.rst#exit-status>).
#[must_use]
pub fn exit_error(code: i32, op: &str, detail: &str) -> Error {
    let what = match code {
        2 => "a required bundle was removed or was attempted to be removed",
        3 => "the specified bundle is invalid",
        4 => "unable to download or read MoM manifest",
        9 => "unable to obtain lock on state directory",
        16 => "unable to connect to update server",
        17 => "file download issue",
        21 => "unable to initialize signature verification",
        22 => "system time is off by a large margin",
        23 => "pack download issue",
        24 => "unable to verify server SSL certificate",
        25 => "there is not enough disk space left (or it cannot be determined)",
        38 => "file is missing or invalid",
        _ => "failed",
    };
    let message = format!(
        "swupd {op}: {what} (exit status {code}){}",
        if detail.is_empty() { String::new() } else { format!(": {detail}") }
    );
    match code {
        4 | 21 | 22 | 24 | 38 => Error::verification(format!("swupd {op}"), message),
        16 | 17 | 23 => Error::Source { url: "swupd content url".into(), reason: message },
        2 | 3 | 9 | 25 => Error::Refused(message),
        _ => Error::Other(message),
    }
}

/// `swupd check-update`'s exit status: `0` an update is available, `1` none, above `1` a
/// failure (swupd(1), EXIT STATUS).
///
/// # Errors
/// The failure, as [`exit_error`].
pub fn check_update_result(code: i32, detail: &str) -> Result<bool> {
    match code {
        0 => Ok(true),
        1 => Ok(false),
        c => Err(exit_error(c, "check-update", detail)),
    }
}

/// What `swupd diagnose` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// "Verifying version N".
    pub version: Option<u64>,
    /// "Inspected N files".
    pub inspected: Option<u64>,
    /// "N files did not match".
    pub mismatched: u64,
    /// Files named in "Hash mismatch for file: PATH" lines.
    pub files: Vec<String>,
}

/// Parses `swupd diagnose` output (the format shown in the Clear Linux swupd guide, Example 3).
#[must_use]
pub fn parse_diagnose(text: &str) -> Diagnosis {
    let mut d = Diagnosis { version: None, inspected: None, mismatched: 0, files: Vec::new() };
    for line in text.lines().map(str::trim) {
        let number = |s: &str| s.split_whitespace().next().and_then(|n| n.parse().ok());
        if let Some(v) = line.strip_prefix("Verifying version ") {
            d.version = number(v);
        } else if let Some(v) = line.strip_prefix("Inspected ") {
            d.inspected = number(v);
        } else if line.ends_with("files did not match") || line.ends_with("file did not match") {
            d.mismatched = number(line).unwrap_or(0);
        } else if let Some(f) = line.strip_prefix("Hash mismatch for file: ") {
            d.files.push(f.to_owned());
        }
    }
    d
}

/// Reads `VERSION_ID` from an os-release text.
#[must_use]
pub fn os_release_version(text: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix("VERSION_ID=")).map(|v| v.trim().trim_matches('"').to_owned())
}

/// The arguments of the install: `swupd update` from `content` (a local mixer directory).
#[must_use]
pub fn update_args(root: &Path, content: &Path, verify: Verify, version: Option<&str>) -> Vec<String> {
    let url = format!("file://{}", content.display());
    let mut a = vec!["update".to_owned()];
    if root != Path::new("/") {
        a.push(format!("--path={}", root.display()));
    }
    a.extend([format!("--url={url}"), "--assume=yes".into(), "--no-progress".into(), "--quiet".into()]);
    if verify == Verify::IntegrityOnly {
        a.push("--nosigcheck".into());
    }
    if let Some(v) = version {
        a.push(format!("--version={v}"));
    }
    a
}

/// The swupd driver.
#[derive(Debug, Clone)]
pub struct SwupdDriver {
    tool: Tool,
    paths: Paths,
    reboot_command: Vec<String>,
}

impl SwupdDriver {
    fn running_version(&self) -> Option<String> {
        std::fs::read_to_string(self.paths.resolve(OS_RELEASE)).ok().as_deref().and_then(os_release_version)
    }

    /// The content directory an update request names.
    fn content_dir(request: &InstallRequest) -> Result<PathBuf> {
        if request.bundle.is_dir() {
            Ok(request.bundle.clone())
        } else {
            Err(Error::Refused(format!(
                "{} is a file; swupd updates from a content directory published by mixer (its www/ directory)",
                request.bundle.display()
            )))
        }
    }

    /// The latest version a mixer content directory publishes (`version/format<N>/latest`).
    fn latest_in(&self, content: &Path) -> Result<String> {
        let format = std::fs::read_to_string(self.paths.resolve(format!("{DEFAULTS}/format")))
            .map(|f| f.trim().to_owned())
            .unwrap_or_else(|_| "staging".into());
        let latest = content.join(format!("version/format{format}/latest"));
        std::fs::read_to_string(&latest).map(|t| t.trim().to_owned()).map_err(|e| Error::io("read", latest, e))
    }

    /// Runs `swupd diagnose` (all files against the manifests).
    ///
    /// # Errors
    /// swupd's failure.
    pub fn diagnose(&self) -> Result<Diagnosis> {
        let mut args = vec!["diagnose".to_owned()];
        if self.paths.root() != Path::new("/") {
            args.push(format!("--path={}", self.paths.root().display()));
        }
        let out = self.tool.with_timeout(Duration::from_secs(3600)).run(&args)?;
        match out.status.code() {
            Some(0 | 1) => Ok(parse_diagnose(&out.stdout)),
            c => Err(exit_error(c.unwrap_or(-1), "diagnose", &out.detail())),
        }
    }
}

impl Driver for SwupdDriver {
    adapter_driver_basics!(Swupd);

    fn status(&mut self, _ctx: &Context<'_>) -> Result<Status> {
        let version = self.running_version();
        let parsed = version.as_deref().and_then(|v| update_core::parse_version(v).ok());
        Ok(Status {
            driver: NAME.into(),
            compatible: None,
            version: parsed.clone(),
            booted: Some("system".into()),
            primary: Some("system".into()),
            slots: vec![SlotStatus {
                name: "system".into(),
                state: SlotState::Good,
                version: parsed,
                booted: true,
                primary: true,
                tries_left: None,
                devices: vec![format!("os={}", self.paths.root().display())],
            }],
            fallback: None,
            components: Vec::new(),
        })
    }

    fn inspect(&mut self, _ctx: &Context<'_>, request: &InstallRequest) -> Result<BundleInfo> {
        // verify, signature-threshold and boot-retry-limit are checked by install (libupdate reads
        // any NotSupported from inspect as "this driver cannot inspect").
        let content = Self::content_dir(request)?;
        let latest = self.latest_in(&content)?;
        let version = update_core::parse_version(&latest)
            .map_err(|e| Error::verification(content.display().to_string(), e.to_string()))?;
        Ok(BundleInfo { version, compatible: String::new(), size: 0, images: vec!["os".into()] })
    }

    fn install(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<InstallOutcome> {
        Swupd::SETTINGS.check_ctx(NAME, ctx, request.verify)?;
        let content = Self::content_dir(request)?;
        let latest = self.latest_in(&content)?;
        let args = update_args(self.paths.root(), &content, request.verify, Some(&latest));
        let out = self.tool.with_timeout(Duration::from_secs(3600)).run(&args)?;
        if !out.success() {
            return Err(exit_error(out.status.code().unwrap_or(-1), "update", &out.detail()));
        }
        let version = update_core::parse_version(&latest).map_err(|e| Error::Other(e.to_string()))?;
        // swupd changes the running system's files; a reboot picks up a new kernel.
        Ok(InstallOutcome { version, slot: "system".into(), reboot_required: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_arguments() {
        // Options as documented in swupd(1), OPTIONS and `update`:
        // https://github.com/clearlinux/swupd-client/blob/master/docs/swupd.1.rst
        assert_eq!(
            update_args(Path::new("/"), Path::new("/srv/mix/www"), Verify::Signatures, Some("33070")),
            ["update", "--url=file:///srv/mix/www", "--assume=yes", "--no-progress", "--quiet", "--version=33070"]
        );
        let a = update_args(Path::new("/mnt/sysroot"), Path::new("/srv/www"), Verify::IntegrityOnly, None);
        assert_eq!(a[1], "--path=/mnt/sysroot");
        assert!(a.contains(&"--nosigcheck".to_owned()));
    }

    #[test]
    fn check_update_exit_status() {
        // swupd(1), EXIT STATUS: "If the subcommand check-update was specified, the program returns
        // 0 if an update is available, 1 if no update available, and a return value higher than 1
        // signals a failure."
        // https://github.com/clearlinux/swupd-client/blob/master/docs/swupd.1.rst#exit-status
        assert!(check_update_result(0, "").unwrap());
        assert!(!check_update_result(1, "").unwrap());
        let e = check_update_result(16, "").unwrap_err();
        assert_eq!(e.kind(), update_core::ErrorKind::Source);
        assert!(e.to_string().contains("unable to connect to update server"), "{e}");
    }

    #[test]
    fn exit_codes_map_to_kinds() {
        // The table in swupd(1), EXIT STATUS.
        use update_core::ErrorKind as K;
        for (code, kind) in [
            (4, K::Verification),
            (21, K::Verification),
            (24, K::Verification),
            (9, K::Refused),
            (25, K::Refused),
            (17, K::Source),
            (27, K::Failure),
        ] {
            assert_eq!(exit_error(code, "update", "").kind(), kind, "{code}");
        }
    }

    #[test]
    fn diagnose_output() {
        // Quoted from the Clear Linux swupd guide, "Example 3: Verify and correct system file mismatch":
        // https://clearlinux.github.io/clear-linux-documentation/guides/clear/swupd.html
        let text = "Verifying version 23300
Verifying files
   ...0%
Hash mismatch for file: /usr/bin/chardetect
...
...
Hash mismatch for file: /usr/lib/python3.6/site-packages/urllib3/util/wait.py
   ...100%
Inspected 237180 files
   423 files did not match
Verify successful
";
        let d = parse_diagnose(text);
        assert_eq!(d.version, Some(23300));
        assert_eq!(d.inspected, Some(237_180));
        assert_eq!(d.mismatched, 423);
        assert_eq!(d.files, ["/usr/bin/chardetect", "/usr/lib/python3.6/site-packages/urllib3/util/wait.py"]);
    }

    #[test]
    fn os_release_version_id() {
        assert_eq!(os_release_version("NAME=\"Clear Linux OS\"\nVERSION_ID=33060\n").as_deref(), Some("33060"));
        assert_eq!(update_core::parse_version("33060").unwrap(), update_core::Version::new(33060, 0, 0));
    }
}
