//! External drivers: update implementations installed by another package, without recompiling
//! `update` (docs/reference/external-driver.md has the protocol, docs/drivers.md "External
//! drivers" the design).
//!
//! A package drops a manifest, `/usr/lib/update/drivers/<name>.toml` (under `--root`:
//! `<root>/usr/lib/update/drivers`), and the executable it names. [`load`] reads every manifest
//! once per [`crate::Updater`]; a manifest that fails its checks becomes a driver that probes as
//! broken with the reason, so `update drivers` shows it and nothing uses it. Each operation runs
//! the executable once through update-core's out-of-tree plumbing ([`update_core::external`]:
//! inside the root, a time limit that kills it and everything it started, one JSON request on
//! standard input), and reads its standard output: event lines (progress, log, audit) as they
//! come, then one JSON answer of at most [`MAX_RESPONSE`] bytes with the protocol major
//! [`PROTOCOL_MAJOR`]. Every string from the driver is escaped before a person or a log sees it.
//!
//! The table holds `&'static` factories (names and hints are `&'static str`, as for built-in
//! drivers), so each distinct manifest is leaked once per process and reused when the daemon
//! opens the table again.

use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use update_core::audit::{AuditAction, Outcome};
use update_core::driver::{
    BundleInfo, Capabilities, Capability, Context, Driver, DriverFactory, InstallOutcome, InstallRequest, Probe,
    SlotChange, SlotState, SlotStatus, Status,
};
use update_core::external::{self, MAX_RESPONSE, Peer, Protocol};
use update_core::process::{self, Command};
use update_core::text::escape;
use update_core::{Error, Paths, Result};

/// Where manifests and executables of external drivers are installed (under the device root).
pub const DRIVER_DIR: &str = "/usr/lib/update/drivers";
/// The protocol major this client speaks; a manifest or an answer with another is refused.
pub const PROTOCOL_MAJOR: u32 = 1;
/// The protocol minor this client speaks (additions only).
pub const PROTOCOL_MINOR: u32 = 0;
/// The largest manifest read.
pub const MAX_MANIFEST: u64 = 16 << 10;
/// The most manifests read from the directory (the rest are ignored, with a broken entry).
pub const MAX_DRIVERS: usize = 32;
/// Where built-in drivers stand in probe order: an external driver with a higher `priority` is
/// probed before every built-in one, any other after them.
pub const BUILTIN_PRIORITY: u32 = 50;
/// The time limit of `inspect` and `install` when the manifest gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
/// The time limit of every other method (or the manifest's, if shorter).
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(60);
/// The most audit records one call may add (a driver flooding the audit log is cut off).
pub const MAX_AUDITS: usize = 1000;
/// The longest event line (progress, log, audit) taken as an event.
const MAX_EVENT: usize = 4096;

/// A driver's manifest (`<name>.toml`), as installed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Its name: the file's name without `.toml`, `a-z0-9-`, at most 32 characters.
    pub name: String,
    /// The absolute path of the executable inside the device root.
    pub executable: PathBuf,
    /// The protocol major it speaks.
    pub protocol: u32,
    /// What it can do ([`Capability`] names).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Its place in probe order (0–100; built-in drivers stand at [`BUILTIN_PRIORITY`]).
    #[serde(default)]
    pub priority: u32,
    /// What to install to make it work (`apt (apt install apt)`), for "Not implemented".
    pub install_hint: String,
    /// Whether it reads `update`'s `source` itself (an apt archive, …) instead of being handed
    /// update files from it.
    #[serde(default)]
    pub reads_source: bool,
    /// The extensions of its update files (for directory and repository sources).
    #[serde(default)]
    pub extensions: Vec<String>,
    /// The time limit of `inspect` and `install`, in seconds (default 3600).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

impl Manifest {
    /// Parses and checks a manifest read from `<stem>.toml`.
    ///
    /// # Errors
    /// Why it is refused (escaped, for people).
    pub fn parse(stem: &str, text: &str) -> std::result::Result<Self, String> {
        let m: Manifest = toml::from_str(text).map_err(|e| escape(e.message()))?;
        m.check(stem)?;
        Ok(m)
    }

