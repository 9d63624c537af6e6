//! The swupdate driver: `swupdate -i FILE.swu -e SET,SLOT` writes the inactive copy; the driver
//! then switches the boot slot in the bootloader environment.
//!
//! swupdate has no notion of "the running slot": a `.swu` describes both copies and the caller
//! selects one (`-e stable,B`). This driver's contract, documented in docs/drivers.md:
//!
//! - **the `.swu`**: a CMS-signed `sw-description` (Debian's swupdate is built for signed
//!   images) with a software set (default `stable`) holding one mode per slot, named `A` and `B`,
//!   under the board name of `/etc/hwrevision`;
//! - **swupdate's config**: `/etc/swupdate.cfg` (`globals.public-key-file`, `globals.bootloader`
//!   = `grub` or `uboot`); the driver passes it with `-f` and the board with `-H`;
//! - **the running slot**: `update.slot=A|B` on the kernel command line, put there by the boot script;
//! - **the boot switch**, one write of the bootloader environment after swupdate succeeds:
//!   `update_slot=<new> upgrade_available=1 bootcount=0 bootlimit=<boot-retry-limit>` — U-Boot's
//!   bootcount protocol: the bootloader counts boots while `upgrade_available=1` and, past
//!   `bootlimit`, switches `update_slot` back and clears `upgrade_available` (`altbootcmd`);
//!   mark-good clears `upgrade_available` (and swupdate's `ustate`).
//!
//! What each slot holds is recorded in `/var/lib/update/swupdate.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use update_core::driver::{
    BundleInfo, Capability, Context, Driver, InstallOutcome, InstallRequest, SlotChange, Status,
};
use update_core::slot_records::{SlotRecord, SlotRecords};
use update_core::{Error, Paths, Result};

use crate::adapter::{AB_IMAGE_TOOL, Adapter, Factory, adapter_driver_basics, existing, read_config};
use crate::bootenv::{ToolBootEnv, cmdline_value};
use crate::settings::{BootRetry, SettingSupport, UnsignedInstalls};
use crate::slots::{AbBoot, ab_status};
use crate::tool::{Failure, FailureWords, Tool, ToolSpec};

/// The driver's name.
pub const NAME: &str = "swupdate";
/// swupdate's default configuration file.
pub const CONFIG: &str = "/etc/swupdate.cfg";
/// The board name and revision (`board rev`), as swupdate reads it.
pub const HWREVISION: &str = "/etc/hwrevision";
/// Where GRUB's environment is (compiled into Debian's swupdate).
pub const GRUBENV: &str = "/boot/grub/grubenv";
/// Where the driver records what each slot holds (under the state directory).
pub const RECORDS: &str = "swupdate.json";
/// The slots.
pub const SLOTS: [&str; 2] = ["A", "B"];

/// How to run swupdate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwupdateOptions {
    /// The `swupdate` program.
    pub tool: ToolSpec,
    /// swupdate's config; [`CONFIG`] under the root when `None`.
    pub config: Option<PathBuf>,
    /// The software set of the `.swu` (`-e SET,SLOT`).
    pub software_set: String,
    /// `grub-editenv`, for `bootloader = "grub"`.
    pub grub_editenv: ToolSpec,
    /// `fw_printenv`, for `bootloader = "uboot"`.
    pub fw_printenv: ToolSpec,
    /// `fw_setenv`, for `bootloader = "uboot"`.
    pub fw_setenv: ToolSpec,
    /// The command that reboots the device.
    pub reboot_command: Vec<String>,
}

impl Default for SwupdateOptions {
    fn default() -> Self {
        Self {
            tool: ToolSpec::new("swupdate"),
            config: None,
            software_set: "stable".into(),
            grub_editenv: ToolSpec::new("grub-editenv"),
            fw_printenv: ToolSpec::new("fw_printenv"),
            fw_setenv: ToolSpec::new("fw_setenv"),
            reboot_command: vec!["reboot".into()],
        }
    }
}

/// The swupdate adapter: what is particular to swupdate behind the generic [`Factory`].
#[derive(Debug, Clone, Copy)]
pub struct Swupdate;

/// The factory registered with libupdate.
pub type SwupdateFactory = Factory<Swupdate>;

/// The static instance for driver tables.
pub static FACTORY: SwupdateFactory = Factory::SYSTEM;

