//! The `files` handler: a file tree (a tar stream) switched atomically beside the live one.
//!
//! Device settings (`[components.<name>]` in update.toml): `path`, the live directory (e.g.
//! `/opt/site`). The tree lives in an A/B place beside it (see [`place`]):
//!
//! ```text
//! /opt/site -> site.d/a        the live path: a relative symbolic link
//! /opt/site.d/a/  /opt/site.d/b/      the two sides
//! /opt/site.d/a.version  /opt/site.d/b.version   what each side holds
//! ```
//!
//! `install` empties the inactive side and extracts the payload into it ([`extract`], safe
//! against hostile archives), fsyncing everything; `activate` renames a new link over the live
//! path; `rollback` renames the old one back; `commit` only records, so the previous side stays
//! until the next install. A plain directory found at `path` at the first install is adopted:
//! moved (one rename, same file system) into side `a` and linked, content untouched.
//!
//! Signed options (the bundle's `options`): `allow-devices` (boolean, default false).

pub mod extract;
pub mod place;

use std::io::Read;
use std::path::{Path, PathBuf};

use update_core::component::{Activation, Component, ComponentStatus, Handler, HandlerContext, Kind, Settings};
use update_core::{Error, Result};

use self::extract::{Devices, ExtractOptions};
use self::place::{Place, Steps};

/// The `files` handler.
#[derive(Debug, Default)]
pub struct FilesHandler {
    steps: Steps,
}

impl FilesHandler {
    /// A handler.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A handler that stops (as if the power failed) before its `n`-th step; for tests.
    #[doc(hidden)]
    #[must_use]
    pub fn cut_after(n: usize) -> Self {
        Self { steps: Steps::cut_after(n) }
    }

    fn place<'a>(&'a self, ctx: &HandlerContext<'_>) -> Result<Place<'a>> {
        let what = describe(ctx);
        let path = live_path(ctx, &what)?;
        let link = ctx.paths.resolve(&path);
        let name = link
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| bad_setting(&what, "path", &path.display().to_string(), "it names no directory"))?;
        Ok(Place {
            base: link.with_file_name(format!("{name}.d")),
            link_prefix: format!("{name}.d/"),
            link,
            record_file: ctx.state_dir.join("place.json"),
            what,
            steps: &self.steps,
        })
    }
}

/// `files component <name>`, for messages.
pub(crate) fn describe(ctx: &HandlerContext<'_>) -> String {
    format!("{} component {}", ctx.device.kind, ctx.device.name)
}

pub(crate) fn bad_setting(what: &str, key: &str, value: &str, reason: &str) -> Error {
    Error::InvalidValue { what: format!("{what}: setting {key}"), value: value.into(), reason: reason.into() }
}

/// Refuses keys outside `known`.
pub(crate) fn known_keys(what: &str, kind_of: &str, map: &Settings, known: &[&str]) -> Result<()> {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            return Err(Error::Refused(format!("{what}: unknown {kind_of} {key:?} (known: {})", known.join(", "))));
        }
    }
    Ok(())
}

fn live_path(ctx: &HandlerContext<'_>, what: &str) -> Result<PathBuf> {
    let settings = &ctx.device.settings;
    known_keys(what, "setting", settings, &["path"])?;
    let value = settings.get("path").ok_or_else(|| Error::Refused(format!("{what}: the setting path is missing")))?;
    let text = value.as_str().ok_or_else(|| bad_setting(what, "path", &value.to_string(), "it must be a string"))?;
    let path = PathBuf::from(text);
    let normal =
        path.components().all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_)));
    if !path.is_absolute() || !normal || path.parent().is_none() {
        return Err(bad_setting(what, "path", text, "use an absolute path below / without . or .."));
    }
    Ok(path)
}

/// The extraction options the component's signed options ask for.
pub(crate) fn extract_options(what: &str, component: &Component) -> Result<ExtractOptions> {
    known_keys(what, "signed option", &component.options, &["allow-devices"])?;
    let devices = match component.options.get("allow-devices") {
        None | Some(serde_json::Value::Bool(false)) => Devices::Refuse,
        Some(serde_json::Value::Bool(true)) => Devices::Allow,
        Some(other) => {
            return Err(Error::Refused(format!(
                "{what}: the signed option allow-devices must be true or false, not {other}"
            )));
        }
    };
    Ok(ExtractOptions { devices, max_bytes: component.size })
}

/// Checks the kind, the options, the link, and that the place's file system has room for the
/// payload.
pub(crate) fn check_place(place: &Place<'_>, expected: &Kind, component: &Component) -> Result<()> {
    if &component.kind != expected {
        return Err(Error::Refused(format!(
            "{}: the bundle's component is of kind {}, the device's is {expected}",
            place.what, component.kind
        )));
    }
    extract_options(&place.what, component)?;
    place.active()?;
    let mut probe: &Path = &place.base;
    while !probe.exists() {
        probe = probe.parent().unwrap_or(Path::new("/"));
    }
    let fs = rustix::fs::statvfs(probe).map_err(|e| Error::io("measure free space on", probe, e.into()))?;
    let free = fs.f_bavail.saturating_mul(fs.f_frsize);
    if component.size > free {
        return Err(Error::Refused(format!(
            "{}: {} bytes are needed on {}, {free} are free",
            place.what,
            component.size,
            probe.display()
        )));
    }
    Ok(())
}

/// Installs the payload into the place's inactive side (resuming or skipping per the record).
pub(crate) fn install_into(
    place: &Place<'_>,
    ctx: &HandlerContext<'_>,
    component: &Component,
    payload: &mut dyn Read,
) -> Result<()> {
    let options = extract_options(&place.what, component)?;
    let Some(record) = place.begin_install(ctx.transaction, component)? else {
        ctx.events.info(&format!("{}: {} is installed already", place.what, component.version));
        return Ok(());
    };
    let dir = place.empty_target(&record)?;
    place.steps.step("extracting")?;
    let report = extract::extract(payload, &dir, &options, &place.what)?;
    if !report.skipped_xattrs.is_empty() {
        ctx.events.warn(&format!(
            "{}: {} extended attributes were not set (not permitted here): {}",
            place.what,
            report.skipped_xattrs.len(),
            report.skipped_xattrs.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    ctx.events.info(&format!(
        "{}: {} extracted into {} ({} entries, {} bytes)",
        place.what,
        component.version,
        dir.display(),
        report.entries,
        report.bytes
    ));
    place.finish_install(record)
}

impl Handler for FilesHandler {
    fn kind(&self) -> Kind {
        Kind::Files
    }

    fn status(&mut self, ctx: &HandlerContext<'_>) -> Result<ComponentStatus> {
        self.place(ctx)?.status()
    }

    fn check(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        check_place(&self.place(ctx)?, &Kind::Files, component)
    }

    fn install(&mut self, ctx: &HandlerContext<'_>, component: &Component, payload: &mut dyn Read) -> Result<()> {
        let place = self.place(ctx)?;
        place.adopt()?;
        install_into(&place, ctx, component, payload)
    }

    fn activate(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<Activation> {
        self.place(ctx)?.activate(ctx.transaction, component)?;
        Ok(Activation::Now)
    }

    fn health(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        self.place(ctx)?.check_active(ctx.transaction, component).map(drop)
    }

    fn commit(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        self.place(ctx)?.commit(ctx.transaction, component)
    }

    fn rollback(&mut self, ctx: &HandlerContext<'_>, _component: &Component) -> Result<()> {
        let place = self.place(ctx)?;
        // A cut during adoption leaves the path missing: relink it before anything else.
        place.repair()?;
        place.rollback(ctx.transaction).map(drop)
    }
}