    fn check(&self, stem: &str) -> std::result::Result<(), String> {
        if !is_name(&self.name, 32) || self.name == "auto" {
            return Err(format!(
                "name '{}' is not a driver name (a-z, 0-9 and -, at most 32, not auto)",
                escape(&self.name)
            ));
        }
        if self.name != stem {
            return Err(format!("name '{}' is not the file's name '{}'", self.name, escape(stem)));
        }
        if self.protocol != PROTOCOL_MAJOR {
            return Err(format!(
                "it speaks protocol major {}, this update speaks {PROTOCOL_MAJOR}: install a driver for protocol {PROTOCOL_MAJOR}",
                self.protocol
            ));
        }
        let exe = &self.executable;
        if !exe.is_absolute() || exe.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!(
                "executable '{}' is not an absolute path without '..'",
                escape(&exe.to_string_lossy())
            ));
        }
        if let Some(c) = self.capabilities.iter().find(|c| !Capability::ALL.iter().any(|k| k.as_str() == c.as_str())) {
            let known: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
            return Err(format!("unknown capability '{}' (known: {})", escape(c), known.join(", ")));
        }
        if self.priority > 100 {
            return Err(format!("priority {} is not 0-100", self.priority));
        }
        if self.install_hint.chars().count() > 200 || self.install_hint.chars().any(char::is_control) {
            return Err("install-hint must be one line of at most 200 characters".into());
        }
        if let Some(e) = self.extensions.iter().find(|e| !is_name(e, 16) || e.contains('-')) {
            return Err(format!("extension '{}' is not a-z0-9, at most 16", escape(e)));
        }
        if self.timeout_seconds.is_some_and(|t| t == 0 || t > 86_400) {
            return Err("timeout-seconds is not 1-86400".into());
        }
        Ok(())
    }
}

/// One manifest file as loaded: where from, and the manifest or why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loaded {
    /// The root it was found under (its executable runs inside it).
    root: PathBuf,
    /// The manifest file.
    file: PathBuf,
    manifest: std::result::Result<Manifest, String>,
}

/// The factory of one external driver (see the module docs).
#[derive(Debug, Clone)]
pub struct ExternalFactory {
    name: &'static str,
    hint: &'static str,
    extensions: &'static [&'static str],
    loaded: Loaded,
}

/// Every external factory made in this process, so loading the same manifest again reuses it.
static LOADED: Mutex<Vec<&'static ExternalFactory>> = Mutex::new(Vec::new());

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