/// Reads `key = "value";` (or `key: "value"`) from a libconfig or JSON text. Good enough for the
/// few flat keys the driver needs; swupdate itself parses the file fully.
#[must_use]
pub fn config_string(text: &str, key: &str) -> Option<String> {
    let mut rest = text;
    while let Some(i) = rest.find(key) {
        let before_ok = rest[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'));
        let after = rest[i + key.len()..].trim_start();
        let after = after.strip_prefix('"').map_or(after, str::trim_start);
        if before_ok && let Some(v) = after.strip_prefix(['=', ':']) {
            let v = v.trim_start();
            if let Some(q) = v.strip_prefix('"') {
                return q.split('"').next().map(str::to_owned);
            }
        }
        rest = &rest[i + key.len()..];
    }
    None
}

impl Adapter for Swupdate {
    const NAME: &'static str = NAME;
    const INSTALL_HINT: &'static str = "swupdate (apt install swupdate)";
    const UPDATE_EXTENSIONS: &'static [&'static str] = &["swu"];
    // Its handlers: `archive`/`rawfile` (file trees and files) and `ucfw` (microcontroller
    // firmware over a serial line); no per-file data policy, no app handler with its own A/B.
    const COMPONENT_KINDS: &'static [&'static str] = &["files", "firmware"];
    const CAPABILITIES: &'static [Capability] = AB_IMAGE_TOOL;
    const SETTINGS: SettingSupport = SettingSupport {
        unsigned: UnsignedInstalls::AlwaysVerifies(
            "Debian's swupdate is built for signed images and always checks sw-description.sig against \
             public-key-file in /etc/swupdate.cfg",
        ),
        boot_retry: BootRetry::Mapped,
        keys: "public-key-file in /etc/swupdate.cfg",
    };
    // swupdate's failure messages, as words.
    const FAILURES: FailureWords = FailureWords {
        other: &[],
        verification: &["hash mismatch", "signature", "authentication", "not a .swu", "cpio", "corrupted"],
        refused: &["compatible", "hw compatibility", "downgrad*"],
    };
    type Options = SwupdateOptions;

    fn tool(options: &SwupdateOptions) -> &ToolSpec {
        &options.tool
    }
    fn config_path(options: &SwupdateOptions, paths: &Paths) -> std::result::Result<PathBuf, String> {
        existing(NAME, options.config.clone().unwrap_or_else(|| paths.resolve(CONFIG)))
    }
    fn open(options: SwupdateOptions, tool: Tool, config: PathBuf, ctx: &Context<'_>) -> Result<Box<dyn Driver>> {
        let text = read_config(&config)?;
        let env = match config_string(&text, "bootloader").as_deref() {
            Some("grub") => {
                let editenv = options.grub_editenv.tool(NAME).ok_or_else(|| {
                    Error::Other("bootloader = \"grub\" needs grub-editenv (apt install grub-common)".into())
                })?;
                let file = ctx.paths.resolve(GRUBENV);
                if !file.exists() {
                    return Err(Error::Other(format!("the GRUB environment {} does not exist", file.display())));
                }
                ToolBootEnv::Grub { file, editenv }
            }
            Some("uboot") => match (options.fw_printenv.tool(NAME), options.fw_setenv.tool(NAME)) {
                (Some(printenv), Some(setenv)) => ToolBootEnv::Uboot { printenv, setenv },
                _ => {
                    return Err(Error::Other(
                        "bootloader = \"uboot\" needs fw_printenv and fw_setenv (apt install libubootenv-tool)".into(),
                    ));
                }
            },
            other => {
                return Err(Error::Other(format!(
                    "{} sets bootloader = {:?}; the driver switches slots in the bootloader environment and needs \"grub\" or \"uboot\"",
                    config.display(),
                    other.unwrap_or("(none)")
                )));
            }
        };
        if config_string(&text, "public-key-file").is_none() {
            return Err(Error::Other(format!(
                "{} has no public-key-file: swupdate cannot verify updates",
                config.display()
            )));
        }
        let hwrevision = std::fs::read_to_string(ctx.paths.resolve(HWREVISION))
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
            .and_then(|l| l.split_once(char::is_whitespace).map(|(b, r)| (b.to_owned(), r.trim().to_owned())));
        Ok(Box::new(SwupdateDriver {
            tool,
            config,
            software_set: options.software_set,
            env,
            hwrevision,
            paths: ctx.paths.clone(),
            reboot_command: options.reboot_command,
        }))
    }
}

/// One file in a `.swu` (a cpio archive in the `newc` or `crc` format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioEntry {
    /// Its name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Its bytes, for the files the driver reads (`sw-description`).
    pub data: Option<Vec<u8>>,
}

