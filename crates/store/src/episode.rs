//! Care episodes (SPEC 3.5): opened and closed by a provider; read with the decision's facts.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A care episode as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub hcp_id: Uuid,
    pub location_id: Option<Uuid>,
    pub kind: String,
    pub start_at: OffsetDateTime,
    pub end_at: Option<OffsetDateTime>,
    pub opened_by: Uuid,
    pub closed_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// Opens a care episode.
pub async fn insert_episode(conn: Conn<'_>, e: &EpisodeRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO care_episode (episode_id, recipient_id, hcp_id, location_id, kind, \
             start_at, end_at, opened_by, closed_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(e.id)
        .bind(e.recipient_id)
        .bind(e.hcp_id)
        .bind(e.location_id)
        .bind(&e.kind)
        .bind(Ts(e.start_at))
        .bind(e.end_at.map(Ts))
        .bind(e.opened_by)
        .bind(e.closed_by)
        .bind(Ts(e.created_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Closes an open episode; returns whether it was open.
pub async fn close_episode(
    conn: Conn<'_>,
    id: Uuid,
    at: OffsetDateTime,
    by: Uuid,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn, db => {
        sqlx::query(
            "UPDATE care_episode SET end_at = $2, closed_by = $3 WHERE episode_id = $1 AND end_at IS NULL",
        )
        .bind(id)
        .bind(Ts(at))
        .bind(by)
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}