impl ExternalFactory {
    /// The factory for one manifest file under `root` (`<root>/usr/lib/update/drivers/X.toml`
    /// or a file elsewhere, for tests): a manifest that cannot be read or fails its checks gives
    /// a factory that probes as broken.
    #[must_use]
    pub fn load(root: &Path, file: &Path) -> &'static ExternalFactory {
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let manifest = read_manifest(file).and_then(|text| Manifest::parse(&stem, &text));
        Self::intern(Loaded { root: root.to_owned(), file: file.to_owned(), manifest }, &stem)
    }

    fn intern(loaded: Loaded, stem: &str) -> &'static ExternalFactory {
        let mut all = LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(f) = all.iter().find(|f| f.loaded == loaded) {
            return f;
        }
        let (name, hint, extensions): (String, String, Vec<&'static str>) = match &loaded.manifest {
            Ok(m) => (m.name.clone(), m.install_hint.clone(), m.extensions.iter().map(|e| leak(e)).collect()),
            Err(_) => {
                let name = if is_name(stem, 32) { stem.to_owned() } else { escape(stem) };
                (name.clone(), format!("a working {name} driver"), Vec::new())
            }
        };
        let factory: &'static ExternalFactory = Box::leak(Box::new(ExternalFactory {
            name: leak(&name),
            hint: leak(&hint),
            extensions: Box::leak(extensions.into_boxed_slice()),
            loaded,
        }));
        all.push(factory);
        factory
    }

    /// The manifest, if it passed its checks.
    #[must_use]
    pub fn manifest(&self) -> Option<&Manifest> {
        self.loaded.manifest.as_ref().ok()
    }

    /// The manifest file.
    #[must_use]
    pub fn file(&self) -> &Path {
        &self.loaded.file
    }

    fn priority(&self) -> u32 {
        self.manifest().map_or(0, |m| m.priority)
    }

    /// This factory, refused for `why` (a name taken by another driver).
    pub(crate) fn refused(&self, why: String) -> &'static ExternalFactory {
        let mut loaded = self.loaded.clone();
        loaded.manifest = Err(why);
        Self::intern(loaded, self.name)
    }

    fn who(&self) -> String {
        let exe = self.manifest().map_or_else(|| self.loaded.file.clone(), |m| m.executable.clone());
        format!("external driver {} ({})", self.name, exe.display())
    }

    fn command(&self, limit: Duration, request: &Request<'_>) -> Result<Command> {
        let exe = self.manifest().map(|m| m.executable.clone()).unwrap_or_default();
        // Event lines are read as they come; what is kept of the output is only for messages.
        external::command(&exe, &self.loaded.root, limit, 1 << 20, request)
    }

    /// Runs `method` and returns its answer (`ok: true`), handling event lines as they come.
    fn call(&self, ctx: &Context<'_>, method: &str, update: Option<&InstallRequest>) -> Result<serde_json::Value> {
        let Some(m) = self.manifest() else {
            return Err(self.broken());
        };
        let long = m.timeout_seconds.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        let limit = if matches!(method, "inspect" | "install") { long } else { long.min(QUICK_TIMEOUT) };
        let state_dir = ctx.paths.state_dir().join("drivers").join(self.name);
        update_core::atomic::ensure_dir(&state_dir)?;
        let request = Request {
            protocol: Protocol { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR },
            method,
            driver: self.name,
            root: ctx.paths.root(),
            state_dir,
            timeout_seconds: limit.as_secs(),
            config: ConfigView {
                verify: ctx.config.verify == update_core::config::Verify::Signatures,
                signature_threshold: ctx.config.signature_threshold,
                boot_retry_limit: ctx.config.boot_retry_limit,
                source: ctx.config.source.as_ref().map(ToString::to_string),
            },
            update: update.map(|r| UpdateRef { path: &r.bundle }),
        };
        let who = self.who();
        let mut events = EventSink::new(self.name, method, ctx);
        let mut answer = String::new();
        let mut oversized = false;
        let out = self.command(limit, &request)?.run_lines(&mut |line| {
            if events.take(line) {
                return;
            }
            if answer.len() + line.len() >= MAX_RESPONSE {
                oversized = true;
            } else {
                answer.push_str(line);
                answer.push('\n');
            }
        })?;
        events.finish();
        let peer = Peer { who: &who, noun: "driver", major: PROTOCOL_MAJOR };
        let value = external::answer(peer, method, &out, &answer, oversized)?;
        if let Some(why) = external::failure(peer, method, &out, &value) {
            return Err(self.error(method, &value, why, update));
        }
        Ok(value)
    }

    /// The error for an answer with `ok: false`, by its `kind` (docs/reference/external-driver.md).
    fn error(&self, method: &str, value: &serde_json::Value, why: String, update: Option<&InstallRequest>) -> Error {
        let text = |k: &str| value.get(k).and_then(serde_json::Value::as_str).map(|s| escape(&process::tail(s, 30)));
        let message = text("error").unwrap_or(why.clone());
        match value.get("kind").and_then(serde_json::Value::as_str).unwrap_or("failure") {
            "verification" => Error::verification(
                update.map_or_else(|| self.name.to_owned(), |u| u.bundle.display().to_string()),
                message,
            ),
            "refused" => Error::Refused(message),
            "not-supported" => Error::NotSupported {
                driver: self.name.into(),
                operation: text("operation").unwrap_or_else(|| method.to_owned()),
                hint: Some(message),
            },
            "source" => Error::Source {
                url: update.map_or_else(String::new, |u| u.bundle.display().to_string()),
                reason: message,
            },
            _ => Error::Other(why),
        }
    }

    fn broken(&self) -> Error {
        let reason = match &self.loaded.manifest {
            Err(why) => format!("{}: {why}", self.loaded.file.display()),
            Ok(_) => "unusable".into(),
        };
        Error::DriverBroken { driver: self.name.into(), reason }
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, method: &str, value: &serde_json::Value, field: &str) -> Result<T> {
        let v = value.get(field).cloned().unwrap_or(serde_json::Value::Null);
        serde_json::from_value(v).map_err(|e| {
            Error::Other(format!("{}: {method} answered a malformed '{field}': {}", self.who(), escape(&e.to_string())))
        })
    }
}

