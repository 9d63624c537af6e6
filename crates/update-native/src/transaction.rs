//! One transaction over every component of a bundle (docs/components.md).
//!
//! The phases, journalled in `/var/lib/update/transaction.json` (atomic writes) before each
//! begins, so that after a power cut [`recover`] knows what to finish or undo:
//!
//! 1. **plan** (nothing written): each component has a `[components.NAME]` entry of the same
//!    kind and a handler; the versions the transaction would leave satisfy every `requires`;
//!    each handler's `check` passes. A component whose version is already active is left out.
//! 2. **installing**: each handler writes its verified payload into its inactive place.
//! 3. **activating**: each handler switches; the version each handler then reads back must be
//!    the one installed (a handler that says "done" without doing it is caught here).
//! 4. With OS images in the bundle, **awaiting-boot** is journalled *before* the boot switch;
//!    health checks and commits of every component then run with `update mark-good` on the new
//!    slot. Without OS images: **health** (each handler's check), then **committing**.
//! 5. **committing**: each handler commits; the journal is removed.
//!
//! Any failure before committing rolls every component back (**rolling-back**, each handler's
//! `rollback`, from whatever phase it reached) and, with OS images, leaves the old slot
//! primary. [`recover`] repeats an interrupted commit or rollback; an interrupted install or
//! activation is rolled back; an awaiting-boot journal, or one cut in the health checks that
//! `mark-good` runs, follows the boot state (the new slot committed → commit; it failed or was
//! never switched to → roll back; still on trial → wait, and `mark-good` runs the checks again).
//! A repeated commit that cannot succeed because a component no longer runs its new version (an
//! MCU whose bootloader reverted an unconfirmed image after losing power) rolls the whole set
//! back. When a recovery rolls back a transaction whose OS slot is the one running on trial, the
//! driver switches the boot back to the old slot as well.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use update_boot::{BootState, Slot};
use update_core::audit::{AuditAction, Outcome};
use update_core::component::{
    Activation, Component, ComponentName, ComponentStatus, DeviceComponent, Handler, HandlerContext, Kind,
    check_requirements,
};
use update_core::driver::{Context, Events};
use update_core::{Error, Paths, Result, Version};

/// Looks up the handler of a kind (the built-in table, or a test's).
pub type HandlerTable = fn(&Kind, &Paths) -> Option<Box<dyn Handler>>;

/// Hands a component's verified payload (by name) to the install step given.
pub type PayloadFeed<'a> =
    dyn FnMut(&ComponentName, &mut dyn FnMut(&mut dyn std::io::Read) -> Result<()>) -> Result<()> + 'a;

/// How long one handler phase may take.
pub const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Handlers are writing inactive places.
    Installing,
    /// Handlers are switching.
    Activating,
    /// The boot switch is made (or about to be): the new OS slot and the activated components
    /// wait for the reboot and `mark-good`.
    AwaitingBoot,
    /// Components' own health checks run.
    Health,
    /// Handlers are committing.
    Committing,
    /// Handlers are rolling back.
    RollingBack,
}

/// The journal: `/var/lib/update/transaction.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Journal {
    /// The transaction id (audit records carry it).
    pub id: String,
    /// The bundle's release version.
    pub version: Version,
    /// The phase entered last.
    pub phase: Phase,
    /// The OS slot being installed, when the bundle has images.
    #[serde(with = "opt_slot")]
    pub os_target: Option<Slot>,
    /// The components in the transaction, with the versions they replace.
    pub components: Vec<Entry>,
}

mod opt_slot {
    use serde::{Deserialize, Deserializer, Serializer};
    use update_boot::Slot;

    #[allow(clippy::ref_option, reason = "serde's `with` passes a reference to the field")]
    pub fn serialize<S: Serializer>(v: &Option<Slot>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(slot) => s.serialize_some(slot.as_str()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Slot>, D::Error> {
        Option::<String>::deserialize(d)?.map(|t| t.parse().map_err(serde::de::Error::custom)).transpose()
    }
}

/// One component of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Entry {
    /// What the bundle says.
    pub component: Component,
    /// The version active before the transaction.
    pub previous: Option<Version>,
}

impl Journal {
    fn path(paths: &Paths) -> std::path::PathBuf {
        paths.state_dir().join("transaction.json")
    }

