//! The out-of-tree handler client: a component of a kind libupdate does not build in is handled
//! by the executable `/usr/lib/update/handlers/<kind>` (under the device root), run once per
//! phase with the versioned protocol of docs/components.md `## Out-of-tree handlers`.
//!
//! Per phase, the client runs the executable through [`update_core::process::Command`]
//! (`under_root`: only a program inside the root runs; the phase's time limit kills it and
//! everything it started) with the JSON [`Request`] on standard input and, for `install`, the
//! verified payload on a FIFO whose path is in the request's `payload`. The handler answers one
//! JSON [`Response`] on standard output. The answer is refused — the phase fails — when the
//! handler exits non-zero, answers `ok: false`, prints anything but one JSON object, prints more
//! than [`MAX_RESPONSE`] bytes, answers an unknown protocol major, or does not finish in time.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use update_core::component::{Activation, Component, ComponentStatus, DeviceComponent, Handler, HandlerContext, Kind};
use update_core::external;
use update_core::process::{self, Command};
use update_core::{Error, Result};

use crate::payload::Checked;

/// The protocol major version this client speaks; a handler answering another major is refused.
pub const PROTOCOL_MAJOR: u32 = 1;
/// The protocol minor version this client speaks (additions only; both sides ignore unknown
/// fields).
pub const PROTOCOL_MINOR: u32 = 0;
/// The most a handler may print on standard output (its answer).
pub use update_core::external::MAX_RESPONSE;
/// A protocol version.
pub use update_core::external::Protocol;
/// Where out-of-tree handlers are installed (under the device root).
pub const HANDLER_DIR: &str = "/usr/lib/update/handlers";

/// What the client sends on the handler's standard input (docs/components.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The client's protocol version.
    pub protocol: Protocol,
    /// `status`, `check`, `install`, `activate`, `health`, `commit` or `rollback`.
    pub phase: String,
    /// The transaction id (`status` outside a transaction: empty).
    pub transaction: String,
    /// The device root (`/` on a device): every path in the request already includes it.
    pub root: PathBuf,
    /// The component's private state directory (exists).
    pub state_dir: PathBuf,
    /// The phase's time limit in seconds.
    pub timeout_seconds: u64,
    /// The device's entry for the component (`update.toml` `[components.<name>]`).
    pub device: DeviceComponent,
    /// The verified component (absent for `status`).
    pub component: Option<Component>,
    /// `install` only: the FIFO to read the verified payload from (exactly `component.size`
    /// bytes, then end of file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<PathBuf>,
}

/// What a handler answers on standard output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// The handler's protocol version (its major must be [`PROTOCOL_MAJOR`]).
    pub protocol: Protocol,
    /// Whether the phase succeeded.
    pub ok: bool,
    /// Why it failed (with `ok: false`).
    #[serde(default)]
    pub error: Option<String>,
    /// `status` (required for the `status` phase).
    #[serde(default)]
    pub status: Option<ComponentStatus>,
    /// `activate`: when the new version runs (`now` when absent).
    #[serde(default)]
    pub activation: Option<Activation>,
}

/// The client for one external kind.
#[derive(Debug, Clone)]
pub struct ExternalHandler {
    kind: String,
}

impl ExternalHandler {
    /// The client for `kind` (`/usr/lib/update/handlers/<kind>`).
    #[must_use]
    pub fn new(kind: &str) -> Self {
        Self { kind: kind.to_owned() }
    }

    fn program(&self) -> PathBuf {
        Path::new(HANDLER_DIR).join(&self.kind)
    }

    fn request(&self, ctx: &HandlerContext<'_>, phase: &str, component: Option<&Component>) -> Request {
        Request {
            protocol: Protocol { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR },
            phase: phase.to_owned(),
            transaction: ctx.transaction.to_owned(),
            root: ctx.paths.root().to_owned(),
            state_dir: ctx.state_dir.clone(),
            timeout_seconds: ctx.timeout.as_secs().max(1),
            device: ctx.device.clone(),
            component: component.cloned(),
            payload: None,
        }
    }

    fn command(&self, ctx: &HandlerContext<'_>, request: &Request) -> Result<Command> {
        external::command(&self.program(), ctx.paths.root(), ctx.timeout, MAX_RESPONSE, request)
    }

