//! The rauc driver: `rauc install`, `rauc status --output-format=json`, `rauc status
//! mark-good|mark-active`, `rauc info --output-format=json`.
//!
//! rauc owns the slots, the bundle signature check (X.509/CMS against the `[keyring]` of its
//! `system.conf`) and the bootloader integration (`bootloader=` grub, barebox, u-boot, efi or
//! custom). Installs and status go through rauc's D-Bus service (`rauc service`, normally
//! started by systemd); `rauc info` reads a bundle directly.
//!
//! Slot states come from `rauc status`: rauc reports each bootable slot's boot status as
//! `good` or `bad` and which slot is primary. A slot that is booted but `bad` is running on
//! trial (the bootloader falls back on the next boot unless it is marked good); a slot that is
//! primary, `good` and not booted is installed and waiting for the reboot.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use update_core::driver::{
    BundleInfo, Capability, Context, Driver, InstallOutcome, InstallRequest, SlotChange, SlotState, SlotStatus, Status,
};
use update_core::{Error, Paths, Result, Version};

use crate::adapter::{Adapter, Factory, adapter_driver_basics};
use crate::settings::{BootRetry, SettingSupport, UnsignedInstalls};
use crate::tool::{Failure, FailureWords, Tool, ToolSpec, first_existing};

/// The driver's name.
pub const NAME: &str = "rauc";

/// Where rauc looks for its system configuration, in its own order.
pub const SYSTEM_CONF: [&str; 3] = ["/etc/rauc/system.conf", "/run/rauc/system.conf", "/usr/lib/rauc/system.conf"];

/// How to run rauc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaucOptions {
    /// The `rauc` program and its environment (`DBUS_SYSTEM_BUS_ADDRESS` for a private bus).
    pub tool: ToolSpec,
    /// The system.conf; the first of [`SYSTEM_CONF`] under the root when `None`.
    pub system_conf: Option<PathBuf>,
    /// The command that reboots the device.
    pub reboot_command: Vec<String>,
}

impl Default for RaucOptions {
    fn default() -> Self {
        Self { tool: ToolSpec::new("rauc"), system_conf: None, reboot_command: vec!["reboot".into()] }
    }
}

/// The rauc adapter: what is particular to rauc behind the generic [`Factory`].
#[derive(Debug, Clone, Copy)]
pub struct Rauc;

/// The factory registered with libupdate.
pub type RaucFactory = Factory<Rauc>;

/// The static instance for driver tables (rauc from `PATH`, the system's system.conf).
pub static FACTORY: RaucFactory = Factory::SYSTEM;

impl Adapter for Rauc {
    const NAME: &'static str = NAME;
    const INSTALL_HINT: &'static str = "rauc (apt install rauc)";
    const UPDATE_EXTENSIONS: &'static [&'static str] = &["raucb"];
    const CAPABILITIES: &'static [Capability] = &[
        Capability::AbImage,
        Capability::BootCounting,
        Capability::MarkGood,
        Capability::Rollback,
        Capability::MarkBad,
        Capability::Signatures,
        Capability::Inspect,
    ];
    const SETTINGS: SettingSupport = SettingSupport {
        unsigned: UnsignedInstalls::AlwaysVerifies(
            "rauc always checks a bundle's signature against the [keyring] of its system.conf",
        ),
        boot_retry: BootRetry::OwnedByTool(
            "rauc leaves boot attempts to its bootloader integration (the GRUB script's *_TRY flag, \
             U-Boot's BOOT_*_LEFT, barebox's remaining_attempts); set the count there",
        ),
        keys: "the X.509 [keyring] in rauc's system.conf",
    };
    // rauc's failure messages, as words (tested against rauc 1.8's own output).
    const FAILURES: FailureWords = FailureWords {
        other: &[],
        verification: &[
            "signature verification failed",
            "verify error",
            "failed to verify",
            "checksum",
            "invalid bundle",
            "squashfs",
        ],
        refused: &["compatible mismatch", "already running", "not allowed"],
    };
    type Options = RaucOptions;

    fn tool(options: &RaucOptions) -> &ToolSpec {
        &options.tool
    }
    fn config_path(options: &RaucOptions, paths: &Paths) -> std::result::Result<PathBuf, String> {
        let conf = match &options.system_conf {
            Some(c) => Some(c.clone()).filter(|c| c.exists()),
            None => first_existing(paths, &SYSTEM_CONF),
        };
        conf.ok_or_else(|| {
            format!(
                "rauc is installed but not configured: no system.conf ({})",
                options.system_conf.as_ref().map_or_else(
                    || SYSTEM_CONF
                        .iter()
                        .map(|c| paths.resolve(c).display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    |c| c.display().to_string()
                )
            )
        })
    }
    fn open(options: RaucOptions, tool: Tool, conf: PathBuf, _ctx: &Context<'_>) -> Result<Box<dyn Driver>> {
        let mut driver = RaucDriver { tool, conf, reboot_command: options.reboot_command, probed: None };
        // The probe's `rauc status` answers the first status question too: one `update --now`
        // asks rauc twice (probe, then after the install), not four times.
        driver.probed = Some(driver.rauc_status()?);
        Ok(Box::new(driver))
    }
}

