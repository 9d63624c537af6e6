//! [`Clock`]: where the server's handlers take `now` from. The store and the rollout
//! decisions take the time as an argument; only this type reads the system clock, so tests
//! can move time on (a wave interval of an hour passes in a call).

use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

/// The system clock, or a manual one for tests.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<OffsetDateTime>>>,
}

impl Clock {
    /// The system clock (UTC).
    #[must_use]
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `start` until [`Clock::advance`] moves it.
    #[must_use]
    pub fn manual(start: OffsetDateTime) -> Self {
        Self { manual: Some(Arc::new(Mutex::new(start))) }
    }

    /// The time now.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        match &self.manual {
            None => OffsetDateTime::now_utc(),
            Some(t) => *t.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Moves a manual clock on by `by` (the system clock ignores it).
    pub fn advance(&self, by: time::Duration) {
        if let Some(t) = &self.manual {
            let mut t = t.lock().unwrap_or_else(PoisonError::into_inner);
            *t += by;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = time::macros::datetime!(2026-03-01 10:00 UTC);
        let c = Clock::manual(start);
        assert_eq!(c.now(), start);
        c.clone().advance(time::Duration::hours(2));
        assert_eq!(c.now(), start + time::Duration::hours(2));
        assert!(Clock::system().now() > start);
    }
}
