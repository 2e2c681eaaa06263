//! Smart ID card readers registered by providers, and the nonces of their assertions.

use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{Conn, Db};
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A smart ID card reader as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderRow {
    pub id: Uuid,
    pub hcp_id: Uuid,
    pub location_id: Uuid,
    /// 64 hex digits.
    pub public_key: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Registers a card reader.
pub async fn insert_reader(conn: Conn<'_>, r: &ReaderRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO card_reader (reader_id, hcp_id, location_id, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.id)
        .bind(r.hcp_id)
        .bind(r.location_id)
        .bind(&r.public_key)
        .bind(Ts(r.created_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Records a card assertion's nonce; false if it was seen before (a replay).
pub async fn claim_card_nonce(
    conn: Conn<'_>,
    nonce: &str,
    reader: Uuid,
    asserted_at: OffsetDateTime,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO card_assertion (nonce, reader_id, asserted_at, received_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(reader)
        .bind(Ts(asserted_at))
        .bind(Ts(at))
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

impl Db {
    /// A card reader.
    pub async fn reader(&self, id: Uuid) -> Result<Option<ReaderRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT reader_id, hcp_id, location_id, public_key, created_at, revoked_at \
                 FROM card_reader WHERE reader_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(ReaderRow {
                id: row.try_get("reader_id")?,
                hcp_id: row.try_get("hcp_id")?,
                location_id: row.try_get("location_id")?,
                public_key: row.try_get("public_key")?,
                created_at: row.try_get::<Ts, _>("created_at")?.0,
                revoked_at: row.try_get::<Option<Ts>, _>("revoked_at")?.map(|t| t.0),
            }))
        })
    }
}