    /// The unfinished transaction, if any.
    ///
    /// # Errors
    /// I/O or parse errors naming the file.
    pub fn load(paths: &Paths) -> Result<Option<Self>> {
        let p = Self::path(paths);
        match std::fs::read(&p) {
            Ok(b) => {
                serde_json::from_slice(&b).map(Some).map_err(|e| Error::ConfigParse { path: p, message: e.to_string() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", p, e)),
        }
    }

    fn enter(&mut self, paths: &Paths, phase: Phase) -> Result<()> {
        self.phase = phase;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        update_core::atomic::write_atomic(&Self::path(paths), &bytes, 0o644)
    }

    fn finish(paths: &Paths) -> Result<()> {
        let p = Self::path(paths);
        match std::fs::remove_file(&p) {
            Ok(()) => update_core::atomic::sync_dir(&paths.state_dir()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", p, e)),
        }
    }
}

/// The release version of the last committed transaction without OS images
/// (`/var/lib/update/release.json`): the device's version is the newer of it and the booted
/// slot's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The release version.
    pub version: Version,
}

impl Release {
    fn path(paths: &Paths) -> std::path::PathBuf {
        paths.state_dir().join("release.json")
    }

    /// The recorded release, if any (an unreadable file counts as none).
    #[must_use]
    pub fn load(paths: &Paths) -> Option<Version> {
        let b = std::fs::read(Self::path(paths)).ok()?;
        serde_json::from_slice::<Release>(&b).ok().map(|r| r.version)
    }

    fn store(paths: &Paths, version: &Version) -> Result<()> {
        let bytes =
            serde_json::to_vec(&Release { version: version.clone() }).map_err(|e| Error::Other(e.to_string()))?;
        update_core::atomic::write_atomic(&Self::path(paths), &bytes, 0o644)
    }

    fn clear(paths: &Paths) -> Result<()> {
        match std::fs::remove_file(Self::path(paths)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", Self::path(paths), e)),
        }
    }
}

/// A component with its device entry and handler, ready to run.
struct Planned {
    entry: Entry,
    device: DeviceComponent,
    handler: Box<dyn Handler>,
}

/// The components of a bundle, planned.
pub struct Plan {
    id: String,
    items: Vec<Planned>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.items.iter().map(|p| p.entry.component.name.as_str()).collect();
        f.debug_struct("Plan").field("id", &self.id).field("components", &names).finish()
    }
}

impl Plan {
    /// Whether no component needs installing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The transaction id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `name version` of each component, for messages.
    #[must_use]
    pub fn summary(&self) -> String {
        self.items
            .iter()
            .map(|p| format!("{} {}", p.entry.component.name, p.entry.component.version))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The runner's view of one handler call.
struct Step<'a> {
    paths: &'a Paths,
    events: &'a dyn Events,
    id: &'a str,
}

impl Step<'_> {
    /// The handler context; the state directory is created unless only reading (`status`).
    fn ctx<'b>(&'b self, device: &'b DeviceComponent) -> Result<HandlerContext<'b>> {
        let hctx = self.read_ctx(device);
        update_core::atomic::ensure_dir(&hctx.state_dir)?;
        Ok(hctx)
    }

    fn read_ctx<'b>(&'b self, device: &'b DeviceComponent) -> HandlerContext<'b> {
        let state_dir = self.paths.state_dir().join("components").join(device.name.as_str());
        HandlerContext {
            paths: self.paths,
            events: self.events,
            transaction: self.id,
            device,
            state_dir,
            timeout: PHASE_TIMEOUT,
        }
    }

    fn audit(
        &self,
        name: &ComponentName,
        outcome: Outcome,
        message: String,
        change: Option<(Option<&Version>, &Version)>,
    ) {
        let mut r = self
            .events
            .record(AuditAction::Component, outcome)
            .driver("native")
            .subject(name.as_str())
            .transaction(self.id)
            .message(message);
        if let Some((old, new)) = change {
            r = r.change(old.map(|v| v.to_string().into()), Some(new.to_string().into()));
        }
        self.events.audit(r);
    }
}

fn new_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("tx-{nanos:x}-{:x}", std::process::id())
}

/// Plans the components of a verified manifest (phase 1 of the module docs). `release` is the
/// bundle's version.
///
/// # Errors
/// [`Error::Refused`] for a component this device has no entry for, a kind mismatch, a
/// version older than the active one, an unmet requirement or a failed `check`;
/// [`Error::NotImplemented`] for a kind with no handler.
pub fn plan(ctx: &Context<'_>, handlers: HandlerTable, components: &[Component]) -> Result<Plan> {
    let id = new_id();
    let step = Step { paths: ctx.paths, events: ctx.events, id: &id };
    let mut items = Vec::new();
    // What every component on the device runs now; the bundle's versions overlay it.
    let mut leaves: BTreeMap<ComponentName, Version> = BTreeMap::new();
    for name in ctx.config.components.keys() {
        let Some(device) = ctx.config.device_component(name) else { continue };
        if let Some(mut h) = handlers(&device.kind, ctx.paths)
            && let Ok(ComponentStatus { active: Some(v), .. }) = h.status(&step.read_ctx(&device))
        {
            leaves.insert(name.clone(), v);
        }
    }
    for c in components {
        let device = ctx.config.device_component(&c.name).ok_or_else(|| {
            Error::Refused(format!(
                "the update has component '{}' ({}), which this device does not have: add [components.{}] to update.toml",
                c.name, c.kind, c.name
            ))
        })?;
        if device.kind != c.kind {
            return Err(Error::Refused(format!(
                "component '{}' is {} in the update and {} on this device",
                c.name, c.kind, device.kind
            )));
        }
        let mut handler = handlers(&c.kind, ctx.paths).ok_or_else(|| Error::NotImplemented {
            message: format!(
                "no handler for component kind '{}' (component '{}'). Consider installing one as /usr/lib/update/handlers/{}",
                c.kind, c.name, c.kind
            ),
        })?;
        let status = handler.status(&step.read_ctx(&device))?;
        match &status.active {
            Some(v) if *v == c.version => {
                ctx.events.info(&format!("component {} {v} is already active: left out of the transaction", c.name));
                continue;
            }
            Some(v) if *v > c.version => {
                return Err(Error::Refused(format!(
                    "component '{}' {} is older than the active {v} (anti-rollback)",
                    c.name, c.version
                )));
            }
            _ => {}
        }
        leaves.insert(c.name.clone(), c.version.clone());
        items.push(Planned { entry: Entry { component: c.clone(), previous: status.active }, device, handler });
    }
    check_requirements(components, &leaves)?;
    for p in &mut items {
        let hctx = step.ctx(&p.device)?;
        if let Err(e) = p.handler.check(&hctx, &p.entry.component) {
            step.audit(&p.entry.component.name, Outcome::Refused, format!("check: {e}"), None);
            return Err(e);
        }
    }
    Ok(Plan { id, items })
}

/// Runs phases 2–3 (install and activate) and journals the result. `payload(i)` gives a reader
/// of component `i` of the plan (its index in the manifest is looked up by name).
/// With `os_target` set the journal ends in `AwaitingBoot` (written before the caller's boot
/// switch); without, the components' health checks and commits run here (phases 4–5).
///
/// # Errors
/// The first failure, after every component was rolled back.
pub fn run(
    ctx: &Context<'_>,
    plan: &mut Plan,
    version: &Version,
    os_target: Option<Slot>,
    payload: &mut PayloadFeed<'_>,
) -> Result<()> {
    let mut journal = Journal {
        id: plan.id.clone(),
        version: version.clone(),
        phase: Phase::Installing,
        os_target,
        components: plan.items.iter().map(|p| p.entry.clone()).collect(),
    };
    let id = plan.id.clone();
    let step = Step { paths: ctx.paths, events: ctx.events, id: &id };
    journal.enter(ctx.paths, Phase::Installing)?;
    let forward = (|| -> Result<()> {
        for p in &mut plan.items {
            let hctx = step.ctx(&p.device)?;
            let c = &p.entry.component;
            let handler = &mut p.handler;
            payload(&c.name, &mut |r| handler.install(&hctx, c, r)).map_err(|e| step_failed(&step, c, "install", e))?;
            step.audit(&c.name, Outcome::Ok, format!("installed {} (inactive)", c.version), None);
        }
        journal.enter(ctx.paths, Phase::Activating)?;
        for p in &mut plan.items {
            let hctx = step.ctx(&p.device)?;
            let c = &p.entry.component;
            let when = p.handler.activate(&hctx, c).map_err(|e| step_failed(&step, c, "activate", e))?;
            if when == Activation::Now {
                let back = p.handler.status(&hctx).map_err(|e| step_failed(&step, c, "activate", e))?;
                if back.active.as_ref() != Some(&c.version) {
                    let e = Error::Other(format!(
                        "the {} handler reported success, but the active version reads back as {}",
                        c.kind,
                        back.active.map_or_else(|| "none".to_owned(), |v| v.to_string())
                    ));
                    return Err(step_failed(&step, c, "activate", e));
                }
            }
            step.audit(
                &c.name,
                Outcome::Ok,
                format!("activated ({})", if when == Activation::Now { "running now" } else { "at reboot" }),
                Some((p.entry.previous.as_ref(), &c.version)),
            );
        }
        if os_target.is_some() {
            journal.enter(ctx.paths, Phase::AwaitingBoot)?;
            return Ok(());
        }
        journal.enter(ctx.paths, Phase::Health)?;
        health_all(&step, plan)?;
        journal.enter(ctx.paths, Phase::Committing)?;
        commit_all(&step, plan)
    })();
    match forward {
        Ok(()) => {
            if os_target.is_none() {
                Release::store(ctx.paths, version)?;
                Journal::finish(ctx.paths)?;
            }
            Ok(())
        }
        Err(e) => {
            journal.enter(ctx.paths, Phase::RollingBack)?;
            rollback_all(&step, &mut plan.items);
            Journal::finish(ctx.paths)?;
            Err(e)
        }
    }
}

fn step_failed(step: &Step<'_>, c: &Component, phase: &str, e: Error) -> Error {
    // A handler's refusal is its own sentence here: the "update refused: " of its display would
    // stand in the middle of ours.
    let why = match &e {
        Error::Refused(m) => m.clone(),
        other => other.to_string(),
    };
    step.audit(&c.name, Outcome::Failed, format!("{phase}: {why}"), None);
    Error::Other(format!(
        "component '{}' failed to {phase}: {why}; every component of the update is rolled back",
        c.name
    ))
}

fn health_all(step: &Step<'_>, plan: &mut Plan) -> Result<()> {
    for p in &mut plan.items {
        let hctx = step.ctx(&p.device)?;
        let c = &p.entry.component;
        p.handler.health(&hctx, c).map_err(|e| step_failed(step, c, "pass its health check", e))?;
        step.audit(&c.name, Outcome::Ok, "health check passed".into(), None);
    }
    Ok(())
}

fn commit_all(step: &Step<'_>, plan: &mut Plan) -> Result<()> {
    for p in &mut plan.items {
        let hctx = step.ctx(&p.device)?;
        let c = &p.entry.component;
        p.handler.commit(&hctx, c).map_err(|e| step_failed(step, c, "commit", e))?;
        step.audit(
            &c.name,
            Outcome::Ok,
            format!("committed {}", c.version),
            Some((p.entry.previous.as_ref(), &c.version)),
        );
    }
    Ok(())
}

/// Rolls every component back (in reverse order); failures are audited and logged, and the
/// others still roll back.
fn rollback_all(step: &Step<'_>, items: &mut [Planned]) {
    for p in items.iter_mut().rev() {
        let c = &p.entry.component;
        let result = step.ctx(&p.device).and_then(|hctx| p.handler.rollback(&hctx, c));
        match result {
            Ok(()) => step.audit(
                &c.name,
                Outcome::Ok,
                format!(
                    "rolled back to {}",
                    p.entry.previous.as_ref().map_or_else(|| "nothing (first install)".to_owned(), ToString::to_string)
                ),
                None,
            ),
            Err(e) => {
                step.events.warn(&format!("component {}: rollback failed: {e}", c.name));
                step.audit(&c.name, Outcome::Failed, format!("rollback: {e}"), None);
            }
        }
    }
}

/// The journal's components with their handlers again (after a reboot or a cut).
fn replan(ctx: &Context<'_>, handlers: HandlerTable, journal: &Journal) -> Result<Plan> {
    let mut items = Vec::new();
    for entry in &journal.components {
        let c = &entry.component;
        let device = ctx.config.device_component(&c.name).ok_or_else(|| {
            Error::Other(format!("component '{}' of transaction {} is no longer in update.toml", c.name, journal.id))
        })?;
        let handler = handlers(&c.kind, ctx.paths).ok_or_else(|| Error::NotImplemented {
            message: format!("no handler for component kind '{}' (component '{}')", c.kind, c.name),
        })?;
        items.push(Planned { entry: entry.clone(), device, handler });
    }
    Ok(Plan { id: journal.id.clone(), items })
}

/// What [`recover`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// No unfinished transaction.
    Nothing,
    /// Still waiting for the new OS slot (not yet booted, or on trial).
    Waiting,
    /// The interrupted transaction was committed.
    Committed,
    /// The interrupted transaction was rolled back.
    RolledBack,
}

/// Finishes or undoes an interrupted transaction (see the module docs). `boot` is the boot
/// state and the booted slot, when the device has an OS.
///
/// # Errors
/// I/O errors reading or writing the journal; handler errors of a repeated commit.
pub fn recover(ctx: &Context<'_>, handlers: HandlerTable, boot: Option<(&BootState, Slot)>) -> Result<Recovery> {
    let Some(mut journal) = Journal::load(ctx.paths)? else { return Ok(Recovery::Nothing) };
    let forward = match (journal.phase, journal.os_target, boot) {
        // With an OS slot, the commit was decided on that slot (mark-good): it goes on while
        // the slot runs; a fallback to the old slot takes the components back with it.
        (Phase::Committing, Some(target), Some((_, booted))) => booted == target,
        (Phase::Committing, _, _) => true,
        // A cut in mark-good's health checks waits for mark-good like an awaiting-boot journal.
        (Phase::AwaitingBoot | Phase::Health, Some(target), Some((state, booted))) => {
            let t = state.slot(target);
            if t.ok && booted == target {
                true
            } else if !t.ok && (t.tries > 0 || booted == target) {
                return Ok(Recovery::Waiting);
            } else {
                false
            }
        }
        _ => false,
    };
    let mut plan = replan(ctx, handlers, &journal)?;
    let step = Step { paths: ctx.paths, events: ctx.events, id: &journal.id.clone() };
    if forward {
        journal.enter(ctx.paths, Phase::Committing)?;
        if let Err(e) = commit_all(&step, &mut plan) {
            if !reverted(&step, &mut plan) {
                // Perhaps passing (a component that does not answer now): the next command
                // tries again.
                return Err(e);
            }
            ctx.events.warn(&format!(
                "transaction {}: {e}; a component no longer runs its new version, so every component goes back",
                journal.id
            ));
            journal.enter(ctx.paths, Phase::RollingBack)?;
            rollback_all(&step, &mut plan.items);
            Journal::finish(ctx.paths)?;
            return Ok(Recovery::RolledBack);
        }
        if journal.os_target.is_none() {
            Release::store(ctx.paths, &journal.version)?;
        } else {
            Release::clear(ctx.paths)?;
        }
        Journal::finish(ctx.paths)?;
        ctx.events.info(&format!("transaction {} committed after an interruption", journal.id));
        Ok(Recovery::Committed)
    } else {
        journal.enter(ctx.paths, Phase::RollingBack)?;
        rollback_all(&step, &mut plan.items);
        Journal::finish(ctx.paths)?;
        ctx.events.warn(&format!("transaction {} was interrupted or its OS slot failed: rolled back", journal.id));
        Ok(Recovery::RolledBack)
    }
}

/// What [`commit_with_os`] did.
#[derive(Debug)]
pub enum OsCommit {
    /// No transaction waited for the slot.
    Nothing,
    /// Every component passed its check and is committed: the caller commits the slot.
    Committed,
    /// A check failed (or a component no longer runs its new version): every component is
    /// rolled back; the caller leaves the slot uncommitted, switches back, and then [`close`]s
    /// the journal (until then a cut is recovered by rolling back again and switching back).
    RolledBack(Error),
}

/// Removes the journal of a transaction whose rollback is complete (see [`OsCommit`]).
///
/// # Errors
/// I/O errors naming the journal.
pub fn close(paths: &Paths) -> Result<()> {
    Journal::finish(paths)
}

/// With the new OS slot booted on trial: runs every component's health check, then commits
/// them all (see [`OsCommit`]). Also repeats the checks of a `mark-good` that was cut in them.
///
/// # Errors
/// Journal I/O errors, and a commit that failed while its component still runs the new version
/// (the journal stays: the next `mark-good` or command tries again; the slot stays on trial).
pub fn commit_with_os(ctx: &Context<'_>, handlers: HandlerTable) -> Result<OsCommit> {
    let Some(mut journal) = Journal::load(ctx.paths)? else { return Ok(OsCommit::Nothing) };
    if !matches!(journal.phase, Phase::AwaitingBoot | Phase::Health) {
        return Ok(OsCommit::Nothing);
    }
    let mut plan = replan(ctx, handlers, &journal)?;
    let step = Step { paths: ctx.paths, events: ctx.events, id: &journal.id.clone() };
    journal.enter(ctx.paths, Phase::Health)?;
    if let Err(e) = health_all(&step, &mut plan) {
        journal.enter(ctx.paths, Phase::RollingBack)?;
        rollback_all(&step, &mut plan.items);
        return Ok(OsCommit::RolledBack(e));
    }
    journal.enter(ctx.paths, Phase::Committing)?;
    if let Err(e) = commit_all(&step, &mut plan) {
        if !reverted(&step, &mut plan) {
            return Err(e);
        }
        journal.enter(ctx.paths, Phase::RollingBack)?;
        rollback_all(&step, &mut plan.items);
        return Ok(OsCommit::RolledBack(e));
    }
    Release::clear(ctx.paths)?;
    Journal::finish(ctx.paths)?;
    Ok(OsCommit::Committed)
}

/// Whether a component of the plan reads back another active version than the one it
/// installs (it went back by itself: an MCU's bootloader reverts an unconfirmed image after a
/// power loss). A status that cannot be read counts as not reverted.
fn reverted(step: &Step<'_>, plan: &mut Plan) -> bool {
    plan.items.iter_mut().any(|p| {
        let c = &p.entry.component;
        match p.handler.status(&step.read_ctx(&p.device)) {
            Ok(st) if st.active.as_ref() != Some(&c.version) => {
                step.events.warn(&format!(
                    "component {} runs {} again, not {}",
                    c.name,
                    st.active.map_or_else(|| "nothing".to_owned(), |v| v.to_string()),
                    c.version
                ));
                true
            }
            _ => false,
        }
    })
}

/// Rolls back the components of a transaction waiting for its OS slot (`update rollback`,
/// `update cancel`, or an OS slot that failed).
///
/// # Errors
/// Journal I/O errors.
pub fn abandon(ctx: &Context<'_>, handlers: HandlerTable) -> Result<bool> {
    let Some(mut journal) = Journal::load(ctx.paths)? else { return Ok(false) };
    let mut plan = replan(ctx, handlers, &journal)?;
    let step = Step { paths: ctx.paths, events: ctx.events, id: &journal.id.clone() };
    journal.enter(ctx.paths, Phase::RollingBack)?;
    rollback_all(&step, &mut plan.items);
    Journal::finish(ctx.paths)?;
    Ok(true)
}

/// Every configured component and what its handler reads back (for `update status`).
#[must_use]
pub fn statuses(ctx: &Context<'_>, handlers: HandlerTable) -> Vec<(DeviceComponent, Result<ComponentStatus>)> {
    let step = Step { paths: ctx.paths, events: ctx.events, id: "status" };
    ctx.config
        .components
        .keys()
        .filter_map(|name| ctx.config.device_component(name))
        .map(|device| {
            let status = match handlers(&device.kind, ctx.paths) {
                Some(mut h) => h.status(&step.read_ctx(&device)),
                None => Err(Error::NotImplemented { message: format!("no handler for kind '{}'", device.kind) }),
            };
            (device, status)
        })
        .collect()
}
