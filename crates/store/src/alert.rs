//! Alerts raised on unusual access, and their review.

use ehrshare_core::alert::AlertStatus;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{Conn, Db};
use crate::error::StoreError;
use crate::timestamp::Ts;

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub id: Uuid,
    pub rule: String,
    pub hcp_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub recipient_id: Option<Uuid>,
    /// The audit entry the alert is about, when it is about one.
    pub audit_seq: Option<i64>,
    pub detail: Option<String>,
    pub status: AlertStatus,
    pub note: Option<String>,
    /// The person (a recipient or an SDM) who reported the access: a case they are told the
    /// outcome of (rule `patient-report`).
    pub reported_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// The rule of an alert a recipient raised by reporting a suspicious access (SPEC 3.9).
pub const PATIENT_REPORT: &str = "patient-report";

/// Marks an alert reviewed, with a note.
pub async fn review_alert(
    conn: Conn<'_>,
    id: Uuid,
    note: &str,
    by: Option<Uuid>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "UPDATE alert SET status = 'reviewed', note = $2, reviewed_by = $3, reviewed_at = $4 \
             WHERE alert_id = $1 AND status = 'open'",
        )
        .bind(id)
        .bind(note)
        .bind(by)
        .bind(Ts(at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Raises an alert.
pub async fn insert_alert(conn: Conn<'_>, a: &AlertRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO alert (alert_id, rule, hcp_id, account_id, recipient_id, detail, status, \
             created_at, audit_seq, reported_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(a.id)
        .bind(&a.rule)
        .bind(a.hcp_id)
        .bind(a.account_id)
        .bind(a.recipient_id)
        .bind(&a.detail)
        .bind(a.status.code())
        .bind(Ts(a.created_at))
        .bind(a.audit_seq)
        .bind(a.reported_by)
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

impl Db {
    /// A provider's alerts, newest first.
    pub async fn alerts(&self, hcp: Uuid) -> Result<Vec<AlertRow>, StoreError> {
        self.alerts_where("hcp_id = $1", Some(hcp)).await
    }

    /// Every open alert, newest first.
    pub async fn open_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        self.alerts_where("status = 'open'", None).await
    }

    /// The reports a recipient's log raised (rule `patient-report`), newest first.
    pub async fn reports_of(&self, recipient: Uuid) -> Result<Vec<AlertRow>, StoreError> {
        self.alerts_where(
            "recipient_id = $1 AND rule = 'patient-report'",
            Some(recipient),
        )
        .await
    }

    /// One alert.
    pub async fn alert(&self, id: Uuid) -> Result<Option<AlertRow>, StoreError> {
        Ok(self.alerts_where("alert_id = $1", Some(id)).await?.pop())
    }

    async fn alerts_where(
        &self,
        condition: &'static str,
        key: Option<Uuid>,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!(
            "SELECT alert_id, rule, hcp_id, account_id, recipient_id, detail, status, note, \
             created_at, audit_seq, reported_by FROM alert WHERE {condition} ORDER BY created_at DESC, alert_id DESC LIMIT 500"
        );
        crate::on_pool!(self, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            if let Some(k) = key {
                q = q.bind(k);
            }
            let rows = q.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(AlertRow {
                    id: row.try_get("alert_id")?,
                    rule: row.try_get("rule")?,
                    hcp_id: row.try_get("hcp_id")?,
                    account_id: row.try_get("account_id")?,
                    recipient_id: row.try_get("recipient_id")?,
                    detail: row.try_get("detail")?,
                    status: crate::code::decode(
                        "alert.status",
                        row.try_get("status")?,
                        AlertStatus::parse,
                    )?,
                    note: row.try_get("note")?,
                    audit_seq: row.try_get("audit_seq")?,
                    reported_by: row.try_get("reported_by")?,
                    created_at: row.try_get::<Ts, _>("created_at")?.0,
                });
            }
            Ok(out)
        })
    }
}
