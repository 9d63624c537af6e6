//! The mender driver: the client's standalone mode — `mender install FILE.mender`,
//! `mender commit`, `mender rollback`, `mender show-artifact` — for `rootfs-image` artifacts
//! into the inactive partition of `RootfsPartA`/`RootfsPartB`.
//!
//! mender owns the partitions, the artifact signature check (`ArtifactVerifyKey` in
//! mender.conf) and the boot variables of its U-Boot (or grub-mender-grubenv) integration, which
//! it reads and writes with `fw_printenv` / `fw_setenv`: `mender_boot_part`,
//! `upgrade_available`, `bootcount` (the bootloader's `bootlimit` counts tries). This driver
//! reads the same variables, finds the running partition the way mender does (the device
//! `mount` shows on `/`), and records what each partition holds in
//! `/var/lib/update/mender.json` (mender itself only knows the running artifact's name).
//!
//! Artifact names are versions here: `2.0.0` (or `release-2.0.0`: everything from the first
//! digit on).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use update_core::config::Verify;
use update_core::driver::{
    BundleInfo, Capability, Context, Driver, InstallOutcome, InstallRequest, SlotChange, Status,
};
use update_core::slot_records::{SlotRecord, SlotRecords};
use update_core::{Error, Paths, Result};

use crate::adapter::{AB_IMAGE_TOOL, Adapter, Factory, adapter_driver_basics, existing, read_config};
use crate::bootenv::ToolBootEnv;
use crate::settings::{BootRetry, SettingSupport, UnsignedInstalls};
use crate::slots::{AbBoot, ab_status};
use crate::tool::{Failure, FailureWords, Tool, ToolSpec};

/// The driver's name.
pub const NAME: &str = "mender";
/// mender's configuration.
pub const CONFIG: &str = "/etc/mender/mender.conf";
/// mender's fallback configuration and data directory.
pub const DATA_DIR: &str = "/var/lib/mender";
/// Where the driver records what each partition holds (under the state directory).
pub const RECORDS: &str = "mender.json";

/// How to run mender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenderOptions {
    /// The `mender` program; its `PATH` is also where mender finds `fw_printenv`, `fw_setenv` and `mount`.
    pub tool: ToolSpec,
    /// `mender-artifact`, to verify artifacts in `update` checks (optional: install verifies anyway).
    pub mender_artifact: ToolSpec,
    /// `tar`, to read an artifact's header.
    pub tar: ToolSpec,
    /// The command that reboots the device.
    pub reboot_command: Vec<String>,
}

impl Default for MenderOptions {
    fn default() -> Self {
        Self {
            tool: ToolSpec::new("mender"),
            mender_artifact: ToolSpec::new("mender-artifact"),
            tar: ToolSpec::new("tar"),
            reboot_command: vec!["reboot".into()],
        }
    }
}

/// The mender adapter: what is particular to mender behind the generic [`Factory`].
#[derive(Debug, Clone, Copy)]
pub struct Mender;

/// The factory registered with libupdate.
pub type MenderFactory = Factory<Mender>;

/// The static instance for driver tables.
pub static FACTORY: MenderFactory = Factory::SYSTEM;

/// The parts of mender.conf the driver needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenderConf {
    /// `RootfsPartA`.
    pub part_a: String,
    /// `RootfsPartB`.
    pub part_b: String,
    /// `ArtifactVerifyKey` (or the first of `ArtifactVerifyKeys`).
    pub verify_key: Option<PathBuf>,
}

