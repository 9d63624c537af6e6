//! The native driver: signed bundles into the inactive A/B slot, boot counting, rollback.
//!
//! Enabled by a `[native]` table in the config (docs/reference/config.md). The driver:
//! - tells the booted slot from the kernel command line (`update.slot=A|B` in `/proc/cmdline`,
//!   put there by the shipped GRUB fragment or U-Boot script);
//! - keeps the boot state in the bootloader's environment through `update-boot` (two copies,
//!   power-cut safe) and what each slot holds in `/var/lib/update/slots.json`;
//! - installs by [`install::plan`] (everything checked, nothing written) then
//!   [`install::execute`] (mark target unbootable → stream verified chunks → flush → read back
//!   and hash → record → one atomic switch).

pub mod delta;
pub mod direct;
pub mod install;
pub mod mounts;
pub mod records;
pub mod transaction;

use std::path::PathBuf;

use update_boot::{BootEnv, BootState, Slot};
use update_core::audit::{AuditAction, Outcome};
use update_core::config::NativeConfig;
use update_core::driver::{
    BundleInfo, Capabilities, Capability, Context, Driver, DriverFactory, InstallOutcome, InstallRequest, Probe,
    SlotChange, SlotState as ApiSlotState, SlotStatus, Status,
};
use update_core::{Error, Paths, Result};

use update_core::slot_records::SlotRecords;

/// What the native driver can do.
#[must_use]
pub fn capabilities() -> Capabilities {
    Capabilities::of(&[
        Capability::AbImage,
        Capability::Streaming,
        Capability::BootCounting,
        Capability::MarkGood,
        Capability::Rollback,
        Capability::MarkBad,
        Capability::Signatures,
        Capability::Inspect,
    ])
}

/// The factory registered with libupdate.
#[derive(Debug, Clone, Copy)]
pub struct NativeFactory {
    handlers: transaction::HandlerTable,
}

impl NativeFactory {
    /// A factory whose drivers use `handlers` for components instead of the built-in table
    /// (tests, and products with their own handlers).
    #[must_use]
    pub const fn with_handlers(handlers: transaction::HandlerTable) -> Self {
        Self { handlers }
    }
}

impl Default for NativeFactory {
    fn default() -> Self {
        FACTORY
    }
}

/// The static instance for driver tables, with the built-in component handlers.
pub static FACTORY: NativeFactory = NativeFactory { handlers: update_components::handler_for };

impl DriverFactory for NativeFactory {
    fn name(&self) -> &'static str {
        "native"
    }
    fn install_hint(&self) -> &'static str {
        "the native driver ([native] in /etc/update/update.toml)"
    }
    fn update_extensions(&self) -> &'static [&'static str] {
        &["bundle"]
    }
    fn component_kinds(&self) -> &'static [&'static str] {
        &["files", "app", "firmware", "fwupd", "data", "external"]
    }
    fn capabilities(&self) -> Capabilities {
        capabilities()
    }
    fn probe(&self, ctx: &Context<'_>) -> Probe {
        let Some(native) = &ctx.config.native else {
            return Probe::Declined("no [native] table in the config".into());
        };
        let driver = NativeDriver::new(native.clone(), ctx.paths.clone()).with_handlers(self.handlers);
        for (group, pair) in &native.slots {
            for (name, p) in [("a", &pair.a), ("b", &pair.b)] {
                let full = ctx.paths.resolve(p);
                if !full.exists() {
                    return Probe::Broken(Error::Other(format!(
                        "slot {group}.{name}: {} does not exist",
                        full.display()
                    )));
                }
            }
        }
        if let Err(e) = driver.open_env() {
            return Probe::Broken(e);
        }
        Probe::Available(Box::new(driver))
    }
}

/// The native driver for one device.
#[derive(Debug, Clone)]
pub struct NativeDriver {
    cfg: NativeConfig,
    paths: Paths,
    handlers: transaction::HandlerTable,
}