fn read_manifest(file: &Path) -> std::result::Result<String, String> {
    use std::io::Read;
    let meta = std::fs::symlink_metadata(file).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file (a link or a directory)".into());
    }
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_MANIFEST + 1).read_to_string(&mut text))
        .map_err(|e| format!("cannot read it as UTF-8 text: {e}"))?;
    if text.len() as u64 > MAX_MANIFEST {
        return Err(format!("larger than {MAX_MANIFEST} bytes"));
    }
    Ok(text)
}

/// Every manifest in `<root>/usr/lib/update/drivers`, by file name (at most [`MAX_DRIVERS`]).
/// A second manifest with the same name probes as broken.
#[must_use]
pub fn load(root: &Path) -> Vec<&'static ExternalFactory> {
    let dir = Paths::new(root).resolve(DRIVER_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    update_core::sort::sort(&mut files);
    let mut out: Vec<&'static ExternalFactory> = Vec::new();
    for file in files.iter().take(MAX_DRIVERS) {
        let f = ExternalFactory::load(root, file);
        let f = if out.iter().any(|o| o.name == f.name) {
            f.refused(format!("another manifest already names {}", f.name))
        } else {
            f
        };
        out.push(f);
    }
    out
}

/// Puts external factories into probe order among the built-in ones (see [`BUILTIN_PRIORITY`]):
/// higher priority first, then by name; built-in ones keep their order.
pub(crate) fn merge(
    builtin: &[&'static dyn DriverFactory],
    external: Vec<&'static ExternalFactory>,
) -> Vec<&'static dyn DriverFactory> {
    let mut external = external;
    external.sort_by(|a, b| b.priority().cmp(&a.priority()).then(a.name.cmp(b.name)));
    let (first, last): (Vec<_>, Vec<_>) = external.into_iter().partition(|f| f.priority() > BUILTIN_PRIORITY);
    let as_dyn = |f: &'static ExternalFactory| -> &'static dyn DriverFactory { f };
    first.into_iter().map(as_dyn).chain(builtin.iter().copied()).chain(last.into_iter().map(as_dyn)).collect()
}

impl DriverFactory for ExternalFactory {
    fn name(&self) -> &'static str {
        self.name
    }

    fn install_hint(&self) -> &'static str {
        self.hint
    }

    fn capabilities(&self) -> Capabilities {
        let caps: Vec<Capability> = self.manifest().map_or_else(Vec::new, |m| {
            Capability::ALL.into_iter().filter(|c| m.capabilities.iter().any(|n| n == c.as_str())).collect()
        });
        Capabilities::of(&caps)
    }

    fn update_extensions(&self) -> &'static [&'static str] {
        self.extensions
    }

    fn probe(&self, ctx: &Context<'_>) -> Probe {
        let Some(m) = self.manifest() else {
            return Probe::Broken(self.broken());
        };
        if Command::new(&m.executable).under_root(&self.loaded.root).resolve().is_err() {
            return Probe::Declined(format!(
                "{} not found: {} is not an executable inside {}",
                self.name,
                m.executable.display(),
                self.loaded.root.display()
            ));
        }
        let answer = match self.call(ctx, "probe", None) {
            Ok(a) => a,
            Err(e) => return Probe::Broken(e),
        };
        let reason = answer.get("reason").and_then(serde_json::Value::as_str).map(escape).unwrap_or_default();
        match answer.get("probe").and_then(serde_json::Value::as_str) {
            Some("available") => Probe::Available(Box::new(ExternalDriver { factory: self.clone() })),
            Some("declined") => Probe::Declined(reason),
            Some("unconfigured") => Probe::Unconfigured(reason),
            Some("broken") => Probe::Broken(Error::DriverBroken { driver: self.name.into(), reason }),
            _ => Probe::Broken(Error::Other(format!(
                "{}: probe answered no 'probe' of available, declined, unconfigured or broken",
                self.who()
            ))),
        }
    }

    fn check_config(&self, config: &update_core::config::Config) -> Result<()> {
        let paths = Paths::new(&self.loaded.root);
        let events = NoEvents;
        let ctx = Context {
            paths: &paths,
            config,
            keyring: &update_core::keyring::Keyring::default(),
            events: &events,
            progress: &update_core::driver::NoProgress,
        };
        match self.call(&ctx, "check-config", None) {
            Err(e @ Error::NotSupported { .. }) => Err(e),
            // A driver that cannot be asked does not block the change; its install refuses.
            _ => Ok(()),
        }
    }
}

