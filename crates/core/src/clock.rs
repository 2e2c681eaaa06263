//! The clock as a capability.
//!
//! Rules that depend on time (consent expiry, care windows, SDM authority at 16, lapsed
//! applications) take `now` as an argument. Callers in `app` obtain it from a [`Clock`], which
//! production wires to the system clock and tests to a fixed, movable clock.

use time::{Date, OffsetDateTime, UtcOffset};

/// Hong Kong's offset from UTC (no daylight saving since 1979). Calendar days, office
/// hours and notice days are Hong Kong's; every rule that needs one converts here.
pub const HONG_KONG: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// `at` as Hong Kong's wall clock shows it.
pub fn in_hong_kong(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(HONG_KONG)
}

/// The calendar date in Hong Kong at `now`.
pub fn hong_kong_date(now: OffsetDateTime) -> Date {
    in_hong_kong(now).date()
}

/// A source of the current UTC time. Implementations live outside `core`.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}
