//! The patient portal's inbox: notices by the `app` channel, written in the transaction of
//! the action that caused them (`outbox::enqueue`), read and marked read by the recipient.

use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A notice in a recipient's inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxMessage {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub created_at: OffsetDateTime,
    pub template: String,
    pub params: Value,
    pub locale: String,
    pub read_at: Option<OffsetDateTime>,
}

/// Puts `m` in its recipient's inbox, inside the caller's transaction.
pub(crate) async fn insert(conn: Conn<'_>, m: &InboxMessage) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO inbox_message (id, recipient_id, created_at, template, params, locale) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(m.id)
        .bind(m.recipient_id)
        .bind(Ts(m.created_at))
        .bind(&m.template)
        .bind(Json(&m.params))
        .bind(&m.locale)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

impl crate::Db {
    /// A recipient's inbox, newest first, `limit` messages older than `before` (an id).
    pub async fn inbox(
        &self,
        recipient: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<InboxMessage>, StoreError> {
        // Ids are UUIDv7: their order is the order of creation.
        let before = before.unwrap_or(Uuid::max());
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, recipient_id, created_at, template, params, locale, read_at \
                 FROM inbox_message WHERE recipient_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(recipient)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let created: Ts = r.try_get("created_at")?;
                let read: Option<Ts> = r.try_get("read_at")?;
                let Json(params): Json<Value> = r.try_get("params")?;
                out.push(InboxMessage {
                    id: r.try_get("id")?,
                    recipient_id: r.try_get("recipient_id")?,
                    created_at: created.0,
                    template: r.try_get("template")?,
                    params,
                    locale: r.try_get("locale")?,
                    read_at: read.map(|t| t.0),
                });
            }
            Ok(out)
        })
    }

    /// Marks a message of `recipient`'s inbox read at `at` (the first reading counts);
    /// `false` if the recipient has no such message.
    pub async fn inbox_mark_read(
        &self,
        recipient: Uuid,
        id: Uuid,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        crate::on_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE inbox_message SET read_at = COALESCE(read_at, $3) \
                 WHERE recipient_id = $1 AND id = $2",
            )
            .bind(recipient)
            .bind(id)
            .bind(Ts(at))
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