/// The rauc driver.
#[derive(Debug, Clone)]
pub struct RaucDriver {
    tool: Tool,
    conf: PathBuf,
    reboot_command: Vec<String>,
    /// What the probe read, handed out once by the first `status`.
    probed: Option<RaucStatus>,
}

/// Classifies rauc's failure messages.
#[must_use]
pub fn classify(text: &str) -> Failure {
    Rauc::FAILURES.classify(text)
}

/// One slot as `rauc status --detailed --output-format=json` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaucSlot {
    /// rauc's slot name (`rootfs.0`).
    pub name: String,
    /// Its class (`rootfs`).
    pub class: String,
    /// The device.
    pub device: String,
    /// The bootname (`A`), for bootable slots.
    pub bootname: Option<String>,
    /// `booted`, `active` or `inactive`.
    pub state: String,
    /// The parent slot, for child slots (`appfs.0` of `rootfs.0`).
    pub parent: Option<String>,
    /// `good` or `bad`, when the bootloader integration tells.
    pub boot_status: Option<String>,
    /// The version of the bundle last installed into it.
    pub version: Option<String>,
    /// When a bundle was last activated in it (RFC 3339), if ever.
    pub activated: Option<String>,
}

/// `rauc status --detailed --output-format=json`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaucStatus {
    /// The system's compatible string.
    pub compatible: String,
    /// The booted slot's bootname.
    pub booted: Option<String>,
    /// The primary slot's name (`rootfs.1`).
    pub boot_primary: Option<String>,
    /// The slots.
    pub slots: Vec<RaucSlot>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

