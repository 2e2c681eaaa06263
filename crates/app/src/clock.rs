//! The production clock.

use ehrshare_core::clock::Clock;
use time::OffsetDateTime;

/// Reads the operating system's clock, in UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The injected clock as the store keeps time: to the microsecond. Every use case reads this,
/// so an instant an answer acknowledges (a deposit's `updated_at`) is the one read back later.
#[derive(Debug)]
pub(crate) struct Stored(pub(crate) std::sync::Arc<dyn Clock>);

impl Clock for Stored {
    fn now(&self) -> OffsetDateTime {
        ehrshare_core::audit::entry::truncate_to_micros(self.0.now())
    }
}