/// Lists a `.swu`, keeping the bytes of `sw-description`.
///
/// # Errors
/// [`Error::Verification`] when it is not a cpio archive of the `newc`/`crc` format.
pub fn read_swu(path: &Path) -> Result<Vec<CpioEntry>> {
    use std::io::{Read, Seek, SeekFrom};
    let bad = |why: &str| Error::verification(path.display().to_string(), format!("not a .swu: {why}"));
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut entries = Vec::new();
    let mut pos = 0u64;
    loop {
        let mut header = [0u8; 110];
        f.read_exact(&mut header).map_err(|_| bad("truncated cpio header"))?;
        if &header[..6] != b"070701" && &header[..6] != b"070702" {
            return Err(bad("no cpio newc/crc header"));
        }
        let field = |i: usize| {
            std::str::from_utf8(&header[6 + i * 8..14 + i * 8])
                .ok()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("bad cpio header field"))
        };
        let size = field(6)?;
        let namesize = field(11)?;
        if namesize == 0 || namesize > 4096 {
            return Err(bad("bad name size"));
        }
        let mut name = vec![0u8; usize::try_from(namesize).map_err(|_| bad("bad name size"))?];
        f.read_exact(&mut name).map_err(|_| bad("truncated name"))?;
        let name = String::from_utf8_lossy(&name[..name.len() - 1]).into_owned();
        pos += 110 + namesize;
        pos = pos.div_ceil(4) * 4;
        if name == "TRAILER!!!" {
            break;
        }
        let data = if name == "sw-description" {
            if size > 1 << 20 {
                return Err(bad("sw-description is larger than 1 MiB"));
            }
            f.seek(SeekFrom::Start(pos)).map_err(|e| Error::io("seek", path, e))?;
            let mut d = vec![0u8; usize::try_from(size).map_err(|_| bad("bad size"))?];
            f.read_exact(&mut d).map_err(|_| bad("truncated sw-description"))?;
            Some(d)
        } else {
            None
        };
        entries.push(CpioEntry { name, size, data });
        pos += size;
        pos = pos.div_ceil(4) * 4;
        f.seek(SeekFrom::Start(pos)).map_err(|e| Error::io("seek", path, e))?;
    }
    if entries.first().map(|e| e.name.as_str()) != Some("sw-description") {
        return Err(bad("the first file is not sw-description"));
    }
    Ok(entries)
}

/// What a `.swu` declares, read without verifying (swupdate verifies).
///
/// # Errors
/// [`Error::Verification`] for a file that is not a `.swu` or has no version.
pub fn describe(path: &Path, board: Option<&str>) -> Result<BundleInfo> {
    let entries = read_swu(path)?;
    let desc = String::from_utf8_lossy(entries[0].data.as_deref().unwrap_or_default()).into_owned();
    let version = config_string(&desc, "version")
        .ok_or_else(|| Error::verification(path.display().to_string(), "sw-description has no version".to_owned()))?;
    let version = update_core::parse_version(&version)
        .map_err(|e| Error::verification(path.display().to_string(), e.to_string()))?;
    let payload: Vec<&CpioEntry> = entries.iter().filter(|e| !e.name.starts_with("sw-description")).collect();
    Ok(BundleInfo {
        version,
        compatible: board.filter(|b| desc.contains(b)).unwrap_or_default().to_owned(),
        size: payload.iter().map(|e| e.size).sum(),
        images: payload.iter().map(|e| e.name.clone()).collect(),
    })
}

/// Classifies swupdate's failure messages.
#[must_use]
pub fn classify(text: &str) -> Failure {
    Swupdate::FAILURES.classify(text)
}

/// The swupdate driver.
#[derive(Debug, Clone)]
pub struct SwupdateDriver {
    tool: Tool,
    config: PathBuf,
    software_set: String,
    env: ToolBootEnv,
    hwrevision: Option<(String, String)>,
    paths: Paths,
    reboot_command: Vec<String>,
}

fn other(slot: &str) -> Result<&'static str> {
    match slot {
        "A" => Ok("B"),
        "B" => Ok("A"),
        _ => Err(Error::Refused(format!("the running slot '{slot}' is neither A nor B"))),
    }
}

/// The boot variables the driver and the bootloader share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootVars {
    /// `update_slot`: the slot the bootloader boots.
    pub primary: String,
    /// `upgrade_available=1`: the primary is on trial.
    pub trial: bool,
    /// `bootcount`.
    pub bootcount: u32,
    /// `bootlimit`.
    pub bootlimit: u32,
}

impl BootVars {
    /// Reads them from the environment's variables (defaults: slot A, no trial).
    #[must_use]
    pub fn from_env(env: &BTreeMap<String, String>) -> Self {
        let num = |k: &str| env.get(k).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        Self {
            primary: env.get("update_slot").cloned().unwrap_or_else(|| "A".into()),
            trial: env.get("upgrade_available").map(String::as_str) == Some("1"),
            bootcount: num("bootcount"),
            bootlimit: num("bootlimit"),
        }
    }
}

