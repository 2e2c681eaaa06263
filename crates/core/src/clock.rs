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

/// A Hong Kong wall-clock time as a form's `datetime-local` field sends it
/// (`YYYY-MM-DDTHH:MM`, seconds optional); `None` if it is not one.
pub fn parse_hong_kong_local(text: &str) -> Option<OffsetDateTime> {
    use time::macros::format_description;
    let text = text.trim();
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, minutes)
        .or_else(|_| time::PrimitiveDateTime::parse(text, seconds))
        .ok()
        .map(|t| t.assume_offset(HONG_KONG))
}

/// The calendar date in Hong Kong at `now`.
pub fn hong_kong_date(now: OffsetDateTime) -> Date {
    in_hong_kong(now).date()
}

/// The Hong Kong calendar days `[from, to]` (either open) as the instants `[start, end)`
/// they span: a period asked for in days (an access log's filter) means Hong Kong's days.
pub fn hong_kong_days(
    from: Option<Date>,
    to: Option<Date>,
) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    let start = |d: Date| d.midnight().assume_offset(HONG_KONG);
    // The last day the calendar has ends when it ends: no day after it to start.
    (from.map(start), to.and_then(|d| d.next_day().map(start)))
}

/// A source of the current UTC time. Implementations live outside `core`.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    #[test]
    fn a_period_of_days_is_hong_kongs() {
        use time::macros::date;
        assert_eq!(
            super::hong_kong_days(Some(date!(2026 - 12 - 01)), Some(date!(2026 - 12 - 07))),
            (
                Some(datetime!(2026-11-30 16:00 UTC)),
                Some(datetime!(2026-12-07 16:00 UTC))
            )
        );
        assert_eq!(super::hong_kong_days(None, None), (None, None));
        assert_eq!(
            super::hong_kong_days(None, Some(time::Date::MAX)),
            (None, None),
            "no overflow at the end of the calendar"
        );
    }

    #[test]
    fn a_forms_local_time_is_hong_kongs() {
        assert_eq!(
            super::parse_hong_kong_local("2026-12-14T09:30"),
            Some(datetime!(2026-12-14 01:30 UTC))
        );
        assert_eq!(
            super::parse_hong_kong_local(" 2026-12-14T09:30:15 "),
            Some(datetime!(2026-12-14 01:30:15 UTC))
        );
        for bad in [
            "",
            "2026-12-14",
            "2026-13-01T00:00",
            "14/12/2026 09:30",
            "2026-12-14T24:00",
        ] {
            assert_eq!(super::parse_hong_kong_local(bad), None, "{bad}");
        }
    }
}
