//! FHIR search values (issue 25, item 3), parsed as R4's search rules define them
//! (http://hl7.org/fhir/R4/search.html): a date parameter is a prefix and a date, dateTime or
//! instant of any precision, which stands for the range it covers; a time given without a zone
//! is Hong Kong's (the server's local time, as R4 asks). Pure: the store and the use cases
//! only compare instants with [`DateParam::matches`].

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::clock::HONG_KONG;

/// A date parameter's comparator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    /// Starts after: for an instant, as `gt`.
    Sa,
    /// Ends before: for an instant, as `lt`.
    Eb,
}

/// One date parameter: a prefix and the range `[low, high)` its value covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateParam {
    pub prefix: Prefix,
    pub low: OffsetDateTime,
    pub high: OffsetDateTime,
}

/// Why a date parameter is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateParamError {
    #[error("the prefix ap (approximately) is not supported")]
    Approximate,
    #[error("a date is YYYY, YYYY-MM, YYYY-MM-DD or a dateTime such as 2026-12-07T10:00:00+08:00")]
    Format,
}

impl DateParam {
    /// Parses `ge2026-12`, `2026-12-07`, `lt2026-12-07T10:00:00Z`, ...
    pub fn parse(text: &str) -> Result<DateParam, DateParamError> {
        let (prefix, value) = match text.get(..2) {
            Some("eq") => (Prefix::Eq, &text[2..]),
            Some("ne") => (Prefix::Ne, &text[2..]),
            Some("gt") => (Prefix::Gt, &text[2..]),
            Some("lt") => (Prefix::Lt, &text[2..]),
            Some("ge") => (Prefix::Ge, &text[2..]),
            Some("le") => (Prefix::Le, &text[2..]),
            Some("sa") => (Prefix::Sa, &text[2..]),
            Some("eb") => (Prefix::Eb, &text[2..]),
            Some("ap") => return Err(DateParamError::Approximate),
            _ => (Prefix::Eq, text),
        };
        let (low, high) = range(value).ok_or(DateParamError::Format)?;
        Ok(DateParam { prefix, low, high })
    }

    /// Whether the instant `at` satisfies the parameter.
    pub fn matches(&self, at: OffsetDateTime) -> bool {
        self.matches_range(at, at.saturating_add(Duration::MICROSECOND))
    }

    /// Whether a target that covers `[low, high)` satisfies the parameter, as R4 compares
    /// ranges: `eq` when the search range contains the target's, `gt` when the target
    /// reaches past it, `ge` either, `sa` when the target starts after it (and the mirror
    /// images); `ne` when `eq` does not hold.
    pub fn matches_range(&self, low: OffsetDateTime, high: OffsetDateTime) -> bool {
        let contains = self.low <= low && high <= self.high;
        match self.prefix {
            Prefix::Eq => contains,
            Prefix::Ne => !contains,
            Prefix::Gt => high > self.high,
            Prefix::Lt => low < self.low,
            Prefix::Ge => high > self.high || contains,
            Prefix::Le => low < self.low || contains,
            Prefix::Sa => low >= self.high,
            Prefix::Eb => high <= self.low,
        }
    }
}

