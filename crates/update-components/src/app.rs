//! The `app` handler: an application with its own A/B place, switched and restarted without a
//! reboot, health-checked, and swapped back (and restarted again) when its check fails.
//!
//! ```text
//! /var/lib/update/apps/<name>/a/  b/            the two sides (the extracted tar)
//! /var/lib/update/apps/<name>/a.version  b.version   what each side holds
//! /var/lib/update/apps/<name>/current -> a      the running side (relative link)
//! ```
//!
//! The payload is a tar stream, extracted exactly as the `files` handler does
//! ([`crate::files::extract`]). Device settings: `restart` (argv list, required): run after every
//! switch, forwards and back; `health` (argv list, optional): the health check; `health-timeout`
//! (seconds, default 30). Both run without a shell through
//! [`update_core::process::Command::under_root`] with `UPDATE_COMPONENT`, `UPDATE_APP_DIR` (the
//! device path of `current`) and `UPDATE_APP_VERSION` in their environment. The OS slots and the
//! boot state are never touched.

use std::io::Read;
use std::time::Duration;

use update_core::component::{Activation, Component, ComponentStatus, Handler, HandlerContext, Kind};
use update_core::process::Command;
use update_core::{Error, Result};

use crate::files::place::{Place, Side, Steps};
use crate::files::{bad_setting, check_place, describe, install_into, known_keys};

/// The default time limit of the health check.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

/// The `app` handler.
#[derive(Debug, Default)]
pub struct AppHandler {
    steps: Steps,
}

/// The device settings of an app.
struct AppSettings {
    restart: Vec<String>,
    health: Option<Vec<String>>,
    health_timeout: Duration,
}

fn argv(what: &str, key: &str, value: &serde_json::Value) -> Result<Vec<String>> {
    let list = value.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
        bad_setting(what, key, &value.to_string(), "use a non-empty list of strings (program and arguments)")
    })?;
    list.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad_setting(what, key, &value.to_string(), "every element must be a string"))
        })
        .collect()
}

impl AppHandler {
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

    fn place<'a>(&'a self, ctx: &HandlerContext<'_>) -> Place<'a> {
        let base = ctx.paths.resolve(app_dir(ctx));
        Place {
            link: base.join("current"),
            base,
            link_prefix: String::new(),
            record_file: ctx.state_dir.join("place.json"),
            what: describe(ctx),
            steps: &self.steps,
        }
    }

    fn settings(ctx: &HandlerContext<'_>) -> Result<AppSettings> {
        let what = describe(ctx);
        let s = &ctx.device.settings;
        known_keys(&what, "setting", s, &["restart", "health", "health-timeout"])?;
        let restart = argv(
            &what,
            "restart",
            s.get("restart").ok_or_else(|| Error::Refused(format!("{what}: the setting restart is missing")))?,
        )?;
        let health = s.get("health").map(|v| argv(&what, "health", v)).transpose()?;
        let health_timeout = match s.get("health-timeout") {
            None => DEFAULT_HEALTH_TIMEOUT,
            Some(v) => v.as_u64().filter(|&n| (1..=3600).contains(&n)).map(Duration::from_secs).ok_or_else(|| {
                bad_setting(&what, "health-timeout", &v.to_string(), "use whole seconds from 1 to 3600")
            })?,
        };
        Ok(AppSettings { restart, health, health_timeout })
    }

    /// Runs `argv` from inside the device root with the app's environment.
    fn run(ctx: &HandlerContext<'_>, role: &str, argv: &[String], version: &str, limit: Duration) -> Result<()> {
        let what = describe(ctx);
        let (program, args) =
            argv.split_first().ok_or_else(|| Error::Refused(format!("{what}: the {role} command is empty")))?;
        ctx.events.info(&format!("{what}: {role} {version}: running {}", argv.join(" ")));
        let out = Command::new(program)
            .args(args)
            .under_root(ctx.paths.root())
            .env("UPDATE_COMPONENT", ctx.device.name.as_str())
            .env("UPDATE_APP_DIR", app_dir(ctx).join("current"))
            .env("UPDATE_APP_VERSION", version)
            .timeout(limit)
            .run()?;
        if out.success() {
            Ok(())
        } else {
            let detail = out.detail();
            Err(Error::Refused(format!(
                "{what}: the {role} command ({}) of {version} failed with {}{}",
                argv.join(" "),
                out.status,
                if detail.is_empty() { String::new() } else { format!(": {detail}") }
            )))
        }
    }
}

/// `/var/lib/update/apps/<name>` (a device path).
fn app_dir(ctx: &HandlerContext<'_>) -> std::path::PathBuf {
    std::path::Path::new("/var/lib/update/apps").join(ctx.device.name.as_str())
}

impl Handler for AppHandler {
    fn kind(&self) -> Kind {
        Kind::App
    }

    fn status(&mut self, ctx: &HandlerContext<'_>) -> Result<ComponentStatus> {
        self.place(ctx).status()
    }

    fn check(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let settings = Self::settings(ctx)?;
        for cmd in std::iter::once(&settings.restart).chain(settings.health.as_ref()) {
            if let Some(program) = cmd.first() {
                Command::new(program).under_root(ctx.paths.root()).resolve()?;
            }
        }
        check_place(&self.place(ctx), &Kind::App, component)
    }

    fn install(&mut self, ctx: &HandlerContext<'_>, component: &Component, payload: &mut dyn Read) -> Result<()> {
        Self::settings(ctx)?;
        let place = self.place(ctx);
        update_core::atomic::ensure_dir(&place.base)?;
        install_into(&place, ctx, component, payload)
    }

    fn activate(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<Activation> {
        let settings = Self::settings(ctx)?;
        self.place(ctx).activate(ctx.transaction, component)?;
        self.steps.step("restarting the app")?;
        Self::run(ctx, "restart", &settings.restart, &component.version.to_string(), ctx.timeout)?;
        Ok(Activation::Now)
    }

    fn health(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let settings = Self::settings(ctx)?;
        // A handler that switched nothing is caught here, before the check runs.
        self.place(ctx).check_active(ctx.transaction, component)?;
        match &settings.health {
            Some(cmd) => Self::run(ctx, "health check", cmd, &component.version.to_string(), settings.health_timeout),
            None => Ok(()),
        }
    }

    fn commit(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        self.place(ctx).commit(ctx.transaction, component)
    }

    fn rollback(&mut self, ctx: &HandlerContext<'_>, _component: &Component) -> Result<()> {
        let settings = Self::settings(ctx)?;
        let place = self.place(ctx);
        let Some(record) = place.rollback(ctx.transaction)? else {
            return Ok(());
        };
        // The switch had begun: what runs may be the new version, so restart the old one.
        self.steps.step("restarting the previous version")?;
        match record.before {
            Some(side) => {
                let version = version_text(&place, side);
                Self::run(ctx, "restart", &settings.restart, &version, ctx.timeout)
            }
            None => {
                ctx.events.warn(&format!(
                    "{}: rolled back to no version at all (this was its first install); nothing to restart",
                    place.what
                ));
                Ok(())
            }
        }
    }
}

fn version_text(place: &Place<'_>, side: Side) -> String {
    place.version(side).ok().flatten().map_or_else(|| "unknown".into(), |v| v.to_string())
}