impl RaucStatus {
    /// Parses rauc's JSON.
    ///
    /// # Errors
    /// [`Error::Other`] when it is not the JSON rauc prints.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Other(format!("cannot read `rauc status` output: {why}"));
        let v: Value = serde_json::from_str(text.trim()).map_err(|e| bad(&e.to_string()))?;
        let mut slots = Vec::new();
        for entry in v.get("slots").and_then(Value::as_array).ok_or_else(|| bad("no slots"))? {
            let Some((name, s)) = entry.as_object().and_then(|o| o.iter().next()) else { continue };
            let owned = |p: &[&str]| str_at(s, p).map(str::to_owned);
            slots.push(RaucSlot {
                name: name.clone(),
                class: owned(&["class"]).unwrap_or_default(),
                device: owned(&["device"]).unwrap_or_default(),
                bootname: owned(&["bootname"]),
                state: owned(&["state"]).unwrap_or_default(),
                parent: owned(&["parent"]),
                boot_status: owned(&["boot_status"]),
                version: owned(&["slot_status", "bundle", "version"]),
                activated: owned(&["slot_status", "activated", "timestamp"]),
            });
        }
        update_core::sort::sort_by(&mut slots, |a, b| a.bootname.cmp(&b.bootname).then(a.name.cmp(&b.name)));
        Ok(Self {
            compatible: str_at(&v, &["compatible"]).unwrap_or_default().to_owned(),
            booted: str_at(&v, &["booted"]).map(str::to_owned),
            boot_primary: str_at(&v, &["boot_primary"]).map(str::to_owned),
            slots,
        })
    }

    /// The bootable slot the system runs from.
    #[must_use]
    pub fn booted_slot(&self) -> Option<&RaucSlot> {
        self.slots.iter().find(|s| s.bootname.is_some() && (s.state == "booted" || s.bootname == self.booted))
    }

    /// The slot that is the booted one's sibling (same class, other bootname).
    #[must_use]
    pub fn other_slot(&self) -> Option<&RaucSlot> {
        let booted = self.booted_slot()?;
        self.slots.iter().find(|s| s.bootname.is_some() && s.class == booted.class && s.name != booted.name)
    }

    /// The update API's view.
    #[must_use]
    pub fn to_status(&self) -> Status {
        let booted = self.booted_slot().map(|s| s.name.clone());
        // While the booted slot is on trial, a good primary is the fallback, not a pending install.
        let booted_on_trial = self.booted_slot().is_some_and(|b| b.boot_status.as_deref() == Some("bad"));
        let version_of = |s: &RaucSlot| s.version.as_deref().and_then(|v| update_core::parse_version(v).ok());
        let slots: Vec<SlotStatus> = self
            .slots
            .iter()
            .filter(|s| s.bootname.is_some())
            .map(|s| {
                let is_booted = booted.as_deref() == Some(&s.name);
                let primary = self.boot_primary.as_deref() == Some(&s.name);
                let good = s.boot_status.as_deref() == Some("good");
                let bad = s.boot_status.as_deref() == Some("bad");
                let state = match (is_booted, primary, good, bad) {
                    (true, _, true, _) => SlotState::Good,
                    (true, _, _, true) => SlotState::Trying,
                    (false, true, true, _) if !booted_on_trial => SlotState::Trying,
                    (false, _, true, _) => SlotState::Good,
                    (false, _, _, true) if s.version.is_some() => SlotState::Bad,
                    _ => SlotState::Unknown,
                };
                let mut devices = vec![format!("{}={}", s.class, s.device)];
                devices.extend(
                    self.slots
                        .iter()
                        .filter(|c| c.parent.as_deref() == Some(&s.name))
                        .map(|c| format!("{}={}", c.class, c.device)),
                );
                SlotStatus {
                    name: s.bootname.clone().unwrap_or_default(),
                    state,
                    version: version_of(s),
                    booted: is_booted,
                    primary,
                    tries_left: None,
                    devices,
                }
            })
            .collect();
        // A fallback: the sibling got a bundle activated after the booted slot's, and is bad.
        let fallback = match (self.booted_slot(), self.other_slot()) {
            (Some(b), Some(o))
                if o.boot_status.as_deref() == Some("bad")
                    && o.activated.is_some()
                    && o.activated > b.activated
                    && self.boot_primary.as_deref() != Some(&o.name) =>
            {
                Some(format!(
                    "slot {}{} failed to boot; running slot {}",
                    o.bootname.as_deref().unwrap_or(&o.name),
                    o.version.as_ref().map(|v| format!(" ({v})")).unwrap_or_default(),
                    b.bootname.as_deref().unwrap_or(&b.name)
                ))
            }
            _ => None,
        };
        Status {
            driver: NAME.into(),
            compatible: Some(self.compatible.clone()).filter(|c| !c.is_empty()),
            version: self.booted_slot().and_then(version_of),
            booted: self.booted_slot().and_then(|s| s.bootname.clone()),
            primary: self
                .boot_primary
                .as_ref()
                .and_then(|p| self.slots.iter().find(|s| &s.name == p))
                .and_then(|s| s.bootname.clone()),
            slots,
            fallback,
            components: Vec::new(),
        }
    }
}

/// `rauc info --output-format=json`, as [`BundleInfo`].
///
/// # Errors
/// [`Error::Verification`] when the JSON is not a bundle description or has no usable version.
pub fn parse_info(text: &str, bundle: &str) -> Result<BundleInfo> {
    let bad = |why: String| Error::verification(bundle, format!("rauc info: {why}"));
    let v: Value = serde_json::from_str(text.trim()).map_err(|e| bad(e.to_string()))?;
    let version = str_at(&v, &["version"]).ok_or_else(|| bad("the manifest has no version".into()))?;
    let version = update_core::parse_version(version).map_err(|e| bad(e.to_string()))?;
    let mut size = 0;
    let mut images = Vec::new();
    for img in v.get("images").and_then(Value::as_array).into_iter().flatten() {
        if let Some((class, i)) = img.as_object().and_then(|o| o.iter().next()) {
            images.push(class.clone());
            size += i.get("size").and_then(Value::as_u64).unwrap_or(0);
        }
    }
    Ok(BundleInfo { version, compatible: str_at(&v, &["compatible"]).unwrap_or_default().to_owned(), size, images })
}