impl SwupdateDriver {
    fn booted(&self) -> Result<Option<String>> {
        cmdline_value(&self.paths.kernel_cmdline(), "update.slot")
    }

    fn booted_required(&self) -> Result<String> {
        self.booted()?.ok_or_else(|| {
            Error::Refused(format!(
                "cannot tell which slot is running: no update.slot= in {} (the boot script must pass it)",
                self.paths.kernel_cmdline().display()
            ))
        })
    }

    fn swupdate_args(&self, slot: &str, bundle: &Path, check: bool) -> Vec<String> {
        let mut args = vec!["-f".into(), self.config.display().to_string()];
        if let Some((board, rev)) = &self.hwrevision {
            args.extend(["-H".into(), format!("{board}:{rev}")]);
        }
        args.extend(["-e".into(), format!("{},{slot}", self.software_set)]);
        if check {
            args.push("-c".into());
        }
        args.extend(["-i".into(), bundle.display().to_string()]);
        args
    }

    /// Runs swupdate with a private TMPDIR (its sockets and extracted images live there).
    fn run_swupdate(&self, op: &str, args: &[String], limit: Duration) -> Result<crate::tool::Output> {
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = std::env::temp_dir().join(format!("update-swupdate-{}-{run}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        let out = self.tool.with_timeout(limit).with_env("TMPDIR", &tmp).run(args);
        let _ = std::fs::remove_dir_all(&tmp);
        let out = out?;
        if out.success() { Ok(out) } else { Err(self.tool.failure(op, &out, &classify)) }
    }

    /// `/var/lib/update/swupdate.json`, this driver's slot records.
    fn records_file(&self) -> PathBuf {
        self.paths.state_dir().join(RECORDS)
    }

    fn board(&self) -> Option<&str> {
        self.hwrevision.as_ref().map(|(b, _)| b.as_str())
    }
}

impl Driver for SwupdateDriver {
    adapter_driver_basics!(Swupdate);

    fn status(&mut self, ctx: &Context<'_>) -> Result<Status> {
        let vars = BootVars::from_env(&self.env.read()?);
        let booted = self.booted()?;
        let boot = AbBoot {
            booted: booted.as_deref(),
            primary: Some(&vars.primary),
            trial: vars.trial,
            tries_left: vars.bootlimit.saturating_sub(vars.bootcount),
        };
        let status = ab_status(
            &SlotRecords::load(&self.records_file())?,
            NAME,
            &boot,
            |v| update_core::parse_version(v).ok(),
            &|_| Vec::new(),
        );
        if let Some(f) = &status.fallback {
            crate::note_fallback(ctx, NAME, f);
        }
        Ok(status)
    }

    fn inspect(&mut self, _ctx: &Context<'_>, request: &InstallRequest) -> Result<BundleInfo> {
        // verify, signature-threshold and boot-retry-limit are checked by install (libupdate reads
        // any NotSupported from inspect as "this driver cannot inspect").
        let info = describe(&request.bundle, self.board())?;
        let target = self.booted()?.map_or(Ok("B"), |b| other(&b))?;
        // `swupdate -c` checks the signature, the board and every image hash, and writes nothing.
        self.run_swupdate("check", &self.swupdate_args(target, &request.bundle, true), Duration::from_secs(600))?;
        Ok(info)
    }

    fn install(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<InstallOutcome> {
        Swupdate::SETTINGS.check_ctx(NAME, ctx, request.verify)?;
        let booted = self.booted_required()?;
        let target = other(&booted)?;
        let info = describe(&request.bundle, self.board())?;
        let vars = BootVars::from_env(&self.env.read()?);
        if vars.primary != booted {
            // An earlier install into the target is still pending: make the running slot primary
            // again before its copy is overwritten.
            self.env.write(&[("update_slot", booted.clone()), ("upgrade_available", "0".into())])?;
        }
        ctx.events.info(&format!("swupdate -e {},{target} -i {}", self.software_set, request.bundle.display()));
        ctx.progress.start("swupdate", 0);
        let r = self.run_swupdate(
            "install",
            &self.swupdate_args(target, &request.bundle, false),
            Duration::from_secs(3600),
        );
        ctx.progress.finish();
        r?;
        let mut records = SlotRecords::load(&self.records_file())?;
        // The running slot is known to boot, even when its version is not known (factory image).
        records.slots.entry(booted.clone()).or_default();
        records.slots.insert(target.into(), SlotRecord::named(info.version.to_string()));
        records.pending = None;
        records.store(&self.records_file())?;
        self.env.write(&[
            ("update_slot", target.into()),
            ("upgrade_available", "1".into()),
            ("bootcount", "0".into()),
            ("bootlimit", ctx.config.boot_retry_limit.to_string()),
        ])?;
        records.pending = Some(target.into());
        records.store(&self.records_file())?;
        Ok(InstallOutcome { version: info.version, slot: target.into(), reboot_required: true })
    }

    fn mark_good(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        let booted = self.booted_required()?;
        let vars = BootVars::from_env(&self.env.read()?);
        let mut records = SlotRecords::load(&self.records_file())?;
        let version = records.label(&booted);
        if vars.primary != booted {
            return Err(Error::Refused(format!(
                "slot {booted} is running but slot {} boots next; mark-good commits the slot the bootloader chose",
                vars.primary
            )));
        }
        if !vars.trial {
            return Ok(SlotChange { slot: booted.clone(), message: format!("slot {booted}{version} is already good") });
        }
        self.env.write(&[("upgrade_available", "0".into()), ("bootcount", "0".into()), ("ustate", "0".into())])?;
        records.pending = None;
        records.store(&self.records_file())?;
        Ok(SlotChange {
            slot: booted.clone(),
            message: format!("slot {booted}{version} marked good; it boots from now on"),
        })
    }

    fn rollback(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        let booted = self.booted_required()?;
        let target = other(&booted)?;
        let mut records = SlotRecords::load(&self.records_file())?;
        let Some(version) = records.get(target).map(|r| r.version.clone()) else {
            return Err(Error::Refused(format!("slot {target} holds no installed update; nothing to roll back to")));
        };
        let version = if version.is_empty() { "version unknown".to_owned() } else { version };
        if records.pending.as_deref() == Some(target) {
            return Err(Error::Refused(format!("slot {target} ({version}) failed to boot; not rolling back to it")));
        }
        self.env.write(&[
            ("update_slot", target.into()),
            ("upgrade_available", "0".into()),
            ("bootcount", "0".into()),
        ])?;
        records.pending = None;
        records.store(&self.records_file())?;
        Ok(SlotChange {
            slot: target.into(),
            message: format!("slot {target} ({version}) boots next; reboot to run it"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flat_config_strings() {
        let cfg =
            "globals :\n{\n\tverbose = true;\n\tpublic-key-file = \"/etc/k.pem\";\n\tbootloader = \"grub\";\n};\n";
        assert_eq!(config_string(cfg, "bootloader").as_deref(), Some("grub"));
        assert_eq!(config_string(cfg, "public-key-file").as_deref(), Some("/etc/k.pem"));
        assert_eq!(config_string(cfg, "key-file"), None);
        assert_eq!(config_string("{\"version\": \"2.0\"}", "version").as_deref(), Some("2.0"));
    }

    #[test]
    fn boot_vars_defaults() {
        let v = BootVars::from_env(&BTreeMap::new());
        assert_eq!(v, BootVars { primary: "A".into(), trial: false, bootcount: 0, bootlimit: 0 });
    }

    #[test]
    fn failures_are_classified() {
        // Printed by swupdate 2022.12 (Debian 12) for `swupdate -c -i FILE.swu`, LC_ALL=C.
        for (text, want) in [
            // A file that is not a cpio archive.
            (
                "[ERROR] : SWUPDATE failed [0] ERROR : CPIO Header corrupted, cannot be parsed\n\
                 [ERROR] : SWUPDATE failed [1] Image invalid or corrupted. Not installing ...",
                Failure::Verification,
            ),
            // Signed by a key the device does not trust.
            (
                "[ERROR] : SWUPDATE failed [0] ERROR : Authentication of all signatures failed\n\
                 [ERROR] : SWUPDATE failed [0] ERROR : Compatible SW not found\n\
                 [ERROR] : SWUPDATE failed [1] Image invalid or corrupted. Not installing ...",
                Failure::Verification,
            ),
            // A payload whose hash does not match.
            ("[ERROR] : SWUPDATE failed [0] ERROR : HASH mismatch : c246 <--> 80ff", Failure::Verification),
            // Another board: the image is fine, swupdate refuses it.
            ("[ERROR] : SWUPDATE failed [0] ERROR : Compatible SW not found", Failure::Refused),
            // Without a key swupdate does not start at all: a setup problem, not a bad update.
            ("Error: SWUpdate is built for signed images, provide a public key file.", Failure::Other),
            ("cannot open device", Failure::Other),
        ] {
            assert_eq!(classify(text), want, "{text}");
        }
    }
}
