//! A clock for tests: fixed until moved.

use std::sync::{Arc, Mutex};

use ehrshare_core::clock::Clock;
use time::{Duration, OffsetDateTime};

/// A clock that returns the instant it was set to. Clones share the same instant.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<Mutex<OffsetDateTime>>);

impl FixedClock {
    /// A clock fixed at `at`.
    pub fn at(at: OffsetDateTime) -> FixedClock {
        FixedClock(Arc::new(Mutex::new(at)))
    }

    /// A clock fixed at 2026-01-15 09:30 UTC (a Thursday morning in Hong Kong).
    pub fn standard() -> FixedClock {
        FixedClock::at(time::macros::datetime!(2026-01-15 09:30 UTC))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap() = at;
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}