impl NativeDriver {
    /// A driver for the device described by `cfg` under `paths`.
    #[must_use]
    pub fn new(cfg: NativeConfig, paths: Paths) -> Self {
        Self { cfg, paths, handlers: update_components::handler_for }
    }

    /// The same driver with another table of component handlers (tests).
    #[must_use]
    pub fn with_handlers(mut self, handlers: transaction::HandlerTable) -> Self {
        self.handlers = handlers;
        self
    }

    /// Finishes or undoes an interrupted component transaction (docs/components.md).
    /// When the recovery rolls back a transaction whose OS slot is the one running on trial, the
    /// boot goes back to the old slot too (as after a failed `mark-good`): the components of
    /// the old set must not run beside the new OS.
    fn recover(&self, ctx: &Context<'_>) -> Result<transaction::Recovery> {
        let mut env = self.open_env()?;
        let state = env.load()?;
        let booted = self.booted_slot()?;
        let os_target = transaction::Journal::load(&self.paths)?.and_then(|j| j.os_target);
        let recovery = transaction::recover(ctx, self.handlers, Some((&state, booted)))?;
        if recovery == transaction::Recovery::RolledBack && os_target == Some(booted) && !state.slot(booted).ok {
            let back = state.rollback(booted)?;
            env.store(&back)?;
            ctx.events.warn(&format!(
                "slot {booted} is not committed: its components were rolled back, so slot {} boots next: reboot to return to it",
                booted.other()
            ));
            ctx.events.audit(
                ctx.events
                    .record(AuditAction::Switch, Outcome::Ok)
                    .driver("native")
                    .subject(booted.other().as_str())
                    .message(format!("boot environment: {state} -> {back} (components rolled back)")),
            );
        }
        Ok(recovery)
    }

    /// The device's release version: the booted slot's, or a newer one committed by an update
    /// without OS images.
    fn release_version(&self, records: &SlotRecords, booted: Option<Slot>) -> Option<update_core::Version> {
        let os = booted.and_then(|b| records.get(b.as_str())).and_then(|r| r.version().ok());
        match (os, transaction::Release::load(&self.paths)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The device description.
    #[must_use]
    pub fn config(&self) -> &NativeConfig {
        &self.cfg
    }

    /// The booted slot, from `update.slot=` on the kernel command line.
    ///
    /// # Errors
    /// [`Error::Refused`] when it cannot be told.
    pub fn booted_slot(&self) -> Result<Slot> {
        let p = self.paths.kernel_cmdline();
        let cmdline = std::fs::read_to_string(&p).map_err(|e| Error::io("read", &p, e))?;
        cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix("update.slot="))
            .ok_or_else(|| {
                Error::Refused(format!(
                    "cannot tell which slot is running: no update.slot= in {} (is the update GRUB fragment or U-Boot script installed?)",
                    p.display()
                ))
            })?
            .parse()
    }

    /// Opens the boot environment.
    ///
    /// # Errors
    /// I/O errors naming the environment copy.
    pub fn open_env(&self) -> Result<Box<dyn BootEnv>> {
        update_boot::open_configured(&self.cfg.boot, &self.paths)
    }

    /// The device path of `slot` in slot group `group`, under the root.
    fn slot_path(&self, group: &str, slot: Slot) -> Option<PathBuf> {
        self.cfg.slots.iter().find(|(g, _)| g.as_str() == group).map(|(_, pair)| {
            self.paths.resolve(match slot {
                Slot::A => &pair.a,
                Slot::B => &pair.b,
            })
        })
    }

    fn slot_devices(&self, slot: Slot) -> Vec<String> {
        self.cfg
            .slots
            .keys()
            .filter_map(|g| self.slot_path(g.as_str(), slot).map(|p| format!("{g}={}", p.display())))
            .collect()
    }

    /// Records a fallback in the audit log once (remembered in `/var/lib/update/fallback.json`).
    fn note_fallback(&self, ctx: &Context<'_>, fallback: &update_boot::Fallback, records: &SlotRecords) {
        let failed_version = records.get(fallback.failed.as_str()).map(|r| r.version.clone());
        let key = format!("{}:{}", fallback.failed, failed_version.clone().unwrap_or_default());
        let marker = self.paths.state_dir().join("fallback.json");
        if std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == key) {
            return;
        }
        let msg = format!(
            "automatic fallback: {fallback}{} ran out of boot attempts",
            failed_version.as_ref().map(|v| format!(" ({v})")).unwrap_or_default()
        );
        ctx.events.warn(&msg);
        ctx.events.audit(
            ctx.events
                .record(AuditAction::Fallback, Outcome::Ok)
                .driver("native")
                .subject(fallback.booted.as_str())
                .change(
                    failed_version.map(Into::into),
                    records.get(fallback.booted.as_str()).map(|r| r.version.clone().into()),
                )
                .message(msg),
        );
        let _ = update_core::atomic::write_atomic(&marker, key.as_bytes(), 0o644);
    }
}

