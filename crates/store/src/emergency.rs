//! Emergency access, "break-glass" (SPEC 3.11): which providers turned it on, and each grant.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A grant as the decision reads it with the recipient's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmergencyRow {
    pub id: Uuid,
    pub hcp_id: Uuid,
    pub account_id: Uuid,
    pub until: OffsetDateTime,
}

/// A grant as stored, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmergencyAccess {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub hcp_id: Uuid,
    pub account_id: Uuid,
    /// A code of `core::access::EmergencyReason`.
    pub reason: String,
    pub details: String,
    pub started_at: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// Stores a grant.
pub async fn insert_emergency_access(
    conn: Conn<'_>,
    g: &NewEmergencyAccess,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO emergency_access (grant_id, recipient_id, hcp_id, account_id, reason, \
             details, started_at, until_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(g.id)
        .bind(g.recipient_id)
        .bind(g.hcp_id)
        .bind(g.account_id)
        .bind(&g.reason)
        .bind(&g.details)
        .bind(Ts(g.started_at))
        .bind(Ts(g.until))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Turns emergency access on (a row) or off (none) for a provider.
pub async fn set_break_glass(
    conn: Conn<'_>,
    hcp: Uuid,
    enabled: bool,
    by: Uuid,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        if enabled {
            sqlx::query(
                "INSERT INTO break_glass_provider (hcp_id, enabled_by, enabled_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (hcp_id) DO NOTHING",
            )
            .bind(hcp)
            .bind(by)
            .bind(Ts(at))
            .execute(&mut *db)
            .await?;
        } else {
            sqlx::query("DELETE FROM break_glass_provider WHERE hcp_id = $1")
                .bind(hcp)
                .execute(&mut *db)
                .await?;
            // Turned off, grants in force end now.
            sqlx::query(
                "UPDATE emergency_access SET until_at = $2 WHERE hcp_id = $1 AND until_at > $2",
            )
            .bind(hcp)
            .bind(Ts(at))
            .execute(&mut *db)
            .await?;
        }
    });
    Ok(())
}

impl crate::Db {
    /// Whether a provider turned emergency access on.
    pub async fn break_glass_enabled(&self, hcp: Uuid) -> Result<bool, StoreError> {
        crate::on_pool!(self, pool => {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM break_glass_provider WHERE hcp_id = $1",
            )
            .bind(hcp)
            .fetch_one(pool)
            .await?;
            Ok(n > 0)
        })
    }

    /// How many grants an account was given since `since` (repeated use raises an alert).
    pub async fn emergency_grants_since(
        &self,
        account: Uuid,
        since: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        crate::on_pool!(self, pool => {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM emergency_access WHERE account_id = $1 AND started_at >= $2",
            )
            .bind(account)
            .bind(Ts(since))
            .fetch_one(pool)
            .await?;
            Ok(n)
        })
    }
}
