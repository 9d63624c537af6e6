//! Install progress as `Progress(percent, phase)` signals: the library's
//! [`update_core::driver::Progress`] reports bytes per phase on the install thread; this sends
//! a line to the signal task only when the percentage or the phase changes.

use std::cell::RefCell;

use tokio::sync::mpsc::UnboundedSender;
use update_core::driver::Progress;

/// One `Progress` signal: percent of the current phase (0-100) and the phase's label.
pub type Step = (u32, String);

/// Sends each change of phase or percentage.
pub struct SignalProgress {
    tx: UnboundedSender<Step>,
    phase: RefCell<Phase>,
}

#[derive(Default)]
struct Phase {
    label: String,
    total: u64,
    done: u64,
    sent: Option<u32>,
}

impl SignalProgress {
    /// Progress that sends to `tx`.
    pub fn new(tx: UnboundedSender<Step>) -> Self {
        Self { tx, phase: RefCell::new(Phase::default()) }
    }

    fn send(&self, phase: &mut Phase, percent: u32) {
        if phase.sent != Some(percent) {
            phase.sent = Some(percent);
            // The receiver is gone only when the service shuts down.
            let _ = self.tx.send((percent, phase.label.clone()));
        }
    }
}

impl Progress for SignalProgress {
    fn start(&self, label: &str, total: u64) {
        let mut p = self.phase.borrow_mut();
        *p = Phase { label: label.to_owned(), total, done: 0, sent: None };
        self.send(&mut p, 0);
    }

    fn advance(&self, n: u64) {
        let mut p = self.phase.borrow_mut();
        p.done = p.done.saturating_add(n);
        if let Some(share) = p.done.min(p.total).saturating_mul(100).checked_div(p.total) {
            self.send(&mut p, u32::try_from(share).unwrap_or(100));
        }
    }

    fn finish(&self) {
        let mut p = self.phase.borrow_mut();
        self.send(&mut p, 100);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_each_change_once_and_100_at_the_end() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let p = SignalProgress::new(tx);
        p.start("writing rootfs", 1000);
        for _ in 0..100 {
            p.advance(5);
        }
        p.finish();
        let mut got = Vec::new();
        while let Ok(s) = rx.try_recv() {
            got.push(s.0);
        }
        assert_eq!(got.first(), Some(&0));
        assert_eq!(got.last(), Some(&100));
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert_eq!(got.len(), 52, "0 to 50, then 100 at the end: {got:?}");
    }
}