fn number<T: std::str::FromStr>(s: &str, digits: usize) -> Option<T> {
    (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The range `[low, high)` a FHIR date, dateTime or instant of any precision covers (a time
/// without a zone is Hong Kong's).
pub fn range(value: &str) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let at = |date: Date, time: Time, offset: UtcOffset| {
        PrimitiveDateTime::new(date, time).assume_offset(offset)
    };
    let (date_part, time_part) = match value.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (value, None),
    };
    let mut parts = date_part.split('-');
    let year: i32 = number(parts.next()?, 4)?;
    let month = parts
        .next()
        .map(|m| number::<u8>(m, 2))
        .map(|m| m.and_then(|m| Month::try_from(m).ok()));
    let day = parts.next().map(|d| number::<u8>(d, 2));
    if parts.next().is_some() {
        return None;
    }
    match (month, day, time_part) {
        (None, None, None) => {
            let low = at(
                Date::from_calendar_date(year, Month::January, 1).ok()?,
                Time::MIDNIGHT,
                HONG_KONG,
            );
            let high = at(
                Date::from_calendar_date(year + 1, Month::January, 1).ok()?,
                Time::MIDNIGHT,
                HONG_KONG,
            );
            Some((low, high))
        }
        (Some(Some(month)), None, None) => {
            let first = Date::from_calendar_date(year, month, 1).ok()?;
            let next = first.checked_add(Duration::days(i64::from(month.length(year))))?;
            Some((
                at(first, Time::MIDNIGHT, HONG_KONG),
                at(next, Time::MIDNIGHT, HONG_KONG),
            ))
        }
        (Some(Some(month)), Some(Some(day)), None) => {
            let date = Date::from_calendar_date(year, month, day).ok()?;
            let low = at(date, Time::MIDNIGHT, HONG_KONG);
            Some((low, low.checked_add(Duration::days(1))?))
        }
        (Some(Some(month)), Some(Some(day)), Some(t)) => {
            let date = Date::from_calendar_date(year, month, day).ok()?;
            let (clock, offset) = split_zone(t)?;
            let mut fields = clock.split(':');
            let hour: u8 = number(fields.next()?, 2)?;
            let minute: u8 = number(fields.next()?, 2)?;
            let (second, precision) = match fields.next() {
                None => (0u8, Duration::minutes(1)),
                Some(s) => match s.split_once('.') {
                    None => (number(s, 2)?, Duration::seconds(1)),
                    Some((whole, fraction)) => {
                        if fraction.is_empty()
                            || fraction.len() > 9
                            || !fraction.bytes().all(|b| b.is_ascii_digit())
                        {
                            return None;
                        }
                        let nanos: u32 = format!("{fraction:0<9}").parse().ok()?;
                        let step = Duration::nanoseconds(10i64.pow(9 - fraction.len() as u32));
                        let low = at(
                            date,
                            Time::from_hms_nano(hour, minute, number(whole, 2)?, nanos).ok()?,
                            offset,
                        );
                        return Some((low, low.checked_add(step)?));
                    }
                },
            };
            if fields.next().is_some() {
                return None;
            }
            let low = at(date, Time::from_hms(hour, minute, second).ok()?, offset);
            Some((low, low.checked_add(precision)?))
        }
        _ => None,
    }
}

/// A dateTime's clock and zone (`Z`, `+08:00`, or none: Hong Kong).
fn split_zone(t: &str) -> Option<(&str, UtcOffset)> {
    if let Some(clock) = t.strip_suffix('Z') {
        return Some((clock, UtcOffset::UTC));
    }
    if let Some(i) = t.rfind(['+', '-']) {
        let (clock, zone) = t.split_at(i);
        let sign: i8 = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        let h: i8 = number(h, 2)?;
        let m: i8 = number(m, 2)?;
        return Some((clock, UtcOffset::from_hms(sign * h, sign * m, 0).ok()?));
    }
    Some((t, HONG_KONG))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn p(text: &str) -> DateParam {
        DateParam::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn each_precision_stands_for_its_range_in_hong_kong() {
        let d = p("2026-12-07");
        assert_eq!(d.low, datetime!(2026-12-06 16:00 UTC));
        assert_eq!(d.high, datetime!(2026-12-07 16:00 UTC));
        let m = p("2024-02");
        assert_eq!(m.high - m.low, Duration::days(29));
        let y = p("2026");
        assert_eq!(y.low, datetime!(2026-01-01 00:00 +08:00));
        assert_eq!(y.high, datetime!(2027-01-01 00:00 +08:00));
        let t = p("2026-12-07T10:00Z");
        assert_eq!(
            (t.low, t.high - t.low),
            (datetime!(2026-12-07 10:00 UTC), Duration::minutes(1))
        );
        let s = p("2026-12-07T10:00:05-03:30");
        assert_eq!(s.low, datetime!(2026-12-07 13:30:05 UTC));
        let f = p("2026-12-07T10:00:05.25+08:00");
        assert_eq!(f.high - f.low, Duration::milliseconds(10));
        assert_eq!(
            p("2026-12-07T10:00:00").low,
            datetime!(2026-12-07 02:00 UTC)
        );
    }

    #[test]
    fn prefixes_compare_an_instant_with_the_range() {
        let inside = datetime!(2026-12-07 12:00 +08:00);
        let before = datetime!(2026-12-06 23:59:59 +08:00);
        let after = datetime!(2026-12-08 00:00 +08:00);
        let check = |text: &str, expected: [bool; 3]| {
            let d = p(text);
            assert_eq!(
                [d.matches(before), d.matches(inside), d.matches(after)],
                expected,
                "{text}"
            );
        };
        check("2026-12-07", [false, true, false]);
        check("eq2026-12-07", [false, true, false]);
        check("ne2026-12-07", [true, false, true]);
        check("gt2026-12-07", [false, false, true]);
        check("sa2026-12-07", [false, false, true]);
        check("ge2026-12-07", [false, true, true]);
        check("lt2026-12-07", [true, false, false]);
        check("eb2026-12-07", [true, false, false]);
        check("le2026-12-07", [true, true, false]);
    }

    #[test]
    fn a_target_range_is_compared_as_r4_says() {
        let day = p("2026-12-07");
        let (low, high) = (day.low, day.high);
        let hour = Duration::hours(1);
        let within = (low + hour, low + 2 * hour);
        let across_the_end = (high - hour, high + hour);
        let after = (high + hour, high + 2 * hour);
        let cases = [
            ("eq2026-12-07", [true, false, false]),
            ("ne2026-12-07", [false, true, true]),
            ("gt2026-12-07", [false, true, true]),
            ("ge2026-12-07", [true, true, true]),
            ("sa2026-12-07", [false, false, true]),
            ("lt2026-12-07", [false, false, false]),
            ("le2026-12-07", [true, false, false]),
            ("eb2026-12-08", [true, false, false]),
        ];
        for (text, expected) in cases {
            let d = p(text);
            let got = [within, across_the_end, after].map(|(l, h)| d.matches_range(l, h));
            assert_eq!(got, expected, "{text}");
        }
        assert_eq!(range("2026-12-07"), Some((low, high)));
    }

    #[test]
    fn what_is_no_date_is_refused() {
        // The last day the calendar holds has no end to its range: refused, not a panic.
        for end in [
            "9999-12-31",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59.9Z",
            "9999",
        ] {
            assert!(DateParam::parse(end).is_err(), "{end}");
        }
        for bad in [
            "",
            "ge",
            "26-12-07",
            "2026-13",
            "2026-02-30",
            "2026-12-07T25:00Z",
            "2026-12-7",
            "2026-12-07T10",
            "2026-12-07T10:00:00.Z",
            "2026-12-07T10:00+8",
            "yesterday",
            "2026-12-07-01",
        ] {
            assert_eq!(
                DateParam::parse(bad),
                Err(DateParamError::Format),
                "{bad:?}"
            );
        }
        assert_eq!(DateParam::parse("ap2026"), Err(DateParamError::Approximate));
    }
}