impl MenderConf {
    /// Parses mender.conf (JSON).
    ///
    /// # Errors
    /// [`Error::Other`] naming the file and what is missing.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |why: &str| Error::Other(format!("{}: {why}", path.display()));
        let v: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let verify_key = s("ArtifactVerifyKey").or_else(|| {
            v.get("ArtifactVerifyKeys")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        Ok(Self {
            part_a: s("RootfsPartA")
                .ok_or_else(|| bad("no RootfsPartA: the driver installs rootfs-image artifacts"))?,
            part_b: s("RootfsPartB")
                .ok_or_else(|| bad("no RootfsPartB: the driver installs rootfs-image artifacts"))?,
            verify_key: verify_key.map(PathBuf::from),
        })
    }
}

impl Adapter for Mender {
    const NAME: &'static str = NAME;
    const INSTALL_HINT: &'static str = "mender-client (apt install mender-client)";
    const UPDATE_EXTENSIONS: &'static [&'static str] = &["mender"];
    // Update modules: `directory`/`single-file` (files), `docker`/`deb` (applications), and any
    // module installed on the device (out-of-tree).
    const COMPONENT_KINDS: &'static [&'static str] = &["files", "app", "external"];
    const CAPABILITIES: &'static [Capability] = AB_IMAGE_TOOL;
    const SETTINGS: SettingSupport = SettingSupport {
        unsigned: UnsignedInstalls::Supported,
        boot_retry: BootRetry::OwnedByTool(
            "mender's bootloader integration owns the count (U-Boot's bootlimit in the default environment; \
             grub-mender-grubenv tries once)",
        ),
        keys: "ArtifactVerifyKey in mender.conf",
    };
    // mender's failure messages, as words. Whole words: "tar" is the archive reader's
    // (`archive/tar: invalid tar header`), never a piece of "start" or "target".
    const FAILURES: FailureWords = FailureWords {
        other: &[],
        verification: &[
            "signature",
            "verif*",
            "checksum",
            "invalid artifact",
            "error reading artifact",
            "can not read",
            "unexpected eof",
            "gzip",
            "tar",
        ],
        refused: &["device type*", "not compatible", "does not match"],
    };
    type Options = MenderOptions;

    fn tool(options: &MenderOptions) -> &ToolSpec {
        &options.tool
    }
    fn config_path(_options: &MenderOptions, paths: &Paths) -> std::result::Result<PathBuf, String> {
        existing(NAME, paths.resolve(CONFIG))
    }
    fn open(options: MenderOptions, tool: Tool, config: PathBuf, ctx: &Context<'_>) -> Result<Box<dyn Driver>> {
        let conf = MenderConf::parse(&read_config(&config)?, &config)?;
        // mender finds `fw_printenv`, `fw_setenv` and `mount` in its own PATH.
        let helper = |program: &str| ToolSpec { path: options.tool.path.clone(), ..ToolSpec::new(program) }.tool(NAME);
        let (Some(printenv), Some(setenv)) = (helper("fw_printenv"), helper("fw_setenv")) else {
            return Err(Error::Other(
                "fw_printenv and fw_setenv are needed (apt install libubootenv-tool, or grub-mender-grubenv)".into(),
            ));
        };
        let mount = helper("mount").ok_or_else(|| Error::Other("mount not found in PATH".into()))?;
        let driver = MenderDriver {
            tool,
            mender_artifact: options.mender_artifact.tool(NAME),
            tar: options.tar.tool(NAME),
            mount,
            env: ToolBootEnv::Uboot { printenv, setenv },
            conf,
            config,
            paths: ctx.paths.clone(),
            reboot_command: options.reboot_command,
        };
        driver.env.read().map_err(|e| Error::Other(format!("cannot read the boot environment: {e}")))?;
        Ok(Box::new(driver))
    }
}

/// Classifies mender's failure messages.
#[must_use]
pub fn classify(text: &str) -> Failure {
    Mender::FAILURES.classify(text)
}

/// The version an artifact name stands for: everything from its first digit.
#[must_use]
pub fn version_of_name(name: &str) -> Option<update_core::Version> {
    let start = name.find(|c: char| c.is_ascii_digit())?;
    update_core::parse_version(&name[start..]).ok()
}

/// The device `mount` shows on `/`.
#[must_use]
pub fn mounted_root(mount_output: &str) -> Option<String> {
    mount_output.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() >= 3 && f[1] == "on" && f[2] == "/").then(|| f[0].to_owned())
    })
}

