//! Restricted control (SPEC 3.7): restrictions, unlock requests and the unlocks they grant.

use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{Conn, Db};
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A restriction with its unlocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestrictionRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub domain: Option<String>,
    pub record_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub unlocks: Vec<UnlockRow>,
}

/// An unlock of a restriction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockRow {
    pub id: Uuid,
    pub hcp_id: Uuid,
    pub episode_id: Uuid,
    pub until: OffsetDateTime,
}

/// Puts a record or a domain under restricted control.
pub async fn insert_restriction(conn: Conn<'_>, r: &RestrictionRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO restriction (restriction_id, recipient_id, domain, record_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.id)
        .bind(r.recipient_id)
        .bind(&r.domain)
        .bind(r.record_id)
        .bind(Ts(r.created_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Lifts a restriction of a recipient; returns whether one was lifted.
pub async fn lift_restriction(
    conn: Conn<'_>,
    recipient: Uuid,
    id: Uuid,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn, db => {
        sqlx::query(
            "UPDATE restriction SET lifted_at = $3 WHERE restriction_id = $1 AND recipient_id = $2 \
             AND lifted_at IS NULL",
        )
        .bind(id)
        .bind(recipient)
        .bind(Ts(at))
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// A professional's request to unlock restricted items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockChallengeRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub hcp_id: Uuid,
    pub account_id: Uuid,
    pub episode_id: Uuid,
    pub restriction_ids: Vec<Uuid>,
    pub reason: String,
    pub code_hash: String,
    pub attempts: i64,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// Stores an unlock request.
pub async fn insert_unlock_challenge(
    conn: Conn<'_>,
    c: &UnlockChallengeRow,
) -> Result<(), StoreError> {
    let ids = serde_json::to_string(&c.restriction_ids)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO unlock_challenge (challenge_id, recipient_id, hcp_id, account_id, episode_id, \
             restriction_ids, reason, code_hash, attempts, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(c.id)
        .bind(c.recipient_id)
        .bind(c.hcp_id)
        .bind(c.account_id)
        .bind(c.episode_id)
        .bind(&ids)
        .bind(&c.reason)
        .bind(&c.code_hash)
        .bind(c.attempts)
        .bind(Ts(c.created_at))
        .bind(Ts(c.expires_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Counts a wrong code.
pub async fn count_unlock_attempt(conn: Conn<'_>, id: Uuid) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query("UPDATE unlock_challenge SET attempts = attempts + 1 WHERE challenge_id = $1")
            .bind(id)
            .execute(&mut *db)
            .await?;
    });
    Ok(())
}

/// Uses an unlock request once and writes its unlocks; returns whether this call used it.
pub async fn use_unlock_challenge(
    mut conn: Conn<'_>,
    c: &UnlockChallengeRow,
    until: OffsetDateTime,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn.reborrow(), db => {
        sqlx::query("UPDATE unlock_challenge SET used_at = $2 WHERE challenge_id = $1 AND used_at IS NULL")
            .bind(c.id)
            .bind(Ts(at))
            .execute(&mut *db)
            .await?
            .rows_affected()
    });
    if n != 1 {
        return Ok(false);
    }
    insert_unlocks(
        conn,
        &UnlockGrant {
            restriction_ids: &c.restriction_ids,
            recipient: c.recipient_id,
            hcp: c.hcp_id,
            episode: c.episode_id,
            account: c.account_id,
            reason: &c.reason,
            until,
            at,
        },
    )
    .await?;
    Ok(true)
}

/// Restricted items unlocked for a provider's episode until a time (by a code or a card).
#[derive(Debug, Clone, Copy)]
pub struct UnlockGrant<'a> {
    pub restriction_ids: &'a [Uuid],
    pub recipient: Uuid,
    pub hcp: Uuid,
    pub episode: Uuid,
    pub account: Uuid,
    pub reason: &'a str,
    pub until: OffsetDateTime,
    pub at: OffsetDateTime,
}

/// Stores the unlocks of a grant, one per restricted item.
pub async fn insert_unlocks(mut conn: Conn<'_>, g: &UnlockGrant<'_>) -> Result<(), StoreError> {
    for r in g.restriction_ids {
        crate::on_conn!(conn.reborrow(), db => {
            sqlx::query(
                "INSERT INTO restriction_unlock (unlock_id, restriction_id, recipient_id, hcp_id, \
                 episode_id, account_id, reason, until_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(Uuid::now_v7())
            .bind(r)
            .bind(g.recipient)
            .bind(g.hcp)
            .bind(g.episode)
            .bind(g.account)
            .bind(g.reason)
            .bind(Ts(g.until))
            .bind(Ts(g.at))
            .execute(&mut *db)
            .await?;
        });
    }
    Ok(())
}

impl Db {
    /// An unlock request.
    pub async fn unlock_challenge(
        &self,
        id: Uuid,
    ) -> Result<Option<UnlockChallengeRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT challenge_id, recipient_id, hcp_id, account_id, episode_id, restriction_ids, \
                 reason, code_hash, attempts, created_at, expires_at, used_at FROM unlock_challenge \
                 WHERE challenge_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let ids: String = row.try_get("restriction_ids")?;
            Ok(Some(UnlockChallengeRow {
                id: row.try_get("challenge_id")?,
                recipient_id: row.try_get("recipient_id")?,
                hcp_id: row.try_get("hcp_id")?,
                account_id: row.try_get("account_id")?,
                episode_id: row.try_get("episode_id")?,
                restriction_ids: serde_json::from_str(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                reason: row.try_get("reason")?,
                code_hash: row.try_get("code_hash")?,
                attempts: row.try_get("attempts")?,
                created_at: row.try_get::<Ts, _>("created_at")?.0,
                expires_at: row.try_get::<Ts, _>("expires_at")?.0,
                used_at: row.try_get::<Option<Ts>, _>("used_at")?.map(|t| t.0),
            }))
        })
    }
}