impl Driver for NativeDriver {
    fn name(&self) -> &'static str {
        "native"
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn status(&mut self, ctx: &Context<'_>) -> Result<Status> {
        if let Err(e) = self.recover(ctx) {
            ctx.events.warn(&format!("cannot finish the interrupted component transaction: {e}"));
        }
        let state = self.open_env()?.load()?;
        let booted = self.booted_slot().ok();
        let records = records::load(&self.paths)?;
        let fallback = booted.and_then(|b| update_boot::fallback_happened(&state, b));
        if let Some(f) = &fallback {
            self.note_fallback(ctx, f, &records);
        }
        let slots = Slot::ALL
            .iter()
            .map(|&slot| {
                let s = state.slot(slot);
                let record = records.get(slot.as_str());
                // A slot running on its last try has 0 tries left but is still on trial.
                let running_last_try = booted == Some(slot) && state.primary() == slot;
                let api_state = if s.ok {
                    ApiSlotState::Good
                } else if s.tries > 0 || running_last_try {
                    ApiSlotState::Trying
                } else if record.is_some() {
                    ApiSlotState::Bad
                } else {
                    ApiSlotState::Unknown
                };
                SlotStatus {
                    name: slot.as_str().into(),
                    state: api_state,
                    version: record.and_then(|r| r.version().ok()),
                    booted: booted == Some(slot),
                    primary: state.primary() == slot,
                    tries_left: (!s.ok && (s.tries > 0 || running_last_try)).then_some(u32::from(s.tries)),
                    devices: self.slot_devices(slot),
                }
            })
            .collect();
        Ok(Status {
            driver: "native".into(),
            compatible: Some(self.cfg.compatible.clone()),
            version: self.release_version(&records, booted),
            booted: booted.map(|b| b.as_str().into()),
            primary: Some(state.primary().as_str().into()),
            slots,
            fallback: fallback.map(|f| f.to_string()),
            components: transaction::statuses(ctx, self.handlers)
                .into_iter()
                .map(|(d, r)| update_core::driver::ComponentReport {
                    name: d.name.to_string(),
                    kind: d.kind.to_string(),
                    error: r.as_ref().err().map(ToString::to_string),
                    status: r.ok(),
                })
                .collect(),
        })
    }

