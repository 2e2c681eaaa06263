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