    /// Checks the handler's answer to `phase` (update-core's shared rules, then the fields).
    fn answer(&self, phase: &str, out: &process::Output) -> Result<Response> {
        let who = format!("out-of-tree {} handler {}", self.kind, self.program().display());
        let peer = external::Peer { who: &who, noun: "handler", major: PROTOCOL_MAJOR };
        let value = external::answer(peer, phase, out, &out.stdout, out.truncated)?;
        let response: Response = serde_json::from_value(value.clone())
            .map_err(|e| Error::Other(format!("{who}: {phase} answered a malformed response: {e}")))?;
        match external::failure(peer, phase, out, &value) {
            Some(why) => Err(Error::Other(why)),
            None => Ok(response),
        }
    }

    fn run(&self, ctx: &HandlerContext<'_>, phase: &str, component: Option<&Component>) -> Result<Response> {
        let request = self.request(ctx, phase, component);
        let out = self.command(ctx, &request)?.run()?;
        self.answer(phase, &out)
    }
}

/// Removes the FIFO when dropped.
struct Fifo(PathBuf);

impl Fifo {
    fn create(path: PathBuf) -> Result<Self> {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
        rustix::fs::mknodat(rustix::fs::CWD, &path, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .map_err(|e| Error::io("create FIFO", &path, e.into()))?;
        Ok(Self(path))
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Streams the payload into the FIFO once the handler opens it; `Ok(false)` when the handler
/// finished without opening it.
fn feed(fifo: &Path, payload: &mut Checked<'_>, finished: &dyn Fn() -> bool) -> Result<bool> {
    let fd = loop {
        match rustix::fs::open(fifo, OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => break fd,
            Err(Errno::NXIO) if !finished() => std::thread::sleep(Duration::from_millis(5)),
            Err(Errno::NXIO) => return Ok(false),
            Err(e) => return Err(Error::io("open FIFO", fifo, e.into())),
        }
    };
    rustix::fs::fcntl_setfl(&fd, OFlags::empty()).map_err(|e| Error::io("set blocking", fifo, e.into()))?;
    let mut pipe = File::from(fd);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = payload.read(&mut buf).map_err(|e| Error::verification("payload", e.to_string()))?;
        if n == 0 {
            return Ok(true);
        }
        pipe.write_all(&buf[..n]).map_err(|e| Error::io("write the payload to", fifo, e))?;
    }
}

impl Handler for ExternalHandler {
    fn kind(&self) -> Kind {
        Kind::External(self.kind.clone())
    }

    fn status(&mut self, ctx: &HandlerContext<'_>) -> Result<ComponentStatus> {
        self.run(ctx, "status", None)?
            .status
            .ok_or_else(|| Error::Other(format!("out-of-tree {} handler: status answered without a status", self.kind)))
    }

    fn check(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        let program = ctx.paths.resolve(self.program());
        Command::new(self.program()).under_root(ctx.paths.root()).resolve().map_err(|_| {
            Error::Refused(format!(
                "component {}: no handler for kind {}: {} is not an executable inside the device root",
                component.name,
                self.kind,
                program.display()
            ))
        })?;
        self.run(ctx, "check", Some(component)).map(|_| ())
    }

    fn install(&mut self, ctx: &HandlerContext<'_>, component: &Component, payload: &mut dyn Read) -> Result<()> {
        let fifo = Fifo::create(ctx.state_dir.join(".update-payload.fifo"))?;
        let mut request = self.request(ctx, "install", Some(component));
        request.payload = Some(fifo.0.clone());
        let command = self.command(ctx, &request)?;
        let mut checked = Checked::new(component, payload);
        let (fed, out) = std::thread::scope(|s| {
            let runner = s.spawn(|| command.run());
            let fed = feed(&fifo.0, &mut checked, &|| runner.is_finished());
            let out = runner.join().unwrap_or_else(|_| Err(Error::Other("the handler runner panicked".into())));
            (fed, out)
        });
        let out = out?;
        let fed = fed.and_then(|read| {
            checked.finish()?;
            if read {
                Ok(())
            } else {
                Err(Error::Other(format!(
                    "out-of-tree {} handler: install finished without reading the payload from {}",
                    self.kind,
                    fifo.0.display()
                )))
            }
        });
        let answer = self.answer("install", &out);
        // The handler's own failure explains more than a broken pipe.
        answer?;
        fed
    }

    fn activate(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<Activation> {
        Ok(self.run(ctx, "activate", Some(component))?.activation.unwrap_or(Activation::Now))
    }

    fn health(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        self.run(ctx, "health", Some(component)).map(|_| ())
    }

    fn commit(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        self.run(ctx, "commit", Some(component)).map(|_| ())
    }

    fn rollback(&mut self, ctx: &HandlerContext<'_>, component: &Component) -> Result<()> {
        self.run(ctx, "rollback", Some(component)).map(|_| ())
    }
}
