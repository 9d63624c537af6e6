//! Driver registration and probing.
//!
//! The facade holds a [`DriverTable`]: the [`DriverFactory`] trait objects built into the program
//! (like rustls's crypto providers, the application passes the table in), in probing order, and
//! the drivers it knows of but did not build. With `driver = "auto"` the factories are probed in
//! table order and the first that is available is used; with a named driver only that one is
//! probed. When none is available every operation fails with [`Error::NotImplemented`] naming
//! what to install, from the factories' [`DriverFactory::install_hint`]. Nothing here names a
//! driver: names, hints, probe order and update-file extensions all come from the table.

use serde::Serialize;
use update_core::driver::{Capabilities, Capability, Context, Driver, DriverFactory, Probe};
use update_core::{Error, Result};

/// A driver the program knows of but was built without (a cargo feature left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsentDriver {
    /// Its name, as used in `driver = "…"`.
    pub name: &'static str,
    /// What to install or build to get it.
    pub hint: &'static str,
}

/// The drivers a program offers, in probing order.
#[derive(Clone, Default)]
pub struct DriverTable {
    factories: Vec<&'static dyn DriverFactory>,
    absent: Vec<AbsentDriver>,
}

impl std::fmt::Debug for DriverTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverTable")
            .field("factories", &self.factories.iter().map(|f| f.name()).collect::<Vec<_>>())
            .field("absent", &self.absent)
            .finish()
    }
}

impl From<Vec<&'static dyn DriverFactory>> for DriverTable {
    fn from(factories: Vec<&'static dyn DriverFactory>) -> Self {
        Self { factories, absent: Vec::new() }
    }
}

impl DriverTable {
    /// A table of built factories, probed in this order.
    #[must_use]
    pub fn new(factories: Vec<&'static dyn DriverFactory>) -> Self {
        factories.into()
    }

    /// Adds drivers this program knows of but was built without (`update drivers` lists them as
    /// `not-built`; configuring one is "Not implemented", not an unknown name).
    #[must_use]
    pub fn with_absent(mut self, absent: Vec<AbsentDriver>) -> Self {
        self.absent = absent;
        self
    }

    /// Adds the external drivers installed under `root` (`<root>/usr/lib/update/drivers/*.toml`,
    /// [`crate::external`]) in probe order by their priority. A manifest naming a driver this
    /// table already has is listed as broken; one already in the table is not added twice.
    #[must_use]
    pub fn with_external(mut self, root: &std::path::Path) -> Self {
        let known: Vec<&'static str> = self.names().collect();
        let mut found = Vec::new();
        for e in crate::external::load(root) {
            if self.factories.iter().any(|f| std::ptr::addr_eq(*f, e as &dyn DriverFactory)) {
                continue;
            }
            found.push(if known.contains(&e.name()) {
                e.refused(format!("the name {} is taken by a built-in driver", e.name()))
            } else {
                e
            });
        }
        if !found.is_empty() {
            self.factories = crate::external::merge(&self.factories, found);
        }
        self
    }

    /// The built factories, in probing order.
    #[must_use]
    pub fn factories(&self) -> &[&'static dyn DriverFactory] {
        &self.factories
    }

