//! Progress bars on stderr, only when stderr is a terminal.
//!
//! A small hand-written bar (one line, redrawn at most ten times a second) keeps the device
//! binary small; it shows the phase, a bar, bytes done of the total and the rate.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use update_core::driver::Progress;

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
