//! Driver registration and probing.
//!
//! The facade holds a table of [`DriverFactory`] trait objects (like rustls's crypto providers,
//! the application passes the table in). With `driver = "auto"` they are probed in the order of
//! the table — [`PROBE_ORDER`] documents it — and the first that is available is used. With a
//! named driver only that one is probed. When none is available every operation fails with
//! [`Error::NotImplemented`] naming what to install.

use serde::Serialize;
use update_core::driver::{Capabilities, Capability, Context, Driver, DriverFactory, Probe};
use update_core::{Error, Result};

/// Every implementation libupdate knows, in probing order, with what to install for it.
pub const PROBE_ORDER: [(&str, &str); 6] = [
    ("native", "the native driver ([native] in /etc/update/update.toml)"),
    ("rauc", "rauc"),
    ("swupdate", "swupdate"),
    ("mender", "mender-client"),
    ("ostree", "ostree"),
    ("swupd", "swupd"),
];

/// The message for a system with no usable driver.
#[must_use]
pub fn not_implemented_message(configured: &str) -> String {
    if configured == "auto" {
        "Not implemented. Consider installing rauc, swupdate, mender-client, ostree or swupd, \
         or enable the native driver ([native] in /etc/update/update.toml)."
            .to_owned()
    } else {
        let hint = PROBE_ORDER.iter().find(|(n, _)| *n == configured).map_or(configured, |(_, h)| *h);
        format!(
            "Not implemented. The configured driver '{configured}' is not available here. Consider installing {hint}."
        )
    }
}

/// One row of `update drivers`.
#[derive(Debug, Clone, Serialize)]
pub struct DriverReport {
    /// Driver name.
    pub name: String,
    /// `available`, `declined`, `broken` or `not-built` (not compiled into this binary).
    pub state: String,
    /// Why it declined or is broken; what to install when not built.
    pub detail: String,
    /// Its capabilities.
    pub capabilities: Capabilities,
}

/// Probes the factories and returns the driver to use.
///
/// # Errors
/// [`Error::NotImplemented`] when none is available; a broken configured driver's error.
pub fn select(factories: &[&dyn DriverFactory], ctx: &Context<'_>) -> Result<Box<dyn Driver>> {
    let wanted = ctx.config.driver.as_str();
    if wanted != "auto" && !PROBE_ORDER.iter().any(|(n, _)| *n == wanted) {
        return Err(Error::InvalidValue {
            what: "driver".into(),
            value: wanted.into(),
            reason: format!("known drivers: auto, {}", PROBE_ORDER.map(|(n, _)| n).join(", ")),
        });
    }
    let mut broken = None;
    for f in factories.iter().filter(|f| wanted == "auto" || f.name() == wanted) {
        match f.probe(ctx) {
            Probe::Available(d) => return Ok(d),
            // Declines are normal (shown by `update drivers`); logging them would fill syslog.
            Probe::Declined(_) => {}
            Probe::Broken(e) => {
                ctx.events.warn(&format!("driver {}: broken: {e}", f.name()));
                broken.get_or_insert(e);
            }
        }
    }
    Err(broken.unwrap_or_else(|| Error::NotImplemented { message: not_implemented_message(wanted) }))
}

/// Probes every known driver for `update drivers`.
#[must_use]
pub fn report(factories: &[&dyn DriverFactory], ctx: &Context<'_>) -> Vec<DriverReport> {
    PROBE_ORDER
        .iter()
        .map(|(name, hint)| match factories.iter().find(|f| f.name() == *name) {
            Some(f) => {
                let (state, detail) = match f.probe(ctx) {
                    Probe::Available(_) => ("available", String::new()),
                    Probe::Declined(r) => ("declined", r),
                    Probe::Broken(e) => ("broken", e.to_string()),
                };
                DriverReport { name: (*name).into(), state: state.into(), detail, capabilities: f.capabilities() }
            }
            None => DriverReport {
                name: (*name).into(),
                state: "not-built".into(),
                detail: format!("not part of this build; needs {hint}"),
                capabilities: Capabilities::default(),
            },
        })
        .collect()
}

/// The capability matrix as a Markdown table (docs/drivers.md is generated from it).
#[must_use]
pub fn markdown_matrix(rows: &[DriverReport]) -> String {
    let mut out = String::from("| capability |");
    for r in rows {
        out.push_str(&format!(" {} |", r.name));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(rows.len()));
    out.push('\n');
    for c in Capability::ALL {
        out.push_str(&format!("| {} |", c.as_str()));
        for r in rows {
            out.push_str(if r.capabilities.has(c) { " yes |" } else { " – |" });
        }
        out.push('\n');
    }
    out
}
