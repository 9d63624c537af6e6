//! The `fwupd` handler: server-class firmware (UEFI capsules, NICs, NVMe disks, BMC
//! peripherals) installed by the **fwupd daemon** from a signed cabinet archive (`.cab`, the
//! format LVFS serves), through its command-line client `fwupdmgr` (docs/components.md, "fwupd").
//!
//! fwupd owns the device: it knows how to write each one (a capsule staged for the next boot, a
//! flash protocol over USB or PCI), checks the cab's signature against its own keyring
//! (`/etc/pki/fwupd`, with `OnlyTrusted=true`, the default) and keeps its own history. This
//! handler fits it into a libupdate transaction:
//!
//! - `check`: the configured device exists (exactly one match), is `updatable`, and has no update
//!   pending a reboot already;
//! - `install`: the verified payload is staged as `<state>/staged.cab`; fwupd parses it
//!   (`fwupdmgr get-details`) and must say it applies to the device, carries the component's
//!   version, and is signed by a key it trusts. Nothing is written to the device yet;
//! - `activate`: `fwupdmgr install staged.cab <device-id>`; the device reads back the new version
//!   (`Activation::Now`), or fwupd flags it `needs-reboot` (a UEFI capsule: `AtReboot`);
//! - `health`: the device reads back the component's version;
//! - `commit`: recorded; the committed cab is kept (`kept-<version>.cab`) as the rollback source of
//!   the next update;
//! - `rollback`: before activation, the staged cab is dropped. After it, fwupd itself cannot roll
//!   a device back: the handler reinstalls the previous version's cab (kept from the previous
//!   commit) with `--allow-older`, and reads the previous version back. When no such cab is kept
//!   (the previous firmware was not installed through libupdate) or the device refuses the
//!   downgrade, rollback fails with a message that says so.
//!
//! Device settings: `device` (required), the fwupd device id (40 hex digits, as `fwupdmgr
//! get-devices` shows) or one of its GUIDs. The handler has no vendor options.
//!
//! `fwupdmgr` runs with [`update_core::process::Command::under_root`], so a device re-rooted with
//! `--root` uses the `fwupdmgr` inside its root.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use update_core::component::{Activation, Component, ComponentState, ComponentStatus, Handler, HandlerContext, Kind};
use update_core::process::Command;
use update_core::text::escape;
use update_core::{Error, Result, Version};

use crate::payload::{Checked, known_keys};

/// The largest cab accepted (LVFS cabs are a few MiB; server BIOS capsules up to ~64 MiB).
pub const MAX_CAB: u64 = 512 << 20;

/// The client program, looked up in the device's search path (under `--root`, inside the root).
pub const FWUPDMGR: &str = "fwupdmgr";

/// Options every `fwupdmgr` call gets: JSON output (which also disables every prompt), and none of
/// the interactive checks meant for a desktop user (metadata age, remotes, reboot prompt).
const QUIET: [&str; 7] = [
    "--json",
    "--assume-yes",
    "--no-unreported-check",
    "--no-metadata-check",
    "--no-remote-check",
    "--no-reboot-check",
    "--no-security-fix",
];

/// The `fwupd` handler.
#[derive(Debug, Default)]
pub struct FwupdHandler;

impl FwupdHandler {
    /// A handler.
    #[must_use]
    pub fn new() -> Self {
        Self
    }
}

/// One device as `fwupdmgr get-devices --json` lists it (unknown fields ignored: fwupd adds
/// fields between releases).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FwupdDevice {
    /// fwupd's device id (40 hex digits).
    #[serde(default)]
    pub device_id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its GUIDs.
    #[serde(default)]
    pub guid: Vec<String>,
    /// The plugin that drives it.
    #[serde(default)]
    pub plugin: String,
    /// Its current firmware version, as the device reports it.
    #[serde(default)]
    pub version: Option<String>,
    /// fwupd's device flags (`updatable`, `needs-reboot`, …).
    #[serde(default)]
    pub flags: Vec<String>,
    /// The state of the last update (1 pending, 2 success, 3 failed, 4 needs reboot).
    #[serde(default)]
    pub update_state: Option<u32>,
    /// The last update's error, if any.
    #[serde(default)]
    pub update_error: Option<String>,
    /// Releases (in `get-details`: what the cab offers this device).
    #[serde(default)]
    pub releases: Vec<FwupdRelease>,
}