/// Reads an artifact's `header-info` (format version 3).
///
/// # Errors
/// [`Error::Verification`] when the JSON is not a mender header.
pub fn parse_header_info(text: &str, artifact: &str) -> Result<(String, Vec<String>, Vec<String>)> {
    let bad = |why: String| Error::verification(artifact, format!("not a mender artifact header: {why}"));
    let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let name = v
        .pointer("/artifact_provides/artifact_name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no artifact_name".into()))?
        .to_owned();
    let list = |p: &str| -> Vec<String> {
        v.pointer(p)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let payloads: Vec<String> = v
        .get("payloads")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("type").and_then(Value::as_str).map(str::to_owned))
        .collect();
    Ok((name, list("/artifact_depends/device_type"), payloads))
}

/// The mender driver.
#[derive(Debug, Clone)]
pub struct MenderDriver {
    tool: Tool,
    mender_artifact: Option<Tool>,
    tar: Option<Tool>,
    mount: Tool,
    env: ToolBootEnv,
    conf: MenderConf,
    config: PathBuf,
    paths: Paths,
    reboot_command: Vec<String>,
}

/// Where the slot's partition number is (`/dev/mmcblk0p3` → `3`).
fn part_number(dev: &str) -> String {
    let digits: String = dev.chars().rev().take_while(char::is_ascii_digit).collect();
    digits.chars().rev().collect()
}

impl MenderDriver {
    fn args(&self, cmd: &str) -> Vec<String> {
        let mut a = Vec::new();
        if self.paths.root() != Path::new("/") {
            let data = self.paths.resolve(DATA_DIR);
            a.extend([
                "--config".into(),
                self.config.display().to_string(),
                "--fallback-config".into(),
                data.join("mender.conf").display().to_string(),
                "--data".into(),
                data.display().to_string(),
            ]);
        }
        a.extend(["--no-syslog".into(), "--log-level".into(), "warning".into(), cmd.into()]);
        a
    }

