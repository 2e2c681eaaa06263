//! Sharing consents (SPEC 3.4): given, revoked; read with the decision's facts.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A sharing consent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub hcp_id: Uuid,
    pub kind: String,
    pub method: String,
    pub method_ref: Option<String>,
    pub given_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub sdm_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// Records a consent.
pub async fn insert_consent(conn: Conn<'_>, c: &ConsentRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO consent (consent_id, recipient_id, hcp_id, kind, method, method_ref, \
             given_at, revoked_at, sdm_id, account_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(c.id)
        .bind(c.recipient_id)
        .bind(c.hcp_id)
        .bind(&c.kind)
        .bind(&c.method)
        .bind(&c.method_ref)
        .bind(Ts(c.given_at))
        .bind(c.revoked_at.map(Ts))
        .bind(c.sdm_id)
        .bind(c.account_id)
        .bind(Ts(c.created_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Revokes every consent of a recipient with a provider that is not revoked yet.
pub async fn revoke_consents(
    conn: Conn<'_>,
    recipient: Uuid,
    hcp: Uuid,
    at: OffsetDateTime,
) -> Result<u64, StoreError> {
    let n = crate::on_conn!(conn, db => {
        sqlx::query(
            "UPDATE consent SET revoked_at = $3 WHERE recipient_id = $1 AND hcp_id = $2 \
             AND revoked_at IS NULL",
        )
        .bind(recipient)
        .bind(hcp)
        .bind(Ts(at))
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n)
}
