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

/// The signed receipt of a consent given by QR scan (ADR 0018), as returned and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRow {
    pub consent_id: Uuid,
    pub recipient_id: Uuid,
    /// The canonical bytes signed (`core::qr_consent::receipt_bytes`).
    pub body: String,
    /// Ed25519, base64url without padding.
    pub signature: String,
    pub key_id: String,
    pub created_at: OffsetDateTime,
}

/// Keeps a receipt (in the consent's transaction).
pub async fn insert_receipt(conn: Conn<'_>, r: &ReceiptRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO consent_receipt (consent_id, recipient_id, body, signature, key_id, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.consent_id)
        .bind(r.recipient_id)
        .bind(&r.body)
        .bind(&r.signature)
        .bind(&r.key_id)
        .bind(Ts(r.created_at))
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

    /// The receipt of a consent, if it has one.
    pub async fn consent_receipt(&self, consent: Uuid) -> Result<Option<ReceiptRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT consent_id, recipient_id, body, signature, key_id, created_at \
                 FROM consent_receipt WHERE consent_id = $1",
            )
            .bind(consent)
            .fetch_optional(pool)
            .await?;
            let Some(r) = row else { return Ok(None) };
            use sqlx::Row;
            let created: Ts = r.try_get("created_at")?;
            Ok(Some(ReceiptRow {
                consent_id: r.try_get("consent_id")?,
                recipient_id: r.try_get("recipient_id")?,
                body: r.try_get("body")?,
                signature: r.try_get("signature")?,
                key_id: r.try_get("key_id")?,
                created_at: created.0,
            }))
        })
    }
}