/// Events of a config check nobody watches.
struct NoEvents;

impl update_core::driver::Events for NoEvents {
    fn audit(&self, _: update_core::audit::AuditRecord) {}
    fn info(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn record(&self, action: AuditAction, outcome: Outcome) -> update_core::audit::AuditRecord {
        update_core::audit::AuditRecord::new(String::new(), String::new(), action, outcome)
    }
}

/// What the client sends (docs/reference/external-driver.md).
#[derive(Debug, Serialize)]
struct Request<'a> {
    protocol: Protocol,
    method: &'a str,
    driver: &'a str,
    root: &'a Path,
    state_dir: PathBuf,
    timeout_seconds: u64,
    config: ConfigView,
    #[serde(skip_serializing_if = "Option::is_none")]
    update: Option<UpdateRef<'a>>,
}

/// The settings a driver must honour or refuse.
#[derive(Debug, Serialize)]
struct ConfigView {
    verify: bool,
    signature_threshold: u32,
    boot_retry_limit: u32,
    source: Option<String>,
}

/// The update of `inspect` and `install`.
#[derive(Debug, Serialize)]
struct UpdateRef<'a> {
    path: &'a Path,
}

/// Handles event lines: progress, log lines, audit records.
struct EventSink<'a> {
    driver: &'static str,
    action: Option<AuditAction>,
    ctx: &'a Context<'a>,
    phase: Option<String>,
    done: u64,
    audits: usize,
}

impl<'a> EventSink<'a> {
    fn new(driver: &'static str, method: &str, ctx: &'a Context<'a>) -> Self {
        let action = match method {
            "install" => Some(AuditAction::Install),
            "rollback" => Some(AuditAction::Rollback),
            "mark-good" => Some(AuditAction::MarkGood),
            "mark-bad" => Some(AuditAction::MarkBad),
            _ => None,
        };
        Self { driver, action, ctx, phase: None, done: 0, audits: 0 }
    }

    /// Handles `line` if it is an event; `false` when it is part of the answer.
    fn take(&mut self, line: &str) -> bool {
        if line.len() > MAX_EVENT || !line.starts_with('{') {
            return false;
        }
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(line) else {
            return false;
        };
        if map.len() != 1 {
            return false;
        }
        let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_str).map(escape);
        let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        if let Some(p) = map.get("progress") {
            let phase = text(p, "phase").unwrap_or_default();
            if self.phase.as_deref() != Some(phase.as_str()) {
                self.finish();
                self.ctx.progress.start(&phase, num(p, "total"));
                self.phase = Some(phase);
                self.done = 0;
            }
            let done = num(p, "done");
            if done > self.done {
                self.ctx.progress.advance(done - self.done);
                self.done = done;
            }
        } else if let Some(serde_json::Value::String(s)) = map.get("log") {
            self.ctx.events.info(&format!("driver {}: {}", self.driver, escape(s)));
        } else if let Some(a) = map.get("audit") {
            self.audits += 1;
            match self.action {
                Some(action) if self.audits <= MAX_AUDITS => {
                    let outcome =
                        if text(a, "outcome").as_deref() == Some("failed") { Outcome::Failed } else { Outcome::Ok };
                    let mut record = self.ctx.events.record(action, outcome).driver(self.driver);
                    if let Some(s) = text(a, "subject") {
                        record = record.subject(s);
                    }
                    if let Some(m) = text(a, "message") {
                        record = record.message(m);
                    }
                    let v = |k| text(a, k).map(serde_json::Value::from);
                    self.ctx.events.audit(record.change(v("old"), v("new")));
                }
                Some(_) if self.audits == MAX_AUDITS + 1 => {
                    self.ctx.events.warn(&format!(
                        "driver {}: more than {MAX_AUDITS} audit records; the rest are dropped",
                        self.driver
                    ));
                }
                _ => {}
            }
        } else {
            return false;
        }
        true
    }

    fn finish(&mut self) {
        if self.phase.take().is_some() {
            self.ctx.progress.finish();
        }
    }
}

