//! The disclosure ledger (SPEC 3.11).

use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A disclosure as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    /// A code of `core::disclosure::LegalBasis`.
    pub legal_basis: String,
    pub requesting_body: String,
    pub data_disclosed: String,
    /// `YYYY-MM-DD`, Hong Kong's date.
    pub disclosed_on: String,
    pub withhold_until: Option<OffsetDateTime>,
    pub recorded_by: Uuid,
    pub recorded_at: OffsetDateTime,
}

/// Records a disclosure.
pub async fn insert_disclosure(conn: Conn<'_>, d: &DisclosureRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO disclosure (disclosure_id, recipient_id, legal_basis, requesting_body, \
             data_disclosed, disclosed_on, withhold_until, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(d.id)
        .bind(d.recipient_id)
        .bind(&d.legal_basis)
        .bind(&d.requesting_body)
        .bind(&d.data_disclosed)
        .bind(&d.disclosed_on)
        .bind(d.withhold_until.map(Ts))
        .bind(d.recorded_by)
        .bind(Ts(d.recorded_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

impl crate::Db {
    /// A recipient's disclosures, oldest recorded first.
    pub async fn disclosures(&self, recipient: Uuid) -> Result<Vec<DisclosureRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT disclosure_id, recipient_id, legal_basis, requesting_body, \
                 data_disclosed, disclosed_on, withhold_until, recorded_by, recorded_at \
                 FROM disclosure WHERE recipient_id = $1 ORDER BY recorded_at, disclosure_id",
            )
            .bind(recipient)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                use sqlx::Row;
                let withhold: Option<Ts> = r.try_get("withhold_until")?;
                let recorded: Ts = r.try_get("recorded_at")?;
                out.push(DisclosureRow {
                    id: r.try_get("disclosure_id")?,
                    recipient_id: r.try_get("recipient_id")?,
                    legal_basis: r.try_get("legal_basis")?,
                    requesting_body: r.try_get("requesting_body")?,
                    data_disclosed: r.try_get("data_disclosed")?,
                    disclosed_on: r.try_get("disclosed_on")?,
                    withhold_until: withhold.map(|t| t.0),
                    recorded_by: r.try_get("recorded_by")?,
                    recorded_at: recorded.0,
                });
            }
            Ok(out)
        })
    }
}