/// A release of a cab, as `fwupdmgr get-details --json` shows it for one device.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FwupdRelease {
    /// The release version.
    #[serde(default)]
    pub version: Option<String>,
    /// Release flags (`trusted-payload` when the signature verified against fwupd's keyring).
    #[serde(default)]
    pub flags: Vec<String>,
}

impl FwupdDevice {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn version_text(&self) -> &str {
        self.version.as_deref().unwrap_or("")
    }

    fn describe(&self) -> String {
        format!("{} ({})", escape(&self.name), self.device_id)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeviceList {
    #[serde(default)]
    devices: Vec<FwupdDevice>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    #[serde(default)]
    message: String,
}

/// What the handler remembers between phases (`<state>/fwupd.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    transaction: String,
    device_id: String,
    /// The device's version before the transaction.
    previous: String,
    /// The version the transaction installs.
    target: String,
    #[serde(default)]
    committed: bool,
}

/// The device setting, checked.
fn device_setting(ctx: &HandlerContext<'_>) -> Result<String> {
    let what = format!("fwupd {}", ctx.device.name);
    known_keys(&ctx.device.settings, &["device"], "setting", ctx.device.name.as_str())?;
    match ctx.device.settings.get("device") {
        Some(serde_json::Value::String(d)) if is_device_id(d) || is_guid(d) => Ok(d.to_ascii_lowercase()),
        Some(v) => Err(Error::InvalidValue {
            what: format!("{what}: setting device"),
            value: v.to_string(),
            reason: "use fwupd's device id (40 hex digits, `fwupdmgr get-devices`) or one of the device's GUIDs".into(),
        }),
        None => Err(Error::Refused(format!(
            "{what}: the setting device is missing: name the device by its fwupd device id or a GUID \
             (`fwupdmgr get-devices` lists them)"
        ))),
    }
}

fn is_device_id(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn refuse_options(component: &Component) -> Result<()> {
    match component.options.keys().next() {
        Some(k) => Err(Error::Refused(format!(
            "fwupd {}: unknown option {} (the fwupd handler has none)",
            component.name,
            escape(k)
        ))),
        None => Ok(()),
    }
}

/// Runs `fwupdmgr ARGS` (with [`QUIET`]) and returns its JSON answer.
fn fwupdmgr(ctx: &HandlerContext<'_>, args: &[&str]) -> Result<serde_json::Value> {
    let cmd = Command::new(FWUPDMGR)
        .args(args)
        .args(QUIET)
        .under_root(ctx.paths.root())
        .timeout(ctx.timeout)
        .max_output(16 << 20);
    let out = cmd.run()?;
    let what = format!("fwupd {}: {}", ctx.device.name, cmd.display());
    let json: Option<serde_json::Value> = serde_json::from_str(out.stdout.trim()).ok();
    if let Some(e) = json.as_ref().and_then(|j| serde_json::from_value::<ErrorAnswer>(j.clone()).ok()) {
        return Err(Error::Other(format!("{what}: fwupd says: {}", escape(&e.error.message))));
    }
    if !out.success() {
        return Err(Error::Other(format!("{what} failed with {}: {}", out.status, escape(&out.detail()))));
    }
    // `install` prints nothing on success.
    Ok(json.unwrap_or(serde_json::Value::Null))
}

fn devices_of(ctx: &HandlerContext<'_>, answer: serde_json::Value) -> Result<Vec<FwupdDevice>> {
    serde_json::from_value::<DeviceList>(answer)
        .map(|l| l.devices)
        .map_err(|e| Error::Other(format!("fwupd {}: cannot read fwupdmgr's device list: {e}", ctx.device.name)))
}

/// The configured device, read from the daemon now.
fn find_device(ctx: &HandlerContext<'_>) -> Result<FwupdDevice> {
    let wanted = device_setting(ctx)?;
    let devices = devices_of(ctx, fwupdmgr(ctx, &["get-devices", "--show-all"])?)?;
    let mut found: Vec<FwupdDevice> = devices
        .into_iter()
        .filter(|d| d.device_id.eq_ignore_ascii_case(&wanted) || d.guid.iter().any(|g| g.eq_ignore_ascii_case(&wanted)))
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Refused(format!(
            "fwupd {}: fwupd lists no device {wanted} (`fwupdmgr get-devices` shows the ids and GUIDs it knows)",
            ctx.device.name
        ))),
        n => Err(Error::Refused(format!(
            "fwupd {}: {n} devices have the GUID {wanted} ({}); name one by its device id",
            ctx.device.name,
            found.iter().map(FwupdDevice::describe).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn staged(ctx: &HandlerContext<'_>) -> PathBuf {
    ctx.state_dir.join("staged.cab")
}

/// `<state>/kept-<version>.cab`: the cab of a committed version, kept as a rollback source
/// (named by its version, so a cut while it is renamed into place never mislabels it). `None`
/// for a version that is not a semver version (fwupd's text is not used as a file name then).
fn kept_cab(ctx: &HandlerContext<'_>, version: &str) -> Option<PathBuf> {
    semver_of(version).map(|v| ctx.state_dir.join(format!("kept-{v}.cab")))
}

/// Keeps the committed cab of `version` and drops older kept cabs.
fn keep(ctx: &HandlerContext<'_>, version: &str) -> Result<()> {
    let Some(kept) = kept_cab(ctx, version) else {
        return remove(&staged(ctx));
    };
    std::fs::rename(staged(ctx), &kept).map_err(|e| Error::io("keep", &kept, e))?;
    let entries = std::fs::read_dir(&ctx.state_dir).map_err(|e| Error::io("list", &ctx.state_dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("kept-") && name.ends_with(".cab") && entry.path() != kept {
            remove(&entry.path())?;
        }
    }
    update_core::atomic::sync_dir(&ctx.state_dir)
}

fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::ConfigParse { path: path.to_owned(), message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

fn save<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|e| Error::Other(format!("encode {}: {e}", path.display())))?;
    update_core::atomic::write_atomic(path, &bytes, 0o644)
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

fn record_path(ctx: &HandlerContext<'_>) -> PathBuf {
    ctx.state_dir.join("fwupd.json")
}

/// This transaction's record for `component`, if `install` wrote one.
fn record_of(ctx: &HandlerContext<'_>, component: &Component) -> Result<Option<Record>> {
    Ok(load::<Record>(&record_path(ctx))?
        .filter(|r| r.transaction == ctx.transaction && r.target == component.version.to_string()))
}

/// Writes the payload to `<state>/staged.cab` through a temporary file, checking its size and
/// digest while it streams; the staged cab appears only when all of it verified.
fn stage(ctx: &HandlerContext<'_>, component: &Component, payload: &mut dyn Read) -> Result<PathBuf> {
    let target = staged(ctx);
    let part = ctx.state_dir.join("staged.cab.part");
    let result = (|| {
        let mut file = File::create(&part).map_err(|e| Error::io("create", &part, e))?;
        let mut checked = Checked::new(component, payload);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = checked
                .read(&mut buf)
                .map_err(|e| Error::verification(format!("payload of fwupd {}", component.name), e.to_string()))?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).map_err(|e| Error::io("write", &part, e))?;
        }
        checked.finish()?;
        file.sync_all().map_err(|e| Error::io("sync", &part, e))?;
        std::fs::rename(&part, &target).map_err(|e| Error::io("rename into place", &target, e))?;
        update_core::atomic::sync_dir(&ctx.state_dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result.map(|()| target)
}

/// What fwupd says about `cab` for `device`: it must apply to the device, carry `version`, and be
/// signed by a key fwupd trusts.
fn check_cab(ctx: &HandlerContext<'_>, cab: &Path, device: &FwupdDevice, version: &str) -> Result<()> {
    let name = &ctx.device.name;
    let cab_text = cab.to_string_lossy();
    let entries = devices_of(ctx, fwupdmgr(ctx, &["get-details", &cab_text])?)?;
    let Some(entry) = entries.iter().find(|d| d.device_id.eq_ignore_ascii_case(&device.device_id)) else {
        let offered: Vec<String> = entries
            .iter()
            .map(|d| {
                let why = d.update_error.as_deref().map(|e| format!(": {}", escape(e))).unwrap_or_default();
                format!("{}{why}", d.guid.join(", "))
            })
            .collect();
        return Err(Error::Refused(format!(
            "fwupd {name}: the cab does not apply to device {} (it is for {})",
            device.describe(),
            if offered.is_empty() { "no device fwupd knows".to_owned() } else { offered.join("; ") }
        )));
    };
    let Some(release) = entry.releases.iter().find(|r| r.version.is_some()) else {
        return Err(Error::Refused(format!("fwupd {name}: fwupd finds no release in the cab")));
    };
    let offered = release.version.as_deref().unwrap_or("");
    if offered != version {
        return Err(Error::Refused(format!(
            "fwupd {name}: the cab holds version {}, the component is version {version}",
            escape(offered)
        )));
    }
    if !release.flags.iter().any(|f| f == "trusted-payload") {
        return Err(Error::Refused(format!(
            "fwupd {name}: the cab's firmware is not signed by a key fwupd trusts (no `trusted-payload`: \
             an unsigned cab, a signature that does not match, or a signer outside /etc/pki/fwupd)"
        )));
    }
    Ok(())
}

/// `fwupdmgr install CAB DEVICE [extra]`.
fn fwupd_install(ctx: &HandlerContext<'_>, cab: &Path, device_id: &str, extra: &[&str]) -> Result<()> {
    let cab_text = cab.to_string_lossy();
    let mut args = vec!["install", &*cab_text, device_id];
    args.extend_from_slice(extra);
    fwupdmgr(ctx, &args).map(|_| ())
}

fn semver_of(text: &str) -> Option<Version> {
    Version::parse(text).ok()
}

fn detail_of(d: &FwupdDevice) -> String {
    let mut s =
        format!("{} via fwupd plugin {}: version {}", d.describe(), escape(&d.plugin), escape(d.version_text()));
    if d.has_flag("needs-reboot") {
        s.push_str(", update pending a reboot");
    }
    if let Some(e) = &d.update_error {
        s.push_str(&format!(", last update error: {}", escape(e)));
    }
    s
}

impl Handler for FwupdHandler {
    fn kind(&self) -> Kind {
        Kind::Fwupd
    }

    fn status(&mut self, ctx: &HandlerContext<'_>) -> Result<ComponentStatus> {
        let device = find_device(ctx)?;
        let record: Option<Record> = load(&record_path(ctx))?;
        let running = device.version_text();
        let (state, inactive) = match &record {
            Some(r) if !r.committed && r.target == running => (ComponentState::Trial, semver_of(&r.previous)),
            Some(r) if !r.committed && staged(ctx).exists() => (ComponentState::Installed, semver_of(&r.target)),
            _ => (ComponentState::Committed, None),
        };
        let state = if device.has_flag("needs-reboot") { ComponentState::Installed } else { state };
        Ok(ComponentStatus { active: semver_of(running), inactive, state, detail: Some(detail_of(&device)) })
    }

    fn check(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        refuse_options(component)?;
        let device = find_device(ctx)?;
        let name = &ctx.device.name;
        if !device.has_flag("updatable") {
            return Err(Error::Refused(format!(
                "fwupd {name}: fwupd cannot update device {} now (flags: {})",
                device.describe(),
                device.flags.join(", ")
            )));
        }
        if device.has_flag("needs-reboot") {
            return Err(Error::Refused(format!(
                "fwupd {name}: device {} has an update pending a reboot already; reboot first",
                device.describe()
            )));
        }
        if component.size > MAX_CAB {
            return Err(Error::Refused(format!(
                "fwupd {name}: the cab is {} bytes, more than the {MAX_CAB} this handler accepts",
                component.size
            )));
        }
        Ok(())
    }

    fn install(&mut self, ctx: &HandlerContext<'_>, component: &Component, payload: &mut dyn Read) -> Result<()> {
        refuse_options(component)?;
        let device = find_device(ctx)?;
        let target = component.version.to_string();
        // The cab of a committed earlier transaction becomes the rollback source of this one.
        if let Some(old) = load::<Record>(&record_path(ctx))?
            && old.transaction != ctx.transaction
        {
            if old.committed && staged(ctx).exists() {
                keep(ctx, &old.target)?;
            }
            remove(&staged(ctx))?;
            remove(&record_path(ctx))?;
        }
        let cab = stage(ctx, component, payload)?;
        if let Err(e) = check_cab(ctx, &cab, &device, &target) {
            remove(&cab)?;
            return Err(e);
        }
        match record_of(ctx, component)? {
            Some(r) if r.device_id == device.device_id => {}
            _ => save(
                &record_path(ctx),
                &Record {
                    transaction: ctx.transaction.to_owned(),
                    device_id: device.device_id.clone(),
                    previous: device.version_text().to_owned(),
                    target,
                    committed: false,
                },
            )?,
        }
        ctx.events.info(&format!(
            "fwupd {}: staged version {} for {} (running {})",
            ctx.device.name,
            component.version,
            device.describe(),
            escape(device.version_text())
        ));
        Ok(())
    }

    fn activate(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<Activation> {
        let name = &ctx.device.name;
        let record = record_of(ctx, component)?.ok_or_else(|| {
            Error::Refused(format!("fwupd {name}: version {} was not installed (nothing staged)", component.version))
        })?;
        let device = find_device(ctx)?;
        if device.version_text() == record.target {
            return Ok(Activation::Now);
        }
        if device.has_flag("needs-reboot") {
            return Ok(Activation::AtReboot);
        }
        let cab = staged(ctx);
        if !cab.exists() {
            return Err(Error::Refused(format!(
                "fwupd {name}: the staged cab of version {} is gone ({})",
                component.version,
                cab.display()
            )));
        }
        ctx.events.info(&format!("fwupd {name}: fwupdmgr install {} on {}", component.version, device.describe()));
        fwupd_install(ctx, &cab, &record.device_id, &[])?;
        let after = find_device(ctx)?;
        if after.version_text() == record.target {
            Ok(Activation::Now)
        } else if after.has_flag("needs-reboot") {
            ctx.events.info(&format!(
                "fwupd {name}: version {} is scheduled by fwupd for the next boot ({})",
                component.version,
                after.describe()
            ));
            Ok(Activation::AtReboot)
        } else {
            Err(Error::Other(format!(
                "fwupd {name}: fwupdmgr reported success, but the device reads back {}",
                detail_of(&after)
            )))
        }
    }

    fn health(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let device = find_device(ctx)?;
        if device.version_text() == component.version.to_string() {
            return Ok(());
        }
        Err(Error::Other(format!(
            "fwupd {}: health check: the device runs {}, not version {}{}",
            ctx.device.name,
            escape(device.version_text()),
            component.version,
            device.update_error.as_deref().map(|e| format!(" (fwupd: {})", escape(e))).unwrap_or_default()
        )))
    }

    fn commit(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let name = &ctx.device.name;
        let mut record = record_of(ctx, component)?.ok_or_else(|| {
            Error::Refused(format!("fwupd {name}: version {} was not installed in this transaction", component.version))
        })?;
        if record.committed {
            return Ok(());
        }
        let device = find_device(ctx)?;
        if device.version_text() != record.target {
            return Err(Error::Other(format!(
                "fwupd {name}: cannot commit version {}: the device runs {}",
                component.version,
                escape(device.version_text())
            )));
        }
        record.committed = true;
        save(&record_path(ctx), &record)
    }

    fn rollback(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let name = &ctx.device.name;
        // Only this transaction's record says what to undo.
        let Some(record) = record_of(ctx, component)? else {
            return Ok(());
        };
        let device = find_device(ctx)?;
        let forget = || -> Result<()> {
            remove(&staged(ctx))?;
            remove(&record_path(ctx))
        };
        if device.version_text() == record.previous && !device.has_flag("needs-reboot") {
            ctx.events.info(&format!("fwupd {name}: the device runs the previous version {}", record.previous));
            return forget();
        }
        if device.has_flag("needs-reboot") {
            return Err(Error::Other(format!(
                "fwupd {name}: cannot roll back: fwupd has scheduled version {} on {} for the next boot, and \
                 fwupdmgr cannot cancel a scheduled update; it installs at the next reboot",
                record.target,
                device.describe()
            )));
        }
        match kept_cab(ctx, &record.previous).filter(|cab| cab.exists()) {
            Some(cab) => {
                ctx.events.info(&format!(
                    "fwupd {name}: rolling back: fwupdmgr install --allow-older {} on {} (it runs {})",
                    record.previous,
                    device.describe(),
                    escape(device.version_text())
                ));
                fwupd_install(ctx, &cab, &record.device_id, &["--allow-older", "--allow-reinstall"]).map_err(|e| {
                    Error::Other(format!(
                        "fwupd {name}: cannot roll back to {}: the device refused the previous version's cab: {e}",
                        record.previous
                    ))
                })?;
                let after = find_device(ctx)?;
                if after.version_text() != record.previous {
                    return Err(Error::Other(format!(
                        "fwupd {name}: rolled back with the cab of {}, but the device reads back {}",
                        record.previous,
                        detail_of(&after)
                    )));
                }
                ctx.events.info(&format!("fwupd {name}: rolled back to version {}", record.previous));
                forget()
            }
            None => Err(Error::Other(format!(
                "fwupd {name}: cannot roll back {} to version {}: fwupd cannot undo a firmware update by itself, \
                 and no cab of version {} is kept (it was not installed through libupdate); the device runs {}",
                device.describe(),
                escape(&record.previous),
                escape(&record.previous),
                escape(device.version_text())
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_checked() {
        assert!(is_device_id("08d460be0f1f9f128413f816022a6439e0078018"));
        assert!(!is_device_id("08d460be0f1f9f128413f816022a6439e007801"));
        assert!(is_guid("b585990a-003e-5270-89d5-3705a17f9a43"));
        for bad in ["b585990a-003e-5270-89d5-3705a17f9a4", "b585990a003e527089d53705a17f9a43", "../x", "", "-"] {
            assert!(!is_guid(bad) && !is_device_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn fwupdmgr_json_is_read_tolerantly() {
        let list: DeviceList = serde_json::from_str(
            r#"{"Devices":[{"Name":"Integrated Webcam","DeviceId":"08d460be0f1f9f128413f816022a6439e0078018",
                "Guid":["b585990a-003e-5270-89d5-3705a17f9a43"],"Plugin":"test","Flags":["updatable"],
                "Version":"1.2.2","VersionFormat":"triplet","Created":1796456748,
                "Releases":[{"Version":"1.2.4","Flags":["trusted-payload"]},{"Checksum":["00"]}]}]}"#,
        )
        .unwrap();
        let d = &list.devices[0];
        assert!(d.has_flag("updatable"));
        assert_eq!(d.version_text(), "1.2.2");
        assert_eq!(d.releases[0].version.as_deref(), Some("1.2.4"));
        assert!(
            serde_json::from_str::<ErrorAnswer>(r#"{"Error":{"Domain":"FwupdError","Code":7,"Message":"no"}}"#).is_ok()
        );
    }
}