/// A probed external driver.
struct ExternalDriver {
    factory: ExternalFactory,
}

/// `status` as a driver answers it.
#[derive(Debug, Deserialize)]
struct WireStatus {
    #[serde(default)]
    compatible: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    booted: Option<String>,
    #[serde(default)]
    primary: Option<String>,
    #[serde(default)]
    slots: Vec<WireSlot>,
    #[serde(default)]
    fallback: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireSlot {
    name: String,
    state: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    booted: bool,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    tries_left: Option<u32>,
    #[serde(default)]
    devices: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct WireUpdate {
    version: String,
    #[serde(default)]
    compatible: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    images: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct WireInstalled {
    version: String,
    slot: String,
    #[serde(default)]
    reboot_required: bool,
}

#[derive(Debug, Deserialize)]
struct WireChange {
    slot: String,
    #[serde(default)]
    message: String,
}

impl ExternalDriver {
    fn version(&self, method: &str, text: &str) -> Result<update_core::Version> {
        update_core::parse_version(text).map_err(|e| {
            Error::Other(format!("{}: {method} answered a version that is not one: {e}", self.factory.who()))
        })
    }

    fn change(&self, ctx: &Context<'_>, method: &str) -> Result<SlotChange> {
        let answer = self.factory.call(ctx, method, None)?;
        let c: WireChange = self.factory.parse(method, &answer, "change")?;
        Ok(SlotChange { slot: escape(&c.slot), message: escape(&c.message) })
    }
}

impl Driver for ExternalDriver {
    fn name(&self) -> &'static str {
        self.factory.name
    }

    fn capabilities(&self) -> Capabilities {
        self.factory.capabilities()
    }

    fn reads_source(&self) -> bool {
        self.factory.manifest().is_some_and(|m| m.reads_source)
    }

    fn status(&mut self, ctx: &Context<'_>) -> Result<Status> {
        let answer = self.factory.call(ctx, "status", None)?;
        let s: WireStatus = self.factory.parse("status", &answer, "status")?;
        let opt = |v: Option<String>| v.map(|t| escape(&t));
        let mut slots = Vec::new();
        for w in s.slots.into_iter().take(16) {
            let state = match w.state.as_str() {
                "good" => SlotState::Good,
                "trying" => SlotState::Trying,
                "bad" => SlotState::Bad,
                _ => SlotState::Unknown,
            };
            slots.push(SlotStatus {
                name: escape(&w.name),
                state,
                version: w.version.as_deref().map(|v| self.version("status", v)).transpose()?,
                booted: w.booted,
                primary: w.primary,
                tries_left: w.tries_left,
                devices: w.devices.iter().take(64).map(|d| escape(d)).collect(),
            });
        }
        Ok(Status {
            driver: self.name().into(),
            compatible: opt(s.compatible),
            version: s.version.as_deref().map(|v| self.version("status", v)).transpose()?,
            booted: opt(s.booted),
            primary: opt(s.primary),
            slots,
            fallback: opt(s.fallback),
            components: Vec::new(),
        })
    }

    fn inspect(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<BundleInfo> {
        if !self.capabilities().has(Capability::Inspect) {
            return Err(self.not_supported("inspecting an update"));
        }
        let answer = self.factory.call(ctx, "inspect", Some(request))?;
        let u: WireUpdate = self.factory.parse("inspect", &answer, "update")?;
        Ok(BundleInfo {
            version: self.version("inspect", &u.version)?,
            compatible: escape(&u.compatible),
            size: u.size,
            images: u.images.iter().take(10_000).map(|i| escape(i)).collect(),
        })
    }

    fn install(&mut self, ctx: &Context<'_>, request: &InstallRequest) -> Result<InstallOutcome> {
        if request.stream.is_some() {
            return Err(self.not_supported("installing while streaming"));
        }
        let answer = self.factory.call(ctx, "install", Some(request))?;
        let i: WireInstalled = self.factory.parse("install", &answer, "installed")?;
        Ok(InstallOutcome {
            version: self.version("install", &i.version)?,
            slot: escape(&i.slot),
            reboot_required: i.reboot_required,
        })
    }

    fn mark_good(&mut self, ctx: &Context<'_>) -> Result<SlotChange> {
        self.change(ctx, "mark-good")
    }

    fn rollback(&mut self, ctx: &Context<'_>) -> Result<SlotChange> {
        self.change(ctx, "rollback")
    }

    fn mark_bad(&mut self, ctx: &Context<'_>) -> Result<SlotChange> {
        self.change(ctx, "mark-bad")
    }

    fn reboot(&mut self, ctx: &Context<'_>) -> Result<()> {
        self.factory.call(ctx, "reboot", None).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "apt"
executable = "/usr/lib/update/drivers/apt"
protocol = 1
capabilities = ["inspect", "signatures"]
priority = 40
install-hint = "apt (apt install apt)"
reads-source = true
"#;

    #[test]
    fn a_good_manifest_parses() {
        let m = Manifest::parse("apt", GOOD).unwrap();
        assert_eq!(m.name, "apt");
        assert_eq!(m.priority, 40);
        assert!(m.reads_source);
    }

    #[test]
    fn hostile_manifests_are_refused_with_the_reason() {
        let with = |from: &str, to: &str| GOOD.replace(from, to);
        for (stem, text, want) in [
            ("apt", with("protocol = 1", "protocol = 2"), "speaks protocol major 2, this update speaks 1"),
            ("apt", with("name = \"apt\"", "name = \"yum\""), "is not the file's name"),
            ("auto", with("name = \"apt\"", "name = \"auto\""), "not a driver name"),
            ("apt", with("name = \"apt\"", "name = \"a\\u001b[2J\""), "a\\u{1b}[2J"),
            ("apt", with("/usr/lib/update/drivers/apt", "../../bin/sh"), "not an absolute path"),
            ("apt", with("/usr/lib/update/drivers/apt", "/usr/../../bin/sh"), "without '..'"),
            ("apt", with("\"inspect\"", "\"telepathy\""), "unknown capability 'telepathy'"),
            ("apt", with("priority = 40", "priority = 1000"), "priority 1000 is not 0-100"),
            ("apt", with("(apt install apt)", "\\n\\u001b[2J"), "install-hint must be one line"),
            ("apt", format!("{GOOD}surprise = 1\n"), "unknown field `surprise`"),
            ("apt", format!("{GOOD}timeout-seconds = 0\n"), "timeout-seconds is not 1-86400"),
            ("apt", "name = [".into(), "unclosed array"),
            ("apt", String::new(), "missing field"),
        ] {
            let e = Manifest::parse(stem, &text).unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
            assert!(!e.chars().any(char::is_control), "unescaped: {e:?}");
        }
    }

    #[test]
    fn files_that_are_not_manifests_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, "#".repeat(usize::try_from(MAX_MANIFEST).unwrap() + 1)).unwrap();
        assert!(read_manifest(&big).unwrap_err().contains("larger than"));
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        assert!(read_manifest(&link).unwrap_err().contains("not a regular file"));
        let binary = dir.path().join("bin.toml");
        std::fs::write(&binary, [0xff, 0xfe, 0]).unwrap();
        assert!(read_manifest(&binary).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn priority_places_external_drivers_around_the_built_in_ones() {
        let dir = tempfile::tempdir().unwrap();
        let drivers = dir.path().join("usr/lib/update/drivers");
        std::fs::create_dir_all(&drivers).unwrap();
        for (name, priority) in [("early", 90), ("late", 10), ("later", 10), ("native", 99)] {
            let text = GOOD
                .replace("\"apt\"", &format!("\"{name}\""))
                .replace("priority = 40", &format!("priority = {priority}"));
            std::fs::write(drivers.join(format!("{name}.toml")), text).unwrap();
        }
        let table = crate::DriverTable::new(Vec::new())
            .with_absent(vec![crate::AbsentDriver { name: "native", hint: "" }])
            .with_external(dir.path());
        let order: Vec<&str> = table.factories().iter().map(|f| f.name()).collect();
        assert_eq!(order, ["early", "late", "later", "native"]);
        let native = load(dir.path()).into_iter().find(|f| f.name == "native").unwrap();
        assert!(native.manifest().is_some());
        assert!(
            table.factory("native").unwrap().capabilities() == Capabilities::default(),
            "a built-in name is refused"
        );
        // Loading the same files again reuses the same factories.
        assert!(std::ptr::eq(load(dir.path())[0], load(dir.path())[0]));
    }
}