    fn inspect(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<BundleInfo> {
        install::inspect(ctx, request)
    }

    fn install(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<InstallOutcome> {
        install::install(self, ctx, request)
    }

    fn mark_good(&mut self, ctx: &Context<'_>) -> Result<SlotChange> {
        let booted = self.booted_slot()?;
        let mut env = self.open_env()?;
        let state = env.load()?;
        if !state.slot(booted).ok && state.primary() != booted {
            // Rolled back during this boot (a failed mark-good, `update rollback`, a recovered
            // transaction): its components went back, so committing it would mix the sets.
            return Err(Error::Refused(format!(
                "slot {booted} was rolled back during this boot (with its components); slot {} boots next: reboot to return to it",
                booted.other()
            )));
        }
        // A transaction with components waits for this: their health checks, then their commits.
        if !state.slot(booted).ok
            && let transaction::OsCommit::RolledBack(e) = transaction::commit_with_os(ctx, self.handlers)?
        {
            // Components rolled back: the slot is not committed; switch back to the old one,
            // then close the transaction (a cut before that repeats both at the next command).
            let back = state.rollback(booted)?;
            env.store(&back)?;
            transaction::close(&self.paths)?;
            return Err(Error::Refused(format!(
                "{e}; slot {booted} is not committed and slot {} boots next: reboot to return to it",
                booted.other()
            )));
        }
        let next = state.mark_good(booted);
        if next != state {
            env.store(&next)?;
        }
        let version = records::load(&self.paths)?.label(booted.as_str());
        let _ = ctx;
        Ok(SlotChange {
            slot: booted.as_str().into(),
            message: format!("slot {booted}{version} marked good; it boots from now on"),
        })
    }

    fn rollback(&mut self, ctx: &Context<'_>) -> Result<SlotChange> {
        let booted = self.booted_slot()?;
        let mut env = self.open_env()?;
        let state = env.load()?;
        let next = state.rollback(booted)?;
        env.store(&next)?;
        // The components of a transaction waiting for the slot left behind go back too.
        transaction::abandon(ctx, self.handlers)?;
        let other = booted.other();
        let version = records::load(&self.paths)?.label(other.as_str());
        ctx.events.audit(
            ctx.events
                .record(AuditAction::Switch, Outcome::Ok)
                .driver("native")
                .subject(other.as_str())
                .message(format!("boot environment: slot {other} is primary ({state} -> {next})")),
        );
        Ok(SlotChange {
            slot: other.as_str().into(),
            message: format!("slot {other}{version} boots next; reboot to run it"),
        })
    }

    fn mark_bad(&mut self, ctx: &Context<'_>) -> Result<SlotChange> {
        let booted = self.booted_slot()?;
        let other = booted.other();
        let mut env = self.open_env()?;
        let state = env.load()?;
        if !state.is_committed(other) {
            return Err(Error::Refused(format!(
                "slot {other} holds no committed version: marking the running slot {booted} bad would leave nothing to boot"
            )));
        }
        let next = state.mark_bad(booted)?;
        env.store(&next)?;
        // The components of a transaction waiting for this slot go back with it.
        transaction::abandon(ctx, self.handlers)?;
        let records = records::load(&self.paths)?;
        let version = |s: Slot| records.label(s.as_str());
        ctx.events.audit(
            ctx.events
                .record(AuditAction::Switch, Outcome::Ok)
                .driver("native")
                .subject(other.as_str())
                .message(format!("boot environment: slot {booted} marked bad ({state} -> {next})")),
        );
        Ok(SlotChange {
            slot: booted.as_str().into(),
            message: format!(
                "slot {booted}{} marked bad; slot {other}{} boots next: reboot to run it",
                version(booted),
                version(other)
            ),
        })
    }

    fn reboot(&mut self, ctx: &Context<'_>) -> Result<()> {
        let cmd = self.cfg.reboot_command.clone().unwrap_or_else(|| vec!["reboot".into()]);
        update_core::process::reboot(&cmd, ctx.paths.root(), ctx.events)
    }
}

/// Writes the factory state of a freshly provisioned device: slot A holds `version` and is
/// committed and primary, slot B is empty. Used by provisioning tools and simulated devices.
///
/// # Errors
/// I/O errors.
pub fn provision(paths: &Paths, cfg: &NativeConfig, version: &update_core::Version) -> Result<()> {
    update_boot::create_configured(&cfg.boot, paths, &BootState::initial())?;
    let factory =
        SlotRecords { slots: [(Slot::A.as_str().into(), records::installed(version, []))].into(), pending: None };
    records::store(paths, &factory)
}