    /// Every driver name the table knows (built first, then absent).
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.iter().map(|f| f.name()).chain(self.absent.iter().map(|a| a.name))
    }

    /// The built factory called `name`.
    #[must_use]
    pub fn factory(&self, name: &str) -> Option<&'static dyn DriverFactory> {
        self.factories.iter().copied().find(|f| f.name() == name)
    }

    /// Whether a file extension (without the dot) names an update file of some built driver.
    #[must_use]
    pub fn is_update_extension(&self, ext: &str) -> bool {
        self.factories.iter().any(|f| f.update_extensions().contains(&ext))
    }

    /// Checks a configured driver name: `auto` or a name the table knows.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] listing the known names.
    pub fn check_name(&self, wanted: &str) -> Result<()> {
        if wanted == "auto" || self.names().any(|n| n == wanted) {
            return Ok(());
        }
        Err(Error::InvalidValue {
            what: "driver".into(),
            value: wanted.into(),
            reason: format!("known drivers: auto, {}", self.names().collect::<Vec<_>>().join(", ")),
        })
    }

    /// The message for a system where no driver is usable. `unconfigured` lists drivers whose
    /// tool is installed but not set up here, with the reason.
    #[must_use]
    pub fn not_implemented_message(&self, configured: &str, unconfigured: &[(String, String)]) -> String {
        let mut msg = String::from("Not implemented.");
        for (name, reason) in unconfigured {
            msg.push_str(&format!(" The {name} driver is not set up here: {reason}."));
        }
        if configured == "auto" {
            let hints: Vec<&str> = self.factories.iter().map(|f| f.install_hint()).collect();
            msg.push_str(&format!(" Consider installing {}.", join_or(&hints)));
        } else {
            let hint = self
                .factory(configured)
                .map(|f| f.install_hint())
                .or_else(|| self.absent.iter().find(|a| a.name == configured).map(|a| a.hint))
                .unwrap_or(configured);
            msg.push_str(&format!(
                " The configured driver '{configured}' is not available here. Consider installing {hint}."
            ));
        }
        msg
    }

    /// Probes the factories and returns the driver to use.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for an unknown configured name; [`Error::NotImplemented`] when
    /// none is available; a broken configured driver's error.
    pub fn select(&self, ctx: &Context<'_>) -> Result<Box<dyn Driver>> {
        let wanted = ctx.config.driver.as_str();
        self.check_name(wanted)?;
        let mut broken = None;
        let mut unconfigured = Vec::new();
        for f in self.factories.iter().filter(|f| wanted == "auto" || f.name() == wanted) {
            match f.probe(ctx) {
                Probe::Available(d) => return Ok(d),
                // Declines are normal (shown by `update drivers`); logging them would fill syslog.
                Probe::Declined(_) => {}
                Probe::Unconfigured(reason) => unconfigured.push((f.name().to_owned(), reason)),
                Probe::Broken(e) => {
                    ctx.events.warn(&format!("driver {}: broken: {e}", f.name()));
                    broken.get_or_insert(e);
                }
            }
        }
        Err(broken
            .unwrap_or_else(|| Error::NotImplemented { message: self.not_implemented_message(wanted, &unconfigured) }))
    }

    /// Probes every known driver for `update drivers`.
    #[must_use]
    pub fn report(&self, ctx: &Context<'_>) -> Vec<DriverReport> {
        let built = self.factories.iter().map(|f| {
            let (state, detail) = match f.probe(ctx) {
                Probe::Available(_) => ("available", String::new()),
                Probe::Declined(r) => ("declined", r),
                Probe::Unconfigured(r) => ("unconfigured", r),
                Probe::Broken(e) => ("broken", e.to_string()),
            };
            DriverReport {
                name: f.name().into(),
                state: state.into(),
                detail,
                capabilities: f.capabilities(),
                components: f.component_kinds().to_vec(),
            }
        });
        let absent = self.absent.iter().map(|a| DriverReport {
            name: a.name.into(),
            state: "not-built".into(),
            detail: format!("not part of this build; needs {}", a.hint),
            capabilities: Capabilities::default(),
            components: Vec::new(),
        });
        built.chain(absent).collect()
    }
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(items: &[&str]) -> String {
    match items {
        [] => "a driver".to_owned(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// One row of `update drivers`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DriverReport {
    /// Driver name.
    pub name: String,
    /// `available`, `declined`, `unconfigured` (its tool is installed, its setup is missing),
    /// `broken` or `not-built` (not compiled into this binary).
    pub state: String,
    /// Why it declined or is broken; what to install when not built.
    pub detail: String,
    /// Its capabilities.
    pub capabilities: Capabilities,
    /// The component kinds beside the OS image its update format carries.
    pub components: Vec<&'static str>,
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
    for kind in ["files", "app", "firmware", "fwupd", "data", "external"] {
        out.push_str(&format!("| component: {kind} |"));
        for r in rows {
            out.push_str(if r.components.contains(&kind) { " yes |" } else { " – |" });
        }
        out.push('\n');
    }
    out
}
