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

impl crate::db::Db {
    /// The consents a recipient gave a provider, newest first (revoked and expired ones
    /// included: FHIR shows them `inactive`).
    pub async fn consents_with(
        &self,
        recipient: Uuid,
        hcp: Uuid,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        self.consents_where("recipient_id = $1 AND hcp_id = $2", recipient, Some(hcp))
            .await
    }

    /// One consent by its id.
    pub async fn consent(&self, id: Uuid) -> Result<Option<ConsentRow>, StoreError> {
        Ok(self
            .consents_where("consent_id = $1", id, None)
            .await?
            .pop())
    }

    async fn consents_where(
        &self,
        filter: &'static str,
        first: Uuid,
        second: Option<Uuid>,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        use sqlx::Row;
        crate::on_pool!(self, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT consent_id, recipient_id, hcp_id, kind, method, method_ref, given_at, \
                 revoked_at, sdm_id, account_id, created_at FROM consent \
                 WHERE {filter} ORDER BY given_at DESC, consent_id"
            )))
            .bind(first);
            if let Some(second) = second {
                q = q.bind(second);
            }
            let rows = q.fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    Ok(ConsentRow {
                        id: r.try_get("consent_id")?,
                        recipient_id: r.try_get("recipient_id")?,
                        hcp_id: r.try_get("hcp_id")?,
                        kind: r.try_get("kind")?,
                        method: r.try_get("method")?,
                        method_ref: r.try_get("method_ref")?,
                        given_at: r.try_get::<Ts, _>("given_at")?.0,
                        revoked_at: r.try_get::<Option<Ts>, _>("revoked_at")?.map(|t| t.0),
                        sdm_id: r.try_get("sdm_id")?,
                        account_id: r.try_get("account_id")?,
                        created_at: r.try_get::<Ts, _>("created_at")?.0,
                    })
                })
                .collect()
        })
    }
}