/// Reads rauc's `NN% message` progress lines.
#[must_use]
pub fn parse_progress(line: &str) -> Option<(u64, &str)> {
    let (pct, rest) = line.trim_start().split_once('%')?;
    Some((pct.trim().parse().ok()?, rest.trim()))
}

impl RaucDriver {
    fn conf_arg(&self) -> String {
        format!("--conf={}", self.conf.display())
    }

    /// `rauc status --detailed --output-format=json`.
    ///
    /// # Errors
    /// rauc's error (typically: its service is not running).
    pub fn rauc_status(&self) -> Result<RaucStatus> {
        let out = self.tool.run_ok(
            "status",
            [&self.conf_arg(), "status", "--detailed", "--output-format=json"],
            &classify,
        )?;
        RaucStatus::parse(&out.stdout)
    }
}

impl Driver for RaucDriver {
    adapter_driver_basics!(Rauc);

    fn status(&mut self, ctx: &Context<'_>) -> Result<Status> {
        let status = match self.probed.take() {
            Some(s) => s,
            None => self.rauc_status()?,
        }
        .to_status();
        if let Some(f) = &status.fallback {
            crate::note_fallback(ctx, NAME, f);
        }
        Ok(status)
    }

    fn inspect(&mut self, _ctx: &Context<'_>, request: &InstallRequest) -> Result<BundleInfo> {
        // verify, signature-threshold and boot-retry-limit are checked by install (libupdate reads
        // any NotSupported from inspect as "this driver cannot inspect").
        let bundle = request.bundle.display().to_string();
        let out =
            self.tool.run_ok("info", [self.conf_arg().as_str(), "info", "--output-format=json", &bundle], &|t| {
                // Anything `rauc info` refuses is a bundle that does not verify or parse.
                match classify(t) {
                    Failure::Other => Failure::Verification,
                    f => f,
                }
            })?;
        parse_info(&out.stdout, &bundle)
    }

