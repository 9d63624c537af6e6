//! Progress bars on stderr, only when stderr is a terminal.

use std::cell::RefCell;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use update_core::driver::Progress;

/// An indicatif bar per phase.
#[derive(Debug, Default)]
pub struct TerminalProgress {
    bar: RefCell<Option<ProgressBar>>,
}

impl TerminalProgress {
    /// A bar when stderr is a terminal, nothing otherwise.
    #[must_use]
    pub fn for_stderr() -> Option<Self> {
        std::io::stderr().is_terminal().then(Self::default)
    }
}

impl Progress for TerminalProgress {
    fn start(&self, label: &str, total: u64) {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg:>12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        *self.bar.borrow_mut() = Some(bar);
    }
    fn advance(&self, n: u64) {
        if let Some(b) = self.bar.borrow().as_ref() {
            b.inc(n);
        }
    }
    fn finish(&self) {
        if let Some(b) = self.bar.borrow_mut().take() {
            b.finish();
        }
    }
}
