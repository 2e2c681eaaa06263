//! The clock as a capability.
//!
//! Rules that depend on time (consent expiry, care windows, SDM authority at 16, lapsed
//! applications) take `now` as an argument. Callers in `app` obtain it from a [`Clock`], which
//! production wires to the system clock and tests to a fixed, movable clock.

use time::OffsetDateTime;

/// A source of the current UTC time. Implementations live outside `core`.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}
