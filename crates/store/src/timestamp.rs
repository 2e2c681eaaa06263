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

/// Read on the calling thread ([`crate::reader`]): the stored text, RFC 3339.
impl rusqlite::types::FromSql for Ts {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(Ts)
            .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
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
}
