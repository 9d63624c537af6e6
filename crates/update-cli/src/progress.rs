//! Progress of `update` and `update --now`, from the drivers' [`Progress`] callbacks:
//!
//! - on stderr, when it is a terminal: a bar ([`TerminalProgress`]); a small hand-written one
//!   (one line, redrawn at most ten times a second) keeps the device binary small; it shows the
//!   phase, a bar, bytes done of the total and the rate;
//! - on stderr, when it is not (journald, a pipe): plain lines at every tenth ([`PlainProgress`]);
//! - on a file descriptor the caller gives (`--progress-fd N`): JSON Lines ([`JsonLines`],
//!   schema `libupdate/progress/1`).
//!
//! [`Fanout`] sends each callback to all of them.

use std::cell::RefCell;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use update_core::driver::Progress;
use update_core::{Error, Result};

#[derive(Debug)]
struct Bar {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    drawn: Option<Instant>,
}

/// A progress bar per phase, drawn on stderr.
#[derive(Debug, Default)]
pub struct TerminalProgress {
    bar: RefCell<Option<Bar>>,
}

impl TerminalProgress {
    /// A bar when stderr is a terminal, nothing otherwise.
    #[must_use]
    pub fn for_stderr() -> Option<Self> {
        std::io::stderr().is_terminal().then(Self::default)
    }
}

const MIB: f64 = 1024.0 * 1024.0;

fn draw(b: &Bar) {
    const WIDTH: usize = 30;
    let filled =
        (b.done.min(b.total) * WIDTH as u64).checked_div(b.total).and_then(|f| usize::try_from(f).ok()).unwrap_or(0);
    let secs = b.started.elapsed().as_secs_f64().max(0.001);
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let (done, total, rate) = (b.done as f64 / MIB, b.total as f64 / MIB, b.done as f64 / MIB / secs);
    let bar = format!("{}{}", "=".repeat(filled), " ".repeat(WIDTH - filled));
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{:>12} [{bar}] {done:.0}/{total:.0} MiB {rate:.0} MiB/s ", b.label);
    let _ = err.flush();
}

impl Progress for TerminalProgress {
    fn start(&self, label: &str, total: u64) {
        *self.bar.borrow_mut() =
            Some(Bar { label: label.to_owned(), total, done: 0, started: Instant::now(), drawn: None });
    }
    fn advance(&self, n: u64) {
        if let Some(b) = self.bar.borrow_mut().as_mut() {
            b.done += n;
            if b.drawn.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                draw(b);
                b.drawn = Some(Instant::now());
            }
        }
    }
    fn finish(&self) {
        if let Some(b) = self.bar.borrow_mut().take() {
            draw(&b);
            eprintln!();
        }
    }
}

/// A phase's state for the line-based reporters.
#[derive(Debug)]
struct Phase {
    label: String,
    total: u64,
    done: u64,
    /// The last reported percentage (or time, when the total is unknown).
    reported: Option<u64>,
    reported_at: Instant,
}

impl Phase {
    fn new(label: &str, total: u64) -> Self {
        Self { label: label.to_owned(), total, done: 0, reported: None, reported_at: Instant::now() }
    }

    /// Whole percent done, when the total is known.
    fn percent(&self) -> Option<u64> {
        (self.done.min(self.total) * 100).checked_div(self.total)
    }
}

/// Plain progress lines on stderr, for when it is not a terminal (journald keeps every line, so
/// there are no redraws): `update: installing 30% (3.6 of 12.0 MiB)` at every tenth.
#[derive(Debug, Default)]
pub struct PlainProgress {
    phase: RefCell<Option<Phase>>,
}

impl PlainProgress {
    /// Lines when stderr is not a terminal, nothing otherwise.
    #[must_use]
    pub fn for_stderr() -> Option<Self> {
        (!std::io::stderr().is_terminal()).then(Self::default)
    }
}

#[allow(clippy::cast_precision_loss, reason = "display only")]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

impl Progress for PlainProgress {
    fn start(&self, label: &str, total: u64) {
        if total > 0 {
            eprintln!("update: {label} 0% (0.0 of {:.1} MiB)", mib(total));
        } else {
            eprintln!("update: {label}");
        }
        let mut p = Phase::new(label, total);
        p.reported = Some(0);
        *self.phase.borrow_mut() = Some(p);
    }
    fn advance(&self, n: u64) {
        if let Some(p) = self.phase.borrow_mut().as_mut() {
            p.done += n;
            if let Some(pct) = p.percent() {
                let tenth = pct / 10 * 10;
                if p.reported.is_none_or(|r| tenth > r) && tenth < 100 {
                    eprintln!("update: {} {tenth}% ({:.1} of {:.1} MiB)", p.label, mib(p.done), mib(p.total));
                    p.reported = Some(tenth);
                }
            }
        }
    }
    fn finish(&self) {
        if let Some(p) = self.phase.borrow_mut().take() {
            eprintln!("update: {} done ({:.1} MiB)", p.label, mib(p.done));
        }
    }
}

