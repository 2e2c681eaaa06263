//! Timestamps as both backends should store them.
//!
//! PostgreSQL: `TIMESTAMPTZ`. SQLite: UTC text of fixed width,
//! `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so that comparing and ordering the text is comparing and
//! ordering the instants (sqlx's own RFC 3339 text drops a zero fraction, and `...:00Z` sorts
//! after `...:00.5Z`). Microseconds are what PostgreSQL keeps, so both hold the same value.
//! Every timestamp the store binds goes through [`Ts`].

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use time::OffsetDateTime;
use time::macros::format_description;

/// A UTC instant, stored to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub OffsetDateTime);

impl Ts {
    /// The fixed-width SQLite text.
    pub fn sqlite_text(self) -> Result<String, time::error::Format> {
        let utc = self.0.to_offset(time::UtcOffset::UTC);
        utc.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
    }
}

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.sqlite_text()?, buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Ts(<OffsetDateTime as Decode<Sqlite>>::decode(value)?))
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Ts(<OffsetDateTime as Decode<Postgres>>::decode(value)?))
    }
}

impl Ts {
    /// A stored text read back: the fixed-width form [`Ts::sqlite_text`] writes, or else
    /// any RFC 3339 text (as sqlx wrote before, or PostgreSQL's in a packed list).
    ///
    /// The fixed-width form is read by hand: a summary reads two timestamps a record, and
    /// `time`'s general RFC 3339 parser was a visible part of its cost (ADR 0013).
    pub fn parse(text: &str) -> Result<Ts, time::error::Parse> {
        match Ts::parse_fixed(text.as_bytes()) {
            Some(ts) => Ok(ts),
            None => {
                OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map(Ts)
            }
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ` exactly, or `None`.
    fn parse_fixed(b: &[u8]) -> Option<Ts> {
        if b.len() != 27
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || b[19] != b'.'
            || b[26] != b'Z'
        {
            return None;
        }
        let digits = |from: usize, to: usize| -> Option<u32> {
            b[from..to].iter().try_fold(0u32, |n, c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        let year = i32::try_from(digits(0, 4)?).ok()?;
        let month = time::Month::try_from(u8::try_from(digits(5, 7)?).ok()?).ok()?;
        let day = u8::try_from(digits(8, 10)?).ok()?;
        let hour = u8::try_from(digits(11, 13)?).ok()?;
        let minute = u8::try_from(digits(14, 16)?).ok()?;
        let second = u8::try_from(digits(17, 19)?).ok()?;
        let micro = digits(20, 26)?;
        let date = time::Date::from_calendar_date(year, month, day).ok()?;
        let time = time::Time::from_hms_micro(hour, minute, second, micro).ok()?;
        Some(Ts(date.with_time(time).assume_utc()))
    }
}

/// Read on the calling thread ([`crate::in_place`]): the stored text.
impl rusqlite::types::FromSql for Ts {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        Ts::parse(value.as_str()?).map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// Written on the calling thread (the audit writer's batch in place): the same text as sqlx's.
impl rusqlite::types::ToSql for Ts {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.sqlite_text()
            .map(rusqlite::types::ToSqlOutput::from)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn sqlite_text_is_fixed_width_and_sorts_like_time() {
        let times = [
            datetime!(2026-01-15 09:30:00 UTC),
            datetime!(2026-01-15 09:30:00.5 UTC),
            datetime!(2026-01-15 17:30:00.000001 +08:00) + time::Duration::hours(1),
            datetime!(2026-01-15 10:30:00.25 UTC),
        ];
        let texts: Vec<String> = times
            .iter()
            .map(|t| Ts(*t).sqlite_text().unwrap())
            .collect();
        assert_eq!(texts[0], "2026-01-15T09:30:00.000000Z");
        assert_eq!(texts[1], "2026-01-15T09:30:00.500000Z");
        assert_eq!(texts[2], "2026-01-15T10:30:00.000001Z");
        assert!(texts.iter().all(|t| t.len() == 27));
        let mut by_text: Vec<usize> = (0..times.len()).collect();
        by_text.sort_by(|a, b| texts[*a].cmp(&texts[*b]));
        let mut by_time: Vec<usize> = (0..times.len()).collect();
        by_time.sort_by(|a, b| times[*a].cmp(&times[*b]));
        assert_eq!(by_text, by_time);
    }

    #[test]
    fn stored_texts_read_back_by_hand_or_as_rfc_3339() {
        let times = [
            datetime!(2026-01-15 09:30:00 UTC),
            datetime!(2026-02-28 23:59:59.999999 UTC),
            datetime!(2024-02-29 00:00:00.000001 UTC),
            datetime!(0001-01-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59.5 UTC),
        ];
        for t in times {
            let text = Ts(t).sqlite_text().unwrap();
            assert_eq!(Ts::parse_fixed(text.as_bytes()), Some(Ts(t)), "{text}");
            assert_eq!(Ts::parse(&text).unwrap(), Ts(t));
        }
        // Other RFC 3339 forms take the general parser, to the same instant.
        for (text, t) in [
            ("2026-01-15T09:30:00Z", datetime!(2026-01-15 09:30:00 UTC)),
            (
                "2026-01-15T17:30:00.5+08:00",
                datetime!(2026-01-15 09:30:00.5 UTC),
            ),
        ] {
            assert_eq!(Ts::parse_fixed(text.as_bytes()), None);
            assert_eq!(Ts::parse(text).unwrap(), Ts(t));
        }
        // Not a time: refused by both, never read as some other instant.
        for bad in [
            "2026-02-30T09:30:00.000000Z",
            "2026-13-15T09:30:00.000000Z",
            "2026-01-15T24:30:00.000000Z",
            "2026-01-15T09:30:60.000000Z",
            "2026-01-15T09:3a:00.000000Z",
            "2026-01-15T09:30:00.000000+",
            "+026-01-15T09:30:00.000000Z",
            "",
        ] {
            assert_eq!(Ts::parse_fixed(bad.as_bytes()), None, "{bad}");
            assert!(Ts::parse(bad).is_err(), "{bad}");
        }
    }
}