    fn install(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<InstallOutcome> {
        Rauc::SETTINGS.check_ctx(NAME, ctx, request.verify)?;
        let bundle = request.bundle.display().to_string();
        ctx.events.info(&format!("rauc install {bundle}"));
        ctx.progress.start("rauc install", 100);
        let mut done = 0;
        let tool = self.tool.with_timeout(Duration::from_secs(3600));
        let out = tool.run_lines([self.conf_arg().as_str(), "install", &bundle], &mut |line| {
            if let Some((pct, _)) = parse_progress(line)
                && pct > done
            {
                ctx.progress.advance(pct - done);
                done = pct;
            }
        });
        ctx.progress.finish();
        let out = out?;
        if !out.success() {
            return Err(self.tool.failure("install", &out, &classify));
        }
        let after = self.rauc_status()?;
        let target = after
            .boot_primary
            .as_ref()
            .and_then(|p| after.slots.iter().find(|s| &s.name == p))
            .ok_or_else(|| Error::Other("rauc install succeeded but rauc reports no primary slot".into()))?;
        let version = target
            .version
            .as_deref()
            .and_then(|v| update_core::parse_version(v).ok())
            .unwrap_or_else(|| Version::new(0, 0, 0));
        Ok(InstallOutcome {
            version,
            slot: target.bootname.clone().unwrap_or_else(|| target.name.clone()),
            reboot_required: after.booted_slot().map(|b| &b.name) != Some(&target.name),
        })
    }

    fn mark_good(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        let before = self.rauc_status()?;
        let booted =
            before.booted_slot().cloned().ok_or_else(|| Error::Refused("rauc reports no booted slot".into()))?;
        let out = self.tool.run_ok(
            "status mark-good",
            [self.conf_arg().as_str(), "status", "mark-good", "booted"],
            &classify,
        )?;
        let name = booted.bootname.unwrap_or(booted.name);
        Ok(SlotChange {
            slot: name.clone(),
            message: format!(
                "slot {name}{} marked good ({})",
                booted.version.map(|v| format!(" ({v})")).unwrap_or_default(),
                out.stdout.trim().trim_start_matches("rauc status: ")
            ),
        })
    }

    fn mark_bad(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        let st = self.rauc_status()?;
        let booted = st.booted_slot().cloned().ok_or_else(|| Error::Refused("rauc reports no booted slot".into()))?;
        let booted_name = booted.bootname.clone().unwrap_or_else(|| booted.name.clone());
        let other = st.other_slot().cloned().filter(|o| o.boot_status.as_deref() == Some("good"));
        let Some(other) = other else {
            return Err(Error::Refused(format!(
                "rauc reports no other good slot: marking the running slot {booted_name} bad would leave nothing to boot"
            )));
        };
        self.tool.run_ok("status mark-bad", [self.conf_arg().as_str(), "status", "mark-bad", "booted"], &classify)?;
        let other_name = other.bootname.unwrap_or(other.name);
        let v = |v: Option<String>| v.map(|v| format!(" ({v})")).unwrap_or_default();
        Ok(SlotChange {
            slot: booted_name.clone(),
            message: format!(
                "slot {booted_name}{} marked bad; slot {other_name}{} boots next: reboot to run it",
                v(booted.version),
                v(other.version)
            ),
        })
    }

    fn rollback(&mut self, _ctx: &Context<'_>) -> Result<SlotChange> {
        let st = self.rauc_status()?;
        let other =
            st.other_slot().cloned().ok_or_else(|| Error::Refused("rauc reports no other bootable slot".into()))?;
        if other.version.is_none() && other.boot_status.as_deref() != Some("good") {
            return Err(Error::Refused(format!(
                "slot {} holds no installed bundle and is not good; nothing to roll back to",
                other.bootname.as_deref().unwrap_or(&other.name)
            )));
        }
        self.tool.run_ok(
            "status mark-active",
            [self.conf_arg().as_str(), "status", "mark-active", "other"],
            &classify,
        )?;
        let name = other.bootname.unwrap_or(other.name);
        Ok(SlotChange {
            slot: name.clone(),
            message: format!(
                "slot {name}{} boots next; reboot to run it",
                other.version.map(|v| format!(" ({v})")).unwrap_or_default()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Printed by rauc 1.8 (Debian 12) for a system with a grub backend, after an install into B.
    const AFTER_INSTALL: &str = r#"{"compatible":"libupdate-test","variant":"","booted":"A","boot_primary":"rootfs.1","slots":[{"rootfs.1":{"class":"rootfs","device":"/tmp/r/slotB.img","type":"raw","bootname":"B","state":"inactive","parent":null,"mountpoint":null,"boot_status":"good","slot_status":{"bundle":{"compatible":"libupdate-test","version":"2.0.0"},"checksum":{"sha256":"4650f6444d697b3f7c6758aea7d9b7e966e314a4b567693115318c96f1a898fe","size":3145728},"installed":{"timestamp":"2026-11-24T19:49:57Z","count":1},"activated":{"timestamp":"2026-11-24T19:49:57Z","count":1},"status":"ok"}}},{"rootfs.0":{"class":"rootfs","device":"/tmp/r/slotA.img","type":"raw","bootname":"A","state":"booted","parent":null,"mountpoint":null,"boot_status":"good","slot_status":{"bundle":{"compatible":null}}}}]}"#;

    #[test]
    fn a_missing_system_conf_is_named_under_the_root() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path());
        let e = <Rauc as Adapter>::config_path(&RaucOptions::default(), &paths).unwrap_err();
        let expected = root.path().join("etc/rauc/system.conf");
        assert!(e.contains(&expected.display().to_string()), "{e}");
        assert!(!e.contains(" /etc/rauc"), "a host path under --root: {e}");
        // Once there, it is found under the root.
        std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
        std::fs::write(&expected, "[system]\n").unwrap();
        assert_eq!(<Rauc as Adapter>::config_path(&RaucOptions::default(), &paths).unwrap(), expected);
    }

    #[test]
    fn pending_install_is_trying_and_primary() {
        let s = RaucStatus::parse(AFTER_INSTALL).unwrap().to_status();
        assert_eq!(s.booted.as_deref(), Some("A"));
        assert_eq!(s.primary.as_deref(), Some("B"));
        assert_eq!(s.slots[0].name, "A");
        assert_eq!(s.slots[0].state, SlotState::Good);
        assert_eq!(s.slots[1].state, SlotState::Trying);
        assert_eq!(s.slots[1].version, Some(Version::new(2, 0, 0)));
        assert_eq!(s.version, None);
        assert_eq!(s.fallback, None);
    }

    #[test]
    fn the_fallback_of_a_trial_boot_is_good() {
        // Booted B on trial (B_TRY=1 reads as bad), A is the primary only as the fallback.
        let text = AFTER_INSTALL
            .replace(r#""booted":"A","boot_primary":"rootfs.1""#, r#""booted":"B","boot_primary":"rootfs.0""#)
            .replace(r#""state":"inactive""#, r#""state":"X""#)
            .replace(r#""state":"booted""#, r#""state":"inactive""#)
            .replace(
                r#""state":"X","parent":null,"mountpoint":null,"boot_status":"good""#,
                r#""state":"booted","parent":null,"mountpoint":null,"boot_status":"bad""#,
            );
        let s = RaucStatus::parse(&text).unwrap().to_status();
        assert_eq!(s.booted.as_deref(), Some("B"));
        assert_eq!(s.slots[0].state, SlotState::Good, "{s:#?}");
        assert_eq!(s.slots[1].state, SlotState::Trying, "{s:#?}");
        assert_eq!(s.fallback, None);
    }

    #[test]
    fn failed_boot_is_a_fallback() {
        let text = AFTER_INSTALL.replace(r#""boot_primary":"rootfs.1""#, r#""boot_primary":"rootfs.0""#).replace(
            r#""state":"inactive","parent":null,"mountpoint":null,"boot_status":"good""#,
            r#""state":"inactive","parent":null,"mountpoint":null,"boot_status":"bad""#,
        );
        let s = RaucStatus::parse(&text).unwrap().to_status();
        assert_eq!(s.slots[1].state, SlotState::Bad);
        assert!(s.fallback.as_deref().unwrap().contains("slot B (2.0.0) failed to boot"), "{s:?}");
    }

    #[test]
    fn info_and_progress() {
        let info = parse_info(
            r#"{"compatible":"c","version":"2.0","images":[{"rootfs":{"filename":"r.img","size":10}}]}"#,
            "b.raucb",
        )
        .unwrap();
        assert_eq!(info.version, Version::new(2, 0, 0));
        assert_eq!(info.images, ["rootfs"]);
        assert_eq!(info.size, 10);
        assert!(parse_info(r#"{"compatible":"c"}"#, "b").is_err());
        assert_eq!(parse_progress(" 40% Verifying signature done."), Some((40, "Verifying signature done.")));
        assert_eq!(parse_progress("installing"), None);
    }

    #[test]
    fn failures_are_classified() {
        // Printed by rauc 1.8 (Debian 12), LC_ALL=C.
        for (text, want) in [
            // `rauc install` of a bundle signed by a key outside the keyring.
            (
                " 20% Verifying signature\n 40% Verifying signature failed.\n 40% Checking bundle failed.\n\
                 100% Installing failed.\nLastError: signature verification failed: Verify error: self-signed certificate\n\
                 idle\nInstalling `/tmp/.tmpkh5seG/build/update-2.0.0-2.raucb` failed",
                Failure::Verification,
            ),
            // `rauc info` of a bundle with a changed byte.
            (
                "rauc-Message: 18:32:04.890: Reading bundle: /tmp/.tmpkh5seG/build/update-2.0.0-1.raucb\n\
                 rauc-Message: 18:32:04.891: Payload size (4170) is not a multiple of 4KiB.\n\
                 Invalid bundle format: Signature data is no valid CMS",
                Failure::Verification,
            ),
            ("Compatible mismatch: Expected 'a' but bundle manifest has 'b'", Failure::Refused),
            // No service, no keyring: the system, not the bundle.
            (
                "Error retrieving slot status via D-Bus: error creating proxy: Could not connect: No such file or directory",
                Failure::Other,
            ),
            ("No keyring file or directory provided", Failure::Other),
        ] {
            assert_eq!(classify(text), want, "{text}");
        }
    }
}