    fn slot_of(&self, dev: &str) -> Option<&'static str> {
        let same = |a: &str, b: &str| {
            a == b || std::fs::canonicalize(a).ok().zip(std::fs::canonicalize(b).ok()).is_some_and(|(x, y)| x == y)
        };
        if same(dev, &self.conf.part_a) {
            Some("A")
        } else if same(dev, &self.conf.part_b) {
            Some("B")
        } else {
            None
        }
    }

    fn device(&self, slot: &str) -> &str {
        if slot == "A" { &self.conf.part_a } else { &self.conf.part_b }
    }

    /// The running slot: the partition `mount` shows on `/`.
    fn booted(&self) -> Result<Option<&'static str>> {
        let out = self.mount.run_ok("list mounts", std::iter::empty::<&str>(), &|_| Failure::Other)?;
        Ok(mounted_root(&out.stdout).and_then(|d| self.slot_of(&d)))
    }

    fn booted_required(&self) -> Result<&'static str> {
        self.booted()?.ok_or_else(|| {
            Error::Refused(format!(
                "the root file system is on neither RootfsPartA ({}) nor RootfsPartB ({})",
                self.conf.part_a, self.conf.part_b
            ))
        })
    }

    /// `mender_boot_part` and `upgrade_available`, as a slot and a flag.
    fn boot_vars(&self) -> Result<(Option<&'static str>, bool, u32, u32)> {
        let env = self.env.read()?;
        let part = env.get("mender_boot_part").cloned().unwrap_or_default();
        let primary = if part.is_empty() {
            None
        } else if part_number(&self.conf.part_a) == part {
            Some("A")
        } else if part_number(&self.conf.part_b) == part {
            Some("B")
        } else {
            None
        };
        let num = |k: &str| env.get(k).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        Ok((primary, env.get("upgrade_available").map(String::as_str) == Some("1"), num("bootcount"), num("bootlimit")))
    }

    /// `/var/lib/update/mender.json`, this driver's slot records.
    fn records_file(&self) -> PathBuf {
        self.paths.state_dir().join(RECORDS)
    }

    fn show_artifact(&self) -> Option<String> {
        let out = self.tool.run(self.args("show-artifact")).ok()?;
        out.success().then(|| out.stdout.trim().to_owned()).filter(|s| !s.is_empty() && s != "Unknown")
    }

    fn records(&self, booted: Option<&str>) -> Result<SlotRecords> {
        let mut r = SlotRecords::load(&self.records_file())?;
        if let Some(b) = booted
            && !r.slots.contains_key(b)
            && r.pending.as_deref() != Some(b)
            && let Some(name) = self.show_artifact()
        {
            r.slots.insert(b.into(), SlotRecord::named(name));
        }
        Ok(r)
    }

    fn header(&self, artifact: &Path) -> Result<(String, Vec<String>, Vec<String>)> {
        let tar = self.tar.as_ref().ok_or_else(|| Error::Other("tar not found in PATH".into()))?;
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("update-mender-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let shown = artifact.display().to_string();
        let result = (|| {
            let d = dir.display().to_string();
            let verify = |_: &str| Failure::Verification;
            tar.run_ok("read the artifact", ["-xf", shown.as_str(), "-C", &d, "header.tar.gz"], &verify)?;
            tar.run_ok(
                "read the artifact header",
                ["-xzf", &format!("{d}/header.tar.gz"), "-C", &d, "header-info"],
                &verify,
            )?;
            let text = std::fs::read_to_string(dir.join("header-info"))
                .map_err(|e| Error::io("read", dir.join("header-info"), e))?;
            parse_header_info(&text, &shown)
        })();
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    /// With `mender-artifact` installed, checks the signature and every payload checksum before
    /// mender streams anything into a partition (`mender-artifact read -k KEY`).
    fn preverify(&self, ctx: &Context<'_>, request: &InstallRequest) -> Result<()> {
        let shown = request.bundle.display().to_string();
        match (&self.conf.verify_key, &self.mender_artifact, request.verify) {
            (Some(key), Some(ma), Verify::Signatures) => {
                // Paths in mender.conf are as mender sees them: not re-rooted.
                let key = key.display().to_string();
                let out = ma.with_timeout(Duration::from_secs(600)).run(["read", "-k", key.as_str(), shown.as_str()])?;
                let text = format!("{}\n{}", out.stdout, out.stderr);
                if !out.success() || !text.contains("signed and verified correctly") {
                    let why = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.contains("Signature:") || l.to_ascii_lowercase().contains("error"))
                        .collect::<Vec<_>>()
                        .join("; ");
                    return Err(Error::verification(shown, format!("mender-artifact read: {why}")));
                }
            }
            (_, None, Verify::Signatures) => ctx.events.warn(
                "mender-artifact is not installed: only mender install checks the artifact, while it writes the inactive partition",
            ),
            _ => {}
        }
        Ok(())
    }

    /// verify=true needs a key in mender.conf; verify=false cannot switch a configured key off.
    fn check_verify(&self, verify: Verify) -> Result<()> {
        match (verify, &self.conf.verify_key) {
            (Verify::Signatures, None) => Err(Error::Refused(format!(
                "verify is true but {} sets no ArtifactVerifyKey: mender would install unsigned artifacts",
                self.config.display()
            ))),
            (Verify::IntegrityOnly, Some(_)) => Err(Error::NotSupported {
                driver: NAME.into(),
                operation: "verify false".into(),
                hint: Some(format!(
                    "{} sets ArtifactVerifyKey, so mender requires signed artifacts; remove the key to install unsigned ones",
                    self.config.display()
                )),
            }),
            _ => Ok(()),
        }
    }
}

impl Driver for MenderDriver {
    adapter_driver_basics!(Mender);

