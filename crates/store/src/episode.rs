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
    /// When the provider planned it to end (none: it ends when closed, or by itself).
    pub planned_end_at: Option<OffsetDateTime>,
    /// The provider's last deposit or recorded attendance in it.
    pub last_activity_at: Option<OffsetDateTime>,
}

/// Opens a care episode.
pub async fn insert_episode(conn: Conn<'_>, e: &EpisodeRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO care_episode (episode_id, recipient_id, hcp_id, location_id, kind, \
             start_at, end_at, opened_by, closed_by, created_at, planned_end_at, \
             last_activity_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
        .bind(e.planned_end_at.map(Ts))
        .bind(e.last_activity_at.map(Ts))
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

/// Notes activity in an episode not closed (a deposit by its provider, a recorded
/// attendance): its idle end moves to after `at`. An earlier instant changes nothing.
pub async fn note_activity(conn: Conn<'_>, id: Uuid, at: OffsetDateTime) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "UPDATE care_episode SET last_activity_at = $2 WHERE episode_id = $1 \
             AND end_at IS NULL AND (last_activity_at IS NULL OR last_activity_at < $2)",
        )
        .bind(id)
        .bind(Ts(at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// The columns of an [`EpisodeRow`], in its fields' order.
const COLUMNS: &str = "episode_id, recipient_id, hcp_id, location_id, kind, start_at, end_at, \
     opened_by, closed_by, created_at, planned_end_at, last_activity_at";

impl crate::Db {
    /// A provider's episodes not closed that may still be running at `now`: started or
    /// active after `idle_since` (now less the idle period), or planned to end after `now`;
    /// oldest start first, at most `limit`. What its review of open episodes starts from;
    /// `core::episode` decides which of them are open.
    pub async fn unclosed_episodes(
        &self,
        hcp: Uuid,
        idle_since: OffsetDateTime,
        now: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<EpisodeRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM care_episode WHERE hcp_id = $1 AND end_at IS NULL \
             AND (start_at > $2 OR last_activity_at > $2 OR planned_end_at > $3) \
             ORDER BY start_at, episode_id LIMIT $4"
        );
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(hcp)
                .bind(Ts(idle_since))
                .bind(Ts(now))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(episode_row).collect()
        })
    }
}

/// An [`EpisodeRow`] from a row of [`COLUMNS`].
fn episode_row<R>(row: &R) -> Result<EpisodeRow, StoreError>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Uuid>: sqlx::Decode<'r, R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Ts: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Ts>: sqlx::Decode<'r, R::Database>,
{
    let start_at: Ts = row.try_get("start_at")?;
    let end_at: Option<Ts> = row.try_get("end_at")?;
    let created_at: Ts = row.try_get("created_at")?;
    let planned_end_at: Option<Ts> = row.try_get("planned_end_at")?;
    let last_activity_at: Option<Ts> = row.try_get("last_activity_at")?;
    Ok(EpisodeRow {
        id: row.try_get("episode_id")?,
        recipient_id: row.try_get("recipient_id")?,
        hcp_id: row.try_get("hcp_id")?,
        location_id: row.try_get("location_id")?,
        kind: row.try_get("kind")?,
        start_at: start_at.0,
        end_at: end_at.map(|t| t.0),
        opened_by: row.try_get("opened_by")?,
        closed_by: row.try_get("closed_by")?,
        created_at: created_at.0,
        planned_end_at: planned_end_at.map(|t| t.0),
        last_activity_at: last_activity_at.map(|t| t.0),
    })
}