/// JSON Lines on a file descriptor the caller gave (`--progress-fd N`), one object a line:
/// `{"schema": "libupdate/progress/1", "event": "start|progress|finish", "phase", "bytes-done",
/// "bytes-total", "percent"}` (`bytes-total` and `percent` are null when the size is unknown).
/// A `progress` line is written when the whole percentage changes, or every 100 ms while the
/// total is unknown. A reader that went away does not stop the install: write errors are dropped.
#[derive(Debug)]
pub struct JsonLines {
    out: RefCell<File>,
    phase: RefCell<Option<Phase>>,
}

impl JsonLines {
    /// Progress lines on `file`.
    #[must_use]
    pub fn new(file: File) -> Self {
        Self { out: RefCell::new(file), phase: RefCell::new(None) }
    }

    fn emit(&self, event: &str, p: &Phase) {
        let line = serde_json::json!({
            "schema": crate::json::Doc::Progress.id(),
            "event": event,
            "phase": p.label,
            "bytes-done": p.done,
            "bytes-total": (p.total > 0).then_some(p.total),
            "percent": p.percent(),
        });
        let mut out = self.out.borrow_mut();
        let _ = writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default()).and_then(|()| out.flush());
    }
}

impl Progress for JsonLines {
    fn start(&self, label: &str, total: u64) {
        let mut p = Phase::new(label, total);
        self.emit("start", &p);
        p.reported = p.percent();
        *self.phase.borrow_mut() = Some(p);
    }
    fn advance(&self, n: u64) {
        let mut phase = self.phase.borrow_mut();
        if let Some(p) = phase.as_mut() {
            p.done += n;
            let due = match p.percent() {
                Some(pct) => p.reported != Some(pct),
                None => p.reported_at.elapsed() >= Duration::from_millis(100),
            };
            if due {
                self.emit("progress", p);
                p.reported = p.percent();
                p.reported_at = Instant::now();
            }
        }
    }
    fn finish(&self) {
        if let Some(p) = self.phase.borrow_mut().take() {
            self.emit("finish", &p);
        }
    }
}

/// Every callback to each reporter in turn.
#[derive(Default)]
pub struct Fanout(pub Vec<Box<dyn Progress>>);

impl Progress for Fanout {
    fn start(&self, label: &str, total: u64) {
        self.0.iter().for_each(|p| p.start(label, total));
    }
    fn advance(&self, n: u64) {
        self.0.iter().for_each(|p| p.advance(n));
    }
    fn finish(&self) {
        self.0.iter().for_each(|p| p.finish());
    }
}

/// Opens the caller's file descriptor `fd` for progress lines (`--progress-fd`).
///
/// The descriptor is reached through `/proc/self/fd` (no `unsafe` needed to adopt a raw
/// descriptor): it must be open, and open for writing (`/proc/self/fdinfo` tells), so a
/// descriptor opened for reading is never written through a new writable open of its file. A
/// socket cannot be opened that way and is refused: pass a pipe, a file or a terminal.
///
/// # Errors
/// [`Error::Usage`] (exit 2) naming the descriptor: 0 or 1 (standard input and output), not
/// open, open read-only, or not a pipe, file or terminal.
pub fn open_fd(fd: usize) -> Result<File> {
    let bad = |why: String| Error::Usage(format!("--progress-fd {fd}: {why}"));
    if fd <= 1 {
        return Err(bad("standard input and output cannot carry progress; use 2 or a descriptor of your own".into()));
    }
    if !std::path::Path::new("/proc/self/fd").is_dir() {
        return Err(bad("/proc is not mounted, so the descriptor cannot be reached".into()));
    }
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .map_err(|_| bad(format!("file descriptor {fd} is not open")))?;
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .ok_or_else(|| bad(format!("cannot read the flags of file descriptor {fd}")))?;
    // O_ACCMODE: 0 read-only, 1 write-only, 2 read-write.
    if flags & 0o3 == 0 {
        return Err(bad(format!("file descriptor {fd} is open for reading only")));
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/self/fd/{fd}"))
        .map_err(|e| bad(format!("file descriptor {fd} cannot be written (a socket?): {e}")))
}