    fn status(&mut self, ctx: &Context<'_>) -> Result<Status> {
        let booted = self.booted()?;
        let (primary, trial, bootcount, bootlimit) = self.boot_vars()?;
        let boot =
            AbBoot { booted, primary: primary.or(booted), trial, tries_left: bootlimit.saturating_sub(bootcount) };
        let status = ab_status(&self.records(booted)?, NAME, &boot, version_of_name, &|s| {
            vec![format!("rootfs={}", self.device(s))]
        });
        if let Some(f) = &status.fallback {
            crate::note_fallback(ctx, NAME, f);
        }
        Ok(status)
    }

    fn inspect(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<BundleInfo> {
        // verify, signature-threshold and boot-retry-limit are checked by install (libupdate reads
        // any NotSupported from inspect as "this driver cannot inspect").
        if request.verify == Verify::Signatures {
            self.check_verify(request.verify)?;
        }
        let shown = request.bundle.display().to_string();
        let (name, devices, payloads) = self.header(&request.bundle)?;
        self.preverify(ctx, request)?;
        let version = version_of_name(&name)
            .ok_or_else(|| Error::verification(&shown, format!("artifact name '{name}' holds no version")))?;
        let size = std::fs::metadata(&request.bundle).map(|m| m.len()).unwrap_or(0);
        Ok(BundleInfo { version, compatible: devices.join(","), size, images: payloads })
    }

    fn install(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<InstallOutcome> {
        Mender::SETTINGS.check_ctx(NAME, ctx, request.verify)?;
        self.check_verify(request.verify)?;
        let booted = self.booted_required()?;
        let target = if booted == "A" { "B" } else { "A" };
        let mut records = self.records(Some(booted))?;
        if records.pending.is_some() {
            // An earlier install is uncommitted, or fell back: let mender close it first (mender
            // answers 2, "nothing to roll back", when there is nothing).
            let _ = self.tool.run(self.args("rollback"));
        }
        self.preverify(ctx, request)?;
        let shown = request.bundle.display().to_string();
        ctx.events.info(&format!("mender install {shown}"));
        let mut args = self.args("install");
        args.push(shown.clone());
        ctx.progress.start("mender install", 0);
        let out = self.tool.with_timeout(Duration::from_secs(3600)).run(&args);
        ctx.progress.finish();
        let out = out?;
        if !out.success() {
            return Err(self.tool.failure("install", &out, &classify));
        }
        let (name, _, _) = self.header(&request.bundle)?;
        let version = version_of_name(&name)
            .ok_or_else(|| Error::verification(&shown, format!("artifact name '{name}' holds no version")))?;
        records.slots.entry(booted.into()).or_default();
        records.slots.insert(target.into(), SlotRecord::named(name));
        records.pending = Some(target.into());
        records.store(&self.records_file())?;
        Ok(InstallOutcome { version, slot: target.into(), reboot_required: true })
    }

    fn mark_good(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        let booted = self.booted_required()?;
        let mut records = self.records(Some(booted))?;
        let (primary, trial, _, _) = self.boot_vars()?;
        if !trial || primary != Some(booted) {
            // Nothing on trial here (or the trial is the other slot's, not running): the running
            // slot is already the committed one, e.g. after a fallback.
            return Ok(SlotChange {
                slot: booted.into(),
                message: format!("slot {booted}{} is already good", records.label(booted)),
            });
        }
        self.tool.run_ok("commit", self.args("commit"), &classify)?;
        records.pending = None;
        records.store(&self.records_file())?;
        Ok(SlotChange {
            slot: booted.into(),
            message: format!("slot {booted}{} committed (mender commit); it boots from now on", records.label(booted)),
        })
    }

    fn rollback(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        let booted = self.booted_required()?;
        let mut records = self.records(Some(booted))?;
        let (_, trial, _, _) = self.boot_vars()?;
        if !trial {
            return Err(Error::Refused(
                "mender rolls back only an update that is not committed yet; this one is committed (install the previous artifact instead)"
                    .into(),
            ));
        }
        let out = self.tool.run(self.args("rollback"))?;
        if !out.success() {
            return Err(self.tool.failure("rollback", &out, &classify));
        }
        let (primary, _, _, _) = self.boot_vars()?;
        let slot = primary.unwrap_or(booted);
        if records.pending.as_deref() != Some(slot) {
            records.pending = None;
        }
        records.store(&self.records_file())?;
        Ok(SlotChange {
            slot: slot.into(),
            message: format!("slot {slot}{} boots next (mender rollback)", records.label(slot)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_mounts_and_headers() {
        assert_eq!(version_of_name("release-2.0.1"), Some(update_core::Version::new(2, 0, 1)));
        assert_eq!(version_of_name("nightly"), None);
        assert_eq!(
            mounted_root("proc on /proc type proc (rw)\n/dev/mmcblk0p3 on / type ext4 (rw)\n").as_deref(),
            Some("/dev/mmcblk0p3")
        );
        assert_eq!(part_number("/dev/mmcblk0p12"), "12");
        // header-info as mender-artifact 3.9 writes it (format version 3).
        let (name, devices, payloads) = parse_header_info(
            r#"{"payloads":[{"type":"rootfs-image"}],"artifact_provides":{"artifact_name":"2.0.0"},"artifact_depends":{"device_type":["libupdate-test"]}}"#,
            "a.mender",
        )
        .unwrap();
        assert_eq!(
            (name.as_str(), devices, payloads),
            ("2.0.0", vec!["libupdate-test".to_owned()], vec!["rootfs-image".to_owned()])
        );
    }

    #[test]
    fn failures_are_classified() {
        // Printed by mender 3.4.0 (Debian 12, standalone mode), LC_ALL=C.
        for (text, want) in [
            // An ordinary failure (a data directory without scripts/), at mender's default log
            // level: no verification word in it. It was "verification failed" (exit 6) while "tar"
            // was matched inside "Start".
            (
                r#"level=error msg="Failed to read the current active partition: No match between boot and root partitions.: exit status 247"
level=info msg="Start updating from local image file: [same.mender]"
Installing Artifact of size 5120...
level=info msg="No public key was provided for authenticating the artifact"
level=error msg="Installer: Error initializing directory for scripts [mdata2/scripts]: Invalid scripts directory path: mdata2/scripts"
level=error msg="Reading headers failed: installer: error initializing directory for scripts: Invalid scripts directory path: mdata2/scripts""#,
                Failure::Other,
            ),
            (r#"level=error msg="Could not commit Artifact: There is nothing to commit""#, Failure::Other),
            // A file that is not an artifact, and an artifact for another device type.
            (
                r#"level=error msg="Failed to read the current active partition: No match between boot and root partitions.: exit status 247"
Installing Artifact of size 10000...
level=error msg="Reading headers failed: installer: failed to read Artifact: reader: can not read version file: readNext: Failed to get next header: reader: error reading archive: archive/tar: invalid tar header""#,
                Failure::Verification,
            ),
            (
                r#"level=error msg="Reading headers failed: installer: failed to read Artifact: readHeaderV3: handleHeaderReads: installer: image (device types [other-device]) not compatible with device libupdate-test""#,
                Failure::Refused,
            ),
        ] {
            assert_eq!(classify(text), want, "{text}");
        }
    }

    #[test]
    fn conf_needs_both_partitions() {
        let c = MenderConf::parse(
            r#"{"RootfsPartA":"/dev/a2","RootfsPartB":"/dev/a3","ArtifactVerifyKey":"/k.pem"}"#,
            Path::new("m"),
        )
        .unwrap();
        assert_eq!(c.verify_key.as_deref(), Some(Path::new("/k.pem")));
        assert!(MenderConf::parse(r#"{"RootfsPartA":"/dev/a2"}"#, Path::new("m")).is_err());
    }
}
